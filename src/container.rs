//! Running the function in an OCI container inside the guest, as the serverless-suite
//! methodology and vSwarm-u measure functions (a Docker container pinned to core 1, reached
//! through a published port).
//!
//! - Root file system: `simctl build-image` copies the workload's install tree a second time,
//!   to `/var/lib/simctl/containers/<name>/rootfs` ([`rootfs_overlay`]), so the function's own
//!   files come from no registry; the guest's `/usr`, `/etc` (and the merged-/usr links) are
//!   bound read-only into it for interpreted functions, which need their runtime.
//! - Runtime: Debian's `runc` (Docker's own runtime) runs the bundle in the foreground, in new
//!   pid, ipc, uts and mount namespaces and the network namespace below, in the cgroup v2
//!   `/simctl/function` whose cpuset is core 1 (`docker update --cpuset-cpus 1`), with Docker's
//!   default capabilities and its default seccomp profile ([`seccomp`]; `--seccomp unconfined`
//!   leaves it out). runc itself runs on the client core (core 0): like Docker, only the
//!   container's cgroup is pinned, so the function's core runs nothing but the function. Not
//!   crun: crun 1.8 reads /proc/self/uid_map and /proc/self/setgroups, which exist only with
//!   CONFIG_USER_NS, a namespace the lean kernel leaves out. runc needs the kernel to filter
//!   cgroup v2 device access with BPF (CONFIG_BPF_SYSCALL, CONFIG_CGROUP_BPF).
//! - Network: Docker's bridge path without its userland proxy: bridge `simctl0` (172.17.0.1),
//!   veth pair into the container's namespace (172.17.0.2), nftables DNAT of 127.0.0.1:PORT to
//!   the container and masquerade of loopback sources onto the bridge (what Docker installs with
//!   `userland-proxy: false`). The guest has no NIC: these addresses exist only inside it.
//! - Proof: once the port answers, a check step reads the function's pid (runc `--pid-file`)
//!   and prints what the guest kernel says about it (`SIMCTL-AFFINITY pid=.. name=aes-go cpus=1
//!   isolation=container exe=.. nspid=N,1 cgroup=/simctl/function own-pid-ns=yes
//!   own-net-ns=yes seccomp=2 seccomp-filters=1`); the run fails unless it is on core 1 only,
//!   in its own pid and network namespaces and the container's cgroup, under the filter asked
//!   for.
//!
//! The run plan carries the bundle's config.json, the network setup and the check
//! ([`plan_parts`]).
//!
//! Status: proven on QEMU (TCG) with aes-go, aes-python and aes-nodejs (vSwarm's reply bytes
//! through the published port, `tests/e2e_container.rs`) and the other functions without
//! helpers; not yet run under gem5. Workloads with helpers run as processes ([`choose`]).

pub mod seccomp;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::image::Overlay;
use crate::workloads::Workload;
use seccomp::Seccomp;

/// Where container bundles live in the guest.
pub const BUNDLE_ROOT: &str = "/var/lib/simctl/containers";
/// The network namespace the setup script creates and the container joins.
const NETNS: &str = "simctl-function";
const BRIDGE_ADDR: &str = "172.17.0.1";
const CONTAINER_ADDR: &str = "172.17.0.2";
const NETWORK_SCRIPT: &str = "/tmp/simctl-container-network.sh";
const NAT_RULES: &str = "/tmp/simctl-container-nat.nft";
/// The container's cgroup (v2), whose cpuset pins it.
const CGROUP: &str = "/simctl/function";
const CHECK_SCRIPT: &str = "/tmp/simctl-container-check.sh";
/// runc writes the container's init pid (the function, as seen from the guest) here.
const PID_FILE: &str = "/run/simctl-function.pid";

/// How the function runs in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// In an OCI container started by runc, as the methodology measures functions.
    Container,
    /// As a bare process (pinned to the same core), for comparison.
    Process,
}

impl Isolation {
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Container => "container",
            Isolation::Process => "process",
        }
    }
}

/// The isolation of a run: the one asked for, else a container. A workload whose command starts
/// helpers beside it (recommendationservice starts productcatalogservice with `taskset -c 0`)
/// cannot run in the container's cpuset of core 1 (that pinning fails there, and the helper
/// would take the function's core); vSwarm-u runs such helpers as containers of their own,
/// which simctl does not do yet, so such a workload runs as a process unless asked otherwise.
pub fn choose(requested: Option<Isolation>, workload: &Workload) -> anyhow::Result<Isolation> {
    let helpers = &workload.manifest.helpers;
    match requested {
        Some(Isolation::Container) if !helpers.is_empty() => anyhow::bail!(
            "{} starts its helper(s) {} on core 0 from its own command, which cannot work in a \
             container pinned to core 1; hint: use --isolation process (helpers in containers \
             of their own are not implemented yet)",
            workload.name(),
            helpers.join(", ")
        ),
        Some(isolation) => Ok(isolation),
        None if !helpers.is_empty() => {
            eprintln!(
                "note: {} runs as a process: it starts helpers beside it, which containers do \
                 not support yet",
                workload.name()
            );
            Ok(Isolation::Process)
        }
        None => Ok(Isolation::Container),
    }
}

/// The bundle directory of a workload in the guest.
pub fn bundle_dir(workload: &Workload) -> String {
    format!("{BUNDLE_ROOT}/{}", workload.name())
}

/// The image overlay that makes the workload's install tree (`install_root`, as returned by
/// `workloads::build`) the container's root file system.
pub fn rootfs_overlay(workload: &Workload, install_root: PathBuf) -> Overlay {
    Overlay {
        source: install_root,
        target: PathBuf::from(bundle_dir(workload)).join("rootfs"),
    }
}

/// What a container run adds to the plan: files to write, the setup step's argv (run before
/// the function), the function step's argv (runc, which itself runs on the client core: only
/// the container's cgroup is pinned, as with `docker update --cpuset-cpus`) and the check
/// step's argv (run once the port answers).
pub struct PlanParts {
    pub files: BTreeMap<String, String>,
    pub setup_argv: Vec<String>,
    pub function_argv: Vec<String>,
    pub check_argv: Vec<String>,
}

/// The plan pieces for running `workload` in a container on `cpu`, published on `port`, with
/// `env` added to the function's environment, under the `seccomp` filter.
pub fn plan_parts(
    workload: &Workload,
    port: u16,
    cpu: usize,
    env: &BTreeMap<String, String>,
    seccomp: Seccomp,
) -> PlanParts {
    let config = oci_config(&workload.server_argv("0.0.0.0"), cpu, env, seccomp);
    container_parts(workload, port, cpu, config, CheckPid::PidFile, seccomp)
}

/// The plan pieces for running a `--bench` program in the workload's container instead of the
/// function: the same bundle, namespaces, cgroup (cpuset `cpu`) and network namespace, with
/// `results_dir` bound read-write so that what the program writes comes back. The check runs
/// as runc's poststart hook (the program may end before a later step could look at it); it
/// writes its marker to the console and fails the run unless the program is pinned and isolated.
pub fn bench_parts(
    workload: &Workload,
    argv: &[String],
    cpu: usize,
    results_dir: &str,
    seccomp: Seccomp,
) -> PlanParts {
    let mut config = oci_config(argv, cpu, &BTreeMap::new(), seccomp);
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.push(
            json!({"destination": results_dir, "type": "bind", "source": results_dir,
                           "options": ["rbind", "rw", "nosuid", "nodev"]}),
        );
    }
    config["hooks"] = json!({"poststart": [{"path": "/bin/sh", "args": ["sh", CHECK_SCRIPT]}]});
    container_parts(
        workload,
        workload.manifest.port,
        cpu,
        config,
        CheckPid::HookState,
        seccomp,
    )
}

/// Where the check script finds the container's pid.
#[derive(Clone, Copy)]
enum CheckPid {
    /// runc's --pid-file, once the function's port answers (a step of its own).
    PidFile,
    /// The container state runc hands a hook on stdin (`"pid":N`); the hook's output is
    /// captured by runc, so the marker goes to the console directly.
    HookState,
}

fn container_parts(
    workload: &Workload,
    port: u16,
    cpu: usize,
    config: serde_json::Value,
    pid: CheckPid,
    seccomp: Seccomp,
) -> PlanParts {
    let bundle = bundle_dir(workload);
    let mut files = BTreeMap::new();
    files.insert(
        format!("{bundle}/config.json"),
        serde_json::to_string_pretty(&config).unwrap_or_default(),
    );
    files.insert(NETWORK_SCRIPT.to_string(), network_script());
    files.insert(NAT_RULES.to_string(), nat_rules(port));
    files.insert(
        CHECK_SCRIPT.to_string(),
        check_script(workload.name(), cpu, pid, seccomp),
    );
    PlanParts {
        files,
        setup_argv: vec!["/bin/sh".into(), NETWORK_SCRIPT.into()],
        function_argv: vec![
            "/usr/sbin/runc".into(),
            "run".into(),
            "--pid-file".into(),
            PID_FILE.into(),
            "--bundle".into(),
            bundle,
            "function".into(),
        ],
        check_argv: vec!["/bin/sh".into(), CHECK_SCRIPT.into()],
    }
}

/// Docker's default capability set (moby `oci/caps/defaults.go`).
const DOCKER_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The OCI runtime config (runtime-spec 1.0) of the function's container; `env` comes after
/// the default PATH (and replaces it when it sets PATH).
fn oci_config(
    argv: &[String],
    cpu: usize,
    env: &BTreeMap<String, String>,
    seccomp: Seccomp,
) -> serde_json::Value {
    let bind = |path: &str| {
        json!({"destination": path, "type": "bind", "source": path,
               "options": ["rbind", "ro", "nosuid", "nodev"]})
    };
    let tmpfs = |path: &str, options: &[&str]| json!({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": options});
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        tmpfs(
            "/dev",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        tmpfs(
            "/dev/shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        tmpfs("/tmp", &["nosuid", "nodev", "mode=1777"]),
    ];
    mounts.extend(["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64"].map(bind));
    let mut process_env = BTreeMap::from([(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )]);
    process_env.extend(
        env.iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    let process_env: Vec<String> = process_env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": argv,
            "env": process_env,
            "cwd": "/",
            "capabilities": {
                "bounding": DOCKER_CAPABILITIES,
                "effective": DOCKER_CAPABILITIES,
                "permitted": DOCKER_CAPABILITIES,
            },
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "function",
        "mounts": mounts,
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "network", "path": format!("/run/netns/{NETNS}")},
            ],
            "resources": {"cpu": {"cpus": cpu.to_string()}},
            "cgroupsPath": CGROUP,
        },
    });
    if let Some(filter) = seccomp::oci_section(seccomp, &DOCKER_CAPABILITIES) {
        config["linux"]["seccomp"] = filter;
    }
    config
}

/// Creates the container's network namespace, the bridge and the veth pair, then loads the NAT
/// rules. Fixed text: nothing in it comes from user input.
fn network_script() -> String {
    format!(
        "set -eu\n\
         ip netns add {NETNS}\n\
         ip link add simctl0 type bridge\n\
         ip addr add {BRIDGE_ADDR}/16 dev simctl0\n\
         ip link set simctl0 up\n\
         ip link add veth-function type veth peer name eth0 netns {NETNS}\n\
         ip link set veth-function master simctl0 up\n\
         ip -n {NETNS} addr add {CONTAINER_ADDR}/16 dev eth0\n\
         ip -n {NETNS} link set lo up\n\
         ip -n {NETNS} link set eth0 up\n\
         ip -n {NETNS} route add default via {BRIDGE_ADDR}\n\
         echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet\n\
         nft -f {NAT_RULES}\n"
    )
}

/// Prints what the guest kernel says about the function runc started, as the affinity marker
/// a bare process gets (`SIMCTL-AFFINITY pid=.. name=aes-go cpus=1 isolation=container nspid=..
/// cgroup=.. own-pid-ns=yes own-net-ns=yes seccomp=2`), and fails the run unless it is pinned
/// to `cpu` only, in its own pid and network namespaces and in the container's cgroup, under
/// the `seccomp` filter asked for: a run that says "container" must have measured one. Fixed
/// text apart from the workload's name and `cpu`.
fn check_script(name: &str, cpu: usize, pid: CheckPid, seccomp: Seccomp) -> String {
    let seccomp_mode = seccomp.status_mode();
    let seccomp_name = seccomp.name();
    let find_pid = match pid {
        CheckPid::PidFile => format!("pid=$(cat {PID_FILE})"),
        CheckPid::HookState => r#"exec >/dev/console
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')"#
            .to_string(),
    };
    format!(
        r#"set -eu
{find_pid}
field() {{ sed -n "s/^$1:[[:space:]]*//p" /proc/$pid/status | tr '\t' ,; }}
own() {{ [ "$(readlink /proc/$pid/ns/$1)" != "$(readlink /proc/1/ns/$1)" ] && echo yes || echo no; }}
cpus=$(field Cpus_allowed_list)
cgroup=$(sed -n "s/^0:://p" /proc/$pid/cgroup)
pidns=$(own pid)
netns=$(own net)
seccomp=$(field Seccomp)
echo "SIMCTL-AFFINITY pid=$pid name={name} cpus=$cpus isolation=container exe=$(readlink /proc/$pid/exe) nspid=$(field NSpid) cgroup=$cgroup own-pid-ns=$pidns own-net-ns=$netns seccomp=$seccomp seccomp-filters=$(field Seccomp_filters)"
if [ "$cpus" != {cpu} ] || [ $pidns != yes ] || [ $netns != yes ] || [ "$cgroup" != {CGROUP} ]; then
  echo "SIMCTL-ERROR the function is not pinned to CPU {cpu} in its own pid and network namespaces and cgroup {CGROUP}"
  exit 1
fi
if [ "$seccomp" != {seccomp_mode} ]; then
  echo "SIMCTL-ERROR the function runs with Seccomp: $seccomp in /proc/$pid/status, not {seccomp_mode} ({seccomp_name}); hint: is the guest kernel built with CONFIG_SECCOMP_FILTER?"
  exit 1
fi
"#
    )
}

/// The published port: connections to 127.0.0.1:port go to the container.
fn nat_rules(port: u16) -> String {
    format!(
        "table ip simctl {{\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100;\n\
         \t\tip daddr 127.0.0.1 tcp dport {port} dnat to {CONTAINER_ADDR}:{port}\n\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority 100;\n\
         \t\tip saddr 127.0.0.0/8 oifname \"simctl0\" masquerade\n\
         \t}}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;

    #[test]
    fn container_by_default_but_process_for_a_workload_with_helpers() {
        let project = Project::at(env!("CARGO_MANIFEST_DIR"));
        let aes = Workload::load(&project, "aes-go").unwrap();
        let recommendation = Workload::load(&project, "recommendationservice").unwrap();
        assert_eq!(choose(None, &aes).unwrap(), Isolation::Container);
        assert_eq!(
            choose(Some(Isolation::Process), &aes).unwrap(),
            Isolation::Process
        );
        assert_eq!(choose(None, &recommendation).unwrap(), Isolation::Process);
        let err = choose(Some(Isolation::Container), &recommendation)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("productcatalogservice") && err.contains("hint: use --isolation process"),
            "{err}"
        );
    }

    #[test]
    fn the_check_script_prints_markers_the_host_reads() {
        use simctl_guest::markers::Marker;
        let substitution = regex::Regex::new(r"\$\([^)]*\)|\$[a-z]+").unwrap();
        let markers: Vec<Marker> =
            check_script("aes-go", 1, CheckPid::PidFile, Seccomp::DockerDefault)
                .lines()
                .filter_map(|line| line.trim().strip_prefix("echo \""))
                .map(|echoed| {
                    // What the shell prints, with "1" for every variable and command.
                    let printed = substitution.replace_all(echoed.trim_end_matches('"'), "1");
                    Marker::parse(&printed)
                        .unwrap_or_else(|| panic!("the host cannot read `{printed}`"))
                })
                .collect();
        assert!(
            matches!(
                &markers[..],
                [
                    Marker::Affinity { name: Some(name), cpus, .. },
                    Marker::Error(_),
                    Marker::Error(_),
                ]
                    if name == "aes-go" && cpus == "1"
            ),
            "{markers:?}"
        );
    }

    #[test]
    fn container_plan_parts_pin_publish_and_listen_on_all_addresses() {
        let project = Project::at(env!("CARGO_MANIFEST_DIR"));
        let workload = Workload::load(&project, "aes-go").unwrap();
        let env = BTreeMap::from([("LD_PRELOAD".to_string(), "/x.so".to_string())]);
        let parts = plan_parts(&workload, 50051, 1, &env, Seccomp::DockerDefault);
        let config: serde_json::Value =
            serde_json::from_str(&parts.files["/var/lib/simctl/containers/aes-go/config.json"])
                .unwrap();
        assert_eq!(config["linux"]["resources"]["cpu"]["cpus"], "1");
        assert_eq!(
            config["process"]["env"],
            json!([
                "LD_PRELOAD=/x.so",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ])
        );
        assert_eq!(
            config["process"]["args"],
            json!(["/opt/simctl/workloads/aes-go/server", "-addr=0.0.0.0:50051"])
        );
        assert_eq!(
            config["linux"]["namespaces"][4]["path"],
            "/run/netns/simctl-function"
        );
        assert!(parts.files[NAT_RULES].contains("dnat to 172.17.0.2:50051"));
        assert_eq!(
            parts.function_argv,
            [
                "/usr/sbin/runc",
                "run",
                "--pid-file",
                PID_FILE,
                "--bundle",
                "/var/lib/simctl/containers/aes-go",
                "function"
            ]
        );
        let check = &parts.files[CHECK_SCRIPT];
        assert_eq!(parts.check_argv, ["/bin/sh", CHECK_SCRIPT]);
        assert!(
            check.contains("name=aes-go cpus=$cpus isolation=container"),
            "{check}"
        );
        assert!(check.contains(r#"[ "$cpus" != 1 ]"#), "{check}");
        assert!(check.contains(r#"[ "$seccomp" != 2 ]"#), "{check}");
        assert_eq!(
            config["linux"]["seccomp"]["defaultAction"],
            "SCMP_ACT_ERRNO"
        );
        let unconfined = plan_parts(&workload, 50051, 1, &env, Seccomp::Unconfined);
        let config: serde_json::Value = serde_json::from_str(
            &unconfined.files["/var/lib/simctl/containers/aes-go/config.json"],
        )
        .unwrap();
        assert!(config["linux"].get("seccomp").is_none(), "{config}");
        assert!(unconfined.files[CHECK_SCRIPT].contains(r#"[ "$seccomp" != 0 ]"#));
        let overlay = rootfs_overlay(&workload, PathBuf::from("/x"));
        assert_eq!(
            overlay.target,
            PathBuf::from("/var/lib/simctl/containers/aes-go/rootfs")
        );
    }
}

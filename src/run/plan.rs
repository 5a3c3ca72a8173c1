//! The guest run plan for a run: start the function pinned to core 1 (in a container or as a
//! process), wait for its port, optionally replay conformance pairs, then run the client pinned
//! to core 0 with the run's load pattern.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use simctl_guest::plan::{DEFAULT_RESULTS_DIR, Plan, Step};

use super::Pattern;
use super::spec::RunSpec;
use crate::container::seccomp::Seccomp;
use crate::container::{self, Isolation};
use crate::workloads::Workload;

/// The core the function gets to itself (`isolcpus=1`).
pub const FUNCTION_CPU: usize = 1;
/// The core the client and everything else run on.
pub const CLIENT_CPU: usize = 0;

/// Where `--replay` pairs are written in the guest.
const REPLAY_FILE: &str = "/tmp/simctl-conformance.jsonl";

/// The variable that names readhook.so's counter file (guest/hook/readhook.c); when the
/// function's environment sets it, the client reads the counter around every measured
/// invocation of the closed pattern.
pub const HOOK_COUNTER_VAR: &str = "READHOOK_COUNT";

/// Builds the plan; a gem5 run stretches the guest-side timeouts for simulation.
/// The co-runner's step name, which names its pid file too.
const CO_RUNNER_STEP: &str = "co-runner";

pub fn make_plan(workload: &Workload, spec: &RunSpec) -> Result<Plan> {
    // Resolved with the isolation (spec::seccomp_of): a container always has its filter named.
    let seccomp = spec.seccomp.unwrap_or(Seccomp::DockerDefault);
    let timeout_s = if spec.is_gem5() { 24 * 3600 } else { 600 };
    if let Some(bench) = &spec.bench {
        let argv: Vec<String> = bench.split_whitespace().map(String::from).collect();
        let step = |name: &str, argv: Vec<String>, cpu: usize| Step {
            name: name.into(),
            argv,
            cpu: Some(cpu),
            background: false,
            wait_for_port: None,
            timeout_s,
            env: Default::default(),
        };
        let (files, steps) = match spec.isolation {
            Isolation::Process => (BTreeMap::new(), vec![step("bench", argv, FUNCTION_CPU)]),
            Isolation::Container => {
                // As a function's container: runc on the client core, the cgroup pins the
                // program; runc's poststart hook checks that it did.
                let parts = container::bench_parts(
                    workload,
                    &argv,
                    FUNCTION_CPU,
                    DEFAULT_RESULTS_DIR,
                    seccomp,
                );
                (
                    parts.files,
                    vec![
                        step("container-network", parts.setup_argv, CLIENT_CPU),
                        step("runc", parts.function_argv, CLIENT_CPU),
                    ],
                )
            }
        };
        return Ok(Plan {
            results_dir: DEFAULT_RESULTS_DIR.into(),
            files,
            steps,
        });
    }
    let port = workload.manifest.port;
    let mut client = vec![
        "/sbin/simctl-client".to_string(),
        "--service".into(),
        workload.manifest.service.clone(),
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--request".into(),
        spec.request.clone(),
        "--warmup".into(),
        spec.warmup.to_string(),
        "--warming".into(),
        spec.gem5
            .as_ref()
            .map_or(0, |gem5| gem5.warming)
            .to_string(),
        "--invocations".into(),
        spec.invocations.to_string(),
        "--cpu".into(),
        CLIENT_CPU.to_string(),
        "--out".into(),
        DEFAULT_RESULTS_DIR.into(),
    ];
    client.extend(spec.load.client_args());
    let client_step = |name: &str, argv: Vec<String>| Step {
        name: name.into(),
        argv,
        cpu: Some(CLIENT_CPU),
        background: false,
        wait_for_port: None,
        timeout_s,
        env: Default::default(),
    };
    let mut files = BTreeMap::new();
    let mut steps = Vec::new();
    // The function is reached at 127.0.0.1:port either way (a container through its published
    // port), so readiness and the client do not depend on the isolation.
    let function_step = |name: &str, argv: Vec<String>, cpu: usize| Step {
        name: name.into(),
        argv,
        cpu: Some(cpu),
        background: true,
        wait_for_port: Some(port),
        timeout_s,
        env: Default::default(),
    };
    // Where the client finds the hook's counter: the function's path, inside the container's
    // root file system when it runs in one.
    if let Some(counter) = spec.function_env.get(HOOK_COUNTER_VAR)
        && spec.load.kind() == Pattern::Closed
    {
        let guest_path = match spec.isolation {
            Isolation::Process => counter.clone(),
            Isolation::Container => format!("{}/rootfs{counter}", container::bundle_dir(workload)),
        };
        client.extend(["--read-counter".to_string(), guest_path]);
    }
    match spec.isolation {
        Isolation::Process => steps.push(Step {
            // Only the function's process gets the extra environment.
            env: spec.function_env.clone(),
            ..function_step(
                workload.name(),
                workload.server_argv("127.0.0.1"),
                FUNCTION_CPU,
            )
        }),
        Isolation::Container => {
            let parts =
                container::plan_parts(workload, port, FUNCTION_CPU, &spec.function_env, seccomp);
            files.extend(parts.files);
            steps.push(client_step("container-network", parts.setup_argv));
            // runc itself stays on the client core; the container's cgroup pins the function.
            steps.push(function_step("runc", parts.function_argv, CLIENT_CPU));
            steps.push(client_step("container-check", parts.check_argv));
        }
    }
    if let Some(pairs) = &spec.replay {
        // The guest client checks the pairs (and names a bad line) before the load runs.
        let text = std::fs::read_to_string(pairs).with_context(|| {
            format!(
                "cannot read --replay {}; hint: pass a file from tests/fixtures/conformance/",
                pairs.display()
            )
        })?;
        files.insert(REPLAY_FILE.to_string(), text);
        steps.push(client_step(
            "conformance",
            vec![
                "/sbin/simctl-client".into(),
                "--replay".into(),
                REPLAY_FILE.into(),
                "--addr".into(),
                format!("127.0.0.1:{port}"),
            ],
        ));
    }
    if let Some(co_runner) = &spec.co_runner {
        // Beside the function on its core until the end of the run (stopped with the function);
        // the client holds it during each invocation through the pid file simctl-init writes.
        client.extend([
            "--co-runner-pidfile".to_string(),
            format!("/run/simctl/{CO_RUNNER_STEP}.pid"),
        ]);
        steps.push(Step {
            name: CO_RUNNER_STEP.into(),
            argv: co_runner.split_whitespace().map(String::from).collect(),
            cpu: Some(FUNCTION_CPU),
            background: true,
            wait_for_port: None,
            timeout_s,
            env: Default::default(),
        });
    }
    steps.push(client_step("client", client));
    Ok(Plan {
        results_dir: DEFAULT_RESULTS_DIR.into(),
        files,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;
    use crate::run::RunArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan> {
        let project = Project::at(env!("CARGO_MANIFEST_DIR"));
        let cli = Cli::parse_from(
            ["simctl", "--workload", "aes-go", "--platform", "qemu"]
                .iter()
                .chain(args),
        );
        let resolved = crate::run::spec::resolve(&project, &cli.run, &crate::run::kvm::probe())?;
        make_plan(&resolved.workload, &resolved.spec)
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.steps.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn container_runs_runc_after_the_network_and_process_the_bare_server() {
        let container = plan(&[]).unwrap();
        assert_eq!(
            names(&container),
            ["container-network", "runc", "container-check", "client"]
        );
        assert_eq!(container.steps[1].argv[0], "/usr/sbin/runc");
        assert_eq!(container.steps[1].cpu, Some(CLIENT_CPU));
        assert_eq!(container.steps[1].wait_for_port, Some(50051));
        assert!(
            container
                .files
                .contains_key("/var/lib/simctl/containers/aes-go/config.json")
        );
        let process = plan(&["--isolation", "process"]).unwrap();
        assert_eq!(names(&process), ["aes-go", "client"]);
        assert_eq!(
            process.steps[0].argv,
            [
                "/opt/simctl/workloads/aes-go/server",
                "-addr=127.0.0.1:50051"
            ]
        );
        assert!(process.files.is_empty());
    }

    #[test]
    fn a_co_runner_shares_the_function_core_and_the_client_holds_it_by_its_pid_file() {
        let held = plan(&[
            "--isolation",
            "process",
            "--think",
            "1ms",
            "--co-runner",
            "/sbin/simctl-thrash --code-kb 64",
        ])
        .unwrap();
        assert_eq!(names(&held), ["aes-go", "co-runner", "client"]);
        let co_runner = &held.steps[1];
        assert_eq!(co_runner.argv, ["/sbin/simctl-thrash", "--code-kb", "64"]);
        assert_eq!(co_runner.cpu, Some(FUNCTION_CPU));
        assert!(co_runner.background && co_runner.wait_for_port.is_none());
        let client = held.steps[2].argv.join(" ");
        assert!(
            client.contains("--co-runner-pidfile /run/simctl/co-runner.pid")
                && client.contains("--think-us 1000"),
            "{client}"
        );
        let err = format!(
            "{:#}",
            plan(&["--pattern", "streams", "--co-runner", "/sbin/simctl-thrash"]).unwrap_err()
        );
        assert!(err.contains("closed pattern"), "{err}");
    }

    #[test]
    fn replay_carries_the_pairs_and_checks_them_before_the_load() {
        let pairs = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/conformance/aes-go.jsonl"
        );
        let plan = plan(&["--isolation", "process", "--replay", pairs]).unwrap();
        assert_eq!(names(&plan), ["aes-go", "conformance", "client"]);
        assert_eq!(
            plan.files[REPLAY_FILE],
            std::fs::read_to_string(pairs).unwrap()
        );
        assert_eq!(plan.steps[1].argv[1..3], ["--replay", REPLAY_FILE]);
        let missing = plan_err(&["--replay", "/nonexistent.jsonl"]);
        assert!(
            missing.contains("cannot read --replay /nonexistent.jsonl"),
            "{missing}"
        );
    }

    #[test]
    fn function_env_reaches_the_function_only_and_the_client_reads_the_hook_counter() {
        let env = [
            "--function-env",
            "LD_PRELOAD=/usr/local/lib/simctl/readhook.so",
            "--function-env",
            "READHOOK_COUNT=/opt/simctl/readhook.count",
        ];
        let process = plan(&[&["--isolation", "process"][..], &env].concat()).unwrap();
        assert_eq!(
            process.steps[0].env["LD_PRELOAD"],
            "/usr/local/lib/simctl/readhook.so"
        );
        let client = process.steps.last().unwrap();
        assert!(client.env.is_empty());
        assert!(
            client
                .argv
                .windows(2)
                .any(|w| w == ["--read-counter", "/opt/simctl/readhook.count"]),
            "{:?}",
            client.argv
        );
        let container = plan(&env).unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&container.files["/var/lib/simctl/containers/aes-go/config.json"])
                .unwrap();
        let process_env = config["process"]["env"].to_string();
        assert!(
            process_env.contains("LD_PRELOAD=/usr/local/lib/simctl/readhook.so"),
            "{process_env}"
        );
        assert!(container.steps.iter().all(|s| s.env.is_empty()));
        assert!(container.steps.last().unwrap().argv.join(" ").contains(
            "--read-counter /var/lib/simctl/containers/aes-go/rootfs/opt/simctl/readhook.count"
        ));
        let streams = plan(&[&["--pattern", "streams"][..], &env].concat()).unwrap();
        assert!(
            !streams
                .steps
                .last()
                .unwrap()
                .argv
                .contains(&"--read-counter".to_string())
        );
    }

    #[test]
    fn a_bench_runs_bare_unless_a_container_is_asked_for() {
        let bench = ["--bench", "/sbin/simctl-syscalls --variants bare"];
        let bare = plan(&bench).unwrap();
        assert_eq!(names(&bare), ["bench"]);
        assert_eq!(bare.steps[0].cpu, Some(FUNCTION_CPU));
        let contained = plan(&[&bench[..], &["--isolation", "container"]].concat()).unwrap();
        assert_eq!(names(&contained), ["container-network", "runc"]);
        assert!(
            contained
                .steps
                .iter()
                .all(|s| s.cpu == Some(CLIENT_CPU) && !s.background)
        );
        let config: serde_json::Value =
            serde_json::from_str(&contained.files["/var/lib/simctl/containers/aes-go/config.json"])
                .unwrap();
        assert_eq!(
            config["process"]["args"],
            serde_json::json!(["/sbin/simctl-syscalls", "--variants", "bare"])
        );
        assert_eq!(config["linux"]["resources"]["cpu"]["cpus"], "1");
        let mounts = config["mounts"].to_string();
        assert!(
            mounts.contains(r#""destination":"/tmp/simctl-results""#) && mounts.contains(r#""rw""#),
            "{mounts}"
        );
        assert_eq!(
            config["hooks"]["poststart"][0]["args"],
            serde_json::json!(["sh", "/tmp/simctl-container-check.sh"])
        );
        let check = &contained.files["/tmp/simctl-container-check.sh"];
        assert!(
            check.starts_with("set -eu\nexec >/dev/console\npid=$(sed"),
            "{check}"
        );
    }

    fn plan_err(args: &[&str]) -> String {
        format!("{:#}", plan(args).unwrap_err())
    }
}

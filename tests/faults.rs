//! Injected faults: kill -9 of simctl at random points, two identical builds at once, a full
//! disk, and `simctl cache ls|gc` on what such faults leave.
//!
//! The cheap tests drive the real simctl binary, real make and real tar through `simctl
//! build-kernel` on a stand-in kernel tree (a Makefile with Linux's build interface whose steps
//! sleep and whose vmlinux step runs a three-level process tree); they run everywhere. The heavy
//! harness kills real image builds, workload builds and QEMU runs and is `#[ignore]`d: it needs
//! Debian's mirror, QEMU and minutes.
//!
//! Every test uses its own cache directory; the processes it started are found by that path
//! in their command line or environment (SIMCTL_CACHE is inherited down the whole tree).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A kernel tree that speaks Linux's build interface (make O=DIR tinyconfig, olddefconfig,
/// vmlinux, kernelversion; scripts/kconfig/merge_config.sh) and only sleeps and writes bytes.
const FAKE_MAKEFILE: &str = r#"# Stand-in for Linux's build interface, for simctl's fault tests.
FAKE_CONFIG_SECONDS ?= 0
FAKE_BUILD_SECONDS ?= 1
FAKE_PART_BYTES ?= 4096

tinyconfig defconfig:
	mkdir -p $(O) && : > $(O)/.config && sleep $(FAKE_CONFIG_SECONDS)

olddefconfig:
	sleep $(FAKE_CONFIG_SECONDS)

vmlinux: $(O)/part1 $(O)/part2
	cat $^ > $(O)/vmlinux

# Each part is a shell with a background child: make -> sh -> sleep, twice in parallel.
$(O)/part%:
	@echo "  CC      part$*"
	sleep $(FAKE_BUILD_SECONDS) & sleep $(FAKE_BUILD_SECONDS); wait
	head -c $(FAKE_PART_BYTES) /dev/zero > $@

kernelversion:
	@echo 6.1.0-fake
"#;

const FAKE_MERGE_CONFIG: &str = r#"#!/bin/sh
# merge_config.sh -m -O DIR CONFIG FRAGMENT...: appends the fragments to CONFIG.
config=$4
shift 4
cat "$@" >> "$config"
"#;

/// Writes the stand-in kernel as `linux-fake.tar` in `dir`.
fn fake_kernel_tarball(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tree = dir.join("linux-fake");
    std::fs::create_dir_all(tree.join("arch/x86")).unwrap();
    std::fs::create_dir_all(tree.join("scripts/kconfig")).unwrap();
    std::fs::write(tree.join("Makefile"), FAKE_MAKEFILE).unwrap();
    let merge = tree.join("scripts/kconfig/merge_config.sh");
    std::fs::write(&merge, FAKE_MERGE_CONFIG).unwrap();
    std::fs::set_permissions(&merge, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tarball = dir.join("linux-fake.tar");
    let status = Command::new("tar")
        .arg("cf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .arg("linux-fake")
        .status()
        .unwrap();
    assert!(status.success());
    tarball
}

/// A test's own cache and the stand-in kernel.
struct Bench {
    _temp: tempfile::TempDir,
    cache: PathBuf,
    tarball: PathBuf,
}

impl Bench {
    fn new() -> Bench {
        let temp = tempfile::tempdir().unwrap();
        let cache = temp.path().join("cache");
        let tarball = fake_kernel_tarball(temp.path());
        Bench {
            _temp: temp,
            cache,
            tarball,
        }
    }

    /// `simctl build-kernel` of the stand-in with the given make variables in the environment.
    fn build_kernel(&self, vars: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simctl"));
        command
            .args(["build-kernel", "--jobs", "2", "--source"])
            .arg(&self.tarball)
            .env("SIMCTL_CACHE", &self.cache)
            .env_remove("SIMCTL_GEM5")
            .envs(vars.iter().copied())
            .stdin(Stdio::null());
        command
    }

    fn spawn(&self, vars: &[(&str, &str)]) -> Child {
        self.build_kernel(vars)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Processes that belong to this test's simctl (by cache path).
    fn processes(&self) -> Vec<(i32, String)> {
        processes_mentioning(&self.cache.to_string_lossy())
    }
}

/// Live processes whose command line or environment contains `needle`, with their command lines.
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            if pid == me {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let mentions =
                cmdline.contains(needle) || String::from_utf8_lossy(&environ).contains(needle);
            // Zombies have an empty command line; they are dead, their parent only has to reap.
            (mentions && !cmdline.is_empty()).then_some((pid, cmdline.trim().to_string()))
        })
        .collect()
}

/// Waits up to `limit` for `condition`; returns whether it came true.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Whether `pid` is simctl's watchdog (a fork of simctl, so with simctl's command line).
fn is_watchdog(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == WATCHDOG)
}

/// The watchdog's process name, and how long it may take to end the groups (SIGTERM, up to 5 s
/// of grace while this machine's init reaps the dead, SIGKILL).
const WATCHDOG: &str = "simctl-watchdog";
const WATCHDOG_GRACE: Duration = Duration::from_secs(7);

/// Processes of the bench still alive after `within` (the watchdog gets its grace on top); they
/// are killed (so that a failing test leaves nothing behind either) and returned.
fn survivors(bench: &Bench, within: Duration) -> Vec<(i32, String)> {
    let children_gone = eventually(within, || {
        bench.processes().iter().all(|(pid, _)| is_watchdog(*pid))
    });
    if children_gone && eventually(WATCHDOG_GRACE, || bench.processes().is_empty()) {
        return Vec::new();
    }
    let left = bench.processes();
    for (pid, _) in &left {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    left
}

/// Every `<cache>/<kind>/<key>/` directory is a finished artifact (has its key file); returns the
/// ones that are not.
fn partial_artifacts(cache: &Path) -> Vec<PathBuf> {
    let Ok(kinds) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut partial = Vec::new();
    for kind in kinds.flatten() {
        // Kernel objects kept between builds of one key: a work area, not an artifact.
        if kind.file_name() == "kernel-build" || kind.file_name() == "go-build-cache" {
            continue;
        }
        for entry in std::fs::read_dir(kind.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_key = name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if is_key && !entry.path().join("simctl-key.txt").is_file() {
                partial.push(entry.path());
            }
        }
    }
    partial
}

/// After a kill of simctl: no process of the bench left after `within`, no partial artifact.
fn assert_clean_after_kill(bench: &Bench, within: Duration, what: &str) {
    let left = survivors(bench, within);
    assert!(
        left.is_empty(),
        "{what}: processes outlived simctl: {left:?}"
    );
    assert_eq!(
        partial_artifacts(&bench.cache),
        Vec::<PathBuf>::new(),
        "{what}"
    );
}

/// Names in `<cache>/<kind>/` that start with `prefix`.
fn entries_starting(cache: &Path, kind: &str, prefix: &str) -> Vec<String> {
    std::fs::read_dir(cache.join(kind))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn kill_9_of_simctl_leaves_no_process_of_a_make_tree() {
    let bench = Bench::new();
    let mut simctl = bench.spawn(&[("FAKE_BUILD_SECONDS", "1000")]);
    // make -j2 -> two shells -> a background sleep and a foreground sleep each.
    let started = eventually(Duration::from_secs(60), || {
        bench
            .processes()
            .iter()
            .filter(|(_, cmd)| cmd.starts_with("sleep 1000"))
            .count()
            == 4
    });
    assert!(
        started,
        "the vmlinux step never ran: {:?}",
        bench.processes()
    );
    kill_9(&mut simctl);
    let left = survivors(&bench, Duration::from_secs(5));
    assert!(left.is_empty(), "outlived kill -9 of simctl: {left:?}");
}

#[test]
fn a_killed_build_is_cleaned_up_by_the_next_one() {
    let bench = Bench::new();
    let mut simctl = bench.spawn(&[("FAKE_BUILD_SECONDS", "1000")]);
    assert!(eventually(Duration::from_secs(60), || {
        !entries_starting(&bench.cache, "kernels", ".staging-").is_empty()
            && bench
                .processes()
                .iter()
                .any(|(_, c)| c.starts_with("sleep"))
    }));
    kill_9(&mut simctl);
    survivors(&bench, Duration::from_secs(5));
    assert_eq!(
        entries_starting(&bench.cache, "kernels", ".staging-").len(),
        1,
        "a killed build leaves its staging directory"
    );
    let output = bench
        .build_kernel(&[("FAKE_BUILD_SECONDS", "0")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        entries_starting(&bench.cache, "kernels", ".staging-"),
        Vec::<String>::new(),
        "the next build of the kind removes staging directories nobody builds in"
    );
    assert_eq!(partial_artifacts(&bench.cache), Vec::<PathBuf>::new());
}

#[test]
fn two_identical_builds_at_once_build_once_and_both_succeed() {
    let bench = Bench::new();
    let first = bench.spawn(&[("FAKE_BUILD_SECONDS", "3")]);
    assert!(eventually(Duration::from_secs(60), || {
        bench
            .processes()
            .iter()
            .any(|(_, c)| c.starts_with("sleep 3"))
    }));
    let second = bench.spawn(&[("FAKE_BUILD_SECONDS", "3")]);
    let first_pid = first.id();
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert!(second.status.success(), "{}", stderr_of(&second));
    assert_eq!(first.stdout, second.stdout, "both name the same vmlinux");
    let waited = stderr_of(&second);
    let line = waited
        .lines()
        .find(|l| l.starts_with("waiting for kernels "))
        .unwrap_or_else(|| panic!("the second build says whom it waits for:\n{waited}"));
    assert!(
        line.contains(&format!("being built by pid {first_pid}")),
        "{line}"
    );
    let vmlinux = PathBuf::from(String::from_utf8_lossy(&first.stdout).trim());
    let log = std::fs::read_to_string(vmlinux.with_file_name("build.log")).unwrap();
    assert_eq!(
        log.matches("CC      part1").count(),
        1,
        "built once:\n{log}"
    );
    let kernels: Vec<_> = std::fs::read_dir(bench.cache.join("kernels"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    assert_eq!(
        kernels.len(),
        1,
        "one artifact and nothing else: {kernels:?}"
    );
}

/// A small xorshift generator: the harness's kill times, reproducible from the printed seed.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let seed = std::env::var("SIMCTL_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("fault harness seed {seed} (SIMCTL_FAULT_SEED={seed} repeats it)");
        Random(seed)
    }

    /// A duration in [0, limit).
    fn below(&mut self, limit: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        limit.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

/// What a process tree of the stand-in build was doing, from its command lines.
fn stage(processes: &[(i32, String)]) -> &'static str {
    let running = |word: &str| processes.iter().any(|(_, cmd)| cmd.contains(word));
    if running("tar ") {
        "unpacking the source"
    } else if running(" vmlinux") {
        "make vmlinux"
    } else if running("merge_config") || running("olddefconfig") || running("tinyconfig") {
        "configuring"
    } else if running("kernelversion") {
        "make kernelversion"
    } else {
        "simctl alone"
    }
}

#[test]
fn kill_9_at_random_points_of_a_build_never_leaves_partial_artifacts_or_processes() {
    const KILLS: usize = 12;
    let bench = Bench::new();
    let vars = [("FAKE_CONFIG_SECONDS", "2"), ("FAKE_BUILD_SECONDS", "2")];
    let mut random = Random::seeded();
    // A whole build takes about 6 s (2 x 2 s of config, 2 s of parts, simctl itself).
    let window = Duration::from_secs(6);
    let mut stages = Vec::new();
    for kill in 0..KILLS {
        let mut simctl = bench.spawn(&vars);
        std::thread::sleep(random.below(window));
        let doing = stage(&bench.processes());
        let finished = simctl.try_wait().unwrap().is_some();
        kill_9(&mut simctl);
        // Orphans of a step would live on for up to its 2 s; the watchdog ends them at once.
        assert_clean_after_kill(
            &bench,
            Duration::from_secs(1),
            &format!("kill {kill} ({doing})"),
        );
        stages.push(if finished { "already finished" } else { doing });
        if finished {
            // Built already: start over so that the next kills meet a build again.
            std::fs::remove_dir_all(&bench.cache).unwrap();
        }
    }
    eprintln!("kills at: {stages:?}");
    let output = bench.build_kernel(&vars).output().unwrap();
    assert!(
        output.status.success(),
        "the next build recovers: {}",
        stderr_of(&output)
    );
    assert_eq!(partial_artifacts(&bench.cache), Vec::<PathBuf>::new());
    assert_eq!(
        entries_starting(&bench.cache, "kernels", ".staging-"),
        Vec::<String>::new()
    );
}

#[test]
fn a_full_disk_is_named_with_a_hint_and_leaves_no_artifact() {
    // A 20 MB tmpfs as the cache, in a mount namespace of its own (a user namespace maps us to
    // root there, so this needs no real root). The parts fit (2 x 4 MiB, plus vmlinux 8 MiB in
    // the kernel's build directory); copying vmlinux into the artifact does not.
    let bench = Bench::new();
    std::fs::create_dir_all(&bench.cache).unwrap();
    let script = r#"mount -t tmpfs -o size=20m simctl-full "$0" || exit 90
"$@"
echo "simctl exit $?"
cd "$0" && find . -mindepth 2 | sort"#;
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .arg(&bench.cache)
        .arg(env!("CARGO_BIN_EXE_simctl"))
        .args(bench.build_kernel(&[]).get_args())
        .env("SIMCTL_CACHE", &bench.cache)
        .env_remove("SIMCTL_GEM5")
        .env("FAKE_BUILD_SECONDS", "0")
        .env("FAKE_PART_BYTES", (4 << 20).to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = stderr_of(&output);
    assert!(
        stdout.contains("simctl exit 2"),
        "simctl fails on a full disk:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("no space left on device while writing kernels ")
            && stderr.contains("hint: free space")
            && stderr.contains("SIMCTL_CACHE"),
        "{stderr}"
    );
    let kernels: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("./kernels/"))
        .collect();
    assert!(
        kernels
            .iter()
            .all(|l| l.contains(".failed") || l.ends_with(".lock")),
        "no artifact, no staging left: {kernels:?}"
    );
    assert!(
        kernels
            .iter()
            .filter(|l| l.matches('/').count() == 3)
            .all(|l| l.ends_with(".log")),
        "the failed build keeps only its logs: {kernels:?}"
    );
}

/// Sets the modification time of `path` to `days` ago.
fn age_by_days(path: &Path, days: u64) {
    let then = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

#[test]
fn cache_gc_keeps_what_recent_runs_use_and_removes_the_rest() {
    let bench = Bench::new();
    let build = |base: &str| {
        let output = bench
            .build_kernel(&[("FAKE_BUILD_SECONDS", "0")])
            .args(["--base", base])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    };
    let used = build("tinyconfig");
    let unused = build("defconfig");
    let kernels = bench.cache.join("kernels");
    // Leftovers of faults: a build killed long ago, a failed build long ago.
    let stale = kernels.join(format!(".staging-{}-abcdef", "0".repeat(32)));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("half"), vec![1u8; 100_000]).unwrap();
    let failed = kernels.join(format!("{}.failed", "1".repeat(32)));
    std::fs::create_dir_all(&failed).unwrap();
    std::fs::write(failed.join("build.log"), "error").unwrap();
    // Not named like anything the store makes: not gc's to remove, however old.
    let foreign = kernels.join("notes");
    std::fs::create_dir_all(&foreign).unwrap();
    for dir in std::fs::read_dir(&kernels).unwrap().flatten() {
        age_by_days(&dir.path(), 40);
    }
    for dir in std::fs::read_dir(bench.cache.join("kernel-src"))
        .unwrap()
        .flatten()
    {
        age_by_days(&dir.path(), 40);
    }
    // A recent run that used one of the kernels (run.toml names its vmlinux).
    let runs = bench.cache.parent().unwrap().join("runs");
    std::fs::create_dir_all(runs.join("r1")).unwrap();
    std::fs::write(
        runs.join("r1/run.toml"),
        format!("kernel = \"{}\"\n", used.display()),
    )
    .unwrap();

    let simctl = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_simctl"))
            .args(args)
            .arg("--runs")
            .arg(&runs)
            .env("SIMCTL_CACHE", &bench.cache)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let listing = simctl(&["cache", "ls"]);
    let used_key = used
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    let unused_key = unused
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    assert!(
        listing.contains("kernels") && listing.contains("kernel-src"),
        "{listing}"
    );
    assert!(
        listing.contains("runs/r1"),
        "references are shown:\n{listing}"
    );
    assert!(listing.contains("stale staging"), "{listing}");
    assert!(listing.contains(&*unused_key), "{listing}");

    let plan = simctl(&["cache", "gc", "--dry-run"]);
    assert!(
        plan.contains(&format!("would remove kernels/{unused_key}")),
        "{plan}"
    );
    assert!(!plan.contains(&*used_key), "{plan}");
    assert!(
        unused.is_file() && stale.is_dir(),
        "a dry run removes nothing"
    );

    let removed = simctl(&["cache", "gc", "--older-than", "30d"]);
    assert!(
        removed.contains("staging directory of a killed build"),
        "{removed}"
    );
    assert!(
        !unused.exists() && !stale.exists() && !failed.exists(),
        "{removed}"
    );
    assert!(used.is_file(), "the kernel a recent run used stays");
    assert!(foreign.is_dir(), "{removed}");
    // The kernel's source tree is kept too: the kept kernel was built from it.
    assert!(
        std::fs::read_dir(bench.cache.join("kernel-src"))
            .unwrap()
            .flatten()
            .any(|e| e.path().join("simctl-key.txt").is_file()),
        "{removed}"
    );
    assert_eq!(partial_artifacts(&bench.cache), Vec::<PathBuf>::new());
}

/// The user's artifact cache (where `simctl` would build without SIMCTL_CACHE).
fn shared_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIMCTL_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
        .join("simctl")
}

/// Runs `simctl args` in the bench's cache to the end; returns how long it took.
fn run_to_end(bench: &Bench, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .env("SIMCTL_CACHE", &bench.cache)
        .env_remove("SIMCTL_GEM5")
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
    assert_eq!(partial_artifacts(&bench.cache), Vec::<PathBuf>::new());
    start.elapsed()
}

/// Kills `simctl args` at random points `kills` times, then lets it finish. The kill times are
/// spread over the time one clean run takes (measured first; `restart` is removed so that the
/// work is done again). Each kill is checked (no process of the bench after 2 s, no partial
/// artifact); `restart` is removed again whenever the command finished before its kill.
fn kill_repeatedly(
    bench: &Bench,
    random: &mut Random,
    args: &[&str],
    kills: usize,
    restart: &Path,
) -> Vec<String> {
    let window = run_to_end(bench, args);
    std::fs::remove_dir_all(restart).unwrap();
    let mut outcomes = vec![format!("clean run {:.1}s", window.as_secs_f64())];
    for kill in 0..kills {
        let mut simctl = Command::new(env!("CARGO_BIN_EXE_simctl"))
            .args(args)
            .env("SIMCTL_CACHE", &bench.cache)
            .env_remove("SIMCTL_GEM5")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = random.below(window);
        std::thread::sleep(delay);
        let running: Vec<String> = bench
            .processes()
            .into_iter()
            .map(|(_, cmd)| cmd.split(' ').next().unwrap_or_default().to_string())
            .collect();
        let finished = simctl.try_wait().unwrap().is_some();
        kill_9(&mut simctl);
        assert_clean_after_kill(
            bench,
            Duration::from_secs(2),
            &format!("{args:?} kill {kill} after {delay:?}"),
        );
        outcomes.push(if finished {
            format!("{:.1}s: already finished", delay.as_secs_f64())
        } else {
            format!("{:.1}s: {}", delay.as_secs_f64(), running.join(","))
        });
        if finished {
            let _ = std::fs::remove_dir_all(restart);
        }
    }
    // The next identical command recovers.
    run_to_end(bench, args);
    outcomes
}

#[test]
#[ignore = "needs QEMU, Debian's mirror (or a warm ~/.cache/simctl) and many minutes: cargo test --test faults -- --ignored"]
fn kill_9_at_random_points_of_workload_image_and_qemu_run_recovers() {
    let kills: usize = std::env::var("SIMCTL_FAULT_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let bench = Bench::new();
    std::fs::create_dir_all(&bench.cache).unwrap();
    // The kernel, the Debian root file system and Go's build cache come from the user's cache
    // when it has them (hard links: artifacts are never changed in place, Go's cache entries
    // neither); what is killed is built here.
    let shared = shared_cache();
    for kind in ["kernel-src", "kernels", "rootfs", "go-build-cache"] {
        if shared.join(kind).is_dir() {
            let status = Command::new("cp")
                .arg("-al")
                .arg(shared.join(kind))
                .arg(bench.cache.join(kind))
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    let mut random = Random::seeded();
    let run_dir = bench.cache.parent().unwrap().join("run");
    let run_dir_text = run_dir.to_string_lossy().into_owned();
    let stages: [(&str, Vec<&str>, PathBuf); 3] = [
        (
            "build-workload",
            vec!["build-workload", "spin"],
            bench.cache.join("workloads"),
        ),
        (
            "build-image",
            vec!["build-image", "--workload", "spin"],
            bench.cache.join("images"),
        ),
        (
            "run (QEMU)",
            vec![
                "run",
                "--workload",
                "spin",
                "--platform",
                "qemu",
                "--invocations",
                "3",
                "--warmup",
                "1",
                "--out",
                &run_dir_text,
            ],
            run_dir.clone(),
        ),
    ];
    for (name, args, restart) in &stages {
        let outcomes = kill_repeatedly(&bench, &mut random, args, kills, restart);
        eprintln!("{name}: {kills} kills, then a clean run: {outcomes:?}");
    }
}

//! End to end, for real: build the kernel, the guest binaries, aes-go and the image from
//! nothing, boot them in QEMU and run the function; then the failure paths. Runs when
//! SIMCTL_TEST_E2E=1 (CI sets it): a cold run builds a kernel and a Debian image. The gem5 run
//! needs SIMCTL_GEM5 too.

use std::path::Path;
mod common;

use common::{run_state, simctl};
use std::process::Command;

/// `simctl run` of a workload on QEMU with `extra` options into `out`.
fn qemu_run(workload: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--workload", workload, "--platform", "qemu"];
    args.extend_from_slice(extra);
    args.push("--out");
    simctl(&args, &[out])
}

fn qemu_pids_for(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (text.contains("qemu-system") && text.contains(&needle)).then_some(pid)
        })
        .collect()
}

fn qemu_processes_for(dir: &Path) -> usize {
    qemu_pids_for(dir).len()
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn aes_go_on_qemu_from_nothing_then_failure_paths() {
    let temp = tempfile::tempdir().unwrap();
    let run_dir = temp.path().join("aes");
    let output = qemu_run(
        "aes-go",
        &run_dir,
        &["--invocations", "20", "--warmup", "5"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "simctl run failed:\n{stderr}");
    assert!(
        stderr.contains("accelerator: "),
        "the run must say which accelerator it used:\n{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        run_dir.to_string_lossy()
    );

    assert_eq!(run_state(&run_dir).as_deref(), Some("ok"));
    let csv = std::fs::read_to_string(run_dir.join("results/results.csv")).unwrap();
    let measured: Vec<&str> = csv.lines().filter(|l| l.contains(",measured,")).collect();
    assert_eq!(measured.len(), 20, "{csv}");
    assert!(
        measured.iter().all(|l| l.contains(",true,")),
        "every invocation ok:\n{csv}"
    );
    let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap();
    // The function runs in a runc container by default (tests/e2e_container.rs checks it).
    let affinity = console
        .lines()
        .find(|line| line.contains("SIMCTL-AFFINITY") && line.contains("name=aes-go"))
        .expect("the guest reports the function's affinity");
    assert!(
        affinity.contains("name=aes-go cpus=1 isolation=container"),
        "function pinned to core 1 only: {affinity}"
    );
    assert!(console.contains("isolcpus=1"), "{console}");
    assert!(console.contains("SIMCTL-DONE status=ok"));
    let record = simctl::run::spec::RunRecord::load(&run_dir).unwrap();
    assert!(
        !record.artifacts.kernel_key.is_empty()
            && !record.artifacts.image_key.is_empty()
            && record.artifacts.kernel_cmdline.contains("simctl.m5=off")
            && !record.provenance.accelerator.is_empty(),
        "{record:?}"
    );
    assert!(
        std::fs::read_to_string(run_dir.join("report.md"))
            .unwrap()
            .contains("20 of 20 measured invocations recorded, 20 ok")
    );

    // The same request again is answered from the finished run.
    let again = qemu_run(
        "aes-go",
        &run_dir,
        &["--invocations", "20", "--warmup", "5"],
    );
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("reusing the finished identical run"));

    // A run cut short by its deadline ends failed, keeps its logs, and leaves no QEMU behind.
    let short = temp.path().join("short");
    let output = qemu_run(
        "aes-go",
        &short,
        &["--invocations", "20000", "--timeout", "4s"],
    );
    assert!(!output.status.success());
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(short.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["state"], "failed");
    assert!(
        status["cause"].as_str().unwrap().contains("timed out"),
        "{status}"
    );
    assert!(short.join("console.log").is_file() && short.join("qemu.log").is_file());
    assert_eq!(
        qemu_processes_for(&short),
        0,
        "a QEMU process outlived its run"
    );

    // A guest kernel panic (an init that does not exist, through --kernel-arg, which comes
    // after simctl's own init=) is named as one, at once.
    let panicked = temp.path().join("panicked");
    let output = qemu_run(
        "aes-go",
        &panicked,
        &["--invocations", "1", "--kernel-arg", "init=/nonexistent"],
    );
    assert!(!output.status.success());
    let status = std::fs::read_to_string(panicked.join("status.json")).unwrap();
    assert!(
        status.contains(
            "guest kernel panic: Kernel panic - not syncing: Requested init /nonexistent failed"
        ),
        "{status}"
    );
    assert_eq!(qemu_processes_for(&panicked), 0, "QEMU outlived a panic");

    // A function that never answers in time: the console goes silent while the client waits,
    // the watchdog stops the run, which ends failed with its logs and no QEMU left behind.
    let silent = temp.path().join("silent");
    let output = qemu_run(
        "spin",
        &temp.path().join("spin"),
        &["--invocations", "1", "--warmup", "0"],
    );
    assert!(
        output.status.success(),
        "a short spin run works: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = qemu_run(
        "spin",
        &silent,
        &[
            "--invocations",
            "1",
            "--warmup",
            "0",
            "--request",
            "600000000",
            "--watchdog",
            "6s",
        ],
    );
    assert!(!output.status.success());
    let status = std::fs::read_to_string(silent.join("status.json")).unwrap();
    assert!(status.contains("watchdog"), "{status}");
    assert!(
        std::fs::read_to_string(silent.join("console.log"))
            .unwrap()
            .contains("SIMCTL-PROGRESS function-up")
    );
    assert_eq!(
        qemu_processes_for(&silent),
        0,
        "a QEMU process outlived its run"
    );

    // The image is a plain partitioned raw disk: inspect it without mounting.
    let image = simctl::run::spec::RunRecord::load(&run_dir)
        .unwrap()
        .provenance
        .image
        .display()
        .to_string();
    let partition = format!("{image}?offset=1048576");
    let debugfs = Command::new("debugfs")
        .args(["-R", "stat /sbin/simctl-init", &partition])
        .output()
        .expect("debugfs (e2fsprogs, installed by scripts/setup-host)");
    let text = String::from_utf8_lossy(&debugfs.stdout);
    assert!(
        text.contains("Mode:  0755"),
        "simctl-init must be executable: {text}"
    );
    let listing = Command::new("debugfs")
        .args(["-R", "ls -l /opt/simctl/workloads/aes-go", &partition])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("server"));
    let fsck = Command::new("e2fsck")
        .args(["-fn", &partition])
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );

    // QEMU killed under the run: the run ends failed and says so.
    let killed = temp.path().join("killed");
    let mut child = spawn_endless_run(&killed);
    let pid = wait_for_qemu(&killed);
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(!child.wait().unwrap().success());
    assert_eq!(run_state(&killed).as_deref(), Some("failed"));
    let status = std::fs::read_to_string(killed.join("status.json")).unwrap();
    assert!(status.contains("killed by a signal"), "{status}");
    assert!(killed.join("console.log").is_file());

    // Ctrl-C (SIGINT to simctl) stops QEMU too and marks the run failed as interrupted.
    let interrupted = temp.path().join("interrupted");
    let child = spawn_endless_run(&interrupted);
    wait_for_qemu(&interrupted);
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert_eq!(run_state(&interrupted).as_deref(), Some("failed"));
    let status = std::fs::read_to_string(interrupted.join("status.json")).unwrap();
    assert!(status.contains("interrupted"), "{status}");
    assert_eq!(
        qemu_processes_for(&interrupted),
        0,
        "QEMU outlived an interrupted run"
    );
}

/// Starts an aes-go QEMU run far longer than any test waits for, in the background.
fn spawn_endless_run(out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args([
            "run",
            "--workload",
            "aes-go",
            "--platform",
            "qemu",
            "--invocations",
            "100000",
            "--out",
        ])
        .arg(out)
        .env_remove("SIMCTL_GEM5")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until a QEMU of the run in `dir` runs and has had two seconds to boot.
fn wait_for_qemu(dir: &Path) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let pid = loop {
        if let Some(pid) = qemu_pids_for(dir).first() {
            break *pid;
        }
        assert!(std::time::Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    pid
}

/// `--out` holds one run: the same request reuses it, other inputs are refused before any
/// build (naming what differs), `--force` replaces it; QEMU gets the system's core count.
#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn out_is_reused_only_for_the_same_run() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("run");
    let short = ["--invocations", "2", "--warmup", "1"];
    let first = qemu_run("aes-go", &out, &short);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let spec = simctl::run::spec::RunSpec::load(&out).unwrap();
    assert_eq!((spec.invocations, spec.warmup), (2, 1));
    assert_eq!(spec.machine.num_cores, 2);
    assert!(
        spec.gem5.is_none(),
        "a QEMU run records no gem5 CPU: {spec:?}"
    );

    let again = qemu_run("aes-go", &out, &short);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("reusing the finished identical run"));

    let other = [
        "--invocations",
        "3",
        "--warmup",
        "1",
        "--set",
        "num_cores=3",
    ];
    let refused = qemu_run("aes-go", &out, &other);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invocations: 2 -> 3") && stderr.contains("machine.num_cores: 2 -> 3"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("kernel: "),
        "refused after a build step: {stderr}"
    );
    assert_eq!(
        simctl::run::spec::RunSpec::load(&out).unwrap().invocations,
        2
    );

    let mut forced = other.to_vec();
    forced.push("--force");
    let replaced = qemu_run("aes-go", &out, &forced);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    let spec = simctl::run::spec::RunSpec::load(&out).unwrap();
    assert_eq!((spec.invocations, spec.machine.num_cores), (3, 3));
    let csv = std::fs::read_to_string(out.join("results/results.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",measured,")).count(), 3);
    let console = std::fs::read_to_string(out.join("console.log")).unwrap();
    assert!(console.contains("Brought up 1 node, 3 CPUs"), "{console}");
}

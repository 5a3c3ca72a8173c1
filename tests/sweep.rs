//! Sweeps for real: the QEMU smoke sweep locally in parallel and as a Slurm array job. Needs
//! SIMCTL_TEST_E2E=1 (it boots QEMU) and, for Slurm, a controller that answers `sinfo`
//! (CI starts one with scripts/slurm-single-node).

mod common;

use common::{run_state, simctl};
use std::process::Command;
use std::time::{Duration, Instant};

fn e2e() -> bool {
    let on = std::env::var("SIMCTL_TEST_E2E").as_deref() == Ok("1");
    if !on {
        println!("skipped: set SIMCTL_TEST_E2E=1 to run sweeps of real QEMU runs");
    }
    on
}

fn sweep_file() -> String {
    format!("{}/sweeps/qemu-smoke.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn local_sweep_runs_every_point() {
    if !e2e() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let output = simctl(
        &["sweep", &sweep_file(), "--jobs", "2", "--out"],
        &[temp.path()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for point in ["workload-aes-go", "workload-fibonacci-go"] {
        assert_eq!(
            run_state(&temp.path().join(point)).as_deref(),
            Some("ok"),
            "{point}"
        );
    }
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("workload-aes-go") && summary.contains("ok"),
        "{summary}"
    );
}

#[test]
fn slurm_sweep_runs_as_an_array_job() {
    if !e2e() {
        return;
    }
    if !Command::new("sinfo")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("skipped: slurm not available (no answer from sinfo)");
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let output = simctl(
        &["sweep", &sweep_file(), "--slurm", "--out"],
        &[temp.path()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("submitted Slurm array job"));
    let deadline = Instant::now() + Duration::from_secs(900);
    let points = ["workload-aes-go", "workload-fibonacci-go"];
    while points
        .iter()
        .any(|p| run_state(&temp.path().join(p)).as_deref() != Some("ok"))
    {
        assert!(
            Instant::now() < deadline,
            "the Slurm tasks did not finish: {:?}",
            points.map(|p| run_state(&temp.path().join(p)))
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let task = std::fs::read_to_string(temp.path().join("task.sh")).unwrap();
    assert!(
        !task.contains("aes-go"),
        "the task script must not carry user values: {task}"
    );
}

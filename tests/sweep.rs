//! Sweeps for real: the local executor with real child processes (parallelism limit, failures,
//! a stop that ends whole process groups), the `simctl sweep` CLI with points that fail fast,
//! a real Slurm array job when a controller answers `sinfo` (CI starts one with
//! scripts/slurm-single-node), and, with SIMCTL_TEST_E2E=1, the QEMU smoke sweep.

mod common;

use common::{run_state, simctl};
use simctl::process::Command;
use simctl::sweep::local::{End, run_points};
use simctl::sweep::summary::{PointState, Summary};
use simctl::sweep::{Point, slurm};
use std::path::Path;
use std::time::{Duration, Instant};

fn points(count: usize) -> Vec<Point> {
    (0..count)
        .map(|index| Point {
            name: format!("p{index}"),
            args: vec![index.to_string()],
        })
        .collect()
}

/// A child that runs `script` (fixed text) in the point's directory with the point's argument
/// as `$1`.
fn shell(dir: &Path, point: &Point, script: &str) -> Command {
    Command::new("sh")
        .args(["-c", script, "sh"])
        .args(&point.args)
        .dir(dir.join(&point.name))
}

fn read_nanos(path: &Path) -> u128 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn executor_runs_at_most_jobs_points_at_once_and_reports_each_end() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let script = "date +%s%N > start; sleep 0.5; date +%s%N > end; echo \"point $1\"; \
                  [ \"$1\" != 3 ] || exit 7";
    let points = points(5);
    let executed = run_points(&points, dir, 2, || false, |p| shell(dir, p, script)).unwrap();
    assert!(!executed.stopped);
    let ends: Vec<End> = executed.outcomes.iter().map(|o| o.end.clone()).collect();
    let mut expected = vec![End::Exited(Some(0)); 5];
    expected[3] = End::Exited(Some(7));
    assert_eq!(ends, expected);
    assert!(
        executed
            .outcomes
            .iter()
            .all(|o| o.wall >= Duration::from_millis(500))
    );

    let spans: Vec<(u128, u128)> = points
        .iter()
        .map(|p| {
            let point_dir = dir.join(&p.name);
            (
                read_nanos(&point_dir.join("start")),
                read_nanos(&point_dir.join("end")),
            )
        })
        .collect();
    let most_at_once = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(most_at_once, 2, "2 jobs should overlap, never 3: {spans:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("p4/sweep.log")).unwrap(),
        "point 4\n"
    );

    let row = simctl::sweep::summary::local_point(dir, &executed.outcomes[3]);
    assert_eq!(row.state, PointState::Failed);
    assert_eq!(row.cause.as_deref(), Some("exited with code 7: point 3"));
}

#[test]
fn executor_stop_ends_the_process_groups_and_starts_nothing_more() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Each point leaves a grandchild that a kill of the direct child alone would not end.
    let script = "sleep 300 & echo $! > grandchild.pid; wait";
    let points = points(3);
    let pid_files: Vec<_> = ["p0", "p1"]
        .iter()
        .map(|p| dir.join(p).join("grandchild.pid"))
        .collect();
    let both_started = || {
        pid_files
            .iter()
            .all(|f| std::fs::read_to_string(f).is_ok_and(|t| t.ends_with('\n')))
    };
    let began = Instant::now();
    let executed = run_points(&points, dir, 2, both_started, |p| shell(dir, p, script)).unwrap();
    assert!(began.elapsed() < Duration::from_secs(60));
    assert!(executed.stopped);
    let ends: Vec<End> = executed.outcomes.iter().map(|o| o.end.clone()).collect();
    assert_eq!(ends, [End::Stopped, End::Stopped, End::NotStarted]);
    assert!(!dir.join("p2").exists(), "p2 must not start after the stop");
    for file in &pid_files {
        let pid = std::fs::read_to_string(file).unwrap().trim().to_string();
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.contains(") Z "))
        });
        assert!(gone, "grandchild {pid} survived the stop");
    }
}

fn write_sweep(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("sweep-file.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Two points whose `simctl run` fails at once and cleanly (the workloads do not exist).
const FAILING_SWEEP: &str = "name = \"failing\"\n[base]\nplatform = \"qemu\"\ninvocations = 1\n\
                             [matrix]\nworkload = [\"no-such-a\", \"no-such-b\"]\n";
const FAILING_POINTS: [&str; 2] = ["workload-no-such-a", "workload-no-such-b"];

#[test]
fn local_sweep_of_failing_points_ends_failed_with_each_cause() {
    let temp = tempfile::tempdir().unwrap();
    let file = write_sweep(temp.path(), FAILING_SWEEP);
    let out = temp.path().join("out");
    let output = simctl(&["sweep", "--jobs", "2", "--out"], &[&out, &file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 of 2 points did not succeed"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = Summary::read(&out).unwrap();
    assert_eq!(summary.executor, "local");
    for (row, name) in summary.points.iter().zip(FAILING_POINTS) {
        assert_eq!((row.name.as_str(), row.state), (name, PointState::Failed));
        let cause = row.cause.as_deref().unwrap_or_default();
        let workload = name.trim_start_matches("workload-");
        assert!(
            cause.starts_with("exited with code 2: error: unknown workload")
                && cause.contains(workload),
            "{cause}"
        );
        assert!(stdout.contains(name), "{stdout}");
        let log = std::fs::read_to_string(out.join(name).join("sweep.log")).unwrap();
        assert!(log.contains("unknown workload"), "{log}");
    }
    let resolved = simctl::sweep::Resolved::read(&out.join("sweep.toml")).unwrap();
    assert_eq!(resolved.points.len(), 2);
}

#[test]
fn dry_run_prints_every_command_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let file = write_sweep(temp.path(), FAILING_SWEEP);
    let out = temp.path().join("out");
    let output = simctl(
        &[
            "sweep",
            "--dry-run",
            "--slurm",
            "--slurm-arg=--time=5",
            "--out",
        ],
        &[&out, &file],
    );
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].ends_with(&format!(
            " run --invocations 1 --platform qemu --workload no-such-a --out {}/workload-no-such-a",
            out.display()
        )),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        format!(
            "sbatch --parsable --array=0-1 --chdir={o} --job-name=simctl-failing \
             --output={o}/slurm-%A_%a.out --time=5 {o}/task.sh",
            o = out.display()
        )
    );
    assert!(!out.exists());
}

/// Whether a Slurm controller answers and has a node that can take jobs (a down node would
/// leave the array pending and the test waiting forever).
fn assert_slurm_answers() {
    let states = std::process::Command::new("sinfo")
        .args(["--noheader", "--format=%t"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let usable = states
        .lines()
        .any(|state| ["idle", "mix", "alloc", "comp"].contains(&state.trim()));
    assert!(
        usable,
        "no usable Slurm node (sinfo states: {states:?}); hint: scripts/slurm-single-node sets \
         one up (as root)"
    );
}

#[test]
#[ignore = "e2e: needs a Slurm controller with a usable node (scripts/slurm-single-node; CI sets one up); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn slurm_array_job_runs_every_point_through_sweep_task() {
    assert_slurm_answers();
    let temp = tempfile::tempdir().unwrap();
    let file = write_sweep(temp.path(), FAILING_SWEEP);
    let out = temp.path().join("out");
    let output = simctl(&["sweep", "--slurm", "--wait", "--out"], &[&out, &file]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    let job = stdout
        .lines()
        .find_map(|line| line.strip_prefix("submitted Slurm array job "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in {stdout}"));
    let summary = Summary::read(&out).unwrap();
    assert_eq!(summary.slurm_job.as_deref(), Some(job));
    for (index, name) in FAILING_POINTS.iter().enumerate() {
        let task_output = std::fs::read_to_string(slurm::task_output(&out, job, index))
            .expect("every array task leaves its output file");
        let workload = name.trim_start_matches("workload-");
        assert!(
            task_output.contains(&format!("error: point {name} failed"))
                && task_output.contains(&format!("unknown workload '{workload}'")),
            "{task_output}"
        );
        assert_eq!(summary.points[index].state, PointState::Failed);
        assert!(stdout.contains(name), "{stdout}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("task.sh")).unwrap(),
        slurm::TASK_SCRIPT
    );
}

fn smoke_sweep() -> String {
    format!("{}/sweeps/qemu-smoke.toml", env!("CARGO_MANIFEST_DIR"))
}

const SMOKE_POINTS: [&str; 2] = ["workload-aes-go", "workload-fibonacci-go"];

/// The smoke sweep succeeded and each of its points is an ok run.
fn assert_smoke_points_ok(output: &std::process::Output, dir: &Path) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for point in SMOKE_POINTS {
        assert_eq!(
            run_state(&dir.join(point)).as_deref(),
            Some("ok"),
            "{point}"
        );
    }
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn local_qemu_sweep_runs_every_point() {
    let temp = tempfile::tempdir().unwrap();
    let output = simctl(
        &["sweep", &smoke_sweep(), "--jobs", "2", "--out"],
        &[temp.path()],
    );
    assert_smoke_points_ok(&output, temp.path());
    let summary = Summary::read(temp.path()).unwrap();
    assert!(summary.points.iter().all(|p| p.state == PointState::Ok));
}

#[test]
#[ignore = "e2e: needs a Slurm controller with a usable node (scripts/slurm-single-node; CI sets one up); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn slurm_qemu_sweep_runs_as_an_array_job() {
    assert_slurm_answers();
    let temp = tempfile::tempdir().unwrap();
    let output = simctl(
        &["sweep", &smoke_sweep(), "--slurm", "--wait", "--out"],
        &[temp.path()],
    );
    assert_smoke_points_ok(&output, temp.path());
}

#[test]
fn a_point_simctl_run_would_refuse_stops_the_sweep_before_any_point_runs() {
    let temp = tempfile::tempdir().unwrap();
    let file = write_sweep(
        temp.path(),
        "name = \"bad\"\n[base]\nworkload = \"aes-go\"\nplatform = \"qemu\"\n\
         [matrix]\nsystem = [\"default\", \"/nonexistent.toml\"]\n",
    );
    let out = temp.path().join("out");
    let output = simctl(&["sweep", "--out"], &[&out, &file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("point 'system--nonexistent.toml'")
            && stderr.contains("/nonexistent.toml is not a file"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may run or be written");
}

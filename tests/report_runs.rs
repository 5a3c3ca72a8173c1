//! `simctl report` on run directories: a real QEMU run (tests/fixtures/qemu-run-aes-go.tar.gz,
//! from `simctl run --workload aes-go --platform qemu --invocations 20 --warmup 5`; regenerate
//! with `scripts/make-qemu-run-fixture`), a sweep directory of runs, and a run mixed with a
//! stats file. The report reads: it must not rewrite anything in a run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture run unpacked into `into`; returns its directory.
fn qemu_run(into: &Path) -> PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-run-aes-go.tar.gz");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "cannot unpack {}", fixture.display());
    into.join("aes-go-qemu")
}

fn report(args: &[&str], paths: &[&Path], columns: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simctl"));
    command.arg("report").args(args).args(paths);
    match columns {
        Some(columns) => command.env("COLUMNS", columns),
        None => command.env_remove("COLUMNS"),
    };
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "simctl report failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A two-core gem5 stats file of one dump with IPC 0.5 on core 1 (instructions / cycles).
fn stats_file(dir: &Path) -> PathBuf {
    let path = dir.join("stats.txt");
    std::fs::write(
        &path,
        "\n---------- Begin Simulation Statistics ----------\n\
         simSeconds 0.001000 # Number of seconds simulated (Second)\n\
         board.processor.cores0.core.numCycles 1000 # Number of cpu cycles simulated (Cycle)\n\
         board.processor.cores0.core.commitStats0.numInsts 800 # Number of instructions committed (Count)\n\
         board.processor.cores1.core.numCycles 2000 # Number of cpu cycles simulated (Cycle)\n\
         board.processor.cores1.core.commitStats0.numInsts 1000 # Number of instructions committed (Count)\n\
         \n---------- End Simulation Statistics   ----------\n",
    )
    .unwrap();
    path
}

#[test]
fn qemu_run_report_shows_latency_pinning_and_no_empty_gem5_columns() {
    let temp = tempfile::tempdir().unwrap();
    let run = qemu_run(temp.path());
    let report_md = std::fs::read(run.join("report.md")).unwrap();
    let text = stdout(&report(&[], &[&run], None));
    let header = text.lines().nth(1).unwrap_or_default();
    for column in ["run", "invocation", "latency_us", "ok"] {
        assert!(header.contains(column), "{header}");
    }
    for gem5_only in ["ipc", "mpki", "instructions", "dump"] {
        assert!(
            !header.contains(gem5_only),
            "empty gem5 column shown: {header}"
        );
    }
    assert!(
        text.contains("aes-go/qemu-"),
        "runs are named by workload/platform:\n{text}"
    );
    assert!(text.contains("simctl build-gem5"), "{text}");
    for summary in ["p50 µs", "p90 µs", "p99 µs", "20/20", "core 1", "core 0"] {
        assert!(text.contains(summary), "summary lacks {summary}:\n{text}");
    }
    assert_eq!(
        std::fs::read(run.join("report.md")).unwrap(),
        report_md,
        "simctl report must not rewrite report.md"
    );

    // CSV keeps every column, one row per measured invocation.
    let csv = stdout(&report(&["--format", "csv"], &[&run], None));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("run,dump,cpu,instructions,cycles,ipc,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(",invocation,latency_us,ok"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 1 + 20, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&report(&["--format", "json"], &[&run], None))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 20);
    assert!(json[0]["latency_us"].as_f64().unwrap() > 0.0);
    assert!(json[0]["ipc"].is_null(), "no stats: null, not 0");
}

#[test]
fn report_md_of_a_qemu_run_says_platform_pinning_and_phases() {
    let temp = tempfile::tempdir().unwrap();
    let run = qemu_run(temp.path());
    let view = simctl::report::runs::RunView::load(&run).unwrap();
    let text = view.markdown().unwrap();
    for expected in [
        "# aes-go/qemu-",
        "| accelerator | ",
        "function aes-go: core(s) 1; client: core(s) 0",
        "| boot | ",
        "| qemu | ",
        "kernel boot",
        "p99",
        "20 of 20 measured invocations recorded, 20 ok",
        "simctl build-gem5",
    ] {
        assert!(
            text.contains(expected),
            "report.md lacks {expected:?}:\n{text}"
        );
    }
    assert!(!text.contains("ipc"), "no gem5 columns on QEMU:\n{text}");
}

#[test]
fn bad_plot_name_fails_before_printing_anything() {
    let temp = tempfile::tempdir().unwrap();
    let run = qemu_run(temp.path());
    let output = report(&["--plot", "x.jpg"], &[&run], None);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "printed before failing");
    assert!(String::from_utf8_lossy(&output.stderr).contains(".svg or .png"));
}

#[test]
fn sweep_and_stats_mixed_with_plots_of_what_each_has() {
    let temp = tempfile::tempdir().unwrap();
    let sweep = temp.path().join("sweep");
    std::fs::create_dir_all(&sweep).unwrap();
    let first = qemu_run(&sweep);
    let second = sweep.join("aes-go-again");
    std::fs::rename(qemu_run(temp.path()), &second).unwrap();
    std::fs::write(sweep.join("sweep.json"), "{}\n").unwrap();
    let stats = stats_file(temp.path());
    let plot = temp.path().join("mixed.svg");
    let output = report(
        &["--plot", plot.to_str().unwrap()],
        &[&sweep, &stats],
        Some("100"),
    );
    let text = stdout(&output);
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(
        widest <= 100,
        "{widest} columns wide at COLUMNS=100:\n{text}"
    );
    // Two runs of the same workload and platform are told apart by their directories.
    for name in [first.file_name().unwrap().to_str().unwrap(), "aes-go-again"] {
        assert!(text.contains(name), "{name}:\n{text}");
    }
    assert!(
        text.contains("0.5"),
        "core 1's IPC from the stats file:\n{text}"
    );
    assert!(
        !text.contains("simctl build-gem5"),
        "stats are there:\n{text}"
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    for drawn in [
        "latency per measured invocation",
        "latency CDF",
        "latency (µs)",
        "ipc per stats dump",
        "IPC (instructions per cycle)",
        "aes-go/qemu-",
    ] {
        assert!(svg.contains(drawn), "plot lacks {drawn:?}");
    }
}

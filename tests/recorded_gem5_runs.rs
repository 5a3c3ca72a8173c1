//! Real gem5 results, checked everywhere: tests/fixtures/gem5-runs/ holds two runs of aes-go made
//! by this pipeline on gem5 v24.0.0.1 with the default system (two TimingSimpleCPU cores at
//! 2.5 GHz, 16 kB L1s, 128 kB LLC, 2 GB) and 5 measured invocations: `aes-go-default` with the
//! default warming (`--warm 5`) and `aes-go-no-warming` (`--warm 0`), both restored from the
//! same boot checkpoint. Regenerate both with `scripts/make-gem5-run-fixture`.

mod common;

use std::path::{Path, PathBuf};

use simctl::report::core_metrics;
use simctl::report::runs::RunView;
use simctl::run::spec::RunRecord;
use simctl::stats::Dump;

const INVOCATIONS: usize = 5;
/// Core 1 runs the function (isolcpus=1), core 0 the client.
const FUNCTION_CORE: usize = 1;

/// The fixture run `name` as a run directory in `into` (gzipped files unpacked).
fn fixture_run(name: &str, into: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gem5-runs")
        .join(name);
    let dir = into.join(name);
    for entry in walkdir::WalkDir::new(&source) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(&source).unwrap();
        let target = dir.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if let Some(plain) = relative.to_str().unwrap().strip_suffix(".gz") {
            std::fs::write(dir.join(plain), common::gunzip(entry.path())).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    dir
}

fn dumps(dir: &Path) -> Vec<Dump> {
    simctl::stats::read_dumps(&dir.join("m5out/stats.txt")).unwrap()
}

/// (instructions, IPC, L1I MPKI) of the function's core in each dump.
fn function_core(dumps: &[Dump]) -> Vec<(f64, f64, f64)> {
    dumps
        .iter()
        .map(|dump| {
            let metrics = core_metrics(dump, FUNCTION_CORE);
            (
                metrics.instructions.expect("instructions of core 1"),
                metrics.ipc.expect("IPC of core 1"),
                metrics.l1i_mpki.expect("L1I MPKI of core 1"),
            )
        })
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn the_recorded_run_is_the_methodology_system_with_one_complete_dump_per_invocation() {
    let temp = tempfile::tempdir().unwrap();
    let dir = fixture_run("aes-go-default", temp.path());
    let record = RunRecord::load(&dir).unwrap();
    let gem5 = record.spec.gem5.as_ref().expect("a gem5 run");
    assert_eq!(gem5.cpu.name(), "timing");
    let system = &gem5.system;
    assert_eq!(system.num_cores, 2);
    assert_eq!(system.clock.0, 2_500_000_000);
    assert_eq!(system.l1i_size.bytes(), 16 << 10);
    assert_eq!(system.l1d_size.bytes(), 16 << 10);
    assert_eq!(system.llc_size.bytes(), 128 << 10);
    assert_eq!(system.memory_size.bytes(), 2 << 30);
    assert!(record.artifacts.kernel_cmdline.contains("isolcpus=1"));
    assert_eq!(record.spec.invocations as usize, INVOCATIONS);
    let dumps = dumps(&dir);
    assert_eq!(dumps.len(), INVOCATIONS, "one dump per measured invocation");
    assert!(dumps.iter().all(|dump| dump.complete));
    let results = std::fs::read_to_string(dir.join("results/results.csv")).unwrap();
    let records = simctl_guest::records::from_csv(&results).unwrap();
    let measured = records
        .iter()
        .filter(|r| r.phase == simctl_guest::records::Phase::Measured)
        .count();
    assert_eq!(measured, INVOCATIONS);
    assert!(records.iter().all(|r| r.ok), "every invocation answered");
}

#[test]
fn the_function_core_does_the_same_work_in_every_measured_invocation() {
    let temp = tempfile::tempdir().unwrap();
    let dir = fixture_run("aes-go-default", temp.path());
    let core1 = function_core(&dumps(&dir));
    let mut instructions: Vec<f64> = core1.iter().map(|(n, _, _)| *n).collect();
    let typical = median(&mut instructions);
    for (index, (count, ipc, _)) in core1.iter().enumerate() {
        // TimingSimpleCPU commits at most one instruction per cycle.
        assert!(*ipc > 0.0 && *ipc <= 1.0, "dump {index}: IPC {ipc}");
        let deviation = (count - typical).abs() / typical;
        assert!(
            deviation < 0.10,
            "dump {index}: {count} instructions on core 1, {:.0}% off the median {typical}",
            deviation * 100.0
        );
    }
}

#[test]
fn the_report_has_a_row_of_microarchitecture_numbers_per_invocation_and_the_gem5_timeline() {
    let temp = tempfile::tempdir().unwrap();
    let dir = fixture_run("aes-go-default", temp.path());
    // report.md as `simctl run` writes it at the end of the run.
    let report = RunView::load(&dir).unwrap().markdown().unwrap();
    assert!(report.contains("cpu1 ipc"), "{report}");
    assert!(report.contains("cpu1 l1i_mpki") && report.contains("cpu1 llc_mpki"));
    let rows = report
        .lines()
        .skip_while(|line| !line.starts_with("| invocation |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .count();
    assert_eq!(rows, INVOCATIONS, "{report}");
    assert!(report.contains("## gem5 timeline"), "{report}");
    assert!(report.contains("instructions per host s"), "{report}");
}

/// How far the first measured invocation's IPC on the function's core is from the median of
/// the later ones, as a fraction of that median.
fn first_invocation_ipc_deviation(dir: &Path) -> f64 {
    let core1 = function_core(&dumps(dir));
    let first = core1[0].1;
    let mut later: Vec<f64> = core1[1..].iter().map(|(_, ipc, _)| *ipc).collect();
    let typical = median(&mut later);
    (first - typical).abs() / typical
}

/// Invocations on the function's core vary by about 2% here; 10% is the tolerance.
const WARM_TOLERANCE: f64 = 0.10;

/// With the default warming the first measured invocation looks like the later ones; without
/// it, its dump carries the restore: gem5's TimingSimpleCPU counts the cycles of the first
/// wake-up after a restore from tick 0 (about 1 s of simulated time, 2.5 G cycles, for an
/// invocation of about 3 M cycles), so its IPC is off by more than 99%. The caches' MPKIs differ
/// by about 2% only: with 16 kB L1s and a 128 kB LLC every invocation's footprint evicts the
/// previous one's anyway.
#[test]
fn warming_makes_the_first_measured_invocation_like_the_others_and_its_absence_shows() {
    let temp = tempfile::tempdir().unwrap();
    let warmed = fixture_run("aes-go-default", temp.path());
    let cold = fixture_run("aes-go-no-warming", temp.path());
    let warming = |dir: &Path| RunRecord::load(dir).unwrap().spec.gem5.unwrap().warming;
    assert_eq!((warming(&warmed), warming(&cold)), (5, 0));
    let with = first_invocation_ipc_deviation(&warmed);
    let without = first_invocation_ipc_deviation(&cold);
    assert!(
        with < WARM_TOLERANCE,
        "with warming the first invocation's IPC is {:.1}% off the others",
        with * 100.0
    );
    assert!(
        without > WARM_TOLERANCE,
        "without warming the first invocation's IPC is only {:.1}% off the others",
        without * 100.0
    );
    // The results say which invocations warmed the CPU: five unmeasured ones after the restore.
    let results = std::fs::read_to_string(warmed.join("results/results.csv")).unwrap();
    let warming_rows = simctl_guest::records::from_csv(&results)
        .unwrap()
        .iter()
        .filter(|r| r.phase == simctl_guest::records::Phase::Warming)
        .count();
    assert_eq!(warming_rows, 5);
}

/// Both runs restored one boot checkpoint; each warmed its own function up (their plans differ
/// by the warming count, which the client holds in memory at the warm checkpoint).
#[test]
fn both_recorded_runs_restored_the_same_boot_checkpoint() {
    let temp = tempfile::tempdir().unwrap();
    let records: Vec<RunRecord> = ["aes-go-default", "aes-go-no-warming"]
        .iter()
        .map(|name| RunRecord::load(&fixture_run(name, temp.path())).unwrap())
        .collect();
    let boot = |record: &RunRecord| record.provenance.boot_checkpoint.clone();
    assert!(boot(&records[0]).is_some());
    assert_eq!(boot(&records[0]), boot(&records[1]));
    assert_ne!(
        records[0].provenance.checkpoint,
        records[1].provenance.checkpoint
    );
    for record in &records {
        let phases: Vec<&str> = record
            .provenance
            .gem5_timeline
            .iter()
            .map(|process| process.phase.as_str())
            .collect();
        assert_eq!(phases, ["boot", "warmup", "measure"]);
        let measure = record.provenance.gem5_timeline.last().unwrap();
        assert!(
            measure
                .instructions_per_host_second()
                .is_some_and(|rate| rate > 0.0)
        );
    }
}

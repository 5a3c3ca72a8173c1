//! `simctl report` and `report::core_metrics`: metrics resolved across gem5 versions, CPU models
//! and cache hierarchies, checked against the hand-read values in tests/fixtures/stats/MANIFEST.md.

mod common;

use assert_cmd::Command;
use common::fixtures;
use predicates::prelude::*;
use simctl::report::core_metrics;
use simctl::run::rundir::{RunDir, RunState, Status, Writer};
use simctl::stats::{Value, read_dumps};

/// Expected metrics of one (file, dump, cpu). NaN = "must be empty" (no source stat).
struct Expected {
    file: &'static str,
    dump: usize,
    cpu: usize,
    instructions: f64,
    cycles: f64,
    /// gem5's own printed ipc (6 decimals), when the file has it.
    ipc: Option<f64>,
    l1i_miss_rate: f64,
    l1d_miss_rate: f64,
    llc_miss_rate: f64,
    branch_mispredicts: f64,
    sim_seconds: f64,
}

const NONE: f64 = f64::NAN;

const EXPECTED: &[Expected] = &[
    Expected {
        file: "old-se-x86-atomic-hello.txt",
        dump: 0,
        cpu: 0,
        instructions: 5381.0,
        cycles: 11231.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 0.000006,
    },
    Expected {
        file: "old-fs-x86-timing-boot.txt",
        dump: 0,
        cpu: 0,
        instructions: 128436892.0,
        cycles: 10389892001.0,
        ipc: None,
        l1i_miss_rate: 0.005439,
        l1d_miss_rate: 0.075148,
        llc_miss_rate: 0.063886,
        branch_mispredicts: NONE,
        sim_seconds: 5.194946,
    },
    Expected {
        file: "old-fs-alpha-atomic-2dumps.txt",
        dump: 0,
        cpu: 0,
        instructions: 20257044.0,
        cycles: 400825859.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 0.200409,
    },
    Expected {
        file: "old-fs-alpha-atomic-2dumps.txt",
        dump: 1,
        cpu: 0,
        instructions: 36126.0,
        cycles: 821056.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 0.000407,
    },
    Expected {
        file: "old-se-arm-minor.txt",
        dump: 0,
        cpu: 0,
        instructions: 1185066.0,
        cycles: 1451628.0,
        ipc: Some(0.816370),
        l1i_miss_rate: 0.001135,
        l1d_miss_rate: 0.001753,
        llc_miss_rate: NONE,
        branch_mispredicts: 830.0,
        sim_seconds: 0.000726,
    },
    Expected {
        file: "v21-se-x86-o3-classic.txt",
        dump: 0,
        cpu: 0,
        instructions: 5774.0,
        cycles: 29119.0,
        ipc: Some(0.198290),
        l1i_miss_rate: 0.177978,
        l1d_miss_rate: 0.072531,
        llc_miss_rate: 0.969194,
        branch_mispredicts: 361.0,
        sim_seconds: 0.000029,
    },
    Expected {
        file: "v22-se-arm-minor.txt",
        dump: 0,
        cpu: 0,
        instructions: 8816.0,
        cycles: 68414.0,
        ipc: None,
        l1i_miss_rate: 0.116253,
        l1d_miss_rate: 0.073133,
        llc_miss_rate: NONE,
        branch_mispredicts: 553.0,
        sim_seconds: 0.000034,
    },
    Expected {
        file: "v22-se-stdlib-atomic.txt",
        dump: 0,
        cpu: 0,
        instructions: 1753694.0,
        cycles: 2879949.0,
        ipc: None,
        l1i_miss_rate: 0.000225,
        l1d_miss_rate: 0.000480,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 0.000959,
    },
    Expected {
        file: "v22-fs-arm-atomic-2dumps.txt",
        dump: 0,
        cpu: 0,
        instructions: 5435431773.0,
        cycles: 5446519113.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 1.361751,
    },
    Expected {
        file: "v22-fs-arm-atomic-2dumps.txt",
        dump: 0,
        cpu: 1,
        instructions: 9945756.0,
        cycles: 5447049702.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 1.361751,
    },
    Expected {
        file: "v22-fs-arm-atomic-2dumps.txt",
        dump: 1,
        cpu: 0,
        instructions: 5436010899.0,
        cycles: 5447882923.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 1.361971,
    },
    Expected {
        file: "v24-se-x86-atomic-nocache.txt",
        dump: 0,
        cpu: 0,
        instructions: 9115698.0,
        cycles: 22267371.0,
        ipc: Some(0.409375),
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 0.007415,
    },
    Expected {
        file: "v24-se-x86-o3-stdlib.txt",
        dump: 0,
        cpu: 0,
        instructions: 9115640.0,
        cycles: 7305717.0,
        ipc: Some(1.247741),
        l1i_miss_rate: 0.072800,
        l1d_miss_rate: 0.000674,
        llc_miss_rate: 0.834915,
        branch_mispredicts: 3621.0,
        sim_seconds: 0.002433,
    },
    Expected {
        file: "v24-se-x86-o3-2dumps.txt",
        dump: 0,
        cpu: 0,
        instructions: 1.0,
        cycles: 219.0,
        ipc: None,
        l1i_miss_rate: 1.0,
        l1d_miss_rate: NONE,
        llc_miss_rate: 1.0,
        branch_mispredicts: 0.0,
        sim_seconds: 0.0,
    },
    Expected {
        file: "v24-se-x86-o3-2dumps.txt",
        dump: 1,
        cpu: 0,
        instructions: 1000000.0,
        cycles: 971323.0,
        ipc: Some(1.029524),
        l1i_miss_rate: 0.069023,
        l1d_miss_rate: 0.005976,
        llc_miss_rate: 0.836484,
        branch_mispredicts: 2510.0,
        sim_seconds: 0.000323,
    },
    Expected {
        file: "v24-se-x86-o3-classic.txt",
        dump: 0,
        cpu: 0,
        instructions: 10000.0,
        cycles: 62207.0,
        ipc: None,
        l1i_miss_rate: 0.231051,
        l1d_miss_rate: 0.112217,
        llc_miss_rate: 0.990862,
        branch_mispredicts: 624.0,
        sim_seconds: 0.000062,
    },
    Expected {
        file: "v24-se-riscv-minor.txt",
        dump: 0,
        cpu: 0,
        instructions: 114974.0,
        cycles: 2391025.0,
        ipc: None,
        l1i_miss_rate: NONE,
        l1d_miss_rate: NONE,
        llc_miss_rate: NONE,
        branch_mispredicts: 1678.0,
        sim_seconds: 0.002391,
    },
    Expected {
        file: "v24-fs-x86-ruby-timing-4core.txt",
        dump: 0,
        cpu: 1,
        instructions: 792817682.0,
        cycles: 11638592456.0,
        ipc: None,
        l1i_miss_rate: 11023097.0 / 1053392359.0,
        l1d_miss_rate: 12291281.0 / 373817972.0,
        // Ruby's shared L2 counts every core's demand misses (13964926 of 57360901) with no
        // per-core breakdown: no core's share can be known, so cpu1's LLC numbers are empty.
        llc_miss_rate: NONE,
        branch_mispredicts: NONE,
        sim_seconds: 3.875651,
    },
];

/// Exact for counts; miss rates are compared with gem5's 6-decimal print.
fn check(what: &str, got: Option<f64>, expected: f64) {
    if expected.is_nan() {
        assert_eq!(got, None, "{what}: expected empty (no source stat)");
    } else {
        let got = got.unwrap_or_else(|| panic!("{what}: expected {expected}, got empty"));
        assert!(
            (got - expected).abs() <= 5e-7 + expected.abs() * 1e-12,
            "{what}: got {got}, expected {expected}"
        );
    }
}

#[test]
fn core_metrics_match_manifest_for_every_fixture() {
    let dir = fixtures();
    for e in EXPECTED {
        let dumps = read_dumps(&dir.join(e.file)).unwrap();
        let m = core_metrics(&dumps[e.dump], e.cpu);
        let what = |field: &str| format!("{} d{} cpu{} {field}", e.file, e.dump, e.cpu);
        check(&what("instructions"), m.instructions, e.instructions);
        check(&what("cycles"), m.cycles, e.cycles);
        check(
            &what("ipc"),
            m.ipc,
            e.ipc.unwrap_or(e.instructions / e.cycles),
        );
        check(&what("cpi"), m.cpi, e.cycles / e.instructions);
        check(&what("l1i_miss_rate"), m.l1i_miss_rate, e.l1i_miss_rate);
        check(&what("l1d_miss_rate"), m.l1d_miss_rate, e.l1d_miss_rate);
        check(&what("llc_miss_rate"), m.llc_miss_rate, e.llc_miss_rate);
        check(
            &what("branch_mispredicts"),
            m.branch_mispredicts,
            e.branch_mispredicts,
        );
        check(
            &what("branch_mpki"),
            m.branch_mpki,
            e.branch_mispredicts / e.instructions * 1000.0,
        );
        check(&what("sim_seconds"), m.sim_seconds, e.sim_seconds);
        assert!(m.host_seconds.is_some(), "{}", what("host_seconds"));
    }
}

#[test]
fn region_instructions_never_come_from_sim_insts() {
    let dir = fixtures();
    let dumps = read_dumps(&dir.join("v24-se-x86-o3-2dumps.txt")).unwrap();
    let m = core_metrics(&dumps[1], 0);
    assert_eq!(dumps[1].get("simInsts"), Some(Value::Int(1000001)));
    assert_eq!(m.instructions, Some(1000000.0));
    let sources = m.sources();
    let source = sources
        .iter()
        .find(|(input, _)| *input == "instructions")
        .unwrap()
        .1;
    assert_eq!(
        source,
        Some("board.processor.cores.core.commitStats0.numInsts")
    );
    let mpki = m.l1d_mpki.unwrap();
    let misses = dumps[1]
        .get("board.cache_hierarchy.l1d-cache-0.overallMisses::total")
        .and_then(Value::as_f64)
        .unwrap();
    assert!((mpki - misses / 1000.0).abs() < 1e-9);
}

#[test]
fn missing_core_gives_empty_metrics_not_zero() {
    let dir = fixtures();
    let dumps = read_dumps(&dir.join("v24-se-x86-o3-stdlib.txt")).unwrap();
    let m = core_metrics(&dumps[0], 3);
    assert_eq!(
        (m.instructions, m.cycles, m.ipc, m.l1d_mpki),
        (None, None, None, None)
    );
    assert_eq!(m.sim_seconds, Some(0.002433), "global stats still resolve");
}

fn simctl() -> Command {
    Command::cargo_bin("simctl").unwrap()
}

#[test]
fn cli_comparison_table_across_versions_and_layouts() {
    let dir = fixtures();
    let temp = tempfile::tempdir().unwrap();
    let run_dir = temp.path().join("run-1");
    std::fs::create_dir_all(run_dir.join("m5out")).unwrap();
    std::fs::copy(
        dir.join("v24-se-x86-o3-2dumps.txt"),
        run_dir.join("m5out/stats.txt"),
    )
    .unwrap();
    let output = simctl()
        .args(["report", "--format", "csv"])
        .arg(dir.join("old-se-x86-atomic-hello.txt"))
        .arg(&run_dir)
        .arg(run_dir.join("m5out"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("run,dump,cpu,instructions,cycles,ipc,cpi,"));
    assert_eq!(lines.len(), 1 + 1 + 2 + 2, "{text}");
    assert!(
        lines[1].contains(",0,0,5381,11231,0.479120,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].contains(",1,0,1000000,971323,1.029524,"),
        "{}",
        lines[3]
    );
    assert!(
        lines[1].contains(",,,,,,,"),
        "no caches: empty cells, not 0: {}",
        lines[1]
    );
}

#[test]
fn cli_explain_cpu_markdown_and_json() {
    let dir = fixtures();
    let file = dir.join("v24-fs-x86-ruby-timing-4core.txt");
    simctl()
        .args(["report", "--cpu", "1", "--explain", "--format", "markdown"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("| 792817682 "))
        .stderr(
            predicate::str::contains("board.processor.cores1.core.commitStats0.numInsts")
                .and(predicate::str::contains("no source stat")),
        );
    let json = simctl()
        .args(["report", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4, "4 cores");
    assert_eq!(rows[2]["instructions"], 312202928.0);
    assert!(
        rows[2]["branch_mpki"].is_null(),
        "no branch predictor stats: null, not 0"
    );
}

#[test]
fn cli_plot_svg_and_png() {
    let dir = fixtures();
    let temp = tempfile::tempdir().unwrap();
    for name in ["ipc.svg", "ipc.png"] {
        let plot = temp.path().join(name);
        simctl()
            .args(["report", "--format", "csv", "--plot"])
            .arg(&plot)
            .arg(dir.join("v24-se-x86-o3-2dumps.txt"))
            .arg(dir.join("v22-fs-arm-atomic-2dumps.txt"))
            .assert()
            .success();
        let bytes = std::fs::read(&plot).unwrap();
        if name.ends_with("svg") {
            assert!(String::from_utf8_lossy(&bytes).contains("<svg"));
        } else {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        }
    }
    simctl()
        .args(["report", "--plot-metric", "nonsense", "--plot"])
        .arg(temp.path().join("x.svg"))
        .arg(dir.join("v24-se-x86-o3-2dumps.txt"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a metric"));
}

#[test]
fn cli_errors_are_clear() {
    let temp = tempfile::tempdir().unwrap();
    simctl()
        .args(["report"])
        .arg(temp.path())
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("no stats.txt here")
                .and(predicate::str::contains("panicked").not()),
        );
    let bad = temp.path().join("stats.txt");
    std::fs::write(&bad, "hello\n").unwrap();
    simctl()
        .args(["report"])
        .arg(&bad)
        .assert()
        .failure()
        .stderr(predicate::str::contains("stats.txt:1"));
}

#[test]
fn cli_refuses_a_dump_cut_mid_number_unless_allowed() {
    let temp = tempfile::tempdir().unwrap();
    let cut = temp.path().join("stats.txt");
    std::fs::write(&cut, common::cut_mid_number()).unwrap();
    simctl()
        .args(["report", "--format", "csv"])
        .arg(&cut)
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("stats.txt: dump 1 (line 1697) is incomplete")
                .and(predicate::str::contains("--allow-incomplete")),
        );
    let output = simctl()
        .args(["report", "--format", "csv", "--allow-incomplete"])
        .arg(&cut)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("dump 1 (line 1697) is incomplete"),
        "{stderr}"
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "header and dump 0 only: {text}");
    assert!(lines[1].contains(",0,0,1,219,"), "{}", lines[1]);
}

/// A run directory as `simctl run` leaves it, in this state, written by `writer`.
fn run_dir(
    parent: &std::path::Path,
    state: RunState,
    writer: Option<Writer>,
) -> std::path::PathBuf {
    let dir = parent.join(format!("run-{state}"));
    std::fs::create_dir_all(dir.join("m5out")).unwrap();
    std::fs::copy(
        fixtures().join("v24-se-x86-o3-2dumps.txt"),
        dir.join("m5out/stats.txt"),
    )
    .unwrap();
    RunDir::open(&dir)
        .write_status(&Status {
            state,
            cause: None,
            started_unix_s: 1,
            finished_unix_s: None,
            phases: Vec::new(),
            writer,
        })
        .unwrap();
    dir
}

#[test]
fn cli_refuses_a_run_that_is_still_running_unless_allowed() {
    let temp = tempfile::tempdir().unwrap();
    // This test process is the live writer: the run is really running.
    let running = run_dir(temp.path(), RunState::Running, Some(Writer::me()));
    for path in [
        running.clone(),
        running.join("m5out"),
        running.join("m5out/stats.txt"),
    ] {
        simctl()
            .args(["report", "--format", "csv"])
            .arg(&path)
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                predicate::str::contains("is still running")
                    .and(predicate::str::contains("status.json"))
                    .and(predicate::str::contains("--allow-incomplete")),
            );
    }
    simctl()
        .args(["report", "--format", "csv", "--allow-incomplete"])
        .arg(&running)
        .assert()
        .success()
        .stdout(predicate::str::contains(",1,0,1000000,971323,"))
        .stderr(predicate::str::contains("still running"));
    assert!(
        !running.join("report.md").exists(),
        "a running run's report.md is not rewritten"
    );
    // A `running` whose writer is gone was interrupted: its complete dumps are final.
    let interrupted = run_dir(temp.path(), RunState::Interrupted, None);
    std::fs::write(
        interrupted.join("status.json"),
        r#"{"state": "running", "started_unix_s": 1, "phases": []}"#,
    )
    .unwrap();
    simctl()
        .args(["report", "--format", "csv"])
        .arg(&interrupted)
        .assert()
        .success()
        .stdout(predicate::str::contains(",1,0,1000000,971323,"));
    let broken = run_dir(temp.path(), RunState::Ok, None);
    std::fs::write(broken.join("status.json"), "{not json").unwrap();
    simctl()
        .args(["report"])
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("status.json"));
}

#[test]
fn cli_empty_stats_file_is_an_error_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    let empty = temp.path().join("stats.txt");
    std::fs::write(&empty, "").unwrap();
    simctl()
        .args(["report"])
        .arg(&empty)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("stats.txt: no statistics dump"));
}

//! aes-go on gem5 for real. These tests need gem5, so they are ignored by default; run them with
//! `SIMCTL_GEM5=<gem5.opt> cargo test --test gem5 -- --ignored` (or with no SIMCTL_GEM5 after
//! `simctl build-gem5`, which records the build simctl then finds). Boot and warm-up run once
//! (both checkpoints are cached), then the measured phase runs on several CPU models and caches
//! from the same warm checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The gem5 simctl uses (SIMCTL_GEM5, simctl.toml or the recorded build); a test that needs
/// gem5 and runs without one fails and says how to get one.
fn gem5() -> PathBuf {
    simctl::project::Project::locate()
        .and_then(|project| project.gem5())
        .unwrap()
        .expect("no gem5: set SIMCTL_GEM5=<gem5.opt> or run `simctl build-gem5` first")
}

const INVOCATIONS: usize = 5;

fn run(out: &Path, cpu: &str) -> String {
    run_with(out, cpu, &[])
}

fn run_with(out: &Path, cpu: &str, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args([
            "run",
            "--workload",
            "aes-go",
            "--platform",
            "gem5",
            "--invocations",
            "5",
            "--warmup",
            "3",
            "--force",
        ])
        .args(["--cpu", cpu])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "gem5 run on {cpu} failed:\n{stderr}"
    );
    stderr
}

/// The points of sweeps/aes-llc-cpu.toml: three LLC sizes times two CPU models boot once.
#[test]
#[ignore = "needs gem5: run with SIMCTL_GEM5=... cargo test -- --ignored"]
fn six_cache_and_cpu_points_share_one_gem5_boot_and_warm_up() {
    gem5();
    let temp = tempfile::tempdir().unwrap();
    let mut checkpoints = Vec::new();
    let mut boots = 0;
    let mut warmups = 0;
    for cpu in ["timing", "o3"] {
        for llc in ["128kB", "256kB", "1MB"] {
            let dir = temp.path().join(format!("{cpu}-{llc}"));
            let set = format!("llc_size={llc}");
            run_with(&dir, cpu, &["--set", &set]);
            let record = simctl::run::spec::RunRecord::load(&dir).unwrap();
            checkpoints.push((
                record.provenance.boot_checkpoint.clone(),
                record.provenance.checkpoint.clone(),
            ));
            // run.toml says which gem5 processes this point ran and which it restored.
            let ran = |phase: &str| {
                record
                    .provenance
                    .gem5_timeline
                    .iter()
                    .any(|process| process.phase == phase && !process.reused)
            };
            boots += usize::from(ran("boot"));
            warmups += usize::from(ran("warmup"));
            assert!(ran("measure"), "{cpu} {llc}: every point measures");
            // The measured phase ran on this point's caches, not the boot's.
            let config = std::fs::read_to_string(dir.join("m5out/config.ini")).unwrap();
            assert!(
                config.contains(&format!("size={}", llc_bytes(llc))),
                "{cpu} {llc}: the LLC of config.ini"
            );
        }
    }
    assert!(
        checkpoints[0].0.is_some() && checkpoints[0].1.is_some(),
        "a gem5 run names both checkpoints"
    );
    assert!(
        checkpoints.iter().all(|c| c == &checkpoints[0]),
        "one boot and one warm checkpoint for all six points: {checkpoints:?}"
    );
    assert!(
        boots <= 1 && warmups <= 1,
        "at most the first point boots and warms up (none when the cache had them): {boots} \
         boots, {warmups} warm-ups"
    );
}

fn llc_bytes(size: &str) -> u64 {
    let (number, unit) = size.split_at(size.find(|c: char| c.is_alphabetic()).unwrap());
    let factor = match unit {
        "kB" => 1024,
        "MB" => 1024 * 1024,
        other => panic!("unit {other}"),
    };
    number.parse::<u64>().unwrap() * factor
}

/// stats.txt without the host-side stats, which differ from run to run.
fn simulated_stats(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("m5out/stats.txt"))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("host"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs gem5: run with SIMCTL_GEM5=... cargo test -- --ignored"]
fn aes_go_on_gem5_atomic_and_o3_one_dump_per_invocation() {
    gem5();
    let temp = tempfile::tempdir().unwrap();
    for cpu in ["atomic", "o3"] {
        let dir = temp.path().join(cpu);
        run(&dir, cpu);
        let dumps = simctl::stats::read_dumps(&dir.join("m5out/stats.txt")).unwrap();
        assert_eq!(
            dumps.len(),
            INVOCATIONS,
            "{cpu}: one dump per measured invocation"
        );
        for dump in &dumps {
            let metrics = simctl::report::core_metrics(dump, 1);
            let instructions = metrics.instructions.unwrap_or(0.0);
            assert!(
                instructions > 0.0,
                "{cpu}: core 1 committed nothing in dump {}",
                dump.index
            );
        }
    }
    // The same measured phase from the same checkpoint is deterministic.
    let again = temp.path().join("atomic-again");
    run(&again, "atomic");
    assert_eq!(
        simulated_stats(&temp.path().join("atomic")),
        simulated_stats(&again)
    );
}

/// gem5's own SE-mode script: beside a `simctl build-gem5` binary (the entry carries gem5's
/// `configs/`) or in the source tree of a `<gem5>/build/X86/gem5.opt`.
fn se_script(gem5: &Path) -> PathBuf {
    let beside = gem5.parent().map(|dir| dir.join("configs"));
    let in_tree = gem5.ancestors().nth(3).map(|root| root.join("configs"));
    [beside, in_tree]
        .into_iter()
        .flatten()
        .map(|configs| configs.join("deprecated/example/se.py"))
        .find(|script| script.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no configs/deprecated/example/se.py beside {}",
                gem5.display()
            )
        })
}

#[test]
#[ignore = "needs gem5: run with SIMCTL_GEM5=... cargo test -- --ignored"]
fn m5_ops_reach_gem5_in_se_mode() {
    let gem5 = gem5();
    let se = se_script(&gem5);
    let m5 = PathBuf::from(
        String::from_utf8(
            Command::new(env!("CARGO_BIN_EXE_simctl"))
                .arg("build-guest")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim(),
    )
    .join("m5");
    let temp = tempfile::tempdir().unwrap();
    let se_run = |name: &str, options: &str| {
        let outdir = temp.path().join(name);
        let output = Command::new(&gem5)
            .arg(format!("--outdir={}", outdir.display()))
            .arg(&se)
            .arg(format!("--cmd={}", m5.display()))
            .arg(format!("--options={options}"))
            .output()
            .unwrap();
        (String::from_utf8_lossy(&output.stdout).to_string(), outdir)
    };
    let (stdout, _) = se_run("sum", "--inst sum 1 2 3");
    assert!(
        stdout.lines().any(|line| line.trim() == "6"),
        "gem5 returns the sum: {stdout}"
    );
    let (_, outdir) = se_run("dump", "--inst dumpstats");
    let dumps = simctl::stats::read_dumps(&outdir.join("stats.txt")).unwrap();
    assert_eq!(dumps.len(), 2, "one dump from m5 dumpstats, one at exit");
    let (stdout, _) = se_run("exit", "--inst exit");
    assert!(
        stdout.contains("because m5_exit instruction encountered"),
        "{stdout}"
    );
}

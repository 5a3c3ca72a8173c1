//! aes-go on gem5 for real, when a gem5 binary is configured (SIMCTL_GEM5); otherwise skipped.
//! Boot and warm-up run once (the checkpoint is cached), then the measured phase runs on the
//! atomic and on the O3 CPU from the same checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

fn gem5() -> Option<PathBuf> {
    match std::env::var_os("SIMCTL_GEM5").map(PathBuf::from) {
        Some(path) if path.is_file() => Some(path),
        _ => {
            println!("skipped: gem5 not found (set SIMCTL_GEM5 to a gem5.opt)");
            None
        }
    }
}

const INVOCATIONS: usize = 5;

fn run(out: &Path, cpu: &str) -> String {
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
        .args(["--cpu", cpu, "--out"])
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
fn aes_go_on_gem5_atomic_and_o3_one_dump_per_invocation() {
    if gem5().is_none() {
        return;
    }
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

/// gem5's own SE-mode script, found beside a gem5 build (`<gem5>/build/X86/gem5.opt`).
fn se_script(gem5: &Path) -> Option<PathBuf> {
    let script = gem5
        .parent()?
        .parent()?
        .parent()?
        .join("configs/deprecated/example/se.py");
    script.is_file().then_some(script)
}

#[test]
fn m5_ops_reach_gem5_in_se_mode() {
    let Some(gem5) = gem5() else { return };
    let Some(se) = se_script(&gem5) else {
        println!(
            "skipped: configs/deprecated/example/se.py not found beside {}",
            gem5.display()
        );
        return;
    };
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

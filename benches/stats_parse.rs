//! `cargo bench --bench stats_parse`: stats.txt parse throughput and peak memory.
//!
//! Builds a >= 500 MB multi-dump file (STATS_BENCH_MB overrides) in a temp dir by repeating a
//! real fixture's dumps, then parses the small fixture and the big file, each in a fresh child
//! process so that its peak RSS (VmHWM) belongs to that file alone, and compares with a plain
//! Python line-split parser run on the same big file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use simctl::stats::parse::open;

#[path = "../tests/common/mod.rs"]
mod common;

const CHILD: &str = "STATS_PARSE_BENCH_CHILD";
const FIXTURE: &str = "v24-se-x86-o3-2dumps.txt";

const PYTHON_PARSER: &str = r#"
import sys
dumps = values = 0
stats = None
with open(sys.argv[1], "rb") as f:
    for line in f:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == b"----------":
            if parts[1] == b"Begin":
                stats = {}
                dumps += 1
            continue
        try:
            stats[parts[0]] = float(parts[1])
            values += 1
        except ValueError:
            pass
print(dumps, values)
"#;

/// Peak resident set of this process, from /proc/self/status.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Child: parse one file, print `bytes seconds dumps values vmhwm_kib`.
fn child(path: &Path) -> Result<()> {
    let bytes = std::fs::metadata(path)?.len();
    let start = Instant::now();
    let (mut dumps, mut values) = (0usize, 0usize);
    for dump in open(path)? {
        let dump = dump?;
        dumps += 1;
        values += dump.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{bytes} {seconds} {dumps} {values} {}",
        vm_hwm_kib().unwrap_or(0)
    );
    Ok(())
}

struct Measured {
    bytes: u64,
    seconds: f64,
    dumps: usize,
    values: usize,
    vm_hwm_kib: u64,
}

fn measure(path: &Path) -> Result<Measured> {
    let output = Command::new(std::env::current_exe()?)
        .env(CHILD, path)
        .output()?;
    if !output.status.success() {
        bail!(
            "parse of {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8(output.stdout)?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let field = |i: usize| fields.get(i).copied().context("short child output");
    Ok(Measured {
        bytes: field(0)?.parse()?,
        seconds: field(1)?.parse()?,
        dumps: field(2)?.parse()?,
        values: field(3)?.parse()?,
        vm_hwm_kib: field(4)?.parse()?,
    })
}

/// Writes the fixture's dumps again and again until the file has `target` bytes.
fn build_big_file(fixture: &Path, big: &Path, target: u64) -> Result<u64> {
    let text = std::fs::read(fixture)?;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(big)?);
    let mut written = 0u64;
    while written < target {
        out.write_all(&text)?;
        written += text.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

fn mb_per_s(m: &Measured) -> f64 {
    m.bytes as f64 / 1e6 / m.seconds
}

fn main() -> Result<()> {
    if let Some(path) = std::env::var_os(CHILD) {
        return child(Path::new(&path));
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let fixture = common::fixtures().join(FIXTURE);
    let target_mb: u64 = std::env::var("STATS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let temp = tempfile::tempdir()?;
    let big: PathBuf = temp.path().join("big-stats.txt");
    let size = build_big_file(&fixture, &big, target_mb * 1_000_000)?;
    println!(
        "big file: {:.0} MB ({} copies of {FIXTURE})",
        size as f64 / 1e6,
        size / std::fs::metadata(&fixture)?.len()
    );

    let small = measure(&fixture)?;
    let big_runs = [measure(&big)?, measure(&big)?, measure(&big)?];
    let best = big_runs
        .iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .context("no runs")?;
    println!(
        "simctl parse, small: {:>8.1} MB/s  {} dumps {} values  VmHWM {} KiB",
        mb_per_s(&small),
        small.dumps,
        small.values,
        small.vm_hwm_kib
    );
    println!(
        "simctl parse, big:   {:>8.1} MB/s  {} dumps {} values  VmHWM {} KiB  ({:.2} s, best of 3)",
        mb_per_s(best),
        best.dumps,
        best.values,
        best.vm_hwm_kib,
        best.seconds
    );

    let script = temp.path().join("parse_stats.py");
    std::fs::write(&script, PYTHON_PARSER)?;
    let start = Instant::now();
    let python = Command::new("python3").arg(&script).arg(&big).output();
    let python_seconds = start.elapsed().as_secs_f64();
    match python {
        Ok(output) if output.status.success() => {
            let python_mb_s = size as f64 / 1e6 / python_seconds;
            println!(
                "python line-split:   {python_mb_s:>8.1} MB/s  ({python_seconds:.2} s; dumps values = {})",
                String::from_utf8_lossy(&output.stdout).trim()
            );
            println!(
                "speed-up vs python:  {:>8.1}x",
                mb_per_s(best) / python_mb_s
            );
        }
        Ok(output) => println!(
            "python parser failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => println!("skipped python comparison: python3 not found"),
    }
    Ok(())
}

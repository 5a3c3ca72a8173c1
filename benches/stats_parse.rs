//! `cargo bench --bench stats_parse`: stats.txt throughput and peak memory, of the library
//! parser and of the CLI end to end, against `wc -l` (the floor) and a plain Python line-split
//! parser, all on the same file in the same run.
//!
//! Builds a multi-dump file in a temp dir by repeating a real fixture (1024 copies of a 2-dump
//! fixture: 2048 dumps, 562 MB; STATS_BENCH_COPIES overrides), then runs each reader on it
//! three times and keeps the best. The library parse runs in a fresh child process so that its
//! peak RSS (VmHWM) belongs to that file alone; the CLI is `simctl stats BIG --match
//! '^simInsts$' --format csv`, what a user runs to pull one stat out of a long run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use simctl::stats::parse::open;

#[path = "../tests/common/mod.rs"]
mod common;

const CHILD: &str = "STATS_PARSE_BENCH_CHILD";
const FIXTURE: &str = "v24-se-x86-o3-2dumps.txt";
const RUNS: usize = 3;

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

/// Child: parse one file, print `seconds dumps values vmhwm_kib`.
fn child(path: &Path) -> Result<()> {
    let start = Instant::now();
    let (mut dumps, mut values) = (0usize, 0usize);
    for dump in open(path)? {
        let dump = dump?;
        dumps += 1;
        values += dump.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{seconds} {dumps} {values} {}", vm_hwm_kib().unwrap_or(0));
    Ok(())
}

/// One timed run: seconds, what it printed, its peak RSS in KiB when known.
struct Measured {
    seconds: f64,
    output: String,
    max_rss_kib: Option<u64>,
}

/// Runs `program args`, timed from outside; the peak RSS comes from GNU time when installed.
fn timed(
    program: &Path,
    args: &[&std::ffi::OsStr],
    env: Option<(&str, &Path)>,
) -> Result<Measured> {
    let gnu_time = Path::new("/usr/bin/time");
    let mut command = if gnu_time.is_file() {
        let mut command = Command::new(gnu_time);
        command.args(["-f", "maxrss_kib=%M"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let start = Instant::now();
    let output = command.output()?;
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{} failed: {stderr}", program.display());
    }
    let max_rss_kib = stderr
        .lines()
        .find_map(|line| line.strip_prefix("maxrss_kib=")?.trim().parse().ok());
    Ok(Measured {
        seconds,
        output: String::from_utf8(output.stdout)?,
        max_rss_kib,
    })
}

/// The fastest of RUNS runs.
fn best(run: impl Fn() -> Result<Measured>) -> Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..RUNS {
        let this = run()?;
        if best.as_ref().is_none_or(|b| this.seconds < b.seconds) {
            best = Some(this);
        }
    }
    best.context("no runs")
}

/// Writes the fixture again and again: `copies` times.
fn build_big_file(fixture: &Path, big: &Path, copies: u64) -> Result<u64> {
    let text = std::fs::read(fixture)?;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(big)?);
    for _ in 0..copies {
        out.write_all(&text)?;
    }
    out.flush()?;
    Ok(copies * text.len() as u64)
}

fn rss(measured: &Measured) -> String {
    measured
        .max_rss_kib
        .map_or("n/a".into(), |kib| format!("{kib} KiB"))
}

fn main() -> Result<()> {
    if let Some(path) = std::env::var_os(CHILD) {
        return child(Path::new(&path));
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let fixture = common::fixtures().join(FIXTURE);
    let copies: u64 = std::env::var("STATS_BENCH_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let temp = tempfile::tempdir()?;
    let big: PathBuf = temp.path().join("big-stats.txt");
    let size = build_big_file(&fixture, &big, copies)?;
    let mb = size as f64 / 1e6;
    let mb_s = |m: &Measured| mb / m.seconds;
    println!(
        "big file: {mb:.0} MB ({copies} copies of {FIXTURE}, {} dumps)",
        copies * 2
    );

    let wc = best(|| timed(Path::new("wc"), &["-l".as_ref(), big.as_os_str()], None))?;
    println!(
        "wc -l (the floor):   {:>8.1} MB/s  ({:.3} s)",
        mb_s(&wc),
        wc.seconds
    );

    let me = std::env::current_exe()?;
    let library = best(|| timed(&me, &[], Some((CHILD, &big))))?;
    let fields: Vec<&str> = library.output.split_whitespace().collect();
    let field = |i: usize| fields.get(i).copied().context("short child output");
    // The child's own clock excludes process start-up; the MB/s comes from it.
    let parse_seconds: f64 = field(0)?.parse()?;
    let library_mb_s = mb / parse_seconds;
    let dumps: u64 = field(1)?.parse()?;
    println!(
        "library parser:      {library_mb_s:>8.1} MB/s  ({parse_seconds:.3} s; {dumps} dumps, {} values; VmHWM {} KiB)",
        field(2)?,
        field(3)?
    );

    let simctl = Path::new(env!("CARGO_BIN_EXE_simctl"));
    let cli_args: Vec<&std::ffi::OsStr> = vec![
        "stats".as_ref(),
        big.as_os_str(),
        "--match".as_ref(),
        "^simInsts$".as_ref(),
        "--format".as_ref(),
        "csv".as_ref(),
    ];
    let cli = best(|| timed(simctl, &cli_args, None))?;
    let rows = cli.output.lines().count() as u64;
    if rows != dumps + 1 {
        bail!("the CLI printed {rows} lines for {dumps} dumps");
    }
    println!(
        "simctl stats CLI:    {:>8.1} MB/s  ({:.3} s end to end; {rows} lines; max RSS {})",
        mb_s(&cli),
        cli.seconds,
        rss(&cli)
    );

    let script = temp.path().join("parse_stats.py");
    std::fs::write(&script, PYTHON_PARSER)?;
    let python = timed(
        Path::new("python3"),
        &[script.as_os_str(), big.as_os_str()],
        None,
    )
    .context("python3 is needed for the baseline")?;
    println!(
        "python line-split:   {:>8.1} MB/s  ({:.2} s, one run; dumps values = {}; max RSS {})",
        mb_s(&python),
        python.seconds,
        python.output.trim(),
        rss(&python)
    );
    println!(
        "ratios: parser/python {:.1}x, CLI/python {:.1}x, CLI/parser {:.2}, parser/wc-l {:.2}",
        library_mb_s / mb_s(&python),
        mb_s(&cli) / mb_s(&python),
        mb_s(&cli) / library_mb_s,
        library_mb_s / mb_s(&wc)
    );
    Ok(())
}

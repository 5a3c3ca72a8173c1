//! `simctl-hookbench`: the micro benchmark of the hook-latency study. Runs the dynamically linked
//! `simctl-readbench` (N reads of 1 byte through libc `read()`) `--reps` times without and with
//! `LD_PRELOAD=readhook.so`, interleaved (the order alternates each repetition, ABBA, so drift
//! hits both variants alike), and writes one row per run to `hook.csv`: the loop's ns and the
//! hooked calls the hook counted. Under gem5 each run's read loop is one workbegin/workend pair.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use simctl_guest::m5::{M5, Mode};

const USAGE: &str =
    "usage: simctl-hookbench [--reps R] [--reads N] [--out DIR] [--m5 inst|addr|off]
  [--readbench PATH] [--hook PATH]";

struct Options {
    reps: u64,
    reads: u64,
    out: PathBuf,
    m5: Mode,
    readbench: PathBuf,
    hook: PathBuf,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        reps: 30,
        reads: 100_000,
        out: PathBuf::from("."),
        m5: Mode::from_environment(),
        readbench: PathBuf::from("/usr/local/bin/simctl-readbench"),
        hook: PathBuf::from("/usr/local/lib/simctl/readhook.so"),
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: '{value}' is not a whole number"))
        };
        match flag.as_str() {
            "--reps" => options.reps = number()?,
            "--reads" => options.reads = number()?.max(1),
            "--out" => options.out = PathBuf::from(value),
            "--readbench" => options.readbench = PathBuf::from(value),
            "--hook" => options.hook = PathBuf::from(value),
            "--m5" => {
                options.m5 =
                    Mode::parse(value).ok_or_else(|| format!("--m5: unknown mode '{value}'"))?
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// What one run of the read loop measured.
struct Measured {
    ns: u64,
    /// ns per read of the fastest window of consecutive reads (the undisturbed cost).
    fastest_window: f64,
    hooked_calls: u64,
}

/// One run of the read loop.
fn run_once(
    options: &Options,
    hooked: bool,
    work_id: Option<u64>,
    counter: &Path,
) -> Result<Measured, String> {
    let _ = std::fs::remove_file(counter);
    let mut command = Command::new(&options.readbench);
    command.arg(options.reads.to_string());
    if let Some(id) = work_id {
        command.arg(id.to_string());
    }
    if hooked {
        command
            .env("LD_PRELOAD", &options.hook)
            .env("READHOOK_COUNT", counter);
    }
    let output = command
        .output()
        .map_err(|err| format!("cannot run {}: {err}", options.readbench.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            options.readbench.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    let (Some(Ok(ns)), Some(Ok(fastest_window))) = (
        words.next().map(str::parse::<u64>),
        words.next().map(str::parse::<f64>),
    ) else {
        return Err(format!(
            "simctl-readbench printed '{}', not two numbers",
            text.trim()
        ));
    };
    let hooked_calls = match std::fs::read(counter) {
        Ok(bytes) if bytes.len() >= 8 => {
            u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]))
        }
        _ => 0,
    };
    Ok(Measured {
        ns,
        fastest_window,
        hooked_calls,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("simctl-hookbench: {message}");
            return ExitCode::from(2);
        }
    };
    let m5 = match M5::new(options.m5) {
        Ok(m5) => m5,
        Err(err) => {
            eprintln!("simctl-hookbench: {err}");
            return ExitCode::from(2);
        }
    };
    // The readbench loop issues workbegin/workend itself, with the magic instruction.
    let gem5 = options.m5 == Mode::Inst;
    m5.checkpoint(0, 0);
    println!("SIMCTL-PROGRESS warmup-done");
    let counter = std::env::temp_dir().join("simctl-readhook.count");
    let mut rows = String::from(
        "variant,rep,position,work_id,reads,elapsed_ns,ns_per_read,hooked_calls,\
         fastest_window_ns_per_read\n",
    );
    let mut work_id = 0;
    for rep in 0..options.reps {
        let order = if rep % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for (position, hooked) in order.into_iter().enumerate() {
            let id = gem5.then_some(work_id);
            match run_once(&options, hooked, id, &counter) {
                Ok(m) => rows.push_str(&format!(
                    "{},{rep},{position},{work_id},{},{},{:.3},{},{:.3}\n",
                    if hooked { "hooked" } else { "bare" },
                    options.reads,
                    m.ns,
                    m.ns as f64 / options.reads as f64,
                    m.hooked_calls,
                    m.fastest_window
                )),
                Err(message) => {
                    eprintln!("simctl-hookbench: {message}");
                    return ExitCode::from(1);
                }
            }
            work_id += 1;
        }
        println!("SIMCTL-PROGRESS invocation {}/{}", rep + 1, options.reps);
    }
    if let Err(err) = std::fs::create_dir_all(&options.out)
        .and_then(|()| std::fs::write(options.out.join("hook.csv"), &rows))
    {
        eprintln!("simctl-hookbench: cannot write hook.csv: {err}");
        return ExitCode::from(1);
    }
    if m5.mode() != Mode::Off {
        m5.write_file(rows.as_bytes(), "hook.csv");
    }
    ExitCode::SUCCESS
}

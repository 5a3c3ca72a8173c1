//! `simctl-hookbench`: the micro benchmark of the hook-latency study. Runs the dynamically linked
//! `simctl-readbench` (N reads of 1 byte through libc `read()`) `--reps` times without and with
//! `LD_PRELOAD=readhook.so`, interleaved (the order alternates each repetition, ABBA, so drift
//! hits both variants alike), and writes one row per run to `hook.csv`: the loop's ns and the
//! hooked calls the hook counted. Under gem5 each run's read loop is one workbegin/workend pair.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use simctl_guest::m5::{M5, Mode};
use simctl_guest::markers::Marker;

/// Bad command line (clap uses 2 too) or m5 ops unavailable.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "simctl-hookbench",
    version,
    about = "Time 1-byte libc read() loops without and with the LD_PRELOAD read hook, interleaved",
    after_help = "Writes DIR/hook.csv: one row per run of the loop (variant, repetition, \
                  position, work id, reads, ns, ns per read, hooked calls, fastest window). \
                  Under gem5 each loop is one workbegin/workend pair.\n\n\
                  Exit status: 0 done; 1 a loop failed or hook.csv could not be written; 2 bad \
                  command line or m5 ops unavailable."
)]
struct Options {
    /// Repetitions of each variant (bare, hooked); the order alternates (ABBA).
    #[arg(long, default_value_t = 30)]
    reps: u64,
    /// 1-byte reads per loop.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    reads: u64,
    /// Directory for hook.csv.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// How m5 ops are issued; default: SIMCTL_M5, else simctl.m5= on the kernel command line,
    /// else off.
    #[arg(long, value_parser = Mode::parse_arg, value_name = "inst|addr|off")]
    m5: Option<Mode>,
    /// The read loop program (dynamically linked: LD_PRELOAD needs it).
    #[arg(long, default_value = "/usr/local/bin/simctl-readbench")]
    readbench: PathBuf,
    /// The hook library.
    #[arg(long, default_value = "/usr/local/lib/simctl/readhook.so")]
    hook: PathBuf,
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
    let options = Options::parse();
    let mode = options.m5.unwrap_or_else(Mode::from_environment);
    let m5 = match M5::new(mode) {
        Ok(m5) => m5,
        Err(err) => {
            eprintln!("simctl-hookbench: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The readbench loop issues workbegin/workend itself, with the magic instruction.
    let gem5 = mode == Mode::Inst;
    m5.checkpoint(0, 0);
    println!("{}", Marker::WarmupDone);
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
        println!(
            "{}",
            Marker::Invocation {
                done: (rep + 1),
                total: options.reps
            }
        );
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

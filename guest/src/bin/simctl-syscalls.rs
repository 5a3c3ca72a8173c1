//! `simctl-syscalls`: the per-syscall cost microbenchmark (see `simctl_guest::sysbench`).
//! Runs each variant in a child process (itself with `--child VARIANT`), collects their rows
//! into `syscalls.csv` in `--out`, and under gem5 hands the file back with m5 writefile. A
//! variant the kernel cannot provide (no seccomp in the kernel) is recorded in
//! `variants.csv` with the reason, never silently left out.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use simctl_guest::m5::{M5, Mode};
use simctl_guest::markers::Marker;
use simctl_guest::sysbench::{
    CSV_HEADER, Fixtures, Shape, Variant, install_allow_list, measured_batches, run_batches, trace,
};

/// Bad command line (clap uses 2 too) or m5 ops unavailable.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "simctl-syscalls",
    version,
    about = "Cost per system call, bare, under a seccomp-BPF allow-list and under a ptrace tracer",
    after_help = "Writes DIR/syscalls.csv (one row per call kind and batch) and DIR/variants.csv \
                  (each variant ok, or unavailable with the reason). Under gem5 each measured \
                  batch is one workbegin/workend pair.\n\n\
                  Exit status: 0 done; 1 the bare variant failed or the files could not be \
                  written; 2 bad command line or m5 ops unavailable."
)]
struct Options {
    /// Variants to run, in order.
    #[arg(long, value_delimiter = ',', value_parser = parse_variant,
          default_value = "bare,seccomp,ptrace")]
    variants: Vec<Variant>,
    /// Calls per batch.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    calls: u64,
    /// Unmeasured batches first.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Measured batches.
    #[arg(long, default_value_t = 10)]
    batches: u64,
    /// Work id of the first measured batch (set by the parent for each variant's child).
    #[arg(long, default_value_t = 0, hide = true)]
    first_work_id: u64,
    /// Directory for syscalls.csv and variants.csv.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// How m5 ops are issued; default: SIMCTL_M5, else simctl.m5= on the kernel command line,
    /// else off.
    #[arg(long, value_parser = Mode::parse_arg, value_name = "inst|addr|off")]
    m5: Option<Mode>,
    /// Run one variant's measurement in this process (the parent starts these).
    #[arg(long, value_parser = parse_variant, hide = true)]
    child: Option<Variant>,
}

fn parse_variant(text: &str) -> Result<Variant, String> {
    Variant::parse(text)
        .ok_or_else(|| format!("'{text}' is not a variant; give bare, seccomp or ptrace"))
}

impl Options {
    fn shape(&self) -> Shape {
        Shape {
            calls: self.calls,
            warmup: self.warmup,
            batches: self.batches,
            first_work_id: self.first_work_id,
        }
    }

    fn mode(&self) -> Mode {
        self.m5.unwrap_or_else(Mode::from_environment)
    }
}

/// The child: set up, enter the variant's mechanism, measure, print rows on stdout.
fn child(variant: Variant, options: &Options) -> Result<(), String> {
    let m5 = M5::new(options.mode()).map_err(|err| err.to_string())?;
    let mut fixtures = Fixtures::open().map_err(|err| format!("setting up: {err}"))?;
    if variant == Variant::Seccomp {
        install_allow_list().map_err(|err| err.to_string())?;
    }
    let mut rows = Vec::new();
    run_batches(variant, &mut fixtures, options.shape(), &m5, &mut rows)
        .map_err(|err| err.to_string())?;
    std::io::stdout()
        .write_all(&rows)
        .map_err(|err| err.to_string())
}

/// Runs one variant's child and returns its rows, or why it could not run.
fn run_variant(variant: Variant, options: &Options, first_work_id: u64) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|err| err.to_string())?;
    let mut command = Command::new(exe);
    command
        .args([
            "--child",
            variant.name(),
            "--m5",
            &options.mode().to_string(),
        ])
        .args(["--calls", &options.calls.to_string()])
        .args(["--warmup", &options.warmup.to_string()])
        .args(["--batches", &options.batches.to_string()])
        .args(["--first-work-id", &first_work_id.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if variant == Variant::Ptrace {
        // SAFETY: only ptrace(PTRACE_TRACEME) runs between fork and exec; the exec then stops
        // the child with SIGTRAP until the tracer resumes it.
        unsafe {
            command.pre_exec(|| {
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut process = command
        .spawn()
        .map_err(|err| format!("cannot start: {err}"))?;
    let mut stdout = process.stdout.take().ok_or("no stdout")?;
    let mut stderr = process.stderr.take().ok_or("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let code = if variant == Variant::Ptrace {
        let (code, stops) =
            trace(process.id() as libc::pid_t).map_err(|err| format!("tracer: {err}"))?;
        eprintln!("simctl-syscalls: ptrace: {stops} system-call stops");
        code
    } else {
        process
            .wait()
            .map_err(|err| err.to_string())?
            .code()
            .unwrap_or(128)
    };
    let rows = reader.join().unwrap_or_default();
    let errors = errors.join().unwrap_or_default();
    if code != 0 {
        return Err(format!(
            "exited with {code}: {}",
            errors.lines().last().unwrap_or("no message").trim()
        ));
    }
    Ok(rows)
}

fn main() -> ExitCode {
    let options = Options::parse();
    if let Some(variant) = options.child {
        return match child(variant, &options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("simctl-syscalls: {}: {message}", variant.name());
                ExitCode::from(1)
            }
        };
    }
    let m5 = match M5::new(options.mode()) {
        Ok(m5) => m5,
        Err(err) => {
            eprintln!("simctl-syscalls: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // gem5's warm-up phase saves the warm checkpoint here; every measured batch comes after it.
    m5.checkpoint(0, 0);
    println!("{}", Marker::WarmupDone);
    let mut rows = format!("{CSV_HEADER}\n");
    let mut variants = String::from("variant,state,detail\n");
    let mut failed = false;
    for (index, variant) in options.variants.iter().enumerate() {
        let first = index as u64 * measured_batches(options.shape());
        match run_variant(*variant, &options, first) {
            Ok(text) => {
                rows.push_str(&text);
                variants.push_str(&format!("{},ok,\n", variant.name()));
            }
            Err(reason) => {
                let reason = reason.replace([',', '\n', '"'], " ");
                eprintln!("simctl-syscalls: {} unavailable: {reason}", variant.name());
                variants.push_str(&format!("{},unavailable,{reason}\n", variant.name()));
                failed |= *variant == Variant::Bare;
            }
        }
        println!(
            "{}",
            Marker::Variant {
                done: (index + 1) as u64,
                total: options.variants.len() as u64
            }
        );
    }
    let written = std::fs::create_dir_all(&options.out)
        .and_then(|()| std::fs::write(options.out.join("syscalls.csv"), &rows))
        .and_then(|()| std::fs::write(options.out.join("variants.csv"), &variants));
    if let Err(err) = written {
        eprintln!(
            "simctl-syscalls: cannot write to {}: {err}",
            options.out.display()
        );
        return ExitCode::from(1);
    }
    if m5.mode() != Mode::Off {
        m5.write_file(rows.as_bytes(), "syscalls.csv");
        m5.write_file(variants.as_bytes(), "variants.csv");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

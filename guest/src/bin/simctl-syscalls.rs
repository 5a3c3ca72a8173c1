//! `simctl-syscalls`: the per-syscall cost microbenchmark (see `simctl_guest::sysbench`).
//! Runs each variant in a child process (itself with `--child VARIANT`), collects their rows
//! into `syscalls.csv` in `--out`, and under gem5 hands the file back with m5 writefile. A
//! variant the kernel cannot provide (no seccomp in the kernel) is recorded in
//! `variants.csv` with the reason, never silently left out.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use simctl_guest::m5::{M5, Mode};
use simctl_guest::sysbench::{
    CSV_HEADER, Fixtures, Shape, Variant, install_allow_list, measured_batches, run_batches, trace,
};

const USAGE: &str = "usage: simctl-syscalls [--variants bare,seccomp,ptrace] [--calls N]
  [--warmup W] [--batches B] [--out DIR] [--m5 inst|addr|off]";

struct Options {
    variants: Vec<Variant>,
    shape: Shape,
    out: PathBuf,
    m5: Mode,
    child: Option<Variant>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        variants: vec![Variant::Bare, Variant::Seccomp, Variant::Ptrace],
        shape: Shape {
            calls: 10_000,
            warmup: 2,
            batches: 10,
            first_work_id: 0,
        },
        out: PathBuf::from("."),
        m5: Mode::from_environment(),
        child: None,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        if flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = iter
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: '{value}' is not a whole number"))
        };
        let variant = |text: &str| {
            Variant::parse(text).ok_or_else(|| format!("unknown variant '{text}'\n{USAGE}"))
        };
        match flag.as_str() {
            "--variants" => {
                options.variants = value.split(',').map(variant).collect::<Result<_, _>>()?
            }
            "--calls" => options.shape.calls = number()?.max(1),
            "--warmup" => options.shape.warmup = number()?,
            "--batches" => options.shape.batches = number()?,
            "--first-work-id" => options.shape.first_work_id = number()?,
            "--out" => options.out = PathBuf::from(value),
            "--m5" => {
                options.m5 =
                    Mode::parse(value).ok_or_else(|| format!("--m5: unknown mode '{value}'"))?
            }
            "--child" => options.child = Some(variant(value)?),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// The child: set up, enter the variant's mechanism, measure, print rows on stdout.
fn child(variant: Variant, options: &Options) -> Result<(), String> {
    let m5 = M5::new(options.m5).map_err(|err| err.to_string())?;
    let mut fixtures = Fixtures::open().map_err(|err| format!("setting up: {err}"))?;
    if variant == Variant::Seccomp {
        install_allow_list().map_err(|err| err.to_string())?;
    }
    let mut rows = Vec::new();
    run_batches(variant, &mut fixtures, options.shape, &m5, &mut rows)
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
        .args(["--child", variant.name(), "--m5", &options.m5.to_string()])
        .args(["--calls", &options.shape.calls.to_string()])
        .args(["--warmup", &options.shape.warmup.to_string()])
        .args(["--batches", &options.shape.batches.to_string()])
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("simctl-syscalls: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(variant) = options.child {
        return match child(variant, &options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("simctl-syscalls: {}: {message}", variant.name());
                ExitCode::from(1)
            }
        };
    }
    let m5 = match M5::new(options.m5) {
        Ok(m5) => m5,
        Err(err) => {
            eprintln!("simctl-syscalls: {err}");
            return ExitCode::from(2);
        }
    };
    // gem5's setup phase saves its checkpoint here; every measured batch comes after it.
    m5.checkpoint(0, 0);
    println!("SIMCTL-PROGRESS warmup-done");
    let mut rows = format!("{CSV_HEADER}\n");
    let mut variants = String::from("variant,state,detail\n");
    let mut failed = false;
    for (index, variant) in options.variants.iter().enumerate() {
        let first = index as u64 * measured_batches(options.shape);
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
            "SIMCTL-PROGRESS variant {}/{}",
            index + 1,
            options.variants.len()
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

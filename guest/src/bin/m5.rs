//! `m5`: a drop-in for gem5's util/m5 command, in Rust.
//!
//! `m5 [--inst|--addr|--off] <command> [args]`; without a flag the mode comes from
//! `SIMCTL_M5` or `simctl.m5=` on the kernel command line, and is `off` otherwise.

use std::io::Write;
use std::process::ExitCode;

use simctl_guest::m5::{M5, Mode};

const USAGE: &str = "usage: m5 [--inst|--addr|--off] <command> [args]
commands:
  exit [delay_ns]                 end the simulation
  fail <code> [delay_ns]          end the simulation with a failure code
  resetstats [delay [period]]     reset gem5's statistics
  dumpstats [delay [period]]      dump gem5's statistics
  dumpresetstats [delay [period]] dump, then reset
  checkpoint [delay [period]]     ask gem5 for a checkpoint
  readfile                        print the file gem5 hands over (System.readfile)
  writefile <file> [host name]    copy a guest file into gem5's output directory
  workbegin [id [thread]]         mark the start of a work item
  workend [id [thread]]           mark its end
  switchcpu                       ask gem5 to switch CPU models
  addsymbol <address> <name>      add a symbol to gem5's symbol table
  sum <a> <b> [c [d [e [f]]]]     ABI self-test: prints the sum gem5 returns";

fn number(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("'{text}' is not a number\n{USAGE}"))
}

fn numbers<const N: usize>(args: &[String], required: usize) -> Result<[u64; N], String> {
    if args.len() < required || args.len() > N {
        return Err(format!("wrong number of arguments\n{USAGE}"));
    }
    let mut values = [0u64; N];
    for (slot, arg) in values.iter_mut().zip(args) {
        *slot = number(arg)?;
    }
    Ok(values)
}

fn run(args: &[String]) -> Result<(), String> {
    let (mode, rest) = match args.first().map(String::as_str) {
        Some("--inst") => (Mode::Inst, &args[1..]),
        Some("--addr") => (Mode::Addr, &args[1..]),
        Some("--off") => (Mode::Off, &args[1..]),
        _ => (Mode::from_environment(), args),
    };
    let Some((command, rest)) = rest.split_first() else {
        return Err(USAGE.to_string());
    };
    let m5 = M5::new(mode).map_err(|err| format!("m5: {err}"))?;
    match command.as_str() {
        "exit" => m5.exit(numbers::<1>(rest, 0)?[0]),
        "fail" => {
            let [code, delay] = numbers::<2>(rest, 1)?;
            m5.fail(delay, code);
        }
        "resetstats" => {
            let [delay, period] = numbers::<2>(rest, 0)?;
            m5.reset_stats(delay, period);
        }
        "dumpstats" => {
            let [delay, period] = numbers::<2>(rest, 0)?;
            m5.dump_stats(delay, period);
        }
        "dumpresetstats" => {
            let [delay, period] = numbers::<2>(rest, 0)?;
            m5.dump_reset_stats(delay, period);
        }
        "checkpoint" => {
            let [delay, period] = numbers::<2>(rest, 0)?;
            m5.checkpoint(delay, period);
        }
        "readfile" => {
            let contents = m5.read_file();
            std::io::stdout()
                .write_all(&contents)
                .map_err(|err| format!("m5 readfile: {err}"))?;
        }
        "writefile" => {
            let (file, host_name) = match rest {
                [file] => (file, file.rsplit('/').next().unwrap_or(file)),
                [file, name] => (file, name.as_str()),
                _ => return Err(format!("writefile needs <file> [host name]\n{USAGE}")),
            };
            let data = std::fs::read(file)
                .map_err(|err| format!("m5 writefile: cannot read {file}: {err}"))?;
            let written = m5.write_file(&data, host_name);
            println!("{written}");
        }
        "workbegin" => {
            let [id, thread] = numbers::<2>(rest, 0)?;
            m5.work_begin(id, thread);
        }
        "workend" => {
            let [id, thread] = numbers::<2>(rest, 0)?;
            m5.work_end(id, thread);
        }
        "switchcpu" => m5.switch_cpu(),
        "addsymbol" => match rest {
            [address, name] => m5.add_symbol(number(address)?, name),
            _ => return Err(format!("addsymbol needs <address> <name>\n{USAGE}")),
        },
        "sum" => println!("{}", m5.sum(numbers::<6>(rest, 2)?)),
        other => return Err(format!("unknown command '{other}'\n{USAGE}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

//! `simctl-client`: drives a function over gRPC from core 0 while the function runs on core 1;
//! writes one record per invocation (results.csv, results.json) and, under gem5, hands them to
//! the host with m5 writefile. With `--replay` it instead checks a function's answers byte for
//! byte against recorded conformance pairs; with `--record` it records such pairs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};
use simctl_guest::client::{Caller, CoRunner, Load, Service, connect, drive};
use simctl_guest::conformance;
use simctl_guest::load::{Arrival, LoadPattern, Pattern};
use simctl_guest::m5::{M5, Mode};
use simctl_guest::records::{Phase, to_csv};

/// Every measured invocation succeeded, or every replayed pair matched.
const EXIT_OK: u8 = 0;
/// An invocation failed or a replayed answer differed.
const EXIT_FAILED: u8 = 1;
/// Bad command line or unreadable pairs file (clap uses 2 for usage errors too).
const EXIT_USAGE: u8 = 2;
/// The function could not be reached, or the results could not be written.
const EXIT_ENVIRONMENT: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "simctl-client",
    version,
    about = "Drive a serverless function over gRPC and record one line per invocation",
    group(ArgGroup::new("mode").args(["service", "replay", "record"]).required(true)),
    after_help = "Default requests are what vSwarm's client sends (its `-input` value with the \
                  `unique` generator): aes \"A unique message\", auth \"A unique message\", \
                  fibonacci \"10\"; spin 1000 (microseconds).\n\n\
                  Exit status: 0 every measured invocation succeeded (or every replayed pair \
                  matched); 1 an invocation failed or a replayed answer differed; 2 bad command \
                  line or pairs file; 3 the function could not be reached or the results could \
                  not be written.\n\n\
                  Examples:\n  simctl-client --service aes --invocations 20 --warmup 5\n  \
                  simctl-client --replay aes-go.jsonl --addr 127.0.0.1:50051"
)]
struct Args {
    /// The function's gRPC service (vSwarm-compatible).
    #[arg(long, value_enum)]
    service: Option<Service>,
    /// Check the function's answers against recorded pairs (tests/fixtures/conformance format).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Send the requests of a pairs file and print the pairs with the answers received.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Address of the function.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// Request text; default: the service's default request (see below).
    #[arg(long)]
    request: Option<String>,
    /// Warm-up invocations (not measured), before the m5 checkpoint.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Warming invocations (not measured), after the m5 checkpoint and before the measured
    /// ones: after a restore they warm the measured CPU's caches and predictors.
    #[arg(long, default_value_t = 0)]
    warming: u64,
    /// Pattern closed: microseconds to wait after each warming and measured invocation.
    #[arg(long, default_value_t = 0)]
    think_us: u64,
    /// Pattern closed: a file with the pid of a co-runner on the function's core, stopped
    /// (SIGSTOP) during every invocation so that it runs only between them.
    #[arg(long, value_name = "FILE")]
    co_runner_pidfile: Option<PathBuf>,
    /// Measured invocations.
    #[arg(long, default_value_t = 10)]
    invocations: u64,
    /// Pin the client to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Load pattern.
    #[arg(long, value_enum, default_value_t = Pattern::Closed)]
    pattern: Pattern,
    /// Requests per second (pattern rps).
    #[arg(long, default_value_t = 10.0)]
    rps: f64,
    /// Inter-arrival distribution (pattern rps).
    #[arg(long, value_enum, default_value_t = Arrival::Poisson)]
    arrival: Arrival,
    /// Concurrent requests per round or streams (patterns rounds, streams).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    parallel: u64,
    /// Pause between rounds in milliseconds (pattern rounds).
    #[arg(long, default_value_t = 100)]
    pause_ms: u64,
    /// Directory for results.csv and results.json.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// How m5 ops are issued; default: SIMCTL_M5, else simctl.m5= on the kernel command line,
    /// else off.
    #[arg(long, value_parser = Mode::parse_arg, value_name = "inst|addr|off")]
    m5: Option<Mode>,
    /// Also reset and dump stats around every measured invocation.
    #[arg(long)]
    stats_ops: bool,
    /// Pattern closed: the counter file of the LD_PRELOAD read hook (readhook.so's
    /// READHOOK_COUNT); writes the hooked read() calls of each measured invocation to
    /// read-counts.csv.
    #[arg(long, value_name = "FILE")]
    read_counter: Option<PathBuf>,
}

impl Args {
    /// The load; an unreadable co-runner pid file is an error (a co-runner left running during
    /// the invocations would land in their stats).
    fn load(&self) -> Result<Load, String> {
        let pattern = match self.pattern {
            Pattern::Closed => LoadPattern::Closed {
                think_us: self.think_us,
            },
            Pattern::Rps => LoadPattern::Rps {
                rate: self.rps,
                arrival: self.arrival,
            },
            Pattern::Rounds => LoadPattern::Rounds {
                parallel: self.parallel,
                pause_ms: self.pause_ms,
            },
            Pattern::Streams => LoadPattern::Streams {
                parallel: self.parallel,
            },
        };
        let co_runner = match &self.co_runner_pidfile {
            None => None,
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|err| format!("cannot read {}: {err}", file.display()))?;
                let pid = text
                    .trim()
                    .parse()
                    .ok()
                    .and_then(CoRunner::new)
                    .ok_or_else(|| {
                        format!("{} holds '{}', not a pid", file.display(), text.trim())
                    })?;
                Some(pid)
            }
        };
        if self.read_counter.is_some() && pattern.kind() != Pattern::Closed {
            return Err("--read-counter needs --pattern closed (one invocation at a time)".into());
        }
        Ok(Load {
            read_counter: self.read_counter.clone(),
            warmup: self.warmup,
            warming: self.warming,
            co_runner,
            invocations: self.invocations,
            pattern,
            stats_ops: self.stats_ops,
        })
    }
}

fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(err) = rustix::thread::sched_setaffinity(None, &set) {
        eprintln!("simctl-client: warning: cannot pin to CPU {cpu}: {err}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(cpu) = args.cpu {
        pin_to(cpu);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("simctl-client: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    let code = if let Some(file) = &args.replay {
        runtime.block_on(replay(file, &args.addr))
    } else if let Some(file) = &args.record {
        runtime.block_on(record(file, &args.addr))
    } else if let Some(service) = args.service {
        runtime.block_on(drive_load(&args, service))
    } else {
        // clap requires one of --service, --replay, --record.
        EXIT_USAGE
    };
    ExitCode::from(code)
}

fn read_pairs(file: &std::path::Path) -> Result<Vec<conformance::Pair>, u8> {
    let text = std::fs::read_to_string(file).map_err(|err| {
        eprintln!("simctl-client: cannot read {}: {err}", file.display());
        EXIT_USAGE
    })?;
    conformance::parse(&text, &file.display().to_string()).map_err(|err| {
        eprintln!("simctl-client: {err}");
        EXIT_USAGE
    })
}

async fn replay(file: &std::path::Path, addr: &str) -> u8 {
    let pairs = match read_pairs(file) {
        Ok(pairs) => pairs,
        Err(code) => return code,
    };
    let channel = match connect(addr).await {
        Ok(channel) => channel,
        Err(err) => {
            eprintln!("simctl-client: {err}");
            return EXIT_ENVIRONMENT;
        }
    };
    match conformance::replay(&channel, &pairs).await {
        Err(err) => {
            eprintln!("simctl-client: {err}");
            EXIT_ENVIRONMENT
        }
        Ok(mismatches) => {
            for mismatch in &mismatches {
                println!(
                    "simctl-client: MISMATCH pair {} ({}):\n  expected {}\n  got      {}",
                    mismatch.index, mismatch.note, mismatch.expected, mismatch.got
                );
            }
            println!(
                "simctl-client: replayed {} pairs from {}: {} identical, {} different",
                pairs.len(),
                file.display(),
                pairs.len() - mismatches.len(),
                mismatches.len()
            );
            if mismatches.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
    }
}

async fn record(file: &std::path::Path, addr: &str) -> u8 {
    let pairs = match read_pairs(file) {
        Ok(pairs) => pairs,
        Err(code) => return code,
    };
    let recorded = match connect(addr).await {
        Ok(channel) => conformance::record(&channel, &pairs).await,
        Err(err) => Err(err),
    };
    match recorded {
        Ok(recorded) => {
            for pair in recorded {
                println!("{}", pair.to_line());
            }
            EXIT_OK
        }
        Err(err) => {
            eprintln!("simctl-client: {err}");
            EXIT_ENVIRONMENT
        }
    }
}

async fn drive_load(args: &Args, service: Service) -> u8 {
    let mode = args.m5.unwrap_or_else(Mode::from_environment);
    let m5 = match M5::new(mode) {
        Ok(m5) => m5,
        Err(err) => {
            eprintln!("simctl-client: {err}");
            return EXIT_ENVIRONMENT;
        }
    };
    let request = args
        .request
        .clone()
        .unwrap_or_else(|| service.default_request().to_string());
    let load = match args.load() {
        Ok(load) => load,
        Err(err) => {
            eprintln!("simctl-client: {err}");
            return EXIT_ENVIRONMENT;
        }
    };
    let caller = match Caller::connect(service, &args.addr, request).await {
        Ok(caller) => caller,
        Err(err) => {
            eprintln!("simctl-client: {err}");
            return EXIT_ENVIRONMENT;
        }
    };
    if let Ok(first) = caller.call().await {
        println!(
            "simctl-client: first response: {}",
            first.text.chars().take(120).collect::<String>()
        );
    }
    let (records, counts) = drive(&caller, &load, &m5).await;
    let measured: Vec<_> = records
        .iter()
        .filter(|r| r.phase == Phase::Measured)
        .collect();
    let failed = measured.iter().filter(|r| !r.ok).count();
    let csv = to_csv(&records);
    let json = serde_json::to_string_pretty(&records).unwrap_or_default();
    if let Err(err) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("results.csv"), &csv))
        .and_then(|()| std::fs::write(args.out.join("results.json"), &json))
    {
        eprintln!(
            "simctl-client: cannot write results to {}: {err}",
            args.out.display()
        );
        return EXIT_ENVIRONMENT;
    }
    if m5.mode() != Mode::Off {
        m5.write_file(csv.as_bytes(), "results.csv");
        m5.write_file(json.as_bytes(), "results.json");
    }
    if load.read_counter.is_some() {
        let mut text = String::from("index,hooked_reads,counter_present\n");
        for count in &counts {
            text.push_str(&format!(
                "{},{},{}\n",
                count.index, count.hooked_reads, count.counter_present
            ));
        }
        if let Err(err) = std::fs::write(args.out.join("read-counts.csv"), &text) {
            eprintln!("simctl-client: cannot write read-counts.csv: {err}");
            return EXIT_ENVIRONMENT;
        }
        if m5.mode() != Mode::Off {
            m5.write_file(text.as_bytes(), "read-counts.csv");
        }
    }
    let mean_us = measured.iter().map(|r| r.latency_ns).sum::<u64>() as f64
        / measured.len().max(1) as f64
        / 1000.0;
    println!(
        "simctl-client: {} measured invocations, {failed} failed, mean latency {mean_us:.1} us",
        measured.len()
    );
    if let Some(first_error) = measured.iter().find(|r| !r.ok) {
        eprintln!("simctl-client: first error: {}", first_error.error);
    }
    if failed == 0 && measured.len() as u64 == load.invocations {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the host's run plan writes from a load pattern (`LoadPattern::client_args`) is
    /// what the client reads back: one definition on both sides.
    #[test]
    fn the_plan_s_load_options_read_back_as_the_same_pattern() {
        for pattern in [
            LoadPattern::CLOSED,
            LoadPattern::Closed { think_us: 1000 },
            LoadPattern::Rps {
                rate: 2.5,
                arrival: Arrival::Uniform,
            },
            LoadPattern::Rps {
                rate: 50.0,
                arrival: Arrival::Poisson,
            },
            LoadPattern::Rounds {
                parallel: 4,
                pause_ms: 50,
            },
            LoadPattern::Streams { parallel: 8 },
        ] {
            let argv = ["simctl-client", "--service", "aes"]
                .into_iter()
                .map(String::from)
                .chain(pattern.client_args());
            let args = Args::try_parse_from(argv).unwrap();
            assert_eq!(args.load().unwrap().pattern, pattern);
        }
    }
}

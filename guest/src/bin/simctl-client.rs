//! `simctl-client`: drives a function over gRPC from core 0 while the function runs on core 1;
//! writes one record per invocation (results.csv, results.json) and, under gem5, hands them to
//! the host with m5 writefile. Exit status 0 only when every measured invocation succeeded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use simctl_guest::client::{Caller, Load, Pattern, Service, drive};
use simctl_guest::m5::{M5, Mode};
use simctl_guest::records::{Phase, to_csv};

const USAGE: &str = "usage: simctl-client --service aes|fibonacci|auth|spin|SHOP_FUNCTION[/Method]
  [--addr 127.0.0.1:50051]
  [--request TEXT] [--warmup W] [--invocations N] [--cpu C]
  [--pattern closed|rps|rounds|streams] [--rps R] [--arrival uniform|poisson]
  [--parallel K] [--pause-ms MS] [--out DIR] [--m5 inst|addr|off] [--stats-ops]";

struct Options {
    service: Service,
    addr: String,
    request: String,
    load: Load,
    cpu: Option<usize>,
    out: PathBuf,
    m5: Mode,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut service = None;
    let mut addr = "127.0.0.1:50051".to_string();
    let mut request = "A unique message".to_string();
    let (mut warmup, mut invocations) = (0u64, 10u64);
    let (mut pattern, mut rps, mut poisson, mut parallel, mut pause_ms) =
        ("closed".to_string(), 10.0, true, 2u64, 100u64);
    let mut cpu = None;
    let mut out = PathBuf::from(".");
    let mut m5 = Mode::from_environment();
    let mut stats_ops = false;
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        if flag == "--stats-ops" {
            stats_ops = true;
            continue;
        }
        let value = iter
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: '{v}' is not a whole number"))
        };
        match flag.as_str() {
            "--service" => {
                service = Some(
                    Service::parse(value)
                        .ok_or_else(|| format!("unknown service '{value}'\n{USAGE}"))?,
                )
            }
            "--addr" => addr = value.clone(),
            "--request" => request = value.clone(),
            "--warmup" => warmup = number(value)?,
            "--invocations" => invocations = number(value)?,
            "--cpu" => cpu = Some(number(value)? as usize),
            "--pattern" => pattern = value.clone(),
            "--rps" => {
                rps = value
                    .parse()
                    .map_err(|_| format!("--rps: '{value}' is not a number"))?
            }
            "--arrival" => poisson = value == "poisson",
            "--parallel" => parallel = number(value)?.max(1),
            "--pause-ms" => pause_ms = number(value)?,
            "--out" => out = PathBuf::from(value),
            "--m5" => {
                m5 = Mode::parse(value).ok_or_else(|| format!("--m5: unknown mode '{value}'"))?
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let pattern = match pattern.as_str() {
        "closed" => Pattern::Closed,
        "rps" => Pattern::Rps { rps, poisson },
        "rounds" => Pattern::Rounds {
            parallel,
            pause: Duration::from_millis(pause_ms),
        },
        "streams" => Pattern::Streams { parallel },
        other => return Err(format!("unknown pattern '{other}'\n{USAGE}")),
    };
    Ok(Options {
        service: service.ok_or_else(|| format!("--service is required\n{USAGE}"))?,
        addr,
        request,
        load: Load {
            warmup,
            invocations,
            pattern,
            stats_ops,
        },
        cpu,
        out,
        m5,
    })
}

fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(err) = rustix::thread::sched_setaffinity(None, &set) {
        eprintln!("simctl-client: warning: cannot pin to CPU {cpu}: {err}");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("simctl-client: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(cpu) = options.cpu {
        pin_to(cpu);
    }
    let m5 = match M5::new(options.m5) {
        Ok(m5) => m5,
        Err(err) => {
            eprintln!("simctl-client: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("simctl-client: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let records = runtime.block_on(async {
        let caller =
            Caller::connect(options.service, &options.addr, options.request.clone()).await?;
        if let Ok(first) = caller.call().await {
            println!(
                "simctl-client: first response: {}",
                first.chars().take(120).collect::<String>()
            );
        }
        Ok::<_, String>(drive(&caller, &options.load, &m5).await)
    });
    let records = match records {
        Ok(records) => records,
        Err(message) => {
            eprintln!("simctl-client: {message}");
            return ExitCode::from(1);
        }
    };
    let measured: Vec<_> = records
        .iter()
        .filter(|r| r.phase == Phase::Measured)
        .collect();
    let failed = measured.iter().filter(|r| !r.ok).count();
    let csv = to_csv(&records);
    let json = serde_json::to_string_pretty(&records).unwrap_or_default();
    if let Err(err) = std::fs::create_dir_all(&options.out)
        .and_then(|()| std::fs::write(options.out.join("results.csv"), &csv))
        .and_then(|()| std::fs::write(options.out.join("results.json"), &json))
    {
        eprintln!(
            "simctl-client: cannot write results to {}: {err}",
            options.out.display()
        );
        return ExitCode::from(1);
    }
    if m5.mode() != Mode::Off {
        m5.write_file(csv.as_bytes(), "results.csv");
        m5.write_file(json.as_bytes(), "results.json");
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
    if failed == 0 && measured.len() as u64 == options.load.invocations {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

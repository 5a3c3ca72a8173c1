//! The client that drives a function over gRPC: load patterns, markers for the simulator, and
//! one record per invocation.
//!
//! Markers: after the warm-up the client issues m5 `checkpoint` (gem5's warm-up phase saves its
//! checkpoint there) and prints `SIMCTL-PROGRESS warmup-done`; then come the warming invocations
//! (after a restore they run on the measured CPU, unmarked, so that its caches, TLBs and branch
//! predictors hold the function's state, not the restore's); each measured invocation is
//! wrapped in m5 `workbegin`/`workend` with its index as work id (gem5 resets stats at the
//! begin and dumps them at the end), optionally also resetstats/dumpstats.

use std::time::{Duration, Instant, SystemTime};

use crate::load::{Arrival, LoadPattern};
use crate::m5::M5;
use crate::markers::Marker;
use crate::records::{Invocation, Phase, Stamps};
use crate::shop::{self, ShopMethod};

pub mod proto {
    pub mod aes {
        tonic::include_proto!("aes");
    }
    pub mod fibonacci {
        tonic::include_proto!("fibonacci");
    }
    pub mod auth {
        tonic::include_proto!("auth");
    }
    pub mod spin {
        tonic::include_proto!("spin");
    }
    pub mod hipstershop {
        tonic::include_proto!("hipstershop");
    }
}

/// Which gRPC service the function speaks (vSwarm-compatible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Aes,
    Fibonacci,
    Auth,
    Spin,
    /// vSwarm's online-shop functions, named as vSwarm's client names them.
    #[value(name = "productcatalogservice")]
    ProductCatalog,
    #[value(name = "shippingservice")]
    Shipping,
    #[value(name = "currencyservice")]
    Currency,
    #[value(name = "paymentservice")]
    Payment,
    #[value(name = "emailservice")]
    Email,
    #[value(name = "recommendationservice")]
    Recommendation,
}

impl Service {
    /// The request vSwarm's client sends by default (vSwarm-proto `grpcclient`, `unique`
    /// generator, vSwarm-u's `-input 10`): AES and auth send the fixed text "A unique message"
    /// whatever the input (so auth answers its invalid-token path), fibonacci sends the input.
    /// spin is ours: 1000 microseconds of busy work.
    pub fn default_request(self) -> &'static str {
        match self {
            Service::Aes | Service::Auth => "A unique message",
            Service::Fibonacci => "10",
            Service::Spin => "1000",
            // vSwarm-u's `-input 10`, used as vSwarm's online-shop clients use their input.
            Service::ProductCatalog
            | Service::Shipping
            | Service::Currency
            | Service::Payment
            | Service::Email
            | Service::Recommendation => "10",
        }
    }
}

/// A function's answer: its text and, from a function that reports them (spin), when its
/// handler began and finished: (entry, exit) in ns since the Unix epoch on the guest's
/// CLOCK_REALTIME.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub handler: Option<(u64, u64)>,
}

impl Reply {
    fn text(text: String) -> Reply {
        Reply {
            text,
            handler: None,
        }
    }
}

/// A connected client for one service.
#[derive(Clone)]
pub struct Caller {
    service: Service,
    channel: tonic::transport::Channel,
    request: String,
}

impl Caller {
    pub async fn connect(service: Service, addr: &str, request: String) -> Result<Caller, String> {
        Ok(Caller {
            service,
            channel: connect(addr).await?,
            request,
        })
    }

    /// One invocation; returns the function's answer.
    pub async fn call(&self) -> Result<Reply, String> {
        let channel = self.channel.clone();
        let request = self.request.clone();
        let status = |err: tonic::Status| format!("{}: {}", err.code(), err.message());
        match self.service {
            Service::Aes => {
                let mut client = proto::aes::aes_client::AesClient::new(channel);
                let reply = client
                    .show_encryption(proto::aes::PlainTextMessage {
                        plaintext_message: request,
                    })
                    .await
                    .map_err(status)?;
                Ok(reply.into_inner().encryption_info)
            }
            Service::Fibonacci => {
                let mut client = proto::fibonacci::greeter_client::GreeterClient::new(channel);
                let reply = client
                    .say_hello(proto::fibonacci::HelloRequest { name: request })
                    .await
                    .map_err(status)?;
                Ok(reply.into_inner().message)
            }
            Service::Auth => {
                let mut client = proto::auth::greeter_client::GreeterClient::new(channel);
                let reply = client
                    .say_hello(proto::auth::HelloRequest { name: request })
                    .await
                    .map_err(status)?;
                Ok(reply.into_inner().message)
            }
            Service::Spin => {
                let busy_us = request
                    .trim()
                    .parse()
                    .map_err(|_| format!("spin request must be microseconds, got '{request}'"))?;
                let mut client = proto::spin::spin_client::SpinClient::new(channel);
                let reply = client
                    .spin(proto::spin::SpinRequest { busy_us })
                    .await
                    .map_err(status)?;
                let reply = reply.into_inner();
                // A spin older than the stamps leaves them 0 (proto3's default): no stamps.
                let stamp = |ns: i64| u64::try_from(ns).ok().filter(|&ns| ns > 0);
                return Ok(Reply {
                    text: format!("busy_us={} iterations={}", reply.busy_us, reply.iterations),
                    handler: stamp(reply.received_unix_ns).zip(stamp(reply.done_unix_ns)),
                });
            }
            Service::ProductCatalog => {
                shop::call(channel, ShopMethod::ListProducts, &request).await
            }
            Service::Shipping => shop::call(channel, ShopMethod::GetQuote, &request).await,
            Service::Currency => {
                shop::call(channel, ShopMethod::GetSupportedCurrencies, &request).await
            }
            Service::Payment => shop::call(channel, ShopMethod::Charge, &request).await,
            Service::Email => {
                shop::call(channel, ShopMethod::SendOrderConfirmation, &request).await
            }
            Service::Recommendation => {
                shop::call(channel, ShopMethod::ListRecommendations, &request).await
            }
        }
        .map(Reply::text)
    }
}

/// An insecure HTTP/2 channel to the function at `addr` (host:port), as vSwarm's client uses.
pub async fn connect(addr: &str) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|err| format!("bad address {addr}: {err}"))?
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}"))
}

/// A process beside the function on its core (the lukewarm study's co-runner), held with
/// SIGSTOP during every invocation and released after it, so that it runs only between
/// invocations and none of its instructions lands in an invocation's stats.
pub struct CoRunner {
    pid: rustix::process::Pid,
}

impl CoRunner {
    pub fn new(pid: i32) -> Option<CoRunner> {
        rustix::process::Pid::from_raw(pid).map(|pid| CoRunner { pid })
    }

    /// Stops it and waits (up to a second) until the kernel shows it stopped.
    fn hold(&self) {
        let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::STOP);
        let stat = format!("/proc/{}/stat", self.pid.as_raw_nonzero());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let state = std::fs::read_to_string(&stat).ok().and_then(|text| {
                // The state follows the parenthesised command name.
                text.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
            });
            if state.as_deref().is_none_or(|state| state == "T") {
                return;
            }
            std::thread::yield_now();
        }
    }

    fn release(&self) {
        let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::CONT);
    }
}

/// What one run of the client does.
pub struct Load {
    pub warmup: u64,
    /// Invocations after the checkpoint and before the measured ones.
    pub warming: u64,
    /// Held during each invocation (closed pattern).
    pub co_runner: Option<CoRunner>,
    pub invocations: u64,
    pub pattern: LoadPattern,
    pub stats_ops: bool,
    /// Closed pattern: readhook.so's counter file, read before the first measured invocation
    /// and after each (outside the timed region).
    pub read_counter: Option<std::path::PathBuf>,
}

/// The hook's count of read() calls: 8 bytes, little-endian; 0 while the file does not exist
/// (no hook loaded).
pub fn read_count(path: &std::path::Path) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| bytes.get(..8)?.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Hooked read() calls per measured invocation (closed pattern): the counter's growth from the
/// previous sample to the one after the invocation, so reads the function makes after its reply
/// count towards the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCount {
    pub index: u64,
    pub hooked_reads: u64,
    pub counter_present: bool,
}

/// [`timed`] with the co-runner held for the invocation.
async fn held(
    caller: &Caller,
    load: &Load,
    start: Instant,
    index: u64,
    phase: Phase,
) -> Invocation {
    if let Some(co_runner) = &load.co_runner {
        co_runner.hold();
    }
    let record = timed(caller, start, index, phase).await;
    if let Some(co_runner) = &load.co_runner {
        co_runner.release();
    }
    record
}

/// Now on the guest's CLOCK_REALTIME, the clock the function's handler stamps (see
/// [`Stamps`]); None before 1970.
fn unix_now_ns() -> Option<u64> {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    u64::try_from(since_epoch.as_nanos()).ok()
}

async fn timed(caller: &Caller, start: Instant, index: u64, phase: Phase) -> Invocation {
    // Both clocks are read next to each other on each side, so the stamps' span and the
    // monotonic latency differ only by one clock read (the report checks they agree).
    let client_send_unix_ns = unix_now_ns();
    let sent = Instant::now();
    let result = caller.call().await;
    let latency = sent.elapsed();
    let client_receive_unix_ns = unix_now_ns();
    let (ok, error, response_bytes, handler) = match result {
        Ok(reply) => (true, String::new(), reply.text.len() as u64, reply.handler),
        Err(err) => (false, err, 0, None),
    };
    Invocation {
        index,
        phase,
        send_offset_ns: (sent - start).as_nanos() as u64,
        latency_ns: latency.as_nanos() as u64,
        ok,
        error,
        response_bytes,
        stamps: Stamps {
            client_send_unix_ns,
            server_receive_unix_ns: handler.map(|(entry, _)| entry),
            server_done_unix_ns: handler.map(|(_, exit)| exit),
            client_receive_unix_ns,
        },
    }
}

/// Runs warm-up then the measured invocations; returns every record and, with
/// `load.read_counter`, the hooked reads of each measured invocation.
pub async fn drive(caller: &Caller, load: &Load, m5: &M5) -> (Vec<Invocation>, Vec<ReadCount>) {
    let mut counts = Vec::new();
    let start = Instant::now();
    let mut records = Vec::new();
    for index in 0..load.warmup {
        records.push(held(caller, load, start, index, Phase::Warmup).await);
    }
    println!("{}", Marker::WarmupDone);
    m5.checkpoint(0, 0);
    let think = || async {
        let think = load.pattern.think();
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    };
    for index in 0..load.warming {
        records.push(held(caller, load, start, index, Phase::Warming).await);
        think().await;
    }
    if load.warming > 0 {
        println!("{}", Marker::WarmingDone);
    }
    let total = load.invocations;
    match &load.pattern {
        LoadPattern::Closed { .. } => {
            let mut last_count = load.read_counter.as_deref().map(read_count);
            for index in 0..total {
                if let Some(co_runner) = &load.co_runner {
                    co_runner.hold();
                }
                if load.stats_ops {
                    m5.reset_stats(0, 0);
                }
                m5.work_begin(index, 0);
                let record = timed(caller, start, index, Phase::Measured).await;
                m5.work_end(index, 0);
                if load.stats_ops {
                    m5.dump_stats(0, 0);
                }
                if let Some(co_runner) = &load.co_runner {
                    co_runner.release();
                }
                records.push(record);
                println!(
                    "{}",
                    Marker::Invocation {
                        done: index + 1,
                        total
                    }
                );
                if let (Some(path), Some(last)) = (&load.read_counter, last_count.as_mut()) {
                    let now = read_count(path);
                    counts.push(ReadCount {
                        index,
                        hooked_reads: now.saturating_sub(*last),
                        counter_present: path.exists(),
                    });
                    *last = now;
                }
                think().await;
            }
        }
        LoadPattern::Rps { rate, arrival } => {
            let mut gaps = Gaps::new(*rate, *arrival == Arrival::Poisson);
            let mut next = Instant::now();
            let mut pending = Vec::new();
            for index in 0..total {
                tokio::time::sleep_until(next.into()).await;
                let caller = caller.clone();
                pending.push(tokio::spawn(async move {
                    timed(&caller, start, index, Phase::Measured).await
                }));
                next += gaps.next();
            }
            for (done, task) in pending.into_iter().enumerate() {
                if let Ok(record) = task.await {
                    records.push(record);
                }
                println!(
                    "{}",
                    Marker::Invocation {
                        done: (done + 1) as u64,
                        total
                    }
                );
            }
        }
        LoadPattern::Rounds { parallel, pause_ms } => {
            let mut index = 0;
            while index < total {
                let batch: Vec<u64> = (index..total.min(index + parallel)).collect();
                let tasks: Vec<_> = batch
                    .iter()
                    .map(|&i| {
                        let caller = caller.clone();
                        tokio::spawn(async move { timed(&caller, start, i, Phase::Measured).await })
                    })
                    .collect();
                for task in tasks {
                    if let Ok(record) = task.await {
                        records.push(record);
                    }
                }
                index += batch.len() as u64;
                println!("{}", Marker::Invocation { done: index, total });
                if index < total {
                    tokio::time::sleep(Duration::from_millis(*pause_ms)).await;
                }
            }
        }
        LoadPattern::Streams { parallel } => {
            let streams: Vec<_> = (0..*parallel)
                .map(|stream| {
                    let caller = caller.clone();
                    let parallel = *parallel;
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        let mut index = stream;
                        while index < total {
                            out.push(timed(&caller, start, index, Phase::Measured).await);
                            index += parallel;
                        }
                        out
                    })
                })
                .collect();
            for stream in streams {
                if let Ok(out) = stream.await {
                    records.extend(out);
                }
            }
            println!("{}", Marker::Invocation { done: total, total });
        }
    }
    // Held for good: the co-runner has nothing to disturb any more, and under a detailed CPU
    // every instruction it runs while the guest shuts down costs simulation time.
    if let Some(co_runner) = &load.co_runner {
        co_runner.hold();
    }
    records.sort_by_key(|r| (r.phase, r.index));
    (records, counts)
}

/// Inter-arrival gaps: fixed (uniform) or exponential (Poisson arrivals), from a small
/// deterministic generator so runs are repeatable.
struct Gaps {
    mean_s: f64,
    poisson: bool,
    state: u64,
}

impl Gaps {
    fn new(rps: f64, poisson: bool) -> Gaps {
        Gaps {
            mean_s: 1.0 / rps.max(1e-9),
            poisson,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next(&mut self) -> Duration {
        if !self.poisson {
            return Duration::from_secs_f64(self.mean_s);
        }
        // xorshift64*, then inverse-CDF sampling of the exponential distribution.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let uniform =
            (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(-self.mean_s * (1.0 - uniform).ln())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_gaps_have_the_requested_mean() {
        let mut gaps = Gaps::new(100.0, true);
        let total: f64 = (0..20_000).map(|_| gaps.next().as_secs_f64()).sum();
        let mean = total / 20_000.0;
        assert!((mean - 0.01).abs() < 0.0005, "mean gap {mean}");
        assert_eq!(Gaps::new(4.0, false).next(), Duration::from_millis(250));
    }
}

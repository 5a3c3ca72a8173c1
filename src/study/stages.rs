//! The staged decomposition of a request's latency from its four stamps in one clock (the
//! guest's CLOCK_REALTIME, see `simctl_guest::records::Stamps`): client send -> server receive
//! (request path: client stack, loopback, the function's gRPC stack) -> handler done (handler)
//! -> client receive (reply path). Only functions that stamp their handler (our `spin`) have
//! stages; a request whose stages are negative or do not add up to its latency is named, never
//! dropped silently.

use serde::Serialize;
use simctl_guest::records::Invocation;

use super::stats::{quantile, sorted};

/// The stages, in the order they happen (CSV names).
pub const STAGES: [&str; 3] = ["request_path", "handler", "reply_path"];

/// How far the stamps' span (CLOCK_REALTIME) may differ from the latency the client measured
/// (CLOCK_MONOTONIC): the client reads the two clocks next to each other, so they differ by one
/// clock read plus whatever interrupts land between the reads; an emulated HPET read under QEMU
/// TCG costs microseconds. 100 us or 1% of the latency, whichever is larger, is far above that
/// and far below any stage worth reporting.
const SUM_TOLERANCE_NS: f64 = 100_000.0;
const SUM_TOLERANCE_FRACTION: f64 = 0.01;

/// One request, split.
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    /// Request path, handler, reply path, in ms.
    Consistent([f64; 3]),
    /// Stamped, but the stages (in ms) cannot be right: why.
    Inconsistent { stages: [f64; 3], why: String },
    /// The request failed or carries no server stamps (a function that does not report them, a
    /// record written before the stamps existed).
    Unstamped,
}

/// Splits one request from its stamps and checks the stages against its measured latency.
pub fn split(record: &Invocation) -> Split {
    let s = &record.stamps;
    let (Some(send), Some(receive), Some(done), Some(back)) = (
        s.client_send_unix_ns,
        s.server_receive_unix_ns,
        s.server_done_unix_ns,
        s.client_receive_unix_ns,
    ) else {
        return Split::Unstamped;
    };
    if !record.ok {
        return Split::Unstamped;
    }
    let ms = |from: u64, to: u64| (to as f64 - from as f64) / 1e6;
    let stages = [ms(send, receive), ms(receive, done), ms(done, back)];
    let negative: Vec<String> = STAGES
        .iter()
        .zip(stages)
        .filter(|(_, value)| *value < 0.0)
        .map(|(name, value)| format!("{name} {value:.3} ms"))
        .collect();
    if !negative.is_empty() {
        return Split::Inconsistent {
            stages,
            why: format!("negative stage: {}", negative.join(", ")),
        };
    }
    let latency_ns = record.latency_ns as f64;
    let sum_ns = stages.iter().sum::<f64>() * 1e6;
    let tolerance = SUM_TOLERANCE_NS.max(latency_ns * SUM_TOLERANCE_FRACTION);
    if (sum_ns - latency_ns).abs() > tolerance {
        return Split::Inconsistent {
            stages,
            why: format!(
                "stages add up to {:.3} ms, the measured latency is {:.3} ms",
                sum_ns / 1e6,
                latency_ns / 1e6
            ),
        };
    }
    Split::Consistent(stages)
}

/// Median, p99 and mean of one stage over a point's consistent requests, in ms.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageQuantiles {
    pub median_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

impl StageQuantiles {
    fn of(values: &[f64]) -> StageQuantiles {
        let sorted = sorted(values);
        StageQuantiles {
            median_ms: quantile(&sorted, 0.5),
            p99_ms: quantile(&sorted, 0.99),
            mean_ms: (!sorted.is_empty()).then(|| sorted.iter().sum::<f64>() / sorted.len() as f64),
        }
    }
}

/// A point's requests, split and summarised.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageSummary {
    /// Requests whose stages are consistent: the ones summarised.
    pub consistent: usize,
    /// (request index, why) of every stamped request whose stages cannot be right.
    pub inconsistent: Vec<(u64, String)>,
    /// Ok requests without server stamps.
    pub unstamped_ok: usize,
    /// Per stage of [`STAGES`], then end to end (the same requests' measured latency).
    pub request_path: StageQuantiles,
    pub handler: StageQuantiles,
    pub reply_path: StageQuantiles,
    pub end_to_end: StageQuantiles,
}

impl StageSummary {
    /// The three stages and end to end, with their CSV names.
    pub fn named(&self) -> [(&'static str, StageQuantiles); 4] {
        [
            (STAGES[0], self.request_path),
            (STAGES[1], self.handler),
            (STAGES[2], self.reply_path),
            ("end_to_end", self.end_to_end),
        ]
    }
}

pub fn summarise(measured: &[Invocation]) -> StageSummary {
    let mut columns: [Vec<f64>; 4] = Default::default();
    let mut summary = StageSummary::default();
    for record in measured {
        match split(record) {
            Split::Consistent(stages) => {
                for (column, value) in columns.iter_mut().zip(stages) {
                    column.push(value);
                }
                columns[3].push(record.latency_ns as f64 / 1e6);
                summary.consistent += 1;
            }
            Split::Inconsistent { why, .. } => summary.inconsistent.push((record.index, why)),
            Split::Unstamped => summary.unstamped_ok += usize::from(record.ok),
        }
    }
    let [request_path, handler, reply_path, end_to_end] = columns.map(|c| StageQuantiles::of(&c));
    StageSummary {
        request_path,
        handler,
        reply_path,
        end_to_end,
        ..summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simctl_guest::records::{Phase, Stamps};

    /// A request sent at 1 s (Unix ns), with stages and measured latency in us.
    fn request(index: u64, stages_us: [i64; 3], latency_us: u64) -> Invocation {
        let send: i64 = 1_000_000_000;
        let receive = send + stages_us[0] * 1000;
        let done = receive + stages_us[1] * 1000;
        let back = done + stages_us[2] * 1000;
        Invocation {
            index,
            phase: Phase::Measured,
            send_offset_ns: 0,
            latency_ns: latency_us * 1000,
            ok: true,
            error: String::new(),
            response_bytes: 20,
            stamps: Stamps {
                client_send_unix_ns: Some(send as u64),
                server_receive_unix_ns: Some(receive as u64),
                server_done_unix_ns: Some(done as u64),
                client_receive_unix_ns: Some(back as u64),
            },
        }
    }

    #[test]
    fn stages_are_split_and_checked_against_the_latency() {
        assert_eq!(
            split(&request(0, [300, 5000, 200], 5502)),
            Split::Consistent([0.3, 5.0, 0.2])
        );
        // A handler stamped before the client sent: named with the stage and its value.
        let Split::Inconsistent { why, .. } = split(&request(1, [-400, 5000, 200], 4800)) else {
            panic!("a negative request path must be inconsistent");
        };
        assert!(why.contains("request_path -0.400 ms"), "{why}");
        // Stamps spanning 5.5 ms around a request measured at 7 ms.
        let Split::Inconsistent { why, stages } = split(&request(2, [300, 5000, 200], 7000)) else {
            panic!("stages that do not add up must be inconsistent");
        };
        assert!(
            why.contains("5.500 ms") && why.contains("7.000 ms"),
            "{why}"
        );
        assert_eq!(stages, [0.3, 5.0, 0.2]);
        let mut unstamped = request(3, [300, 5000, 200], 5500);
        unstamped.stamps.server_done_unix_ns = None;
        assert_eq!(split(&unstamped), Split::Unstamped);
        let mut failed = request(4, [300, 5000, 200], 5500);
        failed.ok = false;
        assert_eq!(split(&failed), Split::Unstamped);
    }

    #[test]
    fn a_summary_counts_every_request_and_summarises_the_consistent_ones() {
        let mut measured: Vec<Invocation> = (0..100)
            .map(|i| request(i, [100 + i as i64, 5000, 200], 5300 + i))
            .collect();
        measured.push(request(100, [100, -1, 200], 300));
        let mut old = request(101, [0, 0, 0], 5000);
        old.stamps = Stamps::default();
        measured.push(old);
        let summary = summarise(&measured);
        assert_eq!(summary.consistent, 100);
        assert_eq!(summary.unstamped_ok, 1);
        assert_eq!(summary.inconsistent.len(), 1);
        assert_eq!(summary.inconsistent[0].0, 100);
        assert_eq!(summary.handler.median_ms, Some(5.0));
        assert!((summary.request_path.median_ms.unwrap() - 0.1495).abs() < 1e-9);
        assert!((summary.request_path.p99_ms.unwrap() - 0.19801).abs() < 1e-9);
        assert!((summary.end_to_end.median_ms.unwrap() - 5.3495).abs() < 1e-9);
        assert_eq!(summarise(&[]).end_to_end.median_ms, None);
    }
}

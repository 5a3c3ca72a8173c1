//! What the client saw at one point: requests ok, failed and missing, the request rate sent and
//! the throughput achieved, and the latency distribution with a bootstrap interval for its
//! median. Both load studies summarise their points with it.

use serde::Serialize;
use simctl_guest::records::Invocation;

use super::stats::{Interval, median_ci, quantile, sorted};

/// One point's requests, summarised. Latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// Measured requests the run was asked for.
    pub expected: u64,
    /// Requests with a record in results.csv.
    pub recorded: usize,
    pub ok: usize,
    /// Requests recorded as failed (gRPC error, deadline, refused connection).
    pub errors: usize,
    /// Requests without a record (the run ended before they were answered); counted as failed.
    pub missing: u64,
    /// ok / expected: nothing is dropped from the denominator.
    pub success_rate: f64,
    /// Requests sent per second between the first and the last send.
    pub sent_rps: Option<f64>,
    /// Successful replies per second, from the first send to the last reply.
    pub achieved_rps: Option<f64>,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// 95% bootstrap interval of the median latency.
    pub p50_ci_ms: Option<Interval>,
    /// Sorted latencies of the successful requests (for CDFs), not serialised.
    #[serde(skip)]
    pub sorted_ms: Vec<f64>,
}

/// The CSV columns of a summary, in the order of [`LatencySummary::csv_cells`].
pub const CSV_COLUMNS: [&str; 16] = [
    "expected",
    "recorded",
    "ok",
    "errors",
    "missing",
    "success_rate",
    "sent_rps",
    "achieved_rps",
    "mean_ms",
    "p50_ms",
    "p50_ci_low_ms",
    "p50_ci_high_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
];

impl LatencySummary {
    /// The summary as CSV cells (full precision, empty for none).
    pub fn csv_cells(&self) -> Vec<String> {
        let number = super::csv_number;
        vec![
            self.expected.to_string(),
            self.recorded.to_string(),
            self.ok.to_string(),
            self.errors.to_string(),
            self.missing.to_string(),
            self.success_rate.to_string(),
            number(self.sent_rps),
            number(self.achieved_rps),
            number(self.mean_ms),
            number(self.p50_ms),
            number(self.p50_ci_ms.map(|c| c.low)),
            number(self.p50_ci_ms.map(|c| c.high)),
            number(self.p90_ms),
            number(self.p95_ms),
            number(self.p99_ms),
            number(self.max_ms),
        ]
    }
}

pub fn summarise(measured: &[Invocation], expected: u64) -> LatencySummary {
    let ok: Vec<&Invocation> = measured.iter().filter(|r| r.ok).collect();
    let latencies: Vec<f64> = ok.iter().map(|r| r.latency_ns as f64 / 1e6).collect();
    let sorted_ms = sorted(&latencies);
    let seconds = |ns: u64| ns as f64 / 1e9;
    let first_send = measured.iter().map(|r| r.send_offset_ns).min();
    let last_send = measured.iter().map(|r| r.send_offset_ns).max();
    let sent_rps = match (first_send, last_send) {
        (Some(first), Some(last)) if last > first && measured.len() > 1 => {
            Some((measured.len() - 1) as f64 / seconds(last - first))
        }
        _ => None,
    };
    let last_reply = ok.iter().map(|r| r.send_offset_ns + r.latency_ns).max();
    let achieved_rps = match (first_send, last_reply) {
        (Some(first), Some(last)) if last > first => Some(ok.len() as f64 / seconds(last - first)),
        _ => None,
    };
    let mean_ms =
        (!latencies.is_empty()).then(|| latencies.iter().sum::<f64>() / latencies.len() as f64);
    let recorded = measured.len();
    LatencySummary {
        expected,
        recorded,
        ok: ok.len(),
        errors: recorded - ok.len(),
        missing: expected.saturating_sub(recorded as u64),
        success_rate: if expected == 0 {
            0.0
        } else {
            ok.len() as f64 / expected.max(recorded as u64) as f64
        },
        sent_rps,
        achieved_rps,
        mean_ms,
        p50_ms: quantile(&sorted_ms, 0.50),
        p90_ms: quantile(&sorted_ms, 0.90),
        p95_ms: quantile(&sorted_ms, 0.95),
        p99_ms: quantile(&sorted_ms, 0.99),
        max_ms: sorted_ms.last().copied(),
        p50_ci_ms: median_ci(&latencies),
        sorted_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simctl_guest::records::{Phase, Stamps};

    fn record(index: u64, send_ms: u64, latency_ms: u64, ok: bool) -> Invocation {
        Invocation {
            index,
            phase: Phase::Measured,
            send_offset_ns: send_ms * 1_000_000,
            latency_ns: latency_ms * 1_000_000,
            ok,
            error: if ok {
                String::new()
            } else {
                "Unavailable".into()
            },
            response_bytes: 10,
            stamps: Stamps::default(),
        }
    }

    #[test]
    fn failures_and_missing_requests_count_against_success() {
        // 10 requests planned, 100 ms apart; 8 recorded, one of them failed.
        let measured: Vec<Invocation> =
            (0..8).map(|i| record(i, i * 100, 10 + i, i != 3)).collect();
        let summary = summarise(&measured, 10);
        assert_eq!((summary.ok, summary.errors, summary.missing), (7, 1, 2));
        assert!((summary.success_rate - 0.7).abs() < 1e-12);
        assert!((summary.sent_rps.unwrap() - 10.0).abs() < 1e-9);
        // 7 ok replies between 0 and 717 ms.
        assert!((summary.achieved_rps.unwrap() - 7.0 / 0.717).abs() < 1e-9);
        assert_eq!(summary.p50_ms, Some(14.0));
        assert_eq!(summary.max_ms, Some(17.0));
        let ci = summary.p50_ci_ms.unwrap();
        assert!(ci.low <= 14.0 && ci.high >= 14.0);
        let empty = summarise(&[], 5);
        assert_eq!((empty.success_rate, empty.p99_ms), (0.0, None));
    }
}

//! The load pattern: how the client sends requests, with the parameters of that pattern only.
//! One definition for the host's run spec (run.toml and the run key), the client's command line
//! in the run plan, and the client itself: `LoadPattern::client_args` writes the options that
//! simctl-client reads back into the same value (tested there).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The pattern's name, as `--pattern` takes it (`simctl run` and simctl-client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// N sequential invocations after W warm-up ones.
    Closed,
    /// Open loop at --rps requests per second.
    Rps,
    /// Rounds of --parallel concurrent requests with --pause between rounds.
    Rounds,
    /// --parallel independent closed-loop streams.
    Streams,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Closed => "closed",
            Pattern::Rps => "rps",
            Pattern::Rounds => "rounds",
            Pattern::Streams => "streams",
        }
    }
}

/// Inter-arrival time distributions of the open-loop pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// A fixed gap of 1/RPS.
    Uniform,
    /// Exponential gaps with mean 1/RPS.
    Poisson,
}

impl Arrival {
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Uniform => "uniform",
            Arrival::Poisson => "poisson",
        }
    }
}

/// How the client sends requests, with the parameters of that pattern only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pattern", rename_all = "lowercase")]
pub enum LoadPattern {
    /// One request at a time; the client waits `think_us` after each warming and measured
    /// invocation, outside the measured region (a co-runner on the function's core runs then).
    Closed {
        #[serde(default, skip_serializing_if = "is_zero")]
        think_us: u64,
    },
    /// Open loop at `rate` requests per second.
    Rps { rate: f64, arrival: Arrival },
    /// Rounds of `parallel` concurrent requests, `pause_ms` between rounds.
    Rounds { parallel: u64, pause_ms: u64 },
    /// `parallel` independent closed-loop streams.
    Streams { parallel: u64 },
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl LoadPattern {
    /// Closed, without a think time.
    pub const CLOSED: LoadPattern = LoadPattern::Closed { think_us: 0 };

    pub fn kind(&self) -> Pattern {
        match self {
            LoadPattern::Closed { .. } => Pattern::Closed,
            LoadPattern::Rps { .. } => Pattern::Rps,
            LoadPattern::Rounds { .. } => Pattern::Rounds,
            LoadPattern::Streams { .. } => Pattern::Streams,
        }
    }

    /// The wait after each warming and measured invocation (closed pattern; zero otherwise).
    pub fn think(&self) -> Duration {
        match self {
            LoadPattern::Closed { think_us } => Duration::from_micros(*think_us),
            _ => Duration::ZERO,
        }
    }

    /// simctl-client's options for this pattern.
    pub fn client_args(&self) -> Vec<String> {
        let mut args = vec!["--pattern".to_string(), self.kind().name().to_string()];
        let mut option = |name: &str, value: String| args.extend([name.to_string(), value]);
        match self {
            LoadPattern::Closed { think_us } => option("--think-us", think_us.to_string()),
            LoadPattern::Rps { rate, arrival } => {
                option("--rps", rate.to_string());
                option("--arrival", arrival.name().to_string());
            }
            LoadPattern::Rounds { parallel, pause_ms } => {
                option("--parallel", parallel.to_string());
                option("--pause-ms", pause_ms.to_string());
            }
            LoadPattern::Streams { parallel } => option("--parallel", parallel.to_string()),
        }
        args
    }
}

/// For people (reports, tables): `closed`, `closed, 1000 µs think time`, `rps 50/s poisson`,
/// `rounds of 2, 100 ms apart`, `2 streams`.
impl fmt::Display for LoadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadPattern::Closed { think_us: 0 } => write!(f, "closed"),
            LoadPattern::Closed { think_us } => write!(f, "closed, {think_us} µs think time"),
            LoadPattern::Rps { rate, arrival } => write!(f, "rps {rate}/s {}", arrival.name()),
            LoadPattern::Rounds { parallel, pause_ms } => {
                write!(f, "rounds of {parallel}, {pause_ms} ms apart")
            }
            LoadPattern::Streams { parallel } => write!(f, "{parallel} streams"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pattern_without_think_time_serializes_as_before() {
        #[derive(Serialize)]
        struct Spec {
            load: LoadPattern,
        }
        let text = toml::to_string(&Spec {
            load: LoadPattern::CLOSED,
        })
        .unwrap();
        assert_eq!(text, "[load]\npattern = \"closed\"\n");
        let think = toml::to_string(&Spec {
            load: LoadPattern::Closed { think_us: 1000 },
        })
        .unwrap();
        assert_eq!(think, "[load]\npattern = \"closed\"\nthink_us = 1000\n");
    }
}

//! One row per invocation, as the client writes it (results.csv / results.json) and the host
//! reads it for the report.

use serde::{Deserialize, Serialize};

/// Which part of a run an invocation belongs to. Only measured ones are measured; the others
/// are recorded so that a reader sees everything the function did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the checkpoint: the function's own warm-up (JIT, lazy initialisation, caches of
    /// the runtime), on the fast CPU under gem5.
    Warmup,
    /// After the checkpoint is restored, before the first measured invocation: warms the
    /// microarchitectural state (caches, TLBs, branch predictors) of the measured CPU.
    Warming,
    Measured,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Warming => "warming",
            Phase::Measured => "measured",
        }
    }

    fn parse(text: &str) -> Option<Phase> {
        [Phase::Warmup, Phase::Warming, Phase::Measured]
            .into_iter()
            .find(|phase| phase.name() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// Position within its phase, from 0; the work id of a measured invocation.
    pub index: u64,
    pub phase: Phase,
    /// When the request was sent, in ns since the client started sending.
    pub send_offset_ns: u64,
    pub latency_ns: u64,
    pub ok: bool,
    /// The error text of a failed invocation, empty otherwise.
    pub error: String,
    pub response_bytes: u64,
}

/// CSV with a header, one row per invocation.
pub fn to_csv(records: &[Invocation]) -> String {
    let mut text = String::from("index,phase,send_offset_ns,latency_ns,ok,error,response_bytes\n");
    for r in records {
        let phase = r.phase.name();
        let error = r.error.replace(['"', '\n', '\r', ','], " ");
        text.push_str(&format!(
            "{},{phase},{},{},{},{error},{}\n",
            r.index, r.send_offset_ns, r.latency_ns, r.ok, r.response_bytes
        ));
    }
    text
}

/// Parses what [`to_csv`] wrote.
pub fn from_csv(text: &str) -> Result<Vec<Invocation>, String> {
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            let bad = || format!("results.csv line {}: cannot parse '{line}'", number + 2);
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 7 {
                return Err(bad());
            }
            Ok(Invocation {
                index: fields[0].parse().map_err(|_| bad())?,
                phase: Phase::parse(fields[1]).ok_or_else(bad)?,
                send_offset_ns: fields[2].parse().map_err(|_| bad())?,
                latency_ns: fields[3].parse().map_err(|_| bad())?,
                ok: fields[4].parse().map_err(|_| bad())?,
                error: fields[5].to_string(),
                response_bytes: fields[6].parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_and_errors_are_sanitised() {
        let records = vec![
            Invocation {
                index: 0,
                phase: Phase::Warmup,
                send_offset_ns: 5,
                latency_ns: 10,
                ok: true,
                error: String::new(),
                response_bytes: 40,
            },
            Invocation {
                index: 0,
                phase: Phase::Warming,
                send_offset_ns: 7,
                latency_ns: 10,
                ok: true,
                error: String::new(),
                response_bytes: 40,
            },
            Invocation {
                index: 0,
                phase: Phase::Measured,
                send_offset_ns: 9,
                latency_ns: 11,
                ok: false,
                error: "refused, \"port\"".into(),
                response_bytes: 0,
            },
        ];
        let back = from_csv(&to_csv(&records)).unwrap();
        assert_eq!(back[..2], records[..2]);
        assert_eq!(back[2].error, "refused   port ");
        assert!(from_csv("h\n1,2\n").unwrap_err().contains("line 2"));
    }
}

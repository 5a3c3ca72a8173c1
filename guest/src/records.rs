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
    /// Where the request's time went, in one clock for client and function. Empty in records
    /// written before these columns existed.
    #[serde(default)]
    pub stamps: Stamps,
}

/// One request's timestamps in ns since the Unix epoch on the guest's CLOCK_REALTIME: the client
/// stamps every request; only a function that reports its handler's entry and exit (our `spin`;
/// vSwarm's functions stay byte-identical to vSwarm and report nothing) fills the server's two.
/// CLOCK_REALTIME because it is the one absolute clock Go and Rust both read the same way (see
/// workloads/spin/main.go); the latency itself stays on CLOCK_MONOTONIC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamps {
    pub client_send_unix_ns: Option<u64>,
    pub server_receive_unix_ns: Option<u64>,
    pub server_done_unix_ns: Option<u64>,
    pub client_receive_unix_ns: Option<u64>,
}

impl Stamps {
    fn cells(&self) -> [Option<u64>; 4] {
        [
            self.client_send_unix_ns,
            self.server_receive_unix_ns,
            self.server_done_unix_ns,
            self.client_receive_unix_ns,
        ]
    }
}

/// The header of results.csv; records written before the stamps existed end at
/// `response_bytes` and still parse.
const CSV_HEADER: &str = "index,phase,send_offset_ns,latency_ns,ok,error,response_bytes,\
                          client_send_unix_ns,server_receive_unix_ns,server_done_unix_ns,\
                          client_receive_unix_ns";
/// Columns of a row without the stamps (the old format) and with them.
const OLD_COLUMNS: usize = 7;
const COLUMNS: usize = 11;

/// CSV with a header, one row per invocation.
pub fn to_csv(records: &[Invocation]) -> String {
    let mut text = format!("{CSV_HEADER}\n");
    for r in records {
        let phase = r.phase.name();
        let error = r.error.replace(['"', '\n', '\r', ','], " ");
        text.push_str(&format!(
            "{},{phase},{},{},{},{error},{}",
            r.index, r.send_offset_ns, r.latency_ns, r.ok, r.response_bytes
        ));
        for stamp in r.stamps.cells() {
            text.push(',');
            if let Some(ns) = stamp {
                text.push_str(&ns.to_string());
            }
        }
        text.push('\n');
    }
    text
}

/// Parses what [`to_csv`] wrote, and rows of the older format without the stamps.
pub fn from_csv(text: &str) -> Result<Vec<Invocation>, String> {
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            let bad = || format!("results.csv line {}: cannot parse '{line}'", number + 2);
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != OLD_COLUMNS && fields.len() != COLUMNS {
                return Err(bad());
            }
            let stamp = |column: usize| -> Result<Option<u64>, String> {
                match fields.get(column) {
                    None | Some(&"") => Ok(None),
                    Some(text) => text.parse().map(Some).map_err(|_| bad()),
                }
            };
            Ok(Invocation {
                index: fields[0].parse().map_err(|_| bad())?,
                phase: Phase::parse(fields[1]).ok_or_else(bad)?,
                send_offset_ns: fields[2].parse().map_err(|_| bad())?,
                latency_ns: fields[3].parse().map_err(|_| bad())?,
                ok: fields[4].parse().map_err(|_| bad())?,
                error: fields[5].to_string(),
                response_bytes: fields[6].parse().map_err(|_| bad())?,
                stamps: Stamps {
                    client_send_unix_ns: stamp(7)?,
                    server_receive_unix_ns: stamp(8)?,
                    server_done_unix_ns: stamp(9)?,
                    client_receive_unix_ns: stamp(10)?,
                },
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
                stamps: Stamps::default(),
            },
            Invocation {
                index: 0,
                phase: Phase::Warming,
                send_offset_ns: 7,
                latency_ns: 10,
                ok: true,
                error: String::new(),
                response_bytes: 40,
                stamps: Stamps {
                    client_send_unix_ns: Some(1_000),
                    server_receive_unix_ns: Some(1_003),
                    server_done_unix_ns: Some(1_008),
                    client_receive_unix_ns: Some(1_010),
                },
            },
            Invocation {
                index: 0,
                phase: Phase::Measured,
                send_offset_ns: 9,
                latency_ns: 11,
                ok: false,
                error: "refused, \"port\"".into(),
                response_bytes: 0,
                stamps: Stamps {
                    client_send_unix_ns: Some(2_000),
                    client_receive_unix_ns: Some(2_011),
                    ..Stamps::default()
                },
            },
        ];
        let back = from_csv(&to_csv(&records)).unwrap();
        assert_eq!(back[..2], records[..2]);
        assert_eq!(back[2].error, "refused   port ");
        assert_eq!(back[2].stamps, records[2].stamps);
        assert!(from_csv("h\n1,2\n").unwrap_err().contains("line 2"));
        assert!(
            from_csv("h\n0,measured,9,11,true,,40,x,,,\n")
                .unwrap_err()
                .contains("line 2")
        );
    }

    #[test]
    fn records_written_before_the_stamps_still_parse() {
        let old = "index,phase,send_offset_ns,latency_ns,ok,error,response_bytes\n\
                   3,measured,9,11,true,,40\n";
        let back = from_csv(old).unwrap();
        assert_eq!((back[0].index, back[0].response_bytes), (3, 40));
        assert_eq!(back[0].stamps, Stamps::default());
        let json = r#"[{"index":3,"phase":"measured","send_offset_ns":9,"latency_ns":11,
                       "ok":true,"error":"","response_bytes":40}]"#;
        let back: Vec<Invocation> = serde_json::from_str(json).unwrap();
        assert_eq!(back[0].stamps, Stamps::default());
    }
}

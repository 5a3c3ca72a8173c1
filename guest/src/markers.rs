//! The console markers: the one definition of what the guest tells the host on its serial
//! console. The guest writes them with `Display` (simctl-init, the client, the benchmarks) and
//! the host reads them with `Marker::parse` (src/run/console.rs), so the two cannot drift.
//!
//! A marker is one line, `SIMCTL-<TAG> <words>`, with `key=value` words where it carries
//! values. The host finds it anywhere in a console line: kernel messages may precede it on the
//! same line. The one marker written by a shell script (the container check in
//! src/container.rs) is checked against `parse` by that module's tests.

use std::fmt;

/// Something the guest tells the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    /// simctl-init is up: the guest's uptime then, and the platform the kernel command line
    /// named.
    Boot {
        uptime_s: Option<f64>,
        platform: Option<String>,
    },
    /// Under gem5: the boot checkpoint is taken (or restored) and the plan is read next.
    BootRestored { uptime_s: Option<f64> },
    /// A plan step starts.
    StepStart { name: String },
    /// A foreground plan step ended successfully.
    StepDone { name: String },
    /// The CPUs a process may run on, as the guest kernel sees them; `details` are further
    /// `key=value` words (the container check adds isolation, namespaces, cgroup).
    Affinity {
        pid: Option<u32>,
        name: Option<String>,
        cpus: String,
        details: String,
    },
    /// The function answers on its port.
    FunctionUp,
    /// The warm-up invocations (before the gem5 warm checkpoint) are done.
    WarmupDone,
    /// The warming invocations after a gem5 restore are done.
    WarmingDone,
    /// Measured invocation `done` of `total` is done.
    Invocation { done: u64, total: u64 },
    /// A benchmark variant `done` of `total` is done (simctl-syscalls).
    Variant { done: u64, total: u64 },
    /// The results went back through the QEMU transfer disk.
    ResultsWritten,
    /// Something failed; the text says what.
    Error(String),
    /// simctl-init is done; `ok` says whether every step succeeded.
    Done { ok: bool, uptime_s: Option<f64> },
}

const PREFIX: &str = "SIMCTL-";

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let optional = |f: &mut fmt::Formatter<'_>, key: &str, value: Option<&dyn fmt::Display>| {
            value.map_or(Ok(()), |value| write!(f, " {key}={value}"))
        };
        match self {
            Marker::Boot { uptime_s, platform } => {
                f.write_str("SIMCTL-BOOT up")?;
                optional(f, "uptime", uptime_s.as_ref().map(|u| u as _))?;
                optional(f, "platform", platform.as_ref().map(|p| p as _))
            }
            Marker::BootRestored { uptime_s } => {
                f.write_str("SIMCTL-PROGRESS boot-restored")?;
                optional(f, "uptime", uptime_s.as_ref().map(|u| u as _))
            }
            Marker::StepStart { name } => write!(f, "SIMCTL-STEP start name={name}"),
            Marker::StepDone { name } => write!(f, "SIMCTL-STEP done name={name}"),
            Marker::Affinity {
                pid,
                name,
                cpus,
                details,
            } => {
                f.write_str("SIMCTL-AFFINITY")?;
                optional(f, "pid", pid.as_ref().map(|p| p as _))?;
                optional(f, "name", name.as_ref().map(|n| n as _))?;
                write!(f, " cpus={cpus}")?;
                if !details.is_empty() {
                    write!(f, " {details}")?;
                }
                Ok(())
            }
            Marker::FunctionUp => f.write_str("SIMCTL-PROGRESS function-up"),
            Marker::WarmupDone => f.write_str("SIMCTL-PROGRESS warmup-done"),
            Marker::WarmingDone => f.write_str("SIMCTL-PROGRESS warming-done"),
            Marker::Invocation { done, total } => {
                write!(f, "SIMCTL-PROGRESS invocation {done}/{total}")
            }
            Marker::Variant { done, total } => write!(f, "SIMCTL-PROGRESS variant {done}/{total}"),
            Marker::ResultsWritten => f.write_str("SIMCTL-RESULTS written to the transfer disk"),
            Marker::Error(message) => write!(f, "SIMCTL-ERROR {message}"),
            Marker::Done { ok, uptime_s } => {
                write!(
                    f,
                    "SIMCTL-DONE status={}",
                    if *ok { "ok" } else { "failed" }
                )?;
                optional(f, "uptime", uptime_s.as_ref().map(|u| u as _))
            }
        }
    }
}

impl Marker {
    /// The marker in a console line, wherever it starts; `None` for other lines.
    pub fn parse(line: &str) -> Option<Marker> {
        let marker = &line[line.find(PREFIX)?..];
        let marker = marker.trim_end();
        let (tag, rest) = marker.split_once(' ').unwrap_or((marker, ""));
        let rest = rest.trim();
        let text = |key: &str| field(rest, key).map(str::to_string);
        match tag {
            "SIMCTL-BOOT" => Some(Marker::Boot {
                uptime_s: parsed(rest, "uptime"),
                platform: text("platform"),
            }),
            "SIMCTL-PROGRESS" => parse_progress(rest),
            "SIMCTL-STEP" => {
                let name = text("name")?;
                match rest.split_whitespace().next()? {
                    "start" => Some(Marker::StepStart { name }),
                    "done" => Some(Marker::StepDone { name }),
                    _ => None,
                }
            }
            "SIMCTL-AFFINITY" => {
                let details: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|word| {
                        !["pid=", "name=", "cpus="]
                            .iter()
                            .any(|k| word.starts_with(k))
                    })
                    .collect();
                Some(Marker::Affinity {
                    pid: parsed(rest, "pid"),
                    name: text("name"),
                    cpus: text("cpus")?,
                    details: details.join(" "),
                })
            }
            "SIMCTL-RESULTS" => Some(Marker::ResultsWritten),
            "SIMCTL-ERROR" => Some(Marker::Error(rest.to_string())),
            "SIMCTL-DONE" => Some(Marker::Done {
                ok: match field(rest, "status")? {
                    "ok" => true,
                    "failed" => false,
                    _ => return None,
                },
                uptime_s: parsed(rest, "uptime"),
            }),
            _ => None,
        }
    }
}

fn parse_progress(rest: &str) -> Option<Marker> {
    let mut words = rest.split_whitespace();
    let counted = |word: Option<&str>| -> Option<(u64, u64)> {
        let (done, total) = word?.split_once('/')?;
        Some((done.parse().ok()?, total.parse().ok()?))
    };
    match words.next()? {
        "boot-restored" => Some(Marker::BootRestored {
            uptime_s: parsed(rest, "uptime"),
        }),
        "function-up" => Some(Marker::FunctionUp),
        "warmup-done" => Some(Marker::WarmupDone),
        "warming-done" => Some(Marker::WarmingDone),
        "invocation" => {
            counted(words.next()).map(|(done, total)| Marker::Invocation { done, total })
        }
        "variant" => counted(words.next()).map(|(done, total)| Marker::Variant { done, total }),
        _ => None,
    }
}

/// The value of `key=value` among space-separated words, parsed.
fn parsed<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    field(text, key)?.parse().ok()
}

/// The value of `key=value` among space-separated words.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split_whitespace().find_map(|word| {
        word.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_marker() -> Vec<Marker> {
        vec![
            Marker::Boot {
                uptime_s: Some(0.6),
                platform: Some("gem5".into()),
            },
            Marker::Boot {
                uptime_s: None,
                platform: None,
            },
            Marker::BootRestored {
                uptime_s: Some(0.61),
            },
            Marker::StepStart {
                name: "runc".into(),
            },
            Marker::StepDone {
                name: "client".into(),
            },
            Marker::Affinity {
                pid: Some(57),
                name: Some("aes-go".into()),
                cpus: "1".into(),
                details: "isolation=container own-pid-ns=yes".into(),
            },
            Marker::Affinity {
                pid: None,
                name: None,
                cpus: "0-1".into(),
                details: String::new(),
            },
            Marker::FunctionUp,
            Marker::WarmupDone,
            Marker::WarmingDone,
            Marker::Invocation { done: 3, total: 20 },
            Marker::Variant { done: 1, total: 4 },
            Marker::ResultsWritten,
            Marker::Error("step client failed: exit status: 3".into()),
            Marker::Done {
                ok: true,
                uptime_s: Some(1.16),
            },
            Marker::Done {
                ok: false,
                uptime_s: None,
            },
        ]
    }

    #[test]
    fn what_the_guest_writes_the_host_reads_back() {
        for marker in every_marker() {
            let line = marker.to_string();
            assert_eq!(Marker::parse(&line), Some(marker.clone()), "{line}");
            // Behind a kernel timestamp or another message on the same line.
            let behind = format!("[    1.234] {line}");
            assert_eq!(Marker::parse(&behind), Some(marker), "{behind}");
        }
    }

    #[test]
    fn the_lines_keep_the_format_console_logs_already_have() {
        let lines: Vec<String> = every_marker().iter().map(Marker::to_string).collect();
        assert_eq!(lines[0], "SIMCTL-BOOT up uptime=0.6 platform=gem5");
        assert_eq!(
            lines[5],
            "SIMCTL-AFFINITY pid=57 name=aes-go cpus=1 isolation=container own-pid-ns=yes"
        );
        assert_eq!(lines[10], "SIMCTL-PROGRESS invocation 3/20");
        assert_eq!(lines[14], "SIMCTL-DONE status=ok uptime=1.16");
    }

    #[test]
    fn other_lines_are_no_markers() {
        for line in [
            "",
            "random kernel message",
            "SIMCTL-PROGRESS invocation x/y",
            "SIMCTL-PROGRESS",
            "SIMCTL-UNKNOWN a",
            "SIMCTL-DONE status=maybe",
            "SIMCTL-STEP start",
            "SIMCTL-AFFINITY pid=3",
        ] {
            assert_eq!(Marker::parse(line), None, "{line}");
        }
    }
}

//! Reading the guest's serial console: the markers the guest agent and client print, kernel
//! panics, and the watchdog that notices when the console stops moving.
//!
//! The guest prints one marker per line (`SIMCTL-BOOT up uptime=1.23`, `SIMCTL-PROGRESS
//! invocation 3/20`, `SIMCTL-DONE status=ok`, `SIMCTL-ERROR ...`). The host never needs more
//! than these lines to follow a run, so the same code serves QEMU and gem5.

use std::time::{Duration, Instant};

/// Something the console said that matters to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleEvent {
    /// The boot agent is up; guest uptime in seconds when it printed that.
    Booted { uptime_s: Option<f64> },
    /// The function is up (its port answered).
    FunctionUp,
    /// Warm-up invocations are done.
    WarmupDone,
    /// Measured invocation `done` of `total` finished.
    Invocation { done: u64, total: u64 },
    /// The CPUs a process is allowed to run on, as the guest saw them.
    Affinity { what: String, cpus: String },
    /// The guest agent finished; `ok` says whether every step succeeded.
    Done { ok: bool },
    /// The guest agent reported a failure.
    GuestError(String),
    /// The kernel panicked or oopsed.
    KernelPanic(String),
}

/// Parses one console line; `None` for lines that are not markers.
pub fn parse_line(line: &str) -> Option<ConsoleEvent> {
    let line = line.trim_end();
    if let Some(start) = line.find("Kernel panic") {
        return Some(ConsoleEvent::KernelPanic(line[start..].to_string()));
    }
    let start = line.find("SIMCTL-")?;
    let marker = &line[start..];
    let (tag, rest) = marker.split_once(' ').unwrap_or((marker, ""));
    let rest = rest.trim();
    match tag {
        "SIMCTL-BOOT" => Some(ConsoleEvent::Booted {
            uptime_s: field(rest, "uptime").and_then(|value| value.parse().ok()),
        }),
        "SIMCTL-PROGRESS" => parse_progress(rest),
        "SIMCTL-AFFINITY" => Some(ConsoleEvent::Affinity {
            what: field(rest, "name")
                .or_else(|| field(rest, "pid"))
                .unwrap_or("process")
                .to_string(),
            cpus: field(rest, "cpus")?.to_string(),
        }),
        "SIMCTL-DONE" => Some(ConsoleEvent::Done {
            ok: field(rest, "status") == Some("ok"),
        }),
        "SIMCTL-ERROR" => Some(ConsoleEvent::GuestError(rest.to_string())),
        _ => None,
    }
}

fn parse_progress(rest: &str) -> Option<ConsoleEvent> {
    let mut words = rest.split_whitespace();
    match words.next()? {
        "function-up" => Some(ConsoleEvent::FunctionUp),
        "warmup-done" => Some(ConsoleEvent::WarmupDone),
        "invocation" => {
            let (done, total) = words.next()?.split_once('/')?;
            Some(ConsoleEvent::Invocation {
                done: done.parse().ok()?,
                total: total.parse().ok()?,
            })
        }
        _ => None,
    }
}

/// The value of `key=value` among space-separated words.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split_whitespace().find_map(|word| {
        word.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// What the host learned from the console so far.
#[derive(Debug, Default, Clone)]
pub struct ConsoleState {
    pub booted_uptime_s: Option<f64>,
    pub booted: bool,
    pub function_up: bool,
    pub warmup_done: bool,
    pub invocations_done: u64,
    pub invocations_total: u64,
    pub affinities: Vec<(String, String)>,
    pub done: Option<bool>,
    pub errors: Vec<String>,
    pub panic: Option<String>,
}

impl ConsoleState {
    pub fn apply(&mut self, event: &ConsoleEvent) {
        match event {
            ConsoleEvent::Booted { uptime_s } => {
                self.booted = true;
                self.booted_uptime_s = *uptime_s;
            }
            ConsoleEvent::FunctionUp => self.function_up = true,
            ConsoleEvent::WarmupDone => self.warmup_done = true,
            ConsoleEvent::Invocation { done, total } => {
                self.invocations_done = *done;
                self.invocations_total = *total;
            }
            ConsoleEvent::Affinity { what, cpus } => {
                self.affinities.push((what.clone(), cpus.clone()))
            }
            ConsoleEvent::Done { ok } => self.done = Some(*ok),
            ConsoleEvent::GuestError(message) => self.errors.push(message.clone()),
            ConsoleEvent::KernelPanic(message) => self.panic = Some(message.clone()),
        }
    }

    /// Applies every marker of a whole console text (a checkpoint's console, read back).
    pub fn replay(&mut self, text: &str) {
        for event in text.lines().filter_map(parse_line) {
            self.apply(&event);
        }
    }

    /// A short phase name for progress displays.
    pub fn phase(&self) -> String {
        if let Some(ok) = self.done {
            return if ok { "done".into() } else { "failed".into() };
        }
        if self.invocations_total > 0 {
            return format!(
                "invocation {}/{}",
                self.invocations_done, self.invocations_total
            );
        }
        if self.warmup_done {
            "warm-up done".into()
        } else if self.function_up {
            "function up, warming up".into()
        } else if self.booted {
            "booted".into()
        } else {
            "booting".into()
        }
    }
}

/// Fires when the console has been silent for longer than its limit. Guest progress is
/// slow under simulation, so the limit is per platform and configurable.
#[derive(Debug)]
pub struct Watchdog {
    limit: Duration,
    last_activity: Instant,
}

impl Watchdog {
    pub fn new(limit: Duration) -> Watchdog {
        Watchdog {
            limit,
            last_activity: Instant::now(),
        }
    }

    pub fn feed(&mut self) {
        self.last_activity = Instant::now();
    }

    /// The reason to stop, once the console was silent for too long.
    pub fn check(&self, phase: &str) -> Option<String> {
        let silent = self.last_activity.elapsed();
        (silent > self.limit).then(|| {
            format!(
                "watchdog: no console output for {} during '{phase}'; hint: raise --watchdog, or \
                 look at console.log for where the guest stopped",
                humantime::format_duration(Duration::from_secs(silent.as_secs()))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_even_behind_kernel_timestamps() {
        let cases = [
            (
                "[    1.234] SIMCTL-BOOT up uptime=1.23",
                ConsoleEvent::Booted {
                    uptime_s: Some(1.23),
                },
            ),
            ("SIMCTL-PROGRESS function-up", ConsoleEvent::FunctionUp),
            ("SIMCTL-PROGRESS warmup-done", ConsoleEvent::WarmupDone),
            (
                "SIMCTL-PROGRESS invocation 3/20",
                ConsoleEvent::Invocation { done: 3, total: 20 },
            ),
            (
                "SIMCTL-AFFINITY pid=77 name=aes-go cpus=1",
                ConsoleEvent::Affinity {
                    what: "aes-go".into(),
                    cpus: "1".into(),
                },
            ),
            ("SIMCTL-DONE status=ok", ConsoleEvent::Done { ok: true }),
            (
                "SIMCTL-DONE status=failed",
                ConsoleEvent::Done { ok: false },
            ),
            (
                "SIMCTL-ERROR step 2 timed out",
                ConsoleEvent::GuestError("step 2 timed out".into()),
            ),
            (
                "[ 0.5] Kernel panic - not syncing: VFS: Unable to mount root fs",
                ConsoleEvent::KernelPanic(
                    "Kernel panic - not syncing: VFS: Unable to mount root fs".into(),
                ),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_line(line), Some(expected), "{line}");
        }
        for line in [
            "",
            "random kernel message",
            "SIMCTL-PROGRESS invocation x/y",
            "SIMCTL-UNKNOWN a",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn state_tracks_phase() {
        let mut state = ConsoleState::default();
        assert_eq!(state.phase(), "booting");
        for line in [
            "SIMCTL-BOOT up",
            "SIMCTL-PROGRESS warmup-done",
            "SIMCTL-PROGRESS invocation 2/5",
        ] {
            state.apply(&parse_line(line).unwrap());
        }
        assert_eq!(state.phase(), "invocation 2/5");
        state.apply(&ConsoleEvent::Done { ok: false });
        assert_eq!(state.phase(), "failed");
    }

    #[test]
    fn watchdog_fires_only_after_silence() {
        let mut dog = Watchdog::new(Duration::from_millis(30));
        assert!(dog.check("boot").is_none());
        std::thread::sleep(Duration::from_millis(50));
        let reason = dog.check("boot").unwrap();
        assert!(
            reason.contains("'boot'") && reason.contains("--watchdog"),
            "{reason}"
        );
        dog.feed();
        assert!(dog.check("boot").is_none());
    }
}

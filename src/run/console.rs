//! Reading the guest's serial console: the markers the guest agent and client print, kernel
//! panics, and the watchdog that notices when the console stops moving.
//!
//! The guest prints one marker per line (`SIMCTL-BOOT up uptime=1.23`, `SIMCTL-PROGRESS
//! invocation 3/20`, `SIMCTL-DONE status=ok`, `SIMCTL-ERROR ...`). The host never needs more
//! than these lines to follow a run, so the same code serves QEMU and gem5.

use std::time::{Duration, Instant};

use simctl_guest::markers::Marker;

/// Something the console said that matters to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleEvent {
    /// A marker of the guest agent, client or benchmark (`simctl_guest::markers`: the
    /// definition the guest writes with).
    Guest(Marker),
    /// The kernel panicked.
    KernelPanic(String),
}

/// Parses one console line; `None` for lines that are neither a marker nor a panic.
pub fn parse_line(line: &str) -> Option<ConsoleEvent> {
    let line = line.trim_end();
    if let Some(start) = line.find("Kernel panic") {
        return Some(ConsoleEvent::KernelPanic(line[start..].to_string()));
    }
    Marker::parse(line).map(ConsoleEvent::Guest)
}

/// An affinity marker as (what: the process name, or its pid; cpus).
pub fn affinity(marker: &Marker) -> Option<(String, String)> {
    let Marker::Affinity {
        pid, name, cpus, ..
    } = marker
    else {
        return None;
    };
    let what = name
        .clone()
        .or_else(|| pid.map(|pid| pid.to_string()))
        .unwrap_or_else(|| "process".into());
    Some((what, cpus.clone()))
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
        let marker = match event {
            ConsoleEvent::KernelPanic(message) => {
                self.panic = Some(message.clone());
                return;
            }
            ConsoleEvent::Guest(marker) => marker,
        };
        match marker {
            Marker::Boot { uptime_s, .. } => {
                self.booted = true;
                self.booted_uptime_s = *uptime_s;
            }
            Marker::FunctionUp => self.function_up = true,
            Marker::WarmupDone => self.warmup_done = true,
            Marker::Invocation { done, total } => {
                self.invocations_done = *done;
                self.invocations_total = *total;
            }
            Marker::Affinity { .. } => {
                if let Some(affinity) = affinity(marker) {
                    self.affinities.push(affinity);
                }
            }
            Marker::Done { ok, .. } => self.done = Some(*ok),
            Marker::Error(message) => self.errors.push(message.clone()),
            Marker::BootRestored { .. }
            | Marker::StepStart { .. }
            | Marker::StepDone { .. }
            | Marker::WarmingDone
            | Marker::Variant { .. }
            | Marker::ResultsWritten => {}
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
    fn markers_and_panics_are_read_behind_kernel_timestamps() {
        assert_eq!(
            parse_line("[    1.234] SIMCTL-PROGRESS invocation 3/20"),
            Some(ConsoleEvent::Guest(Marker::Invocation {
                done: 3,
                total: 20
            }))
        );
        assert_eq!(
            parse_line("[ 0.5] Kernel panic - not syncing: VFS: Unable to mount root fs"),
            Some(ConsoleEvent::KernelPanic(
                "Kernel panic - not syncing: VFS: Unable to mount root fs".into()
            ))
        );
        assert_eq!(parse_line("random kernel message"), None);
        let (what, cpus) =
            affinity(&Marker::parse("SIMCTL-AFFINITY pid=77 cpus=1").unwrap()).unwrap();
        assert_eq!((what.as_str(), cpus.as_str()), ("77", "1"));
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
        state.apply(&ConsoleEvent::Guest(Marker::Done {
            ok: false,
            uptime_s: None,
        }));
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

//! Following a running simulator: tail the guest console, keep the progress bar current, and
//! stop the simulator on a kernel panic, a silent console (watchdog) or the phase deadline.
//! Both platforms use this loop; only the console file differs (QEMU's `-serial file:`,
//! gem5's `board.pc.com_1.device`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use super::console::{ConsoleEvent, ConsoleState, Watchdog, parse_line};
use crate::process::{Ended, LogTail, Supervised, Watch};
use simctl_guest::markers::Marker;

/// Limits for one phase of a run.
#[derive(Debug, Clone)]
pub struct PhaseLimits {
    pub deadline: Duration,
    pub watchdog: Duration,
}

/// What a phase ended with.
#[derive(Debug)]
pub struct PhaseOutcome {
    pub ended: Ended,
    pub console: ConsoleState,
    pub wall: Duration,
    /// Host time from the start of the phase until the guest agent said it was up.
    pub boot_wall: Option<Duration>,
}

/// A progress bar on stderr (hidden when stderr is not a terminal) showing the guest's phase.
pub fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix}: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// Waits for `child` while following `console`; `state` carries what earlier phases saw.
pub fn follow(
    child: &mut Supervised,
    console: &Path,
    limits: &PhaseLimits,
    mut state: ConsoleState,
    bar: &ProgressBar,
) -> Result<PhaseOutcome> {
    let started = Instant::now();
    let mut tail = LogTail::new();
    let mut dog = Watchdog::new(limits.watchdog);
    let console: PathBuf = console.to_path_buf();
    let mut boot_wall = None;
    let ended = child.wait(Some(started + limits.deadline), |_| {
        let lines = tail.new_lines(&console)?;
        if !lines.is_empty() {
            dog.feed();
        }
        for line in &lines {
            if let Some(event) = parse_line(line) {
                state.apply(&event);
                if matches!(event, ConsoleEvent::Guest(Marker::Boot { .. })) && boot_wall.is_none()
                {
                    boot_wall = Some(started.elapsed());
                }
                if let ConsoleEvent::KernelPanic(message) = &event {
                    return Ok(Watch::Stop(format!("guest kernel panic: {message}")));
                }
            }
        }
        bar.set_message(state.phase());
        Ok(match dog.check(&state.phase()) {
            Some(reason) => Watch::Stop(reason),
            None => Watch::Continue,
        })
    })?;
    // Lines written between the last poll and the exit still count.
    for line in tail.new_lines(&console)? {
        if let Some(event) = parse_line(&line) {
            state.apply(&event);
        }
    }
    Ok(PhaseOutcome {
        ended,
        console: state,
        wall: started.elapsed(),
        boot_wall,
    })
}

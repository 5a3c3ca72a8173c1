//! What the build stages show while they work: one named line on stderr when a stage starts and
//! one when it ends (with its time), and between them a bar (when the total is known) or a
//! spinner with the latest step. indicatif draws nothing when stderr is not a terminal, so logs
//! and CI still get the start and end lines and nothing else.
//!
//! Totals that only a finished build knows (the kernel's object count for one config) are
//! remembered under `<cache>/progress/`, keyed like artifacts, so the next build of the same
//! input shows the real total.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cache::CacheKey;
use crate::fsutil::write_atomic;

/// One stage's progress display.
pub struct Stage {
    name: String,
    bar: ProgressBar,
    started: Instant,
    /// Whether the bar's length is an estimate (shown as `~len`).
    estimated: bool,
}

impl Stage {
    /// A stage whose amount of work is unknown: a spinner with its latest step.
    pub fn spinner(name: &str, what: &str) -> Stage {
        eprintln!("{name}: {what}");
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix}: {wide_msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Stage::start(name, bar, false)
    }

    /// A stage of `total` units (`estimated`: a guess that grows when the count passes it).
    pub fn counted(name: &str, what: &str, total: u64, unit: &str, estimated: bool) -> Stage {
        eprintln!("{name}: {what}");
        let bar = ProgressBar::new(total.max(1));
        let len = if estimated { "~{len}" } else { "{len}" };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix}}: {{bar:30}} {{pos}}/{len} {unit} [{{elapsed}}] {{wide_msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Stage::start(name, bar, estimated)
    }

    fn start(name: &str, bar: ProgressBar, estimated: bool) -> Stage {
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Stage {
            name: name.to_string(),
            bar,
            started: Instant::now(),
            estimated,
        }
    }

    pub fn message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Counts `n` more units; an estimated total never stays below the count.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if self.estimated
            && let Some(len) = self.bar.length()
            && self.bar.position() >= len
        {
            // Keep a little headroom: a full bar that is not done reads as a hang.
            self.bar
                .set_length(self.bar.position() + self.bar.position() / 20 + 1);
        }
    }

    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Ends the stage with one line: `name: summary (N.N s)`.
    pub fn finish(self, summary: &str) {
        self.bar.finish_and_clear();
        eprintln!(
            "{}: {summary} ({:.1} s)",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// A stage dropped without `finish` (an error on the way) clears its line: the error that
/// follows says what happened.
impl Drop for Stage {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn remembered_path(cache: &Path, what: &str, key: &CacheKey) -> PathBuf {
    cache.join("progress").join(format!("{what}-{}", key.hex()))
}

/// A total remembered by an earlier build of the same input.
pub fn remembered_total(cache: &Path, what: &str, key: &CacheKey) -> Option<u64> {
    std::fs::read_to_string(remembered_path(cache, what, key))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Remembers a total for the next build of the same input (best effort: it only feeds a bar).
pub fn remember_total(cache: &Path, what: &str, key: &CacheKey, total: u64) {
    let path = remembered_path(cache, what, key);
    if let Some(parent) = path.parent()
        && std::fs::create_dir_all(parent).is_ok()
    {
        let _ = write_atomic(&path, format!("{total}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_total_round_trips_per_key() {
        let cache = tempfile::tempdir().unwrap();
        let a = CacheKey::new("x", 1).text("config", "a");
        let b = CacheKey::new("x", 1).text("config", "b");
        assert_eq!(remembered_total(cache.path(), "kernel-objects", &a), None);
        remember_total(cache.path(), "kernel-objects", &a, 1238);
        assert_eq!(
            remembered_total(cache.path(), "kernel-objects", &a),
            Some(1238)
        );
        assert_eq!(remembered_total(cache.path(), "kernel-objects", &b), None);
    }

    #[test]
    fn estimated_total_never_falls_below_the_count() {
        let stage = Stage::counted("t", "test", 10, "objects", true);
        stage.inc(25);
        assert!(stage.bar.length().unwrap() > 25);
        drop(stage);
        let exact = Stage::counted("t", "test", 10, "steps", false);
        exact.inc(10);
        assert_eq!(exact.bar.length(), Some(10));
        drop(exact);
    }
}

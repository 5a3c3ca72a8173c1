//! The run directory: where one run keeps everything it used and produced.
//!
//! ```text
//! runs/<id>/
//!   run.toml        every resolved input, with hashes of kernel, image, gem5, config, checkpoint
//!   plan.toml       the run plan handed to the guest (m5 readfile / transfer disk)
//!   console.log     the guest's serial console
//!   results/        the client's per-invocation records (results.csv, results.json)
//!   m5out/          gem5's outdir: stats.txt, config.ini, config.json, gem5.log
//!   status.json     running | ok | failed, with the cause and per-phase wall times
//!   report.md       the short report printed at the end
//! ```
//!
//! Architecture invariant: status.json is written first (running) and last (ok/failed), each
//! time atomically, so a run killed at any moment still says it did not finish, and its logs
//! and partial stats stay where they were.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

pub const STATUS_FILE: &str = "status.json";
pub const RUN_FILE: &str = "run.toml";

/// Whether a run finished well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Ok,
    Failed,
}

/// Wall time of one phase (boot, setup, measure, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    pub name: String,
    pub wall_s: f64,
}

/// Contents of status.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub started_unix_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix_s: Option<u64>,
    #[serde(default)]
    pub phases: Vec<PhaseTime>,
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Opens (creating if needed) the run directory at `path`.
    pub fn create(path: impl Into<PathBuf>) -> Result<RunDir> {
        let path = path.into();
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        Ok(RunDir { path })
    }

    pub fn open(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_toml(&self) -> PathBuf {
        self.path.join(RUN_FILE)
    }

    pub fn plan(&self) -> PathBuf {
        self.path.join("plan.toml")
    }

    pub fn console_log(&self) -> PathBuf {
        self.path.join("console.log")
    }

    pub fn results_dir(&self) -> PathBuf {
        self.path.join("results")
    }

    pub fn m5out(&self) -> PathBuf {
        self.path.join("m5out")
    }

    pub fn report_md(&self) -> PathBuf {
        self.path.join("report.md")
    }

    pub fn status_path(&self) -> PathBuf {
        self.path.join(STATUS_FILE)
    }

    /// The status, or None when the directory is not (yet) a run.
    pub fn status(&self) -> Result<Option<Status>> {
        let path = self.status_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is not a valid run status file", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn write_status(&self, status: &Status) -> Result<()> {
        let text = serde_json::to_string_pretty(status)?;
        write_atomic(&self.status_path(), format!("{text}\n").as_bytes())
    }
}

/// Seconds since the Unix epoch, for status files.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Keeps status.json up to date while a run goes through its phases.
#[derive(Debug)]
pub struct StatusTracker {
    dir: RunDir,
    status: Status,
}

impl StatusTracker {
    /// Marks the run as running (before anything that can fail or be interrupted).
    pub fn start(dir: &RunDir) -> Result<StatusTracker> {
        let status = Status {
            state: RunState::Running,
            cause: None,
            started_unix_s: unix_now(),
            finished_unix_s: None,
            phases: Vec::new(),
        };
        dir.write_status(&status)?;
        Ok(StatusTracker {
            dir: dir.clone(),
            status,
        })
    }

    pub fn phase_done(&mut self, name: &str, wall: Duration) -> Result<()> {
        self.status.phases.push(PhaseTime {
            name: name.to_string(),
            wall_s: wall.as_secs_f64(),
        });
        self.dir.write_status(&self.status)
    }

    pub fn phases(&self) -> &[PhaseTime] {
        &self.status.phases
    }

    pub fn finish(mut self, outcome: &Result<()>) -> Result<()> {
        self.status.finished_unix_s = Some(unix_now());
        match outcome {
            Ok(()) => self.status.state = RunState::Ok,
            Err(err) => {
                self.status.state = RunState::Failed;
                self.status.cause = Some(format!("{err:#}"));
            }
        }
        self.dir.write_status(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_goes_running_then_failed_with_cause_and_phases() {
        let temp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(temp.path().join("r1")).unwrap();
        assert_eq!(dir.status().unwrap(), None);
        let mut tracker = StatusTracker::start(&dir).unwrap();
        assert_eq!(dir.status().unwrap().unwrap().state, RunState::Running);
        tracker
            .phase_done("boot", Duration::from_millis(1500))
            .unwrap();
        tracker
            .finish(&Err(anyhow::anyhow!("watchdog fired")))
            .unwrap();
        let status = dir.status().unwrap().unwrap();
        assert_eq!(status.state, RunState::Failed);
        assert_eq!(status.cause.as_deref(), Some("watchdog fired"));
        assert_eq!(
            status.phases,
            vec![PhaseTime {
                name: "boot".into(),
                wall_s: 1.5
            }]
        );
        assert!(status.finished_unix_s.is_some());
    }

    #[test]
    fn corrupt_status_is_an_error_naming_the_file() {
        let temp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(temp.path()).unwrap();
        std::fs::write(dir.status_path(), "{not json").unwrap();
        let message = format!("{:#}", dir.status().unwrap_err());
        assert!(message.contains("status.json"), "{message}");
    }
}

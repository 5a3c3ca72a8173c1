//! The run directory: where one run keeps everything it used and produced.
//!
//! ```text
//! runs/<id>/
//!   run.toml        every resolved input, with hashes of kernel, image, gem5, config, checkpoint
//!   plan.toml       the run plan handed to the guest (m5 readfile / transfer disk)
//!   console.log     the guest's serial console
//!   results/        the client's per-invocation records (results.csv, results.json)
//!   m5out/          gem5's outdir: stats.txt, config.ini, config.json, gem5.log
//!   status.json     running | ok | failed, with the cause, per-phase wall times, and the
//!                   pid and boot id of the simctl that ran it
//!   report.md       the short report printed at the end
//!   simctl.lock     flock()ed by the simctl that works in the directory; holds its pid
//! ```
//!
//! Architecture invariants: status.json is written first (running) and last (ok/failed), each
//! time atomically, and a guard writes `failed` if simctl leaves a run any other way, so a run
//! says whether it finished; a `running` left by a killed simctl is read as `interrupted`
//! ([`status`]), because its pid (or the machine's boot) is gone. Only the simctl that holds
//! the directory's lock writes in it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

pub const STATUS_FILE: &str = "status.json";
pub const RUN_FILE: &str = "run.toml";
pub const LOCK_FILE: &str = "simctl.lock";
/// What a run writes in its directory (a new attempt removes them; anything else is kept, e.g.
/// a sweep's `sweep.log`).
const RUN_OUTPUTS: [&str; 11] = [
    RUN_FILE,
    STATUS_FILE,
    "plan.toml",
    "system.toml",
    "console.log",
    "results",
    "m5out",
    "report.md",
    "transfer.img",
    "qemu.log",
    "setup",
];

/// Whether a run finished well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Ok,
    Failed,
    /// Never written: what a `running` status reads as once the simctl that wrote it is gone.
    Interrupted,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunState::Running => "running",
            RunState::Ok => "ok",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        })
    }
}

/// The simctl process that wrote a status: host, pid, its start time and the machine's boot,
/// so that a reused pid or a reboot is not mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub host: String,
    pub pid: u32,
    /// Start time of the process in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    pub boot_id: String,
}

impl Writer {
    /// This process, as a status file names its writer.
    pub fn me() -> Writer {
        let pid = std::process::id();
        Writer {
            host: host_name(),
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    /// Why that process is certainly gone, or None while it may still run. A run on another
    /// host (a Slurm node seen from the login node) cannot be checked from here: it may run.
    pub fn gone(&self) -> Option<String> {
        if self.host != host_name() {
            return None;
        }
        if self.boot_id != boot_id() {
            return Some(format!("{} has rebooted since", self.host));
        }
        if start_ticks(self.pid) != Some(self.start_ticks) {
            return Some(format!("pid {} is gone", self.pid));
        }
        None
    }
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_default()
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<Writer>,
}

/// The status of the run in `dir` as it really is: a `running` whose simctl is gone reads as
/// `interrupted`, with the cause saying so. None when `dir` is not (yet) a run.
pub fn status(dir: &Path) -> Result<Option<Status>> {
    RunDir::open(dir).status()
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

/// The lock on a run directory; released when dropped (or when simctl dies).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunDir {
    /// Creates (if needed) the run directory at `path` and takes its lock, or says which simctl
    /// holds it. A path that exists and is not a directory is refused.
    pub fn claim(path: impl Into<PathBuf>) -> Result<(RunDir, RunLock)> {
        let path = path.into();
        if path.exists() && !path.is_dir() {
            bail!(
                "--out {} is a file, not a run directory; hint: give a directory path (it is \
                 created if missing)",
                path.display()
            );
        }
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        use rustix::fs::{FlockOperation, flock};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another simctl".to_string()
                } else {
                    format!("simctl pid {holder}")
                };
                bail!(
                    "run directory {} is in use by {holder}; hint: wait for it to finish, or \
                     give another --out",
                    path.display()
                );
            }
            Err(err) => {
                return Err(err).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", lock_path.display()))?;
        Ok((RunDir { path }, RunLock { _file: file }))
    }

    /// Removes what an earlier attempt of a run wrote (never files simctl does not write).
    pub fn clear_outputs(&self) -> Result<()> {
        for name in RUN_OUTPUTS {
            let path = self.path.join(name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let removed = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(())
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

    /// The effective status (see [`status`]), or None when the directory is not (yet) a run.
    pub fn status(&self) -> Result<Option<Status>> {
        let path = self.status_path();
        let mut status: Status = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid run status file", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        if status.state == RunState::Running {
            let gone = match &status.writer {
                Some(writer) => writer.gone(),
                None => Some("the status names no process".to_string()),
            };
            if let Some(why) = gone {
                status.state = RunState::Interrupted;
                status.cause = Some(format!(
                    "interrupted: status.json says running, but the simctl that ran it stopped \
                     without finishing ({why}; killed?); logs and partial results are kept"
                ));
            }
        }
        Ok(Some(status))
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

/// Keeps status.json up to date while a run goes through its phases; if it is dropped before
/// [`StatusTracker::finish`] (a panic, an early return), it marks the run failed.
#[derive(Debug)]
pub struct StatusTracker {
    dir: RunDir,
    status: Status,
    finished: bool,
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
            writer: Some(Writer::me()),
        };
        dir.write_status(&status)?;
        Ok(StatusTracker {
            dir: dir.clone(),
            status,
            finished: false,
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
        self.finished = true;
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

impl Drop for StatusTracker {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.status.finished_unix_s = Some(unix_now());
        self.status.state = RunState::Failed;
        self.status.cause = Some(if std::thread::panicking() {
            "simctl panicked during the run (a bug: please report it with the logs)".to_string()
        } else {
            "simctl left the run before it finished".to_string()
        });
        // Nothing more can be done about an error while dropping.
        let _ = self.dir.write_status(&self.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_goes_running_then_failed_with_cause_and_phases() {
        let temp = tempfile::tempdir().unwrap();
        let (dir, _lock) = RunDir::claim(temp.path().join("r1")).unwrap();
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
    fn a_dropped_tracker_marks_the_run_failed() {
        let temp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(temp.path());
        let tracker = StatusTracker::start(&dir).unwrap();
        drop(tracker);
        let status = dir.status().unwrap().unwrap();
        assert_eq!(status.state, RunState::Failed);
        assert!(status.cause.unwrap().contains("before it finished"));
        let panicked = std::panic::catch_unwind(|| {
            let _tracker = StatusTracker::start(&dir).unwrap();
            panic!("boom");
        });
        assert!(panicked.is_err());
        let cause = dir.status().unwrap().unwrap().cause.unwrap();
        assert!(cause.contains("panicked"), "{cause}");
    }

    #[test]
    fn a_running_status_of_a_gone_simctl_reads_as_interrupted() {
        let temp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(temp.path());
        let tracker = StatusTracker::start(&dir).unwrap();
        assert_eq!(
            status(temp.path()).unwrap().unwrap().state,
            RunState::Running
        );
        std::mem::forget(tracker);
        // The same status written by a process that has exited (a child that is gone now).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut written = dir.status().unwrap().unwrap();
        written.writer = Some(Writer {
            pid,
            start_ticks: 1,
            ..Writer::me()
        });
        dir.write_status(&written).unwrap();
        let read = status(temp.path()).unwrap().unwrap();
        assert_eq!(read.state, RunState::Interrupted);
        assert!(read.cause.unwrap().contains(&format!("pid {pid} is gone")));
        // This process, but on another boot of the machine.
        written.writer = Some(Writer {
            boot_id: "another-boot".into(),
            ..Writer::me()
        });
        dir.write_status(&written).unwrap();
        assert_eq!(
            status(temp.path()).unwrap().unwrap().state,
            RunState::Interrupted
        );
        written.writer = Some(Writer::me());
        dir.write_status(&written).unwrap();
        assert_eq!(
            status(temp.path()).unwrap().unwrap().state,
            RunState::Running
        );
    }

    #[test]
    fn a_second_claim_fails_at_once_naming_the_holder_and_a_file_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("run");
        let (_dir, lock) = RunDir::claim(&path).unwrap();
        std::fs::write(path.join("console.log"), "kept").unwrap();
        let err = format!("{:#}", RunDir::claim(&path).unwrap_err());
        assert!(
            err.contains(&format!("in use by simctl pid {}", std::process::id())),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(path.join("console.log")).unwrap(),
            "kept"
        );
        drop(lock);
        RunDir::claim(&path).unwrap();
        let file = temp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = format!("{:#}", RunDir::claim(&file).unwrap_err());
        assert!(err.contains("is a file, not a run directory"), "{err}");
    }

    #[test]
    fn clearing_removes_only_what_a_run_writes() {
        let temp = tempfile::tempdir().unwrap();
        let (dir, _lock) = RunDir::claim(temp.path()).unwrap();
        std::fs::create_dir_all(dir.results_dir()).unwrap();
        std::fs::write(dir.results_dir().join("results.csv"), "old").unwrap();
        std::fs::write(dir.run_toml(), "old").unwrap();
        std::fs::write(temp.path().join("sweep.log"), "the sweep's").unwrap();
        dir.clear_outputs().unwrap();
        assert!(!dir.results_dir().exists() && !dir.run_toml().exists());
        assert!(temp.path().join("sweep.log").is_file());
        assert!(temp.path().join(LOCK_FILE).is_file());
    }

    #[test]
    fn corrupt_status_is_an_error_naming_the_file() {
        let temp = tempfile::tempdir().unwrap();
        let dir = RunDir::open(temp.path());
        std::fs::write(dir.status_path(), "{not json").unwrap();
        let message = format!("{:#}", dir.status().unwrap_err());
        assert!(message.contains("status.json"), "{message}");
    }
}

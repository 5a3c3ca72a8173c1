//! What a sweep produced: each point's state (from its run directory's status.json, else from
//! how its process ended), cause and wall time, printed as a table and kept as `sweep.json` in
//! the sweep directory beside the points' run directories (which `simctl report` compares).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::{Deserialize, Serialize};

use super::local::{End, Outcome, POINT_LOG};
use crate::fsutil::write_atomic;
use crate::run::rundir::{RunState, Status};

/// File name of the summary inside the sweep directory.
pub const SUMMARY_FILE: &str = "sweep.json";

/// Where a point stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointState {
    Ok,
    Failed,
    /// Submitted to Slurm, not finished yet.
    Pending,
    Running,
    /// Stopped by Ctrl-C while it ran.
    Interrupted,
    NotStarted,
}

impl std::fmt::Display for PointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    pub name: String,
    pub state: PointState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
}

/// Contents of sweep.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub dir: PathBuf,
    /// `local` or `slurm`.
    pub executor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
    pub interrupted: bool,
    pub points: Vec<PointSummary>,
}

/// The point's effective status: a `running` left by a simctl that is gone reads as
/// interrupted.
fn run_status(point_dir: &Path) -> Option<Status> {
    crate::run::rundir::status(point_dir).ok().flatten()
}

/// The last non-empty line of a log, to say why a point failed before it had a status.
fn last_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.trim().to_string())
}

/// A locally run point: its exit decides ok or failed; status.json gives the cause.
pub fn local_point(dir: &Path, outcome: &Outcome) -> PointSummary {
    let point_dir = dir.join(&outcome.name);
    let status = run_status(&point_dir);
    let log = point_dir.join(POINT_LOG);
    let (state, cause) = match &outcome.end {
        End::NotStarted => (PointState::NotStarted, None),
        End::Stopped => (
            PointState::Interrupted,
            Some("stopped by Ctrl-C".to_string()),
        ),
        End::Exited(Some(0)) => match status {
            Some(status) if status.state != RunState::Ok => (
                PointState::Failed,
                Some(status.cause.unwrap_or_else(|| {
                    format!("exited 0 but status.json says {:?}", status.state)
                })),
            ),
            _ => (PointState::Ok, None),
        },
        End::Exited(code) => {
            let how = code.map_or("was killed by a signal".to_string(), |c| {
                format!("exited with code {c}")
            });
            let cause = match status {
                Some(Status {
                    state: RunState::Failed | RunState::Interrupted,
                    cause: Some(cause),
                    ..
                }) => cause,
                _ => format!(
                    "{how}: {}",
                    last_line(&log).unwrap_or_else(|| format!("see {}", log.display()))
                ),
            };
            (PointState::Failed, Some(cause))
        }
    };
    let started = !matches!(outcome.end, End::NotStarted);
    PointSummary {
        name: outcome.name.clone(),
        state,
        cause,
        wall_s: started.then_some(outcome.wall.as_secs_f64()),
    }
}

/// A point run by a Slurm task: status.json is all there is (plus Slurm's own account of the
/// task when accounting is enabled, and the task's output file).
pub fn slurm_point(
    dir: &Path,
    name: &str,
    finished: bool,
    task_output: &Path,
    accounting: Option<&str>,
) -> PointSummary {
    let status = run_status(&dir.join(name));
    let wall_s = status.as_ref().and_then(|status| {
        status
            .finished_unix_s
            .map(|end| end.saturating_sub(status.started_unix_s) as f64)
    });
    let why_missing = || {
        let slurm = accounting
            .map(|state| format!("Slurm says {state}; "))
            .unwrap_or_default();
        let last = last_line(task_output)
            .map(|line| format!(": {line}"))
            .unwrap_or_default();
        format!("{slurm}see {}{last}", task_output.display())
    };
    let (state, cause) = match status {
        Some(Status {
            state: RunState::Ok,
            ..
        }) => (PointState::Ok, None),
        Some(Status {
            state: RunState::Failed,
            cause,
            ..
        }) => (PointState::Failed, cause),
        Some(Status {
            state: RunState::Interrupted,
            cause,
            ..
        }) => (PointState::Interrupted, cause),
        Some(Status {
            state: RunState::Running,
            ..
        }) if finished => (
            PointState::Failed,
            Some(format!(
                "the task ended while the run was running (time limit? node failure?); {}",
                why_missing()
            )),
        ),
        Some(_) => (PointState::Running, None),
        None if finished => (
            PointState::Failed,
            Some(format!("no status.json; {}", why_missing())),
        ),
        None => (PointState::Pending, None),
    };
    PointSummary {
        name: name.to_string(),
        state,
        cause,
        wall_s,
    }
}

impl Summary {
    pub fn failed(&self) -> usize {
        self.points
            .iter()
            .filter(|point| point.state != PointState::Ok)
            .count()
    }

    pub fn write(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("cannot serialize sweep.json")?;
        write_atomic(&self.dir.join(SUMMARY_FILE), format!("{text}\n").as_bytes())
    }

    pub fn read(dir: &Path) -> Result<Summary> {
        let path = dir.join(SUMMARY_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a sweep summary", path.display()))
    }

    /// The table printed at the end of a sweep.
    pub fn table(&self) -> Table {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["point", "state", "wall", "cause"]);
        for point in &self.points {
            let wall = point
                .wall_s
                .map(|s| format!("{s:.1} s"))
                .unwrap_or_default();
            let cause = point
                .cause
                .as_deref()
                .and_then(|cause| cause.lines().next())
                .map(|line| shorten(line, 100))
                .unwrap_or_default();
            table.add_row([point.name.clone(), point.state.to_string(), wall, cause]);
        }
        table
    }
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(name: &str, end: End) -> Outcome {
        Outcome {
            name: name.into(),
            end,
            wall: Duration::from_millis(1500),
        }
    }

    #[test]
    fn local_states_come_from_the_exit_and_status_json() {
        let dir = tempfile::tempdir().unwrap();
        let failed_dir = dir.path().join("failed");
        std::fs::create_dir(&failed_dir).unwrap();
        std::fs::write(
            failed_dir.join("status.json"),
            r#"{"state":"failed","cause":"watchdog fired","started_unix_s":1}"#,
        )
        .unwrap();
        let early = dir.path().join("early");
        std::fs::create_dir(&early).unwrap();
        std::fs::write(
            early.join(POINT_LOG),
            "platform: qemu\nerror: no workload 'x'\n",
        )
        .unwrap();

        let row = local_point(dir.path(), &outcome("failed", End::Exited(Some(2))));
        assert_eq!(row.state, PointState::Failed);
        assert_eq!(row.cause.as_deref(), Some("watchdog fired"));
        assert_eq!(row.wall_s, Some(1.5));
        let row = local_point(dir.path(), &outcome("early", End::Exited(Some(2))));
        assert_eq!(
            row.cause.as_deref(),
            Some("exited with code 2: error: no workload 'x'")
        );
        let row = local_point(dir.path(), &outcome("fine", End::Exited(Some(0))));
        assert_eq!((row.state, row.cause), (PointState::Ok, None));
        let row = local_point(dir.path(), &outcome("later", End::NotStarted));
        assert_eq!((row.state, row.wall_s), (PointState::NotStarted, None));
        assert_eq!(
            local_point(dir.path(), &outcome("cut", End::Stopped)).state,
            PointState::Interrupted
        );
    }

    #[test]
    fn slurm_states_come_from_status_json_and_the_task_output() {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("p");
        std::fs::create_dir(&point).unwrap();
        let output = dir.path().join("slurm-7_0.out");
        std::fs::write(&output, "error: boom\n").unwrap();
        let row = slurm_point(dir.path(), "p", false, &output, None);
        assert_eq!(row.state, PointState::Pending);
        let row = slurm_point(dir.path(), "p", true, &output, Some("FAILED"));
        assert_eq!(row.state, PointState::Failed);
        let cause = row.cause.unwrap();
        assert!(
            cause.contains("Slurm says FAILED") && cause.ends_with(": error: boom"),
            "{cause}"
        );
        std::fs::write(
            point.join("status.json"),
            r#"{"state":"ok","started_unix_s":100,"finished_unix_s":160}"#,
        )
        .unwrap();
        let row = slurm_point(dir.path(), "p", true, &output, None);
        assert_eq!((row.state, row.wall_s), (PointState::Ok, Some(60.0)));
        // A task killed with its simctl leaves `running` behind: it reads as interrupted.
        std::fs::write(
            point.join("status.json"),
            r#"{"state":"running","started_unix_s":100,
                "writer":{"host":"HOST","pid":4194304,"start_ticks":1,"boot_id":"x"}}"#
                .replace(
                    "HOST",
                    &rustix::system::uname().nodename().to_string_lossy(),
                ),
        )
        .unwrap();
        let row = slurm_point(dir.path(), "p", false, &output, None);
        assert_eq!(row.state, PointState::Interrupted);
        assert!(row.cause.unwrap().contains("has rebooted since"));
    }

    #[test]
    fn the_summary_round_trips_and_counts_what_did_not_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let summary = Summary {
            name: "s".into(),
            dir: dir.path().to_path_buf(),
            executor: "local".into(),
            slurm_job: None,
            interrupted: false,
            points: vec![
                local_point(dir.path(), &outcome("a", End::Exited(Some(0)))),
                local_point(dir.path(), &outcome("b", End::Exited(Some(1)))),
            ],
        };
        summary.write().unwrap();
        assert_eq!(Summary::read(dir.path()).unwrap(), summary);
        assert_eq!(summary.failed(), 1);
        let table = summary.table().to_string();
        assert!(table.contains("exited with code 1"), "{table}");
    }
}

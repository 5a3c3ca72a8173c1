//! A sweep as one Slurm array job. The task script is fixed text with no user value in it: each
//! task runs `"$SIMCTL_BIN" sweep-task --index "$SLURM_ARRAY_TASK_ID" sweep.toml` in the sweep
//! directory, and simctl's path reaches it through the environment of `sbatch`, which Slurm
//! exports to the job by default. Waiting polls `squeue` until the array has left the queue, then
//! asks `sacct` how each task ended (when the cluster keeps accounting; many small ones do not).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::fsutil::write_atomic;
use crate::process::Command;

/// The script every array task runs (see the module doc for why it is constant).
pub const TASK_SCRIPT: &str = "#!/bin/sh\n\
# Written by `simctl sweep --slurm`: runs point $SLURM_ARRAY_TASK_ID of sweep.toml.\n\
exec \"$SIMCTL_BIN\" sweep-task --index \"$SLURM_ARRAY_TASK_ID\" sweep.toml\n";
pub const TASK_FILE: &str = "task.sh";
/// How often `--wait` asks squeue.
const POLL: Duration = Duration::from_secs(2);
/// squeue failures in a row (controller restarting?) before waiting gives up.
const MAX_QUEUE_FAILURES: u32 = 5;

/// What to submit.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The sweep directory (absolute): the tasks' working directory, outputs go there.
    pub dir: PathBuf,
    pub name: String,
    pub tasks: usize,
    pub partition: Option<String>,
    /// Further sbatch options, passed as they are (e.g. `--time=2:00:00`).
    pub extra: Vec<String>,
    /// The simctl binary the tasks run.
    pub simctl: PathBuf,
}

impl Submission {
    /// The sbatch command line, with `SIMCTL_BIN` (and the simctl tree) in its environment.
    pub fn command(&self) -> Command {
        let dir = self.dir.display();
        let mut command = Command::new("sbatch").args([
            "--parsable".to_string(),
            format!("--array=0-{}", self.tasks.saturating_sub(1)),
            format!("--chdir={dir}"),
            format!("--job-name=simctl-{}", self.name),
            format!("--output={dir}/slurm-%A_%a.out"),
        ]);
        if let Some(partition) = &self.partition {
            command = command.arg(format!("--partition={partition}"));
        }
        command = command
            .args(&self.extra)
            .arg(self.dir.join(TASK_FILE))
            .env("SIMCTL_BIN", &self.simctl);
        // The tasks run in the sweep directory, maybe outside the simctl tree: tell them where it is.
        if std::env::var_os("SIMCTL_ROOT").is_none()
            && let Ok(project) = crate::project::Project::locate()
        {
            command = command.env("SIMCTL_ROOT", project.root());
        }
        command
    }

    /// Writes the task script and submits the array; returns the job id.
    pub fn submit(&self) -> Result<String> {
        let task = self.dir.join(TASK_FILE);
        write_atomic(&task, TASK_SCRIPT.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&task, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", task.display()))?;
        let command = self.command();
        let output = command.read_stdout().context(
            "sbatch refused the sweep; hint: check `sinfo` (is a controller reachable?), the \
             partition and any --slurm-arg",
        )?;
        // --parsable prints "JOBID" or "JOBID;CLUSTER".
        let job = output
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
            bail!("`{}` printed no job id: {output:?}", command.display());
        }
        Ok(job)
    }
}

/// The output file of array task `index` (Slurm's `slurm-%A_%a.out`).
pub fn task_output(dir: &Path, job: &str, index: usize) -> PathBuf {
    dir.join(format!("slurm-{job}_{index}.out"))
}

/// Waits until no task of `job` is queued or running; `stop()` (Ctrl-C) ends the wait, not the
/// job. Returns Slurm's final state per task index when accounting is enabled, else nothing.
pub fn wait(job: &str, stop: impl Fn() -> bool) -> Result<BTreeMap<usize, String>> {
    let mut failures = 0;
    let mut last_report = String::new();
    loop {
        if stop() {
            bail!("stopped waiting; Slurm job {job} keeps running (`scancel {job}` stops it)");
        }
        match queued_tasks(job) {
            Ok(tasks) if tasks.is_empty() => break,
            Ok(tasks) => {
                failures = 0;
                let report = count_states(&tasks);
                if report != last_report {
                    eprintln!("sweep: Slurm job {job}: {report}");
                    last_report = report;
                }
            }
            Err(err) => {
                failures += 1;
                if failures >= MAX_QUEUE_FAILURES {
                    return Err(err.context(format!(
                        "cannot follow Slurm job {job}; its tasks may still run (`squeue -j {job}`)"
                    )));
                }
            }
        }
        std::thread::sleep(POLL);
    }
    Ok(accounting(job).unwrap_or_default())
}

/// The states (PENDING, RUNNING, ...) of the job's tasks still in the queue.
fn queued_tasks(job: &str) -> Result<Vec<String>> {
    let result = Command::new("squeue")
        .args(["--noheader", "--array", "--format=%T", "--jobs", job])
        .read_stdout();
    match result {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()),
        // A job that ended long enough ago is unknown to squeue.
        Err(err) if format!("{err:#}").contains("Invalid job id") => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

fn count_states(states: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for state in states {
        *counts.entry(state.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(state, count)| format!("{count} {}", state.to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Slurm's final state of each array task, or None when accounting is disabled.
fn accounting(job: &str) -> Option<BTreeMap<usize, String>> {
    let text = Command::new("sacct")
        .args([
            "--noheader",
            "--parsable2",
            "--allocations",
            "--format=JobID,State,ExitCode",
            "--jobs",
            job,
        ])
        .read_stdout()
        .ok()?;
    Some(parse_accounting(job, &text))
}

/// `JOB_INDEX|STATE|EXIT:SIGNAL` lines -> index -> "STATE (exit EXIT:SIGNAL)".
fn parse_accounting(job: &str, text: &str) -> BTreeMap<usize, String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            let id = fields.next()?;
            let state = fields.next()?;
            let exit = fields.next()?;
            let index = id.strip_prefix(job)?.strip_prefix('_')?.parse().ok()?;
            Some((index, format!("{state} (exit {exit})")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_gets_one_array_and_the_fixed_task_script() {
        let submission = Submission {
            dir: PathBuf::from("/data/sw eep"),
            name: "aes".into(),
            tasks: 4,
            partition: Some("sim".into()),
            extra: vec!["--time=1:00:00".into()],
            simctl: PathBuf::from("/opt/simctl"),
        };
        assert_eq!(
            submission.command().display(),
            "sbatch --parsable --array=0-3 '--chdir=/data/sw eep' --job-name=simctl-aes \
             '--output=/data/sw eep/slurm-%A_%a.out' --partition=sim --time=1:00:00 \
             '/data/sw eep/task.sh'"
        );
        assert!(!TASK_SCRIPT.contains("aes") && TASK_SCRIPT.contains("$SIMCTL_BIN"));
    }

    #[test]
    fn accounting_lines_map_to_task_indexes() {
        let text = "41_0|COMPLETED|0:0\n41_1|FAILED|2:0\n41_2|TIMEOUT|0:15\n410_3|FAILED|1:0\n";
        let states = parse_accounting("41", text);
        assert_eq!(states.len(), 3);
        assert_eq!(states[&1], "FAILED (exit 2:0)");
        assert_eq!(states[&2], "TIMEOUT (exit 0:15)");
        assert_eq!(
            count_states(&["RUNNING".into(), "PENDING".into(), "RUNNING".into()]),
            "1 pending, 2 running"
        );
    }
}

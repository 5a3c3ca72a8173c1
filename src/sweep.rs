//! `simctl sweep`: many runs across configurations, from one TOML file.
//!
//! A sweep file names a `[base]` of `simctl run` options and a `[matrix]` of options with lists
//! of values; the sweep is their cartesian product. Each point is one `simctl run ... --out
//! <sweep dir>/<point>` (an argument vector, never a shell line), run locally (up to `--jobs` at
//! once, each a supervised child) or as one Slurm array job whose task script is fixed text.
//! Shared artifacts (kernel, image, checkpoint) are built once: the cache serialises builders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::process::{Command, Supervised};

/// Run a set of runs across configurations, locally in parallel or on Slurm.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl sweep sweeps/qemu-smoke.toml --jobs 2\n  simctl sweep sweeps/aes-cpu-models.toml --slurm --partition sim\n  simctl sweep sweeps/aes-cpu-models.toml --dry-run"
)]
pub struct SweepArgs {
    /// The sweep file (TOML with `name`, `[base]`, `[matrix]`).
    pub file: PathBuf,
    /// Points run at once locally.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Submit one Slurm array job instead of running locally.
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Where the sweep's run directories go; default: sweeps-out/<name>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print what would run and exit.
    #[arg(long)]
    pub dry_run: bool,
}

/// The `simctl run` options a sweep may set.
const RUN_OPTIONS: &[&str] = &[
    "workload",
    "platform",
    "system",
    "cpu",
    "set",
    "invocations",
    "warmup",
    "pattern",
    "rps",
    "arrival",
    "parallel",
    "pause",
    "request",
    "timeout",
    "watchdog",
    "force",
    "kernel_config",
    "image_spec",
    "jobs",
];

/// A sweep file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub name: String,
    #[serde(default)]
    pub base: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub matrix: BTreeMap<String, Vec<toml::Value>>,
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub name: String,
    /// `simctl run` arguments (without the program and `--out`).
    pub args: Vec<String>,
}

fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn option_args(key: &str, value: &toml::Value) -> Vec<String> {
    let flag = format!("--{}", key.replace('_', "-"));
    match value {
        toml::Value::Boolean(true) => vec![flag],
        toml::Value::Boolean(false) => vec![],
        toml::Value::Array(items) => items
            .iter()
            .flat_map(|item| [flag.clone(), value_text(item)])
            .collect(),
        other => vec![flag, value_text(other)],
    }
}

fn check_keys<'a>(keys: impl Iterator<Item = &'a String>, table: &str) -> Result<()> {
    for key in keys {
        if !RUN_OPTIONS.contains(&key.as_str()) {
            bail!(
                "[{table}] has unknown option '{key}'; valid options: {}",
                RUN_OPTIONS.join(", ")
            );
        }
    }
    Ok(())
}

/// The points of a sweep: the cartesian product of the matrix over the base.
pub fn expand(sweep: &SweepFile) -> Result<Vec<Point>> {
    check_keys(sweep.base.keys(), "base")?;
    check_keys(sweep.matrix.keys(), "matrix")?;
    if let Some((key, _)) = sweep.matrix.iter().find(|(_, values)| values.is_empty()) {
        bail!("[matrix] {key} has no values");
    }
    let mut combinations: Vec<Vec<(&String, &toml::Value)>> = vec![Vec::new()];
    for (key, values) in &sweep.matrix {
        combinations = combinations
            .into_iter()
            .flat_map(|combination| {
                values.iter().map(move |value| {
                    let mut next = combination.clone();
                    next.push((key, value));
                    next
                })
            })
            .collect();
    }
    Ok(combinations
        .into_iter()
        .map(|combination| {
            let mut options: BTreeMap<&String, &toml::Value> = sweep.base.iter().collect();
            options.extend(combination.iter().copied());
            let args = options
                .iter()
                .flat_map(|(key, value)| option_args(key, value))
                .collect();
            let name = if combination.is_empty() {
                "base".to_string()
            } else {
                combination
                    .iter()
                    .map(|(key, value)| format!("{key}-{}", value_text(value)))
                    .collect::<Vec<_>>()
                    .join("_")
                    .replace(
                        |c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)),
                        "-",
                    )
            };
            Point { name, args }
        })
        .collect())
}

pub fn load(path: &Path) -> Result<SweepFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read sweep file {}", path.display()))?;
    toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// The state of a point, from its run directory's status.json.
fn point_state(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|status| status["state"].as_str().map(str::to_string))
        .unwrap_or_else(|| "not started".into())
}

/// Runs `commands` with at most `jobs` at once; returns each one's exit success.
pub fn run_points(
    commands: Vec<(String, Command, PathBuf)>,
    jobs: usize,
) -> Result<Vec<(String, bool, Duration)>> {
    let mut pending = commands.into_iter();
    let mut running: Vec<(String, Supervised, Instant)> = Vec::new();
    let mut finished = Vec::new();
    loop {
        while running.len() < jobs.max(1) {
            let Some((name, command, log)) = pending.next() else {
                break;
            };
            eprintln!("sweep: start {name}");
            running.push((name, command.spawn_logged(&log)?, Instant::now()));
        }
        if running.is_empty() {
            return Ok(finished);
        }
        if crate::process::interrupted() {
            for (name, mut child, started) in running.drain(..) {
                child.terminate();
                finished.push((name, false, started.elapsed()));
            }
            bail!("sweep interrupted; finished points keep their run directories");
        }
        let mut index = 0;
        while index < running.len() {
            let (_, child, _) = &mut running[index];
            match child.try_ended()? {
                None => index += 1,
                Some(ended) => {
                    let (name, _, started) = running.remove(index);
                    eprintln!(
                        "sweep: {name} {}",
                        if ended.success() { "done" } else { "failed" }
                    );
                    finished.push((name, ended.success(), started.elapsed()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fixed task script of a Slurm array job: no user value is ever written into it.
const TASK_SCRIPT: &str =
    "#!/bin/sh\nexec \"$SIMCTL_BIN\" sweep-task --index \"$SLURM_ARRAY_TASK_ID\" sweep.json\n";

fn submit_slurm(
    dir: &Path,
    name: &str,
    count: usize,
    partition: Option<&str>,
    dry_run: bool,
) -> Result<()> {
    let task = dir.join("task.sh");
    write_atomic(&task, TASK_SCRIPT.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&task, std::fs::Permissions::from_mode(0o755))?;
    let mut command = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array=0-{}", count - 1))
        .arg(format!("--chdir={}", dir.display()))
        .arg(format!("--job-name=simctl-{name}"))
        .arg(format!("--output={}/slurm-%A_%a.out", dir.display()));
    if let Some(partition) = partition {
        command = command.arg(format!("--partition={partition}"));
    }
    let command = command
        .arg(&task)
        .env("SIMCTL_BIN", std::env::current_exe()?);
    if dry_run {
        println!("{}", command.display());
        return Ok(());
    }
    let job = command
        .read_stdout()
        .context("sbatch failed; hint: apt-get install slurm-client and check `sinfo`")?;
    println!(
        "submitted Slurm array job {} ({count} tasks); run directories in {}",
        job.trim(),
        dir.display()
    );
    Ok(())
}

/// The resolved sweep, as the Slurm tasks read it.
#[derive(Debug, Serialize, Deserialize)]
struct Resolved {
    points: Vec<Point>,
}

pub fn run_cli(args: SweepArgs) -> Result<()> {
    let sweep = load(&args.file)?;
    let points = expand(&sweep)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("sweeps-out").join(&sweep.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    write_atomic(
        &dir.join("sweep.json"),
        serde_json::to_string_pretty(&Resolved {
            points: points.clone(),
        })?
        .as_bytes(),
    )?;
    if args.slurm {
        return submit_slurm(
            &dir,
            &sweep.name,
            points.len(),
            args.partition.as_deref(),
            args.dry_run,
        );
    }
    let exe = std::env::current_exe()?;
    let commands: Vec<(String, Command, PathBuf)> = points
        .iter()
        .map(|point| {
            let out = dir.join(&point.name);
            let command = Command::new(&exe)
                .arg("run")
                .args(point.args.iter())
                .arg("--out")
                .arg(&out);
            (point.name.clone(), command, out.join("sweep.log"))
        })
        .collect();
    if args.dry_run {
        for (_, command, _) in &commands {
            println!("{}", command.display());
        }
        return Ok(());
    }
    crate::process::install_signal_handlers();
    let results = run_points(commands, args.jobs)?;
    println!("{:<40} {:<12} {:>10}", "point", "state", "wall (s)");
    let mut failed = 0;
    for (name, ok, wall) in &results {
        let state = point_state(&dir.join(name));
        failed += usize::from(!ok);
        println!("{name:<40} {state:<12} {:>10.1}", wall.as_secs_f64());
    }
    if failed > 0 {
        bail!(
            "{failed} of {} point(s) failed; see <point>/sweep.log and <point>/status.json in {}",
            results.len(),
            dir.display()
        );
    }
    Ok(())
}

/// Runs point `index` of a resolved sweep (what a Slurm array task does).
#[derive(Debug, clap::Args)]
pub struct SweepTaskArgs {
    #[arg(long)]
    pub index: usize,
    pub resolved: PathBuf,
}

pub fn run_task(args: SweepTaskArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.resolved)
        .with_context(|| format!("cannot read {}", args.resolved.display()))?;
    let resolved: Resolved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a resolved sweep", args.resolved.display()))?;
    let point = resolved.points.get(args.index).with_context(|| {
        format!(
            "the sweep has {} points; there is no index {}",
            resolved.points.len(),
            args.index
        )
    })?;
    let dir = args
        .resolved
        .parent()
        .unwrap_or(Path::new("."))
        .join(&point.name);
    let command = Command::new(std::env::current_exe()?)
        .arg("run")
        .args(point.args.iter())
        .arg("--out")
        .arg(&dir);
    command.run_logged(&dir.join("sweep.log"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(text: &str) -> SweepFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn matrix_expands_to_the_cartesian_product_with_readable_names() {
        let points = expand(&sweep(
            "name='s'\n[base]\nworkload='aes-go'\ninvocations=5\nforce=true\nset=['a=1','b=2']\n[matrix]\ncpu=['atomic','o3']\nsystem=['default','skylake-like']\n",
        ))
        .unwrap();
        assert_eq!(points.len(), 4);
        assert_eq!(points[0].name, "cpu-atomic_system-default");
        assert_eq!(points[3].name, "cpu-o3_system-skylake-like");
        let args = points[3].args.join(" ");
        assert!(
            args.contains("--cpu o3") && args.contains("--system skylake-like"),
            "{args}"
        );
        assert!(
            args.contains("--force") && args.contains("--invocations 5"),
            "{args}"
        );
        assert!(args.contains("--set a=1 --set b=2"), "{args}");
    }

    #[test]
    fn unknown_options_are_named_with_the_valid_ones() {
        let err = expand(&sweep("name='s'\n[matrix]\ncolour=['red']\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'colour'") && err.contains("workload"),
            "{err}"
        );
        let err = expand(&sweep("name='s'\n[matrix]\ncpu=[]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no values"), "{err}");
    }

    #[test]
    fn local_executor_limits_parallelism_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let marks = dir.path().join("marks");
        std::fs::create_dir(&marks).unwrap();
        // Each job records start and end times; with 2 slots, at most 2 overlap.
        let commands: Vec<_> = (0..4)
            .map(|i| {
                let script = format!(
                    "date +%s%N > {m}/{i}.start; sleep 0.4; date +%s%N > {m}/{i}.end; exit {code}",
                    m = marks.display(),
                    code = if i == 3 { 1 } else { 0 }
                );
                (
                    format!("p{i}"),
                    Command::new("sh").args(["-c", script.as_str()]),
                    dir.path().join(format!("{i}.log")),
                )
            })
            .collect();
        let results = run_points(commands, 2).unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results.iter().filter(|(_, ok, _)| !ok).count(), 1);
        let read = |name: String| {
            std::fs::read_to_string(marks.join(name))
                .unwrap()
                .trim()
                .parse::<u128>()
                .unwrap()
        };
        let spans: Vec<(u128, u128)> = (0..4)
            .map(|i| (read(format!("{i}.start")), read(format!("{i}.end"))))
            .collect();
        for (start, _) in &spans {
            let overlapping = spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count();
            assert!(
                overlapping <= 2,
                "more than 2 points ran at once: {spans:?}"
            );
        }
    }
}

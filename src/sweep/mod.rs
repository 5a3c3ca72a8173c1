//! `simctl sweep`: many runs across configurations, from one TOML file.
//!
//! A sweep file has a `[base]` of `simctl run` options, a `[matrix]` of options with lists of
//! values and optional `[[run]]` entries; [`file::expand`] turns it into points. Each point is
//! one `simctl run ARGS --out <sweep dir>/<point>` (an argument vector, never a shell line), run
//! locally ([`local`], up to `--jobs` at once) or as one Slurm array job ([`slurm`], each task
//! runs the hidden `simctl sweep-task`). [`summary`] writes `sweep.json` and the final table.
//! Shared artifacts (kernel, image, checkpoint) are built once: the cache serialises builders.

pub mod file;
pub mod local;
pub mod slurm;
pub mod summary;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::process::{self, Command};
pub use file::{Point, Resolved, SweepFile, expand};
use summary::{PointState, Summary};

/// Where sweep directories go unless `--out` says otherwise.
const DEFAULT_PARENT: &str = "sweeps-out";

/// Run a set of runs across configurations, locally in parallel or on Slurm.
///
/// The sweep file sets `simctl run` options by their long name with `_` for `-`:
/// `name = "..."`, `[base]` options for every point, `[matrix]` options with a list of values
/// (every combination is a point), and optional `[[run]]` tables, each combined with every
/// combination. Each point's run directory is `<out>/<point>`, e.g. `cpu-o3_workload-aes-go`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  simctl sweep sweeps/qemu-smoke.toml --jobs 2
  simctl sweep sweeps/aes-cpu-models.toml --dry-run
  simctl sweep sweeps/aes-cpu-models.toml --slurm --partition sim --slurm-arg=--time=4:00:00 --wait
  simctl report sweeps-out/aes-cpu-models/*/ --cpu 1

A sweep file:
  name = \"aes-cpu-models\"
  [base]
  workload = \"aes-go\"
  invocations = 10
  set = [\"llc_size=1MB\"]
  [matrix]
  cpu = [\"atomic\", \"timing\", \"o3\"]

Slurm tasks run in the sweep directory, which must be on a file system the nodes share; they
find simctl through $SIMCTL_BIN, exported by sbatch with the rest of the environment.")]
pub struct SweepArgs {
    /// The sweep file (TOML).
    pub file: PathBuf,
    /// Points run at once locally (each gem5 run uses one core).
    #[arg(long, default_value = "1")]
    pub jobs: NonZeroUsize,
    /// Submit one Slurm array job instead of running locally.
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Further sbatch option (repeatable), e.g. --slurm-arg=--time=2:00:00.
    #[arg(
        long = "slurm-arg",
        value_name = "ARG",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    pub slurm_args: Vec<String>,
    /// After submitting, wait for the array job and print the summary.
    #[arg(long, requires = "slurm")]
    pub wait: bool,
    /// Print the command of every point (and the sbatch command) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Sweep directory; default: sweeps-out/<name>.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs point INDEX of a resolved sweep (what each Slurm array task does).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  simctl sweep-task --index 0 sweeps-out/qemu-smoke/sweep.toml")]
pub struct SweepTaskArgs {
    /// Index of the point in the resolved sweep.
    #[arg(long)]
    pub index: usize,
    /// The resolved sweep (`sweep.toml` in a sweep directory, written by `simctl sweep`).
    pub resolved: PathBuf,
}

/// The `simctl run` command of a point.
pub fn run_command(simctl: &Path, dir: &Path, point: &Point) -> Command {
    Command::new(simctl)
        .arg("run")
        .args(&point.args)
        .arg("--out")
        .arg(dir.join(&point.name))
}

fn current_simctl() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find simctl's own executable to run the points")
}

pub fn run_cli(args: SweepArgs) -> Result<()> {
    let sweep = SweepFile::load(&args.file)?;
    let points = expand(&sweep)?;
    file::check_points_in(&crate::project::Project::locate()?, &points)
        .with_context(|| format!("sweep {}", args.file.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(DEFAULT_PARENT).join(sweep.name()));
    let dir = std::path::absolute(&out)
        .with_context(|| format!("cannot resolve the sweep directory {}", out.display()))?;
    let simctl = current_simctl()?;
    if args.dry_run {
        for point in &points {
            println!("{}", run_command(&simctl, &dir, point).display());
        }
        if args.slurm {
            println!(
                "{}",
                submission(&args, &sweep, &dir, &points, simctl)
                    .command()
                    .display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the sweep directory {}", dir.display()))?;
    Resolved {
        name: sweep.name().to_string(),
        points: points.clone(),
    }
    .write(&dir)?;
    process::install_signal_handlers();
    let summary = if args.slurm {
        let job = submission(&args, &sweep, &dir, &points, simctl).submit()?;
        println!(
            "submitted Slurm array job {job} ({} points) in {}",
            points.len(),
            dir.display()
        );
        let summary = slurm_summary(&sweep, &dir, &points, &job, false, &Default::default());
        summary.write()?;
        if !args.wait {
            println!("follow it with `squeue -j {job}`; each point's state is in its status.json");
            return Ok(());
        }
        let accounting = slurm::wait(&job, process::interrupted)?;
        slurm_summary(&sweep, &dir, &points, &job, true, &accounting)
    } else {
        let executed = local::run_points(
            &points,
            &dir,
            args.jobs.get(),
            process::interrupted,
            |point| run_command(&simctl, &dir, point),
        )?;
        Summary {
            name: sweep.name().to_string(),
            dir: dir.clone(),
            executor: "local".into(),
            slurm_job: None,
            interrupted: executed.stopped,
            points: executed
                .outcomes
                .iter()
                .map(|outcome| summary::local_point(&dir, outcome))
                .collect(),
        }
    };
    summary.write()?;
    println!("{}", summary.table());
    if summary.interrupted {
        bail!(
            "sweep interrupted; finished points keep their run directories in {}",
            dir.display()
        );
    }
    let failed = summary.failed();
    if failed > 0 {
        bail!(
            "{failed} of {} points did not succeed; see <point>/sweep.log and <point>/status.json \
             in {}",
            summary.points.len(),
            dir.display()
        );
    }
    println!("compare them: simctl report {}/*/", dir.display());
    Ok(())
}

fn submission(
    args: &SweepArgs,
    sweep: &SweepFile,
    dir: &Path,
    points: &[Point],
    simctl: PathBuf,
) -> slurm::Submission {
    slurm::Submission {
        dir: dir.to_path_buf(),
        name: sweep.name().to_string(),
        tasks: points.len(),
        partition: args.partition.clone(),
        extra: args.slurm_args.clone(),
        simctl,
    }
}

fn slurm_summary(
    sweep: &SweepFile,
    dir: &Path,
    points: &[Point],
    job: &str,
    finished: bool,
    accounting: &std::collections::BTreeMap<usize, String>,
) -> Summary {
    Summary {
        name: sweep.name().to_string(),
        dir: dir.to_path_buf(),
        executor: "slurm".into(),
        slurm_job: Some(job.to_string()),
        interrupted: false,
        points: points
            .iter()
            .enumerate()
            .map(|(index, point)| {
                summary::slurm_point(
                    dir,
                    &point.name,
                    finished,
                    &slurm::task_output(dir, job, index),
                    accounting.get(&index).map(String::as_str),
                )
            })
            .collect(),
    }
}

pub fn run_task(args: SweepTaskArgs) -> Result<()> {
    let resolved_path = std::path::absolute(&args.resolved)
        .with_context(|| format!("cannot resolve {}", args.resolved.display()))?;
    let resolved = Resolved::read(&resolved_path)?;
    let point = resolved.points.get(args.index).with_context(|| {
        format!(
            "{} has {} points; there is no index {}",
            resolved_path.display(),
            resolved.points.len(),
            args.index
        )
    })?;
    let dir = resolved_path.parent().unwrap_or(Path::new("/"));
    let simctl = current_simctl()?;
    process::install_signal_handlers();
    let executed = local::run_points(
        std::slice::from_ref(point),
        dir,
        1,
        process::interrupted,
        |point| run_command(&simctl, dir, point),
    )?;
    let row = executed
        .outcomes
        .first()
        .map(|outcome| summary::local_point(dir, outcome))
        .context("the point did not run")?;
    match row.state {
        PointState::Ok => {
            println!("{}: ok", point.name);
            Ok(())
        }
        state => bail!(
            "point {} {state}: {}",
            point.name,
            row.cause.unwrap_or_default()
        ),
    }
}

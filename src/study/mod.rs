//! `simctl study NAME`: published serverless experiments as one command each. A study is a
//! sweep file under `studies/` (the matrix of `simctl run` options, in `simctl sweep`'s format)
//! plus the analysis that turns its runs into an answer: tidy CSVs, plots, `study.json` and a
//! `report.md` that states the method.
//!
//! ```text
//! studies-out/<name>/
//!   runs/<point>/   one run directory per point (simctl run --out), with its sweep.log
//!   study.json      the points, their states and wall times, and the study's summary numbers
//!   *.csv           tidy tables (one row per point, one row per request), ready for pandas
//!   *.svg, *.png    the plots
//!   report.md       method (repetitions, warm-up, arrivals, clock) and results
//! ```
//!
//! Points run one at a time, so a run never shares the machine with another run of the study.
//! The study talks to the sweep code only through its file format (`SweepFile`, `expand`) and
//! its executor (`local::run_points`, `run_command`, `summary::local_point`); each point's
//! options are read back with `simctl run`'s own clap definition.

pub mod clock;
pub mod concurrency;
pub mod hooks;
pub mod latency;
pub mod load;
pub mod lukewarm;
pub mod plot;
pub mod stages;
pub mod stats;
pub mod syscalls;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args as _, FromArgMatches as _};
use serde::Serialize;
use simctl_guest::records::{Invocation, Phase, from_csv};

use crate::fsutil::write_atomic;
use crate::process;
use crate::project::Project;
use crate::run::RunArgs;
use crate::run::cmdline::PlatformKind;
use crate::run::rundir::{RunDir, RunState};
use crate::run::spec::LoadPattern;
use crate::sweep::summary::{PointState, PointSummary, local_point};
use crate::sweep::{Point, SweepFile, expand, local, run_command};

/// Where study directories go unless `--out` says otherwise.
const DEFAULT_PARENT: &str = "studies-out";
/// Folder of the study files in the tree.
const STUDIES_DIR: &str = "studies";

/// The studies simctl knows how to analyse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StudyName {
    /// Open-loop RPS sweep (Knative load-testing study): latency percentiles against load.
    LoadSweep,
    /// K concurrent rounds vs K independent streams (Cloud Run reconstruction).
    RoundsStreams,
    /// Per-syscall cost of sandboxing (Kalium): bare, seccomp-BPF, ptrace.
    Syscalls,
    /// Overhead of an LD_PRELOAD hook of libc read() (hook-latency paper), micro benchmark.
    HookOverhead,
    /// Warm vs lukewarm functions (Schall et al., ISCA 2022): CPI and misses with a co-runner
    /// thrashing the core between invocations; gem5 only.
    Lukewarm,
}

impl StudyName {
    pub fn name(self) -> &'static str {
        match self {
            StudyName::LoadSweep => "load-sweep",
            StudyName::RoundsStreams => "rounds-streams",
            StudyName::Syscalls => "syscalls",
            StudyName::HookOverhead => "hook-overhead",
            StudyName::Lukewarm => "lukewarm",
        }
    }
}

/// Run a published serverless study end to end and write its report.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  simctl study load-sweep --quick
  simctl study rounds-streams --platform qemu
  simctl study load-sweep --file my-load-sweep.toml --out studies-out/mine
  simctl study load-sweep --report-only        (re-analyse the runs already there)

The matrix of each study is a sweep file: studies/NAME.toml, or studies/NAME.quick.toml with
--quick (the reduced version CI runs). `simctl sweep studies/NAME.toml` runs the same matrix
without the analysis. The study sets --platform on every point; its files must not.")]
pub struct StudyArgs {
    /// The study.
    #[arg(value_enum)]
    pub name: StudyName,
    /// gem5 or qemu; default: gem5 when a gem5 binary is configured, QEMU otherwise.
    #[arg(long, value_enum)]
    pub platform: Option<PlatformKind>,
    /// The reduced version (studies/NAME.quick.toml): minutes on QEMU.
    #[arg(long)]
    pub quick: bool,
    /// A sweep file to use instead of the study's own.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Study directory; default: studies-out/<name in the sweep file>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not run anything: analyse the runs already in the study directory.
    #[arg(long)]
    pub report_only: bool,
}

/// One point of a study: what `simctl run` gets and the same options parsed.
#[derive(Debug, Clone)]
pub struct Planned {
    pub point: Point,
    pub run: RunArgs,
    /// The point's load pattern, resolved (and checked) once when the study is planned.
    pub load: LoadPattern,
}

impl Planned {
    pub fn new(point: Point, run: RunArgs) -> Result<Planned> {
        let load = crate::run::spec::load_pattern(&run)
            .with_context(|| format!("point '{}'", point.name))?;
        Ok(Planned { point, run, load })
    }
}

/// A point after the study ran (or found) it.
#[derive(Debug, Clone)]
pub struct Done {
    pub planned: Planned,
    pub summary: PointSummary,
    /// The measured records from results.csv (empty when the run left none).
    pub measured: Vec<Invocation>,
    pub dir: PathBuf,
    /// Guest seconds per real second of the run (see `clock`); None when the console does not
    /// say.
    pub clock_skew: Option<f64>,
}

impl Done {
    /// Whether the point ran to an end (ok or failed); points not started or still running (an
    /// interrupted study, --report-only) have no numbers to compare and stay out of the tables.
    pub fn ended(&self) -> bool {
        matches!(self.summary.state, PointState::Ok | PointState::Failed)
    }

    /// Whether the run's guest clock kept real time, so its numbers compare with the others.
    pub fn clock_ok(&self) -> bool {
        clock::trustworthy(self.clock_skew)
    }
}

/// What a study's analysis hands back for the report.
pub struct Section {
    /// Markdown: method details and results (tables, plot references).
    pub markdown: String,
    /// The study's summary numbers for study.json.
    pub summary: serde_json::Value,
    /// Files written into the study directory (CSVs, plots).
    pub files: Vec<String>,
}

/// Contents of study.json.
#[derive(Debug, Serialize)]
struct StudyRecord<'a> {
    study: StudyName,
    file: String,
    sweep: String,
    platform: String,
    quick: bool,
    dir: String,
    wall_s: Option<f64>,
    points: Vec<PointRecord<'a>>,
    files: &'a [String],
    summary: &'a serde_json::Value,
}

#[derive(Debug, Serialize)]
struct PointRecord<'a> {
    name: &'a str,
    args: &'a [String],
    state: PointState,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wall_s: Option<f64>,
    measured_records: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_clock_skew: Option<f64>,
}

/// Parses `args` with `simctl run`'s own definition.
pub fn parse_run_args(args: &[String]) -> Result<RunArgs> {
    let matches = RunArgs::augment_args(clap::Command::new("simctl run").no_binary_name(true))
        .try_get_matches_from(args)
        .map_err(|err| anyhow::anyhow!("{}", err.render().to_string().trim()))?;
    Ok(RunArgs::from_arg_matches(&matches)?)
}

/// The study file: `--file`, else `studies/NAME.toml` (`NAME.quick.toml` with --quick).
fn study_file(project: &Project, args: &StudyArgs) -> PathBuf {
    args.file.clone().unwrap_or_else(|| {
        let suffix = if args.quick { ".quick.toml" } else { ".toml" };
        project
            .root()
            .join(STUDIES_DIR)
            .join(format!("{}{suffix}", args.name.name()))
    })
}

/// The points of a study file with `--platform` set on each, plus the study's own extra points.
pub fn plan(
    name: StudyName,
    file: &Path,
    platform: PlatformKind,
) -> Result<(String, Vec<Planned>)> {
    let sweep = SweepFile::load(file)?;
    let mut planned = Vec::new();
    for mut point in expand(&sweep)? {
        let run = parse_run_args(&point.args)
            .with_context(|| format!("{}: point '{}'", file.display(), point.name))?;
        if run.platform.is_some() {
            bail!(
                "{}: sets `platform`; hint: remove it, `simctl study --platform` chooses the \
                 platform of every point",
                file.display()
            );
        }
        point
            .args
            .extend(["--platform".to_string(), platform.to_string()]);
        let run = parse_run_args(&point.args)?;
        planned.push(Planned::new(point, run)?);
    }
    match name {
        StudyName::LoadSweep => planned = load::with_baselines(planned, platform)?,
        StudyName::Syscalls => syscalls::check_points(&planned)?,
        StudyName::HookOverhead => planned = hooks::plan_points(planned)?,
        StudyName::RoundsStreams => concurrency::check_points(&planned)?,
        StudyName::Lukewarm => lukewarm::check_points(&planned, platform)?,
    }
    Ok((sweep.name().to_string(), planned))
}

fn current_simctl() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find simctl's own executable to run the points")
}

/// The measured records a run left, whatever its state.
fn measured_records(dir: &Path) -> Result<Vec<Invocation>> {
    let csv = RunDir::open(dir).results_dir().join("results.csv");
    let text = match std::fs::read_to_string(&csv) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", csv.display())),
    };
    let records = from_csv(&text).map_err(|err| anyhow::anyhow!("{}: {err}", csv.display()))?;
    Ok(records
        .into_iter()
        .filter(|r| r.phase == Phase::Measured)
        .collect())
}

/// A point's state from its run directory alone (for --report-only).
fn found_point(dir: &Path, name: &str) -> Result<PointSummary> {
    let status = RunDir::open(dir.join(name)).status()?;
    let (state, cause) = match status {
        None => (PointState::NotStarted, None),
        Some(status) => (
            match status.state {
                RunState::Ok => PointState::Ok,
                RunState::Failed => PointState::Failed,
                RunState::Running => PointState::Running,
                RunState::Interrupted => PointState::Interrupted,
            },
            status.cause,
        ),
    };
    Ok(PointSummary {
        name: name.to_string(),
        state,
        cause,
        wall_s: None,
    })
}

pub fn run_cli(args: StudyArgs) -> Result<()> {
    let project = Project::locate()?;
    let platform = match args.platform {
        Some(platform) => platform,
        None if project.gem5()?.is_some() => PlatformKind::Gem5,
        None => PlatformKind::Qemu,
    };
    let file = study_file(&project, &args);
    let (sweep_name, planned) = plan(args.name, &file, platform)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(DEFAULT_PARENT).join(&sweep_name));
    let dir = std::path::absolute(&out)
        .with_context(|| format!("cannot resolve the study directory {}", out.display()))?;
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs)
        .with_context(|| format!("cannot create the study directory {}", dir.display()))?;
    eprintln!(
        "study {}: {} points on {platform} from {}, in {}",
        args.name.name(),
        planned.len(),
        file.display(),
        dir.display()
    );
    let started = Instant::now();
    let (summaries, stopped) = if args.report_only {
        let found = planned
            .iter()
            .map(|p| found_point(&runs, &p.point.name))
            .collect::<Result<Vec<_>>>()?;
        (found, false)
    } else {
        process::install_signal_handlers();
        let simctl = current_simctl()?;
        let points: Vec<Point> = planned.iter().map(|p| p.point.clone()).collect();
        // One at a time: runs of a study must not disturb each other's timing.
        let executed = local::run_points(&points, &runs, 1, process::interrupted, |point| {
            run_command(&simctl, &runs, point)
        })?;
        let summaries = executed
            .outcomes
            .iter()
            .map(|outcome| local_point(&runs, outcome))
            .collect();
        (summaries, executed.stopped)
    };
    let wall_s = (!args.report_only).then(|| started.elapsed().as_secs_f64());
    let done = planned
        .into_iter()
        .zip(summaries)
        .map(|(planned, summary)| {
            let point_dir = runs.join(&planned.point.name);
            Ok(Done {
                measured: measured_records(&point_dir)?,
                clock_skew: clock::run_skew(&point_dir),
                dir: point_dir,
                planned,
                summary,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let context = Study {
        name: args.name,
        platform,
        quick: args.quick,
        file: &file,
        dir: &dir,
        wall_s,
    };
    let section = match args.name {
        StudyName::LoadSweep => load::analyse(&context, &done)?,
        StudyName::RoundsStreams => concurrency::analyse(&context, &done)?,
        StudyName::Syscalls => syscalls::analyse(&context, &done)?,
        StudyName::HookOverhead => hooks::analyse(&context, &done)?,
        StudyName::Lukewarm => lukewarm::analyse(&context, &done)?,
    };
    write_outputs(&context, &sweep_name, &done, &section)?;
    println!("{}", dir.join("report.md").display());
    if stopped {
        bail!("study interrupted; the report covers the points that finished");
    }
    // A run that produced nothing at all is a broken study, not a data point (overload shows
    // as failed and missing requests, never as no record at all).
    let empty: Vec<&str> = done
        .iter()
        .filter(|d| d.summary.state != PointState::NotStarted && !args.report_only)
        .filter(|d| match d.planned.run.bench {
            None => d.measured.is_empty(),
            // A benchmark's rows are only complete when its run ended well.
            Some(_) => d.summary.state != PointState::Ok,
        })
        .map(|d| d.planned.point.name.as_str())
        .collect();
    if !empty.is_empty() {
        bail!(
            "{} of {} points measured nothing ({}); see runs/<point>/sweep.log and status.json in {}",
            empty.len(),
            done.len(),
            empty.join(", "),
            dir.display()
        );
    }
    Ok(())
}

/// What every analysis may need to know about the study as a whole.
pub struct Study<'a> {
    pub name: StudyName,
    pub platform: PlatformKind,
    pub quick: bool,
    pub file: &'a Path,
    pub dir: &'a Path,
    /// Host wall time of the whole study (None with --report-only).
    pub wall_s: Option<f64>,
}

impl Study<'_> {
    /// The clock paragraph every report carries.
    pub fn clock_note(&self) -> &'static str {
        match self.platform {
            PlatformKind::Qemu => {
                "Latencies are measured by simctl-client inside the guest (core 0) with the \
                 guest's monotonic clock (Rust `Instant`, CLOCK_MONOTONIC), from just before the \
                 gRPC request is sent to the reply. Under QEMU the guest keeps time with the \
                 emulated HPET (`clocksource=hpet`), which follows the host clock; the TSC's boot \
                 calibration under TCG is unreliable, and each run's console is checked for a \
                 skewed clock. QEMU TCG emulates instructions on a shared host, so absolute \
                 values are those of an emulated machine, not of hardware; compare points with \
                 each other."
            }
            PlatformKind::Gem5 => {
                "Latencies are measured by simctl-client inside the guest (core 0) with the \
                 guest's monotonic clock, which gem5 drives from simulated time, from just \
                 before the gRPC request is sent to the reply."
            }
        }
    }
}

fn write_outputs(
    context: &Study,
    sweep_name: &str,
    done: &[Done],
    section: &Section,
) -> Result<()> {
    let record = StudyRecord {
        study: context.name,
        file: context.file.display().to_string(),
        sweep: sweep_name.to_string(),
        platform: context.platform.to_string(),
        quick: context.quick,
        dir: context.dir.display().to_string(),
        wall_s: context.wall_s,
        points: done
            .iter()
            .map(|d| PointRecord {
                name: &d.planned.point.name,
                args: &d.planned.point.args,
                state: d.summary.state,
                cause: d.summary.cause.as_deref(),
                wall_s: d.summary.wall_s,
                measured_records: d.measured.len(),
                guest_clock_skew: d.clock_skew,
            })
            .collect(),
        files: &section.files,
        summary: &section.summary,
    };
    let json = serde_json::to_string_pretty(&record).context("cannot serialise study.json")?;
    write_atomic(
        &context.dir.join("study.json"),
        format!("{json}\n").as_bytes(),
    )?;

    let mut text = format!(
        "# simctl study {}\n\nStudy file: `{}` (sweep `{sweep_name}`), platform: {}{}.\n",
        context.name.name(),
        context.file.display(),
        context.platform,
        if context.quick { ", quick version" } else { "" }
    );
    let ok = done
        .iter()
        .filter(|d| d.summary.state == PointState::Ok)
        .count();
    text.push_str(&format!(
        "{ok} of {} runs ok{}. Every run directory is under `runs/`; `study.json` lists them with \
         their states.\n\n",
        done.len(),
        context
            .wall_s
            .map(|s| format!(", study wall time {:.0} s ({:.1} min)", s, s / 60.0))
            .unwrap_or_default()
    ));
    let failed: Vec<&Done> = done
        .iter()
        .filter(|d| d.summary.state != PointState::Ok)
        .collect();
    if !failed.is_empty() {
        text.push_str("Runs that did not succeed (their records are still counted):\n\n");
        for d in failed {
            text.push_str(&format!(
                "- `{}`: {}{}\n",
                d.planned.point.name,
                d.summary.state,
                d.summary
                    .cause
                    .as_deref()
                    .map(|c| format!(" ({})", c.lines().next().unwrap_or_default()))
                    .unwrap_or_default()
            ));
        }
        text.push('\n');
    }
    let skewed: Vec<&Done> = done.iter().filter(|d| !d.clock_ok()).collect();
    if !skewed.is_empty() {
        text.push_str(
            "**Guest clock warning.** In these runs the guest kernel calibrated its TSC against \
             the PIT, the HPET disagreed, and the calibration was never refined, so the guest \
             clock ran at the factor shown relative to real time (console.log, `tsc:` lines). \
             Their latencies and arrival gaps are in that distorted time base: they are listed \
             but left out of plots and comparisons.\n\n",
        );
        for d in skewed {
            text.push_str(&format!(
                "- `{}`: guest clock ×{:.2}\n",
                d.planned.point.name,
                d.clock_skew.unwrap_or(f64::NAN)
            ));
        }
        text.push('\n');
    }
    text.push_str(&section.markdown);
    write_atomic(&context.dir.join("report.md"), text.as_bytes())
}

/// A number in full precision for a CSV cell; empty for none.
pub fn csv_number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The value of `FLAG` in a `--bench` command line (`... FLAG VALUE ...`).
pub fn bench_option<'a>(bench: &'a str, flag: &str) -> Option<&'a str> {
    let words: Vec<&str> = bench.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == flag)
        .and_then(|i| words.get(i + 1).copied())
}

/// Formats an optional number with `digits` decimals; empty for none.
pub fn cell(value: Option<f64>, digits: usize) -> String {
    value
        .filter(|v| v.is_finite())
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_default()
}

/// A CSV file from a header and rows, written atomically into the study directory.
pub fn write_csv(dir: &Path, name: &str, header: &[&str], rows: &[Vec<String>]) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    let bytes = writer.into_inner().context("cannot build the CSV")?;
    write_atomic(&dir.join(name), &bytes)?;
    Ok(name.to_string())
}

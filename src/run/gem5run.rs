//! The gem5 side of `simctl run`: three gem5 processes, two of them cached as checkpoints.
//!
//! 1. **boot** (fast CPU): Linux boots and the guest agent asks for the boot checkpoint before it
//!    reads any plan. Cached under the boot key (`checkpoint.rs`): shared by every workload of
//!    the image and every cache, clock-free and CPU-model design point.
//! 2. **warmup** (fast CPU): restores the boot checkpoint with the run's plan as the readfile;
//!    the function starts, the warm-up invocations run, and the client's m5 checkpoint saves the
//!    warm checkpoint. Cached under the warm key (boot key + plan).
//! 3. **measure** (`--cpu`): restores the warm checkpoint in the run directory; the warming
//!    invocations run unmarked, then one stats dump per measured invocation.
//!
//! Each process writes `simctl-events.json` (tick and host seconds of each event); the timeline
//! in run.toml is made from those and from each process's stats (instructions per host second).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::CpuModel;
use super::RunArgs;
use super::console::ConsoleState;
use super::gem5::{FastCpu, Gem5Invocation, Phase, console_file};
use super::pipeline::{Boot, check_guest, default_limits};
use super::rundir::{RunDir, StatusTracker};
use super::spec::RunSpec;
use super::system::SystemSpec;
use super::watch::{PhaseLimits, PhaseOutcome, follow, progress_bar};
use crate::cache::CacheKey;
use crate::project::Project;

/// The resolved system file gem5 reads, in the run directory and in each checkpoint.
pub const SYSTEM_FILE: &str = "system.toml";
/// gem5's default tick rate: one tick per simulated picosecond.
const TICKS_PER_SECOND: f64 = 1e12;

/// What a gem5 run needs besides the boot artifacts: binary, config, system, checkpoint keys.
#[derive(Debug)]
pub struct Gem5Setup {
    pub binary: PathBuf,
    pub config_script: PathBuf,
    pub system: SystemSpec,
    pub boot_cpu: FastCpu,
    pub cpu: CpuModel,
    pub boot_key: CacheKey,
    pub warm_key: CacheKey,
}

/// One of the two cached checkpoints.
struct Stage<'a> {
    /// The gem5 phase, also the cache kind's prefix and the run directory's link name.
    phase: &'static str,
    key: &'a CacheKey,
    /// What the guest reads with m5 readfile (nothing for the boot: it reads after restoring).
    readfile: &'a str,
    /// The checkpoint this stage restores.
    restore: Option<&'a Path>,
}

/// One timed step of a gem5 process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedStep {
    pub name: String,
    pub host_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_s: Option<f64>,
}

/// One gem5 process of a run, as run.toml records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessTimeline {
    /// boot, warmup or measure.
    pub phase: String,
    /// The CPU model it simulated with.
    pub cpu: String,
    /// Made by an earlier run and restored from the cache (its times are that run's).
    pub reused: bool,
    pub steps: Vec<TimedStep>,
    /// Instructions committed on all cores while simulating (measured dumps only, for measure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<f64>,
    /// Host seconds gem5 spent simulating those instructions (its `hostSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulating_host_s: Option<f64>,
}

impl ProcessTimeline {
    pub fn instructions_per_host_second(&self) -> Option<f64> {
        match (self.instructions, self.simulating_host_s) {
            (Some(instructions), Some(seconds)) if seconds > 0.0 => Some(instructions / seconds),
            _ => None,
        }
    }
}

/// One line of `simctl-events.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Event {
    event: String,
    tick: u64,
    host_s: f64,
}

/// The steps of one gem5 process from its events: how long gem5 took to start (and restore),
/// then the stretches between the events that matter for `phase`.
fn steps_of(phase: &str, events: &[Event]) -> Vec<TimedStep> {
    let find = |kind: &str| events.iter().find(|e| e.event == kind);
    let last = |kind: &str| events.iter().rev().find(|e| e.event == kind);
    let span = |name: &str, from: Option<&Event>, to: Option<&Event>| {
        let (from, to) = (from?, to?);
        Some(TimedStep {
            name: name.to_string(),
            host_s: round3(to.host_s - from.host_s),
            simulated_s: (to.tick > from.tick)
                .then(|| (to.tick - from.tick) as f64 / TICKS_PER_SECOND),
        })
    };
    let Some(simulate) = find("simulate") else {
        return Vec::new();
    };
    let start_name = if phase == "boot" { "start" } else { "restore" };
    let mut steps = vec![TimedStep {
        name: start_name.into(),
        host_s: round3(simulate.host_s),
        simulated_s: None,
    }];
    let spans = if phase == "measure" {
        let first_begin = find("workbegin");
        let last_end = last("workend");
        [
            span("warming", Some(simulate), first_begin),
            span("measured invocations", first_begin, last_end),
            span("results + exit", last_end, last("exit")),
        ]
    } else {
        let run_name = if phase == "boot" {
            "boot"
        } else {
            "function start + warm-up"
        };
        [
            span(run_name, Some(simulate), find("checkpoint")),
            span(
                "checkpoint save",
                find("checkpoint"),
                find("checkpoint-saved"),
            ),
            None,
        ]
    };
    steps.extend(spans.into_iter().flatten());
    steps
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Instructions (all cores) and gem5's host seconds in the complete dumps of `stats`: for a
/// checkpointing process its exit dump, for measure the per-invocation dumps (the exit dump is
/// suppressed there).
fn simulated_work(stats: &Path, num_cores: u32) -> (Option<f64>, Option<f64>) {
    let Ok(dumps) = crate::stats::read_dumps(stats) else {
        return (None, None);
    };
    let mut instructions = None;
    let mut host_seconds = None;
    for dump in dumps.iter().filter(|dump| dump.complete) {
        if let Some(seconds) = crate::report::core_metrics(dump, 0).host_seconds {
            *host_seconds.get_or_insert(0.0) += seconds;
        }
        for core in 0..num_cores as usize {
            if let Some(count) = crate::report::core_metrics(dump, core).instructions {
                *instructions.get_or_insert(0.0) += count;
            }
        }
    }
    (instructions, host_seconds)
}

/// The timeline of the gem5 process whose output directory is `outdir`.
fn timeline(outdir: &Path, phase: &str, cpu: &str, reused: bool, cores: u32) -> ProcessTimeline {
    let events: Vec<Event> = std::fs::read_to_string(outdir.join("simctl-events.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let (instructions, simulating_host_s) = simulated_work(&outdir.join("stats.txt"), cores);
    ProcessTimeline {
        phase: phase.to_string(),
        cpu: cpu.to_string(),
        reused,
        steps: steps_of(phase, &events),
        instructions,
        simulating_host_s,
    }
}

impl Gem5Setup {
    /// The gem5 command of one phase; `boot` carries kernel, image and command line.
    fn invocation(
        &self,
        boot: &Boot,
        outdir: PathBuf,
        readfile: &Path,
        system: PathBuf,
        phase: Phase,
    ) -> Gem5Invocation {
        Gem5Invocation {
            gem5: self.binary.clone(),
            config_script: self.config_script.clone(),
            outdir,
            kernel: boot.kernel.vmlinux.clone(),
            image: boot.image.path.clone(),
            readfile: readfile.to_path_buf(),
            system,
            kernel_args: boot.cmdline.to_string(),
            phase,
        }
    }
}

/// What the checkpoints gave the measured phase.
pub struct Checkpoints {
    pub boot: PathBuf,
    pub warm: PathBuf,
    pub timelines: Vec<ProcessTimeline>,
    console: ConsoleState,
    /// The console text of boot and warm-up, for the run's console.log.
    console_text: String,
}

/// Boot and warm-up: each checkpoint is restored from the cache or made now.
pub(super) fn checkpoints(
    project: &Project,
    dir: &RunDir,
    setup: &Gem5Setup,
    boot: &Boot,
    plan: &str,
    args: &RunArgs,
    tracker: &mut StatusTracker,
) -> Result<Checkpoints> {
    let mut console = ConsoleState::default();
    let mut console_text = String::new();
    let mut timelines = Vec::new();
    let boot_stage = Stage {
        phase: "boot",
        key: &setup.boot_key,
        readfile: "",
        restore: None,
    };
    let boot_checkpoint = checkpoint(project, dir, setup, boot, &boot_stage, args, tracker)?;
    let warm_stage = Stage {
        phase: "warmup",
        key: &setup.warm_key,
        readfile: plan,
        restore: Some(&boot_checkpoint.0),
    };
    let warm_checkpoint = checkpoint(project, dir, setup, boot, &warm_stage, args, tracker)?;
    for (path, phase, reused) in [
        (&boot_checkpoint.0, "boot", boot_checkpoint.1),
        (&warm_checkpoint.0, "warmup", warm_checkpoint.1),
    ] {
        let outdir = path.join("m5out");
        let text = std::fs::read_to_string(console_file(&outdir)).unwrap_or_default();
        console.replay(&text);
        console_text.push_str(&format!(
            "===== simctl: gem5 {phase} ({}) =====\n",
            path.display()
        ));
        console_text.push_str(&text);
        timelines.push(timeline(
            &outdir,
            phase,
            setup.boot_cpu.name(),
            reused,
            setup.system.num_cores,
        ));
    }
    Ok(Checkpoints {
        boot: boot_checkpoint.0,
        warm: warm_checkpoint.0,
        timelines,
        console,
        console_text,
    })
}

/// One checkpoint from the cache or made now; the run directory links to it by phase name.
fn checkpoint(
    project: &Project,
    dir: &RunDir,
    setup: &Gem5Setup,
    boot: &Boot,
    stage: &Stage,
    args: &RunArgs,
    tracker: &mut StatusTracker,
) -> Result<(PathBuf, bool)> {
    let started = Instant::now();
    let kind = format!("{}-checkpoints", stage.phase);
    let store = project.store();
    let made = store.get_or_build(&kind, stage.key, |staging| {
        make_checkpoint(staging, setup, boot, stage, args)
    });
    let link = dir.path().join(format!("{}-checkpoint", stage.phase));
    let _ = std::fs::remove_file(&link);
    let made = match made {
        Ok(made) => made,
        Err(err) => {
            let failed = store
                .root()
                .join(&kind)
                .join(format!("{}.failed", stage.key.hex()));
            let _ = std::os::unix::fs::symlink(&failed, &link);
            return Err(err);
        }
    };
    let _ = std::os::unix::fs::symlink(&made.path, &link);
    if made.reused {
        eprintln!(
            "{} checkpoint: reusing {}",
            stage.phase,
            made.path.display()
        );
    } else {
        tracker.phase_done(&format!("gem5-{}", stage.phase), started.elapsed())?;
    }
    Ok((made.path, made.reused))
}

/// Runs one gem5 process (output directory, readfile, system file) to its end while following
/// its console; `console` carries what the earlier processes' consoles said.
fn run_process(
    setup: &Gem5Setup,
    boot: &Boot,
    (outdir, readfile, system): (&Path, &Path, PathBuf),
    phase: Phase,
    limits: &PhaseLimits,
    console: ConsoleState,
) -> Result<PhaseOutcome> {
    let label = match &phase {
        Phase::Boot { fast_cpu, .. } => format!("gem5 boot ({})", fast_cpu.name()),
        Phase::Warmup { fast_cpu, .. } => format!("gem5 warm-up ({})", fast_cpu.name()),
        Phase::Measure { cpu, .. } => format!("gem5 {}", cpu.name()),
    };
    let mut child = setup
        .invocation(boot, outdir.to_path_buf(), readfile, system, phase)
        .command()
        .spawn_logged(&outdir.join("gem5.log"))?;
    let bar = progress_bar(&label);
    let outcome = follow(&mut child, &console_file(outdir), limits, console, &bar)?;
    bar.finish_and_clear();
    Ok(outcome)
}

/// One gem5 process in `staging` (the checkpoint artifact being built), saving `staging/cpt`.
fn make_checkpoint(
    staging: &Path,
    setup: &Gem5Setup,
    boot: &Boot,
    stage: &Stage,
    args: &RunArgs,
) -> Result<()> {
    let readfile = staging.join("readfile");
    std::fs::write(&readfile, stage.readfile)?;
    let system = staging.join(SYSTEM_FILE);
    std::fs::write(&system, setup.system.to_toml())?;
    let outdir = staging.join("m5out");
    let checkpoint_dir = staging.join("cpt");
    let phase = match stage.restore {
        None => Phase::Boot {
            fast_cpu: setup.boot_cpu,
            checkpoint_dir,
        },
        Some(restore) => Phase::Warmup {
            fast_cpu: setup.boot_cpu,
            restore: restore.join("cpt"),
            checkpoint_dir,
        },
    };
    let limits = default_limits(
        args,
        Duration::from_secs(6 * 3600),
        Duration::from_secs(1800),
    );
    let outcome = run_process(
        setup,
        boot,
        (&outdir, &readfile, system),
        phase,
        &limits,
        ConsoleState::default(),
    )?;
    if let Some(wall) = outcome.boot_wall
        && let Some(uptime) = outcome.console.booted_uptime_s
    {
        eprintln!(
            "boot: guest agent up after {uptime:.2} simulated seconds, {:.1} s host wall",
            wall.as_secs_f64()
        );
    }
    outcome.ended.check()?;
    if !staging.join("cpt").is_dir() {
        bail!(
            "gem5 ended without saving the {} checkpoint; see {}",
            stage.phase,
            outdir.join("gem5.log").display()
        );
    }
    Ok(())
}

/// The measured phase: restore the warm checkpoint on `--cpu`; one stats dump per measured
/// invocation; then the console and the guest's results. Returns the timeline of the whole
/// run whether or not the phase succeeded.
pub(super) fn measure(
    dir: &RunDir,
    setup: &Gem5Setup,
    boot: &Boot,
    checkpoints: &Checkpoints,
    spec: &RunSpec,
    args: &RunArgs,
    tracker: &mut StatusTracker,
) -> (Vec<ProcessTimeline>, Result<()>) {
    let result = run_measured(dir, setup, boot, checkpoints, spec, args, tracker);
    let mut timelines = checkpoints.timelines.clone();
    timelines.push(timeline(
        &dir.m5out(),
        "measure",
        setup.cpu.name(),
        false,
        setup.system.num_cores,
    ));
    (timelines, result)
}

fn run_measured(
    dir: &RunDir,
    setup: &Gem5Setup,
    boot: &Boot,
    checkpoints: &Checkpoints,
    spec: &RunSpec,
    args: &RunArgs,
    tracker: &mut StatusTracker,
) -> Result<()> {
    let cpu = setup.cpu;
    let started = Instant::now();
    let outdir = dir.m5out();
    let phase = Phase::Measure {
        restore: checkpoints.warm.join("cpt"),
        cpu,
        invocations: spec.invocations,
    };
    let limits = default_limits(
        args,
        Duration::from_secs(12 * 3600),
        Duration::from_secs(3600),
    );
    let outcome = run_process(
        setup,
        boot,
        (&outdir, &dir.plan(), dir.path().join(SYSTEM_FILE)),
        phase,
        &limits,
        checkpoints.console.clone(),
    )?;
    tracker.phase_done(&format!("gem5-measure-{}", cpu.name()), started.elapsed())?;
    let measured_text = std::fs::read_to_string(console_file(&outdir)).unwrap_or_default();
    let console_log = format!(
        "{}===== simctl: gem5 measure ({}) =====\n{measured_text}",
        checkpoints.console_text,
        cpu.name()
    );
    std::fs::write(dir.console_log(), console_log)
        .with_context(|| format!("cannot write {}", dir.console_log().display()))?;
    std::fs::create_dir_all(dir.results_dir())?;
    for name in ["results.csv", "results.json"] {
        let _ = std::fs::copy(outdir.join(name), dir.results_dir().join(name));
    }
    outcome.ended.check()?;
    check_guest(&outcome.console, &dir.results_dir(), spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, tick: u64, host_s: f64) -> Event {
        Event {
            event: event.into(),
            tick,
            host_s,
        }
    }

    #[test]
    fn boot_steps_are_start_boot_and_save() {
        let events = [
            event("simulate", 0, 4.0),
            event("checkpoint", 2_000_000_000_000, 904.5),
            event("checkpoint-saved", 2_000_000_000_000, 910.0),
        ];
        let steps = steps_of("boot", &events);
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["start", "boot", "checkpoint save"]);
        assert_eq!(steps[1].host_s, 900.5);
        assert_eq!(steps[1].simulated_s, Some(2.0));
        assert_eq!(steps[2].simulated_s, None);
    }

    #[test]
    fn measure_steps_split_warming_from_the_measured_invocations() {
        let events = [
            event("simulate", 100, 30.0),
            event("workbegin", 1_000_100, 50.0),
            event("workend", 2_000_100, 60.0),
            event("workbegin", 3_000_100, 61.0),
            event("workend", 4_000_100, 70.0),
            event("exit", 5_000_100, 72.5),
        ];
        let steps = steps_of("measure", &events);
        let summary: Vec<(&str, f64)> = steps.iter().map(|s| (s.name.as_str(), s.host_s)).collect();
        assert_eq!(
            summary,
            [
                ("restore", 30.0),
                ("warming", 20.0),
                ("measured invocations", 20.0),
                ("results + exit", 2.5)
            ]
        );
        assert_eq!(steps[2].simulated_s, Some(3e-6));
    }

    #[test]
    fn a_process_that_never_started_simulating_has_no_steps() {
        assert!(steps_of("warmup", &[]).is_empty());
        let partial = steps_of("warmup", &[event("simulate", 0, 3.0)]);
        assert_eq!(partial.len(), 1, "only the restore, no invented spans");
    }
}

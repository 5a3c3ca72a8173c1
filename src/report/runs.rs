//! A run directory as a report reads it: what ran where (run.toml, the guest's affinity lines in
//! console.log), how long each phase took (status.json), what the client measured per invocation
//! (results/results.csv) and, for gem5 runs, one stats dump per measured invocation
//! (m5out/stats.txt). From it: the run's name in tables and legends, the latency distribution,
//! and report.md, which `simctl run` writes at the end of every run.
//!
//! Everything here reads; nothing starts a simulator or rewrites a run.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use simctl_guest::records::{Phase, from_csv};

use super::metrics::{core_metrics, format_value};
use crate::run::console::{ConsoleEvent, affinity, parse_line};
use crate::run::gem5run::ProcessTimeline;
use crate::run::rundir::{PhaseTime, RunDir, RunState};
use crate::stats::Dump;

/// What a report shows of a run's run.toml (read as the typed `RunRecord`).
#[derive(Debug, Default)]
struct RunRecord {
    workload: String,
    platform: String,
    accelerator: String,
    cpu: Option<String>,
    system: Option<String>,
    /// The resolved caches and clock (gem5), which tell the points of a sweep apart.
    machine: Option<String>,
    isolation: String,
    invocations: u64,
    warmup: u64,
    /// gem5: invocations on the measured CPU between the restore and the measured ones.
    warming: Option<u64>,
    pattern: String,
    kernel_cmdline: String,
    /// gem5: each process of the run, timed.
    timeline: Vec<ProcessTimeline>,
    /// A program beside the function on its core (`--co-runner`).
    co_runner: Option<String>,
}

impl RunRecord {
    fn of(record: crate::run::spec::RunRecord) -> RunRecord {
        let spec = record.spec;
        RunRecord {
            workload: spec.workload,
            platform: spec.platform.to_string(),
            accelerator: record.provenance.accelerator,
            cpu: spec.gem5.as_ref().map(|gem5| gem5.cpu.name().to_string()),
            system: spec.gem5.as_ref().and(
                record
                    .provenance
                    .system_file
                    .as_deref()
                    .and_then(|file| file.file_stem())
                    .map(|stem| stem.to_string_lossy().into_owned()),
            ),
            machine: spec.gem5.as_ref().map(|gem5| {
                let system = &gem5.system;
                format!(
                    "L1I {} L1D {} LLC {} {}",
                    system.l1i_size, system.l1d_size, system.llc_size, system.clock
                )
            }),
            isolation: match spec.seccomp {
                Some(seccomp) => format!("{} (seccomp {})", spec.isolation.name(), seccomp.name()),
                None => spec.isolation.name().to_string(),
            },
            invocations: spec.invocations,
            warmup: spec.warmup,
            warming: spec.gem5.as_ref().map(|gem5| gem5.warming),
            pattern: spec.load.to_string(),
            co_runner: spec.co_runner.clone(),
            kernel_cmdline: record.artifacts.kernel_cmdline,
            timeline: record.provenance.gem5_timeline,
        }
    }
}

/// One measured invocation as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub index: u64,
    pub latency_us: f64,
    pub ok: bool,
}

/// Mean and percentiles of a set of latencies (µs).
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Distribution of `values`; percentiles by nearest rank on the sorted values (index
/// round((n-1)·q)), so every percentile is a latency that was measured.
pub fn distribution(values: &[f64]) -> Option<Distribution> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Some(Distribution {
        count: sorted.len(),
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        min: sorted[0],
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: sorted[sorted.len() - 1],
    })
}

/// The gem5 processes of a run, step by step, with the simulation speed of each.
fn write_timeline(text: &mut String, timeline: &[ProcessTimeline]) -> Result<()> {
    if timeline.is_empty() {
        return Ok(());
    }
    writeln!(
        text,
        "\n## gem5 timeline\n\nOne gem5 process per row group; a reused checkpoint's times are \
         those of the run that made it.\n\n| process | CPU | step | host s | simulated s |\n\
         |---|---|---|---|---|"
    )?;
    for process in timeline {
        let origin = if process.reused { " (reused)" } else { "" };
        for step in &process.steps {
            writeln!(
                text,
                "| {}{origin} | {} | {} | {:.1} | {} |",
                process.phase,
                process.cpu,
                step.name,
                step.host_s,
                step.simulated_s
                    .map_or(String::new(), |seconds| format!("{seconds:.6}"))
            )?;
        }
    }
    writeln!(
        text,
        "\n| process | CPU | instructions | host s simulating | instructions per host s |\n\
         |---|---|---|---|---|"
    )?;
    for process in timeline {
        writeln!(
            text,
            "| {} | {} | {} | {} | {} |",
            process.phase,
            process.cpu,
            format_value(process.instructions),
            format_value(process.simulating_host_s),
            format_value(process.instructions_per_host_second())
        )?;
    }
    Ok(())
}

/// What a phase's wall time covers (report.md says it beside the number).
fn phase_includes(name: &str) -> &'static str {
    match name {
        "boot" => {
            "platform start until simctl-init runs in the guest (kernel boot, no function yet)"
        }
        "qemu" => {
            "the whole QEMU process: boot, function start, warm-up and measured invocations, \
             power-off"
        }
        "gem5-boot" => {
            "gem5 boot on the fast CPU until the guest agent is up, and the boot checkpoint \
             (absent when it was reused)"
        }
        "gem5-warmup" => {
            "restore of the boot checkpoint on the fast CPU, function start, warm-up invocations \
             and the warm checkpoint (absent when it was reused)"
        }
        name if name.starts_with("gem5-measure") => {
            "restore of the warm checkpoint on the measured CPU, warming invocations, then the \
             measured invocations, one stats dump each"
        }
        _ => "",
    }
}

/// A run directory, read.
#[derive(Debug)]
pub struct RunView {
    pub dir: PathBuf,
    record: RunRecord,
    pub state: Option<RunState>,
    pub cause: Option<String>,
    pub phases: Vec<PhaseTime>,
    /// The measured invocations, in order.
    pub invocations: Vec<Invocation>,
    /// (step, allowed CPUs) as the guest printed them (`SIMCTL-AFFINITY`): function, client.
    pub pinning: Vec<(String, String)>,
    /// gem5's stats.txt, when the run has one.
    pub stats: Option<PathBuf>,
}

impl RunView {
    /// Whether `dir` is a simctl run directory (it has run.toml).
    pub fn is_run(dir: &Path) -> bool {
        RunDir::open(dir).run_toml().is_file()
    }

    pub fn load(dir: &Path) -> Result<RunView> {
        let run = RunDir::open(dir);
        let record = RunRecord::of(crate::run::spec::RunRecord::load(dir)?);
        let status = run.status()?;
        let csv = run.results_dir().join("results.csv");
        let invocations = match std::fs::read_to_string(&csv) {
            Ok(text) => from_csv(&text)
                .map_err(|err| anyhow::anyhow!("{}: {err}", csv.display()))?
                .into_iter()
                .filter(|r| r.phase == Phase::Measured)
                .map(|r| Invocation {
                    index: r.index,
                    latency_us: r.latency_ns as f64 / 1000.0,
                    ok: r.ok,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let pinning = std::fs::read_to_string(run.console_log())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| match parse_line(line)? {
                ConsoleEvent::Guest(marker) => affinity(&marker),
                ConsoleEvent::KernelPanic(_) => None,
            })
            .collect();
        let stats = Some(run.m5out().join("stats.txt")).filter(|p| p.is_file());
        Ok(RunView {
            dir: dir.to_path_buf(),
            state: status.as_ref().map(|s| s.state),
            cause: status.as_ref().and_then(|s| s.cause.clone()),
            phases: status.map(|s| s.phases).unwrap_or_default(),
            record,
            invocations,
            pinning,
            stats,
        })
    }

    /// ok, failed (with its cause's first line), running, or unknown without status.json.
    pub fn state_text(&self) -> String {
        match (&self.state, &self.cause) {
            (Some(state), Some(cause)) => format!(
                "{}: {}",
                format!("{state:?}").to_lowercase(),
                cause.lines().next().unwrap_or("")
            ),
            (Some(state), None) => format!("{state:?}").to_lowercase(),
            (None, _) => "unknown".into(),
        }
    }

    pub fn workload(&self) -> &str {
        &self.record.workload
    }

    pub fn is_gem5(&self) -> bool {
        self.record.platform == "gem5"
    }

    /// `tcg` or `kvm` for QEMU, gem5's boot CPU note for gem5.
    pub fn accelerator(&self) -> &str {
        &self.record.accelerator
    }

    /// The platform as a reader names it: `qemu-tcg`, `qemu-kvm`, `gem5-o3`.
    pub fn platform(&self) -> String {
        if self.is_gem5() {
            format!(
                "gem5-{}",
                self.record.cpu.as_deref().unwrap_or("unknown-cpu")
            )
        } else {
            let accel = self
                .record
                .accelerator
                .split_whitespace()
                .next()
                .unwrap_or("");
            format!("{}-{accel}", self.record.platform)
        }
    }

    /// The run's name in tables and legends: workload/platform[/system and overrides].
    pub fn label(&self) -> String {
        let mut label = format!("{}/{}", self.record.workload, self.platform());
        if let Some(system) = &self.record.system {
            let stem = Path::new(system)
                .file_stem()
                .map_or(system.clone(), |s| s.to_string_lossy().into_owned());
            write!(label, "/{stem}").ok();
        }
        if let Some(machine) = &self.record.machine {
            write!(label, " {machine}").ok();
        }
        label
    }

    pub fn latency(&self) -> Option<Distribution> {
        let values: Vec<f64> = self.invocations.iter().map(|i| i.latency_us).collect();
        distribution(&values)
    }

    /// `aes-go on core 1` for the pinned step `name` (None if the guest did not say).
    pub fn cores_of(&self, name: &str) -> Option<&str> {
        self.pinning
            .iter()
            .find(|(step, _)| step == name)
            .map(|(_, cpus)| cpus.as_str())
    }

    /// The function's step is named after the workload; the client's is `client`.
    pub fn function_cores(&self) -> Option<&str> {
        self.cores_of(&self.record.workload)
    }

    pub fn client_cores(&self) -> Option<&str> {
        self.cores_of("client")
    }

    /// The stats dumps (one per measured invocation), empty without stats.txt.
    /// The complete dumps of the run's stats.txt (see `integrity::each_complete_dump`: an
    /// incomplete one is an error unless `allow_incomplete`, which leaves it out).
    pub fn dumps(&self, allow_incomplete: bool) -> Result<Vec<Dump>> {
        let mut dumps = Vec::new();
        if let Some(path) = &self.stats {
            super::integrity::each_complete_dump(path, allow_incomplete, |dump| dumps.push(dump))
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        Ok(dumps)
    }

    /// report.md: what ran where, the phases and what they include, the latency distribution
    /// and the per-invocation table (with core 1's and core 0's metrics under gem5).
    pub fn markdown(&self) -> Result<String> {
        let record = &self.record;
        let mut text = format!("# {}\n\n", self.label());
        writeln!(text, "| | |\n|---|---|")?;
        writeln!(text, "| run directory | {} |", self.dir.display())?;
        writeln!(text, "| platform | {} |", record.platform)?;
        if self.is_gem5() {
            writeln!(
                text,
                "| measured CPU | {} |",
                record.cpu.as_deref().unwrap_or("?")
            )?;
            if let Some(system) = &record.system {
                let machine = record.machine.as_deref().unwrap_or_default();
                writeln!(text, "| system | {system}: {machine} |")?;
            }
            writeln!(text, "| boot | {} |", record.accelerator)?;
        } else {
            writeln!(text, "| accelerator | {} |", record.accelerator)?;
        }
        writeln!(text, "| isolation | {} |", record.isolation)?;
        if let Some(co_runner) = &record.co_runner {
            writeln!(text, "| co-runner on the function's core | `{co_runner}` |")?;
        }
        let warming = record.warming.map_or(String::new(), |warming| {
            format!(", {warming} warming on the measured CPU after the restore")
        });
        writeln!(
            text,
            "| load | {} measured invocations after {} warm-up{warming}, pattern {} |",
            record.invocations, record.warmup, record.pattern
        )?;
        let said = |cores: Option<&str>| {
            cores.map_or("not reported by the guest".to_string(), |c| {
                format!("core(s) {c}")
            })
        };
        writeln!(
            text,
            "| pinning (printed by the guest) | function {}: {}; client: {} |",
            record.workload,
            said(self.function_cores()),
            said(self.client_cores())
        )?;
        writeln!(
            text,
            "| kernel command line | `{}` |",
            record.kernel_cmdline
        )?;

        if !self.phases.is_empty() {
            writeln!(
                text,
                "\n## Phases (host wall time)\n\n| phase | seconds | includes |\n|---|---|---|"
            )?;
            for phase in &self.phases {
                writeln!(
                    text,
                    "| {} | {:.1} | {} |",
                    phase.name,
                    phase.wall_s,
                    phase_includes(&phase.name)
                )?;
            }
        }

        write_timeline(&mut text, &record.timeline)?;

        let ok = self.invocations.iter().filter(|i| i.ok).count();
        writeln!(
            text,
            "\n## Latency (client-side, per measured invocation)\n\n{} of {} measured invocations \
             recorded, {ok} ok",
            self.invocations.len(),
            record.invocations
        )?;
        if let Some(d) = self.latency() {
            writeln!(
                text,
                "\n| µs | mean | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|\n\
                 | latency | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                d.mean, d.min, d.p50, d.p90, d.p99, d.max
            )?;
        }

        // report.md is written at the end of every run, failed ones too: a cut last dump
        // (gem5 killed) is left out with a warning rather than reported.
        let dumps = self.dumps(true)?;
        let columns = [
            "instructions",
            "cycles",
            "ipc",
            "l1i_mpki",
            "l1d_mpki",
            "llc_mpki",
            "branch_mpki",
        ];
        let mut header = vec!["invocation".to_string(), "latency_us".into(), "ok".into()];
        if !dumps.is_empty() {
            for cpu in [1, 0] {
                header.extend(columns.iter().map(|c| format!("cpu{cpu} {c}")));
            }
        }
        writeln!(text, "\n## Per invocation\n")?;
        if dumps.is_empty() {
            writeln!(
                text,
                "Microarchitecture numbers (IPC, cache and branch MPKI per core) need gem5: \
                 `simctl build-gem5`, then run again (gem5 is then the default platform).\n"
            )?;
        } else {
            writeln!(
                text,
                "{} stats dump(s), one per measured invocation; cpu1 runs the function, cpu0 \
                 the client.\n",
                dumps.len()
            )?;
        }
        writeln!(text, "| {} |", header.join(" | "))?;
        writeln!(text, "|{}", "---|".repeat(header.len()))?;
        for (position, invocation) in self.invocations.iter().enumerate() {
            let mut cells = vec![
                invocation.index.to_string(),
                format!("{:.1}", invocation.latency_us),
                invocation.ok.to_string(),
            ];
            if !dumps.is_empty() {
                for cpu in [1, 0] {
                    let metrics = dumps.get(position).map(|dump| core_metrics(dump, cpu));
                    for column in columns {
                        cells.push(format_value(
                            metrics.as_ref().and_then(|m| m.column(column)),
                        ));
                    }
                }
            }
            writeln!(text, "| {} |", cells.join(" | "))?;
        }
        Ok(text)
    }
}

/// The runs named by `path`: itself when it is a run directory, the run directories in it when
/// it is a sweep directory (sorted by name), none otherwise.
pub fn runs_in(path: &Path) -> Result<Vec<PathBuf>> {
    if RunView::is_run(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.join("sweep.json").is_file() {
        return Ok(Vec::new());
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| RunView::is_run(dir))
        .collect();
    runs.sort();
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_mean_and_nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = distribution(&values).unwrap();
        assert_eq!(
            (d.count, d.mean, d.min, d.p50, d.p90, d.p99, d.max),
            (100, 50.5, 1.0, 51.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(distribution(&[]), None);
    }

    #[test]
    fn every_phase_simctl_records_says_what_it_includes() {
        for name in [
            "boot",
            "qemu",
            "gem5-boot",
            "gem5-warmup",
            "gem5-measure-o3",
        ] {
            assert!(!phase_includes(name).is_empty(), "{name}");
        }
    }
}

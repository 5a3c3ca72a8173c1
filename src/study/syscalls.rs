//! Per-syscall cost of sandboxing (Kalium): `simctl-syscalls` runs batches of one system call at
//! a time in the guest, bare, under a seccomp-BPF allow-list and under a ptrace tracer of our
//! own, and bare inside the functions' OCI container (a point with `isolation = "container"`:
//! runc, namespaces, cgroup with cpuset core 1); this module turns its rows (and, on gem5, one
//! stats dump per measured batch) into the cost per call per variant, the ratio to bare, and bar
//! plots.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::plot::{BarChart, BarLayout, embed};
use super::stats::{Interval, median, median_ci};
use super::{Done, Section, Study, bench_option, cell, csv_number, write_csv};
use crate::container::Isolation;
use crate::report::metrics::core_metrics;
use crate::run::plan::FUNCTION_CPU;

/// The benchmark's system calls in its own order (guest/src/sysbench.rs `CALLS`).
fn call_order() -> Vec<&'static str> {
    simctl_guest::sysbench::CALLS
        .iter()
        .map(|c| c.name())
        .collect()
}

const VARIANTS: [&str; 4] = ["bare", "seccomp", "ptrace", "container"];
/// simctl-syscalls' default `--variants bare,seccomp,ptrace`.
const BENCH_DEFAULT_VARIANTS: usize = 3;

fn isolation(point: &super::Planned) -> Isolation {
    point.run.isolation.unwrap_or(Isolation::Process)
}

/// A variant's name in the tables: the benchmark's own, inside a container `container`
/// (bare in it) or `container+VARIANT`.
fn label(variant: &str, isolation: Isolation) -> String {
    match (isolation, variant) {
        (Isolation::Process, _) => variant.to_string(),
        (Isolation::Container, "bare") => "container".to_string(),
        (Isolation::Container, _) => format!("container+{variant}"),
    }
}

/// Checks that each point runs the benchmark and that `invocations` equals the measured batches
/// it marks (gem5 checks the number of stats dumps against it).
pub fn check_points(planned: &[super::Planned]) -> Result<()> {
    for isolation_kind in [Isolation::Process, Isolation::Container] {
        let points: Vec<&str> = planned
            .iter()
            .filter(|p| isolation(p) == isolation_kind)
            .map(|p| p.point.name.as_str())
            .collect();
        if points.len() > 1 {
            bail!(
                "points {} all run with isolation {}; hint: a syscalls study has one point per \
                 isolation (process: the bare, seccomp and ptrace variants; container: the \
                 benchmark in the functions' OCI container), so that one table compares them",
                points.join(", "),
                isolation_kind.name()
            );
        }
    }
    for point in planned {
        let Some(bench) = &point.run.bench else {
            bail!(
                "point '{}' has no `bench`; hint: set bench = \"/sbin/simctl-syscalls ...\" in [base]",
                point.point.name
            );
        };
        if !bench.starts_with("/sbin/simctl-syscalls") {
            bail!(
                "point '{}': bench must run /sbin/simctl-syscalls, not '{bench}'",
                point.point.name
            );
        }
        let batches: u64 = bench_option(bench, "--batches")
            .unwrap_or("10")
            .parse()
            .with_context(|| format!("point '{}': --batches", point.point.name))?;
        let variants = bench_option(bench, "--variants")
            .map_or(BENCH_DEFAULT_VARIANTS, |v| v.split(',').count()) as u64;
        let expected = call_order().len() as u64 * batches * variants;
        if point.run.invocations != expected {
            bail!(
                "point '{}': invocations = {} but the benchmark marks {expected} measured batches \
                 ({} calls × {batches} batches × {variants} variants); hint: set invocations = \
                 {expected}",
                point.point.name,
                point.run.invocations,
                call_order().len()
            );
        }
    }
    Ok(())
}

/// One measured batch, with gem5's numbers for it when there are stats.
#[derive(Debug, Clone, Serialize)]
struct Batch {
    point: String,
    variant: String,
    syscall: String,
    batch: u64,
    work_id: u64,
    calls: u64,
    ns_per_call: f64,
    instructions_per_call: Option<f64>,
    cycles_per_call: Option<f64>,
    l1i_misses_per_call: Option<f64>,
    l1d_misses_per_call: Option<f64>,
    llc_misses_per_call: Option<f64>,
}

/// The file the benchmark wrote: results/ under QEMU, m5out/ (m5 writefile) under gem5.
fn bench_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join("results").join(name), dir.join("m5out").join(name)]
        .into_iter()
        .find(|path| path.is_file())
}

fn read_batches(done: &Done) -> Result<Vec<Batch>> {
    let Some(path) = bench_file(&done.dir, "syscalls.csv") else {
        return Ok(Vec::new());
    };
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut batches = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), line + 2))?;
        let field = |i: usize| record.get(i).unwrap_or_default();
        if field(2) != "measured" {
            continue;
        }
        let bad = || {
            format!(
                "{}: line {}: cannot parse '{record:?}'",
                path.display(),
                line + 2
            )
        };
        batches.push(Batch {
            point: done.planned.point.name.clone(),
            variant: label(field(0), isolation(&done.planned)),
            syscall: field(1).to_string(),
            batch: field(3).parse().with_context(bad)?,
            work_id: field(4).parse().with_context(bad)?,
            calls: field(5).parse().with_context(bad)?,
            ns_per_call: field(7).parse().with_context(bad)?,
            instructions_per_call: None,
            cycles_per_call: None,
            l1i_misses_per_call: None,
            l1d_misses_per_call: None,
            llc_misses_per_call: None,
        });
    }
    batches.sort_by_key(|b| b.work_id);
    let stats = done.dir.join("m5out").join("stats.txt");
    if stats.is_file() {
        let dumps = crate::stats::read_dumps(&stats)
            .with_context(|| format!("cannot read {}", stats.display()))?;
        if dumps.len() != batches.len() {
            bail!(
                "{} has {} dumps for {} measured batches; the run did not finish cleanly",
                stats.display(),
                dumps.len(),
                batches.len()
            );
        }
        // Dumps come in workend order, which is work-id order.
        for (batch, dump) in batches.iter_mut().zip(&dumps) {
            let metrics = core_metrics(dump, FUNCTION_CPU);
            let calls = batch.calls as f64;
            let misses = |mpki: Option<f64>| Some(mpki? * metrics.instructions? / 1000.0 / calls);
            batch.instructions_per_call = metrics.instructions.map(|v| v / calls);
            batch.cycles_per_call = metrics.cycles.map(|v| v / calls);
            batch.l1i_misses_per_call = misses(metrics.l1i_mpki);
            batch.l1d_misses_per_call = misses(metrics.l1d_mpki);
            batch.llc_misses_per_call = misses(metrics.llc_mpki);
        }
    }
    Ok(batches)
}

/// One system call under one variant.
#[derive(Debug, Serialize)]
struct Cost {
    point: String,
    syscall: String,
    variant: String,
    batches: usize,
    ns_per_call: Option<Interval>,
    ratio_to_bare: Option<f64>,
    instructions_per_call: Option<f64>,
    cycles_per_call: Option<f64>,
    l1i_misses_per_call: Option<f64>,
    l1d_misses_per_call: Option<f64>,
    llc_misses_per_call: Option<f64>,
}

pub fn analyse(study: &Study, done: &[Done]) -> Result<Section> {
    let mut all = Vec::new();
    let mut unavailable = Vec::new();
    for point in done {
        all.extend(read_batches(point)?);
        if let Some(path) = bench_file(&point.dir, "variants.csv") {
            let text = std::fs::read_to_string(&path)?;
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.splitn(3, ',').collect();
                if fields.get(1) == Some(&"unavailable") {
                    unavailable.push(format!(
                        "`{}` in `{}`: {}",
                        fields[0],
                        point.planned.point.name,
                        fields.get(2).unwrap_or(&"")
                    ));
                }
            }
        }
    }
    // One table: check_points allows one point per isolation, so a (call, variant) pair comes
    // from one point.
    let mut groups: BTreeMap<(String, String, String), Vec<&Batch>> = BTreeMap::new();
    for batch in &all {
        groups
            .entry((
                batch.syscall.clone(),
                batch.variant.clone(),
                batch.point.clone(),
            ))
            .or_default()
            .push(batch);
    }
    let pick = |batches: &[&Batch], f: fn(&Batch) -> Option<f64>| {
        median(&batches.iter().filter_map(|b| f(b)).collect::<Vec<_>>())
    };
    let mut costs: Vec<Cost> = groups
        .iter()
        .map(|((syscall, variant, point), batches)| Cost {
            point: point.clone(),
            syscall: syscall.clone(),
            variant: variant.clone(),
            batches: batches.len(),
            ns_per_call: median_ci(&batches.iter().map(|b| b.ns_per_call).collect::<Vec<_>>()),
            ratio_to_bare: None,
            instructions_per_call: pick(batches, |b| b.instructions_per_call),
            cycles_per_call: pick(batches, |b| b.cycles_per_call),
            l1i_misses_per_call: pick(batches, |b| b.l1i_misses_per_call),
            l1d_misses_per_call: pick(batches, |b| b.l1d_misses_per_call),
            llc_misses_per_call: pick(batches, |b| b.llc_misses_per_call),
        })
        .collect();
    let bare: BTreeMap<String, f64> = costs
        .iter()
        .filter(|c| c.variant == "bare")
        .filter_map(|c| Some((c.syscall.clone(), c.ns_per_call?.estimate)))
        .collect();
    for cost in &mut costs {
        cost.ratio_to_bare = bare
            .get(&cost.syscall)
            .zip(cost.ns_per_call)
            .map(|(bare, own)| own.estimate / bare);
    }
    let order = call_order();
    let position = |name: &str| order.iter().position(|c| *c == name).unwrap_or(usize::MAX);
    let variant_position = |name: &str| {
        VARIANTS
            .iter()
            .position(|v| *v == name)
            .unwrap_or(VARIANTS.len())
    };
    costs.sort_by_key(|c| (position(&c.syscall), variant_position(&c.variant)));

    let mut files = vec![
        write_batches_csv(study, &all)?,
        write_costs_csv(study, &costs)?,
    ];
    let calls: Vec<String> = done
        .iter()
        .filter_map(|d| d.planned.run.bench.as_deref())
        .filter_map(|b| bench_option(b, "--calls"))
        .map(String::from)
        .collect();
    let mut text = format!(
        "## Method\n\n\
         - **Program**: `simctl-syscalls` (static, guest/src/sysbench.rs), pinned to core 1 \
         (isolated); the system calls: {}. `open+close`, `mmap+munmap` and \
         `loopback-send+recv` are two system calls per operation; `clock_gettime-vdso` enters no \
         kernel where the clock source has a vDSO fast path (the TSC, as on gem5) and is then \
         the control; under QEMU the guest keeps time with the HPET, which has none, so there \
         it is a real system call.\n\
         - **Batches**: each measured batch is {} operations of one call, timed with the \
         guest's monotonic clock around the whole batch (ns per call = batch time / \
         operations); warm-up batches come first and are excluded. On gem5 each measured batch \
         sits between m5 workbegin and workend, so gem5 dumps one stats block per batch and the \
         per-call instructions, cycles and misses come from core 1's stats.\n\
         - **Variants**, each in its own child process: `bare`; `seccomp`, an allow-list \
         filter of 50 system calls (a linear BPF chain after an architecture check, everything \
         else EPERM); `ptrace`, our own tracer stops the child at every system-call entry and \
         exit and reads its registers (PTRACE_SYSCALL + PTRACE_GETREGS, the mechanism of \
         gVisor's ptrace platform), tracer and child on the same core. Variants run one after \
         the other, not interleaved.\n\
         - **Container**: {}\n\
         - **Clock**: {}\n\
         - **Statistics**: the median over batches with a 95% percentile-bootstrap interval \
         (2000 resamples); ratio = median of the variant / median of bare.\n",
        order.join(", "),
        if calls.is_empty() {
            "N".to_string()
        } else {
            calls.join(", ")
        },
        container_note(done)?,
        study.clock_note()
    );
    if !unavailable.is_empty() {
        writeln!(
            text,
            "\nVariants the guest could not run (no numbers for them):\n"
        )?;
        for line in &unavailable {
            writeln!(text, "- {line}")?;
        }
    }
    let gem5 = costs.iter().any(|c| c.instructions_per_call.is_some());
    {
        let these: Vec<&Cost> = costs.iter().collect();
        writeln!(text, "\n## Results\n")?;
        writeln!(
            text,
            "| syscall | variant | batches | ns per call (95% CI) | ratio to bare |{}",
            if gem5 {
                " instructions/call | cycles/call | L1I misses/call | L1D misses/call | LLC misses/call |"
            } else {
                ""
            }
        )?;
        writeln!(
            text,
            "|---|---|---|---|---|{}",
            if gem5 {
                "---|".repeat(5)
            } else {
                String::new()
            }
        )?;
        for c in &these {
            let ns = c.ns_per_call;
            write!(
                text,
                "| {} | {} | {} | {} ({}–{}) | {} |",
                c.syscall,
                c.variant,
                c.batches,
                cell(ns.map(|i| i.estimate), 1),
                cell(ns.map(|i| i.low), 1),
                cell(ns.map(|i| i.high), 1),
                cell(c.ratio_to_bare, 2)
            )?;
            if gem5 {
                write!(
                    text,
                    " {} | {} | {} | {} | {} |",
                    cell(c.instructions_per_call, 1),
                    cell(c.cycles_per_call, 1),
                    cell(c.l1i_misses_per_call, 3),
                    cell(c.l1d_misses_per_call, 3),
                    cell(c.llc_misses_per_call, 3)
                )?;
            }
            writeln!(text)?;
        }
        let categories: Vec<String> = order.iter().map(|c| c.to_string()).collect();
        // Variants in the table's order (container+X labels after the plain ones).
        let mut variants: Vec<&str> = these.iter().map(|c| c.variant.as_str()).collect();
        variants.sort_by_key(|v| variant_position(v));
        variants.dedup();
        let series = |value: fn(&Cost) -> Option<f64>| -> Vec<(String, Vec<f64>)> {
            variants
                .iter()
                .map(|variant| {
                    let values = order
                        .iter()
                        .map(|call| {
                            these
                                .iter()
                                .find(|c| c.variant == *variant && c.syscall == *call)
                                .and_then(|c| value(c))
                                .unwrap_or(f64::NAN)
                        })
                        .collect();
                    (variant.to_string(), values)
                })
                .filter(|(_, values): &(String, Vec<f64>)| values.iter().any(|v| v.is_finite()))
                .collect()
        };
        let chart = BarChart {
            title: "cost per system call",
            y_label: "ns per call (median, log scale)",
            categories: categories.clone(),
            series: series(|c| c.ns_per_call.map(|i| i.estimate)),
            layout: BarLayout::GroupedLog,
        };
        embed(
            study.dir,
            "ns_per_call",
            chart.svg()?,
            &mut text,
            &mut files,
        )?;
        let chart = BarChart {
            title: "overhead ratio to bare",
            y_label: "median / median of bare (log scale)",
            categories,
            series: series(|c| c.ratio_to_bare),
            layout: BarLayout::GroupedLog,
        };
        embed(study.dir, "ratio", chart.svg()?, &mut text, &mut files)?;
    }
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({ "costs": costs, "unavailable": unavailable }),
        files,
    })
}

/// What the container variant ran in, read from the container point's own plan (the OCI
/// config it handed runc), or why there is no container variant.
fn container_note(done: &[Done]) -> Result<String> {
    let Some(point) = done
        .iter()
        .find(|d| isolation(&d.planned) == Isolation::Container)
    else {
        return Ok(
            "no point of this study file runs in a container (add one with \
                   `isolation = \"container\"`)."
                .to_string(),
        );
    };
    let path = crate::run::rundir::RunDir::open(&point.dir).plan();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(format!(
            "`{}` has no plan.toml yet (the run did not start).",
            point.planned.point.name
        ));
    };
    let plan = simctl_guest::plan::Plan::parse(&text)
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    let config: serde_json::Value = plan
        .files
        .iter()
        .find(|(file, _)| file.ends_with("/config.json"))
        .and_then(|(_, text)| serde_json::from_str(text).ok())
        .with_context(|| format!("{}: no OCI config.json among its files", path.display()))?;
    let seccomp = match config["linux"].get("seccomp") {
        None => "**no seccomp profile** (the config has no `linux.seccomp`: runc filters no \
                 system call)"
            .to_string(),
        Some(profile) => {
            let rules = profile["syscalls"].as_array().map_or(0, Vec::len);
            let names: usize = profile["syscalls"].as_array().map_or(0, |rules| {
                rules
                    .iter()
                    .map(|r| r["names"].as_array().map_or(0, Vec::len))
                    .sum()
            });
            format!(
                "the seccomp profile of its config: default action `{}`, {rules} rules naming \
                 {names} system calls",
                profile["defaultAction"].as_str().unwrap_or("?")
            )
        }
    };
    let namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .map(|list| list.iter().filter_map(|n| n["type"].as_str()).collect())
        .unwrap_or_default();
    Ok(format!(
        "`{}` runs the same static benchmark (`bare` inside; its rows are labelled `container`) \
         as the process of the functions' OCI container: runc from the workload's bundle, \
         namespaces {}, cgroup `{}` with cpuset {} (runc's poststart hook checks the pinning and \
         prints it), Docker's default capabilities, {seccomp}. Its ratio is to `bare` of the \
         process point (another boot of the same image).",
        point.planned.point.name,
        namespaces.join(", "),
        config["linux"]["cgroupsPath"].as_str().unwrap_or("?"),
        config["linux"]["resources"]["cpu"]["cpus"]
            .as_str()
            .unwrap_or("?"),
    ))
}

fn write_batches_csv(study: &Study, batches: &[Batch]) -> Result<String> {
    let header = [
        "point",
        "variant",
        "syscall",
        "batch",
        "work_id",
        "calls",
        "ns_per_call",
        "instructions_per_call",
        "cycles_per_call",
        "l1i_misses_per_call",
        "l1d_misses_per_call",
        "llc_misses_per_call",
    ];
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|b| {
            vec![
                b.point.clone(),
                b.variant.clone(),
                b.syscall.clone(),
                b.batch.to_string(),
                b.work_id.to_string(),
                b.calls.to_string(),
                b.ns_per_call.to_string(),
                csv_number(b.instructions_per_call),
                csv_number(b.cycles_per_call),
                csv_number(b.l1i_misses_per_call),
                csv_number(b.l1d_misses_per_call),
                csv_number(b.llc_misses_per_call),
            ]
        })
        .collect();
    write_csv(study.dir, "batches.csv", &header, &rows)
}

fn write_costs_csv(study: &Study, costs: &[Cost]) -> Result<String> {
    let header = [
        "point",
        "syscall",
        "variant",
        "batches",
        "ns_per_call_median",
        "ns_per_call_ci_low",
        "ns_per_call_ci_high",
        "ratio_to_bare",
        "instructions_per_call",
        "cycles_per_call",
        "l1i_misses_per_call",
        "l1d_misses_per_call",
        "llc_misses_per_call",
    ];
    let rows: Vec<Vec<String>> = costs
        .iter()
        .map(|c| {
            vec![
                c.point.clone(),
                c.syscall.clone(),
                c.variant.clone(),
                c.batches.to_string(),
                csv_number(c.ns_per_call.map(|i| i.estimate)),
                csv_number(c.ns_per_call.map(|i| i.low)),
                csv_number(c.ns_per_call.map(|i| i.high)),
                csv_number(c.ratio_to_bare),
                csv_number(c.instructions_per_call),
                csv_number(c.cycles_per_call),
                csv_number(c.l1i_misses_per_call),
                csv_number(c.l1d_misses_per_call),
                csv_number(c.llc_misses_per_call),
            ]
        })
        .collect();
    write_csv(study.dir, "syscalls.csv", &header, &rows)
}

//! Function hook overhead (hook-latency paper): `readhook.so`, an LD_PRELOAD hook of libc
//! `read()` (guest/hook/readhook.c), measured by `simctl-hookbench` in the guest: the same read
//! loop without and with the hook, interleaved, at least 30 times each. The overhead per hooked
//! call is the difference of the medians with a 95% bootstrap interval; on gem5 also in
//! instructions and cycles per call from one stats dump per loop.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::plot::{LineChart, Series, embed};
use super::stats::{Interval, median, median_difference_ci};
use super::{Done, Planned, Section, Study, bench_option, cell, csv_number, write_csv};
use crate::report::metrics::core_metrics;
use crate::run::plan::FUNCTION_CPU;

/// The paper asks for at least this many repetitions per variant.
const MIN_REPS: u64 = 30;

/// Each point runs simctl-hookbench with >= 30 repetitions and `invocations` = 2 x reps (one
/// gem5 dump per read loop).
pub fn check_points(planned: &[Planned]) -> Result<()> {
    for point in planned {
        let name = &point.point.name;
        let bench = point.run.bench.as_deref().unwrap_or_default();
        if !bench.starts_with("/sbin/simctl-hookbench") {
            bail!(
                "point '{name}': bench must run /sbin/simctl-hookbench; hint: bench = \
                 \"/sbin/simctl-hookbench --reps 30 --reads 100000 --out /tmp/simctl-results\""
            );
        }
        let reps: u64 = bench_option(bench, "--reps")
            .unwrap_or("30")
            .parse()
            .with_context(|| format!("point '{name}': --reps"))?;
        if reps < MIN_REPS {
            bail!("point '{name}': --reps {reps}; hint: use at least {MIN_REPS} per variant");
        }
        if point.run.invocations != 2 * reps {
            bail!(
                "point '{name}': invocations = {} but the benchmark runs {} read loops ({reps} \
                 per variant); hint: set invocations = {}",
                point.run.invocations,
                2 * reps,
                2 * reps
            );
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
struct Loop {
    point: String,
    variant: String,
    rep: u64,
    position: u64,
    work_id: u64,
    reads: u64,
    ns_per_read: f64,
    hooked_calls: u64,
    /// ns per read of the loop's fastest window of 100 consecutive reads.
    fastest_window_ns_per_read: f64,
    instructions_per_read: Option<f64>,
    cycles_per_read: Option<f64>,
}

fn hook_csv(dir: &Path) -> Option<PathBuf> {
    [dir.join("results/hook.csv"), dir.join("m5out/hook.csv")]
        .into_iter()
        .find(|path| path.is_file())
}

fn read_loops(done: &Done) -> Result<Vec<Loop>> {
    let Some(path) = hook_csv(&done.dir) else {
        return Ok(Vec::new());
    };
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut loops = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), line + 2))?;
        let bad = || {
            format!(
                "{}: line {}: cannot parse {record:?}",
                path.display(),
                line + 2
            )
        };
        let field = |i: usize| record.get(i).unwrap_or_default();
        loops.push(Loop {
            point: done.planned.point.name.clone(),
            variant: field(0).to_string(),
            rep: field(1).parse().with_context(bad)?,
            position: field(2).parse().with_context(bad)?,
            work_id: field(3).parse().with_context(bad)?,
            reads: field(4).parse().with_context(bad)?,
            ns_per_read: field(6).parse().with_context(bad)?,
            hooked_calls: field(7).parse().with_context(bad)?,
            fastest_window_ns_per_read: field(8).parse().with_context(bad)?,
            instructions_per_read: None,
            cycles_per_read: None,
        });
    }
    let stats = done.dir.join("m5out/stats.txt");
    if stats.is_file() {
        let dumps = crate::stats::read_dumps(&stats)
            .with_context(|| format!("cannot read {}", stats.display()))?;
        if dumps.len() != loops.len() {
            bail!(
                "{} has {} dumps for {} read loops",
                stats.display(),
                dumps.len(),
                loops.len()
            );
        }
        loops.sort_by_key(|l| l.work_id);
        for (row, dump) in loops.iter_mut().zip(&dumps) {
            let metrics = core_metrics(dump, FUNCTION_CPU);
            row.instructions_per_read = metrics.instructions.map(|v| v / row.reads as f64);
            row.cycles_per_read = metrics.cycles.map(|v| v / row.reads as f64);
        }
    }
    Ok(loops)
}

#[derive(Debug, Serialize)]
struct Overhead {
    point: String,
    reps_bare: usize,
    reps_hooked: usize,
    reads_per_loop: Option<f64>,
    hooked_calls_per_loop: Option<f64>,
    bare_ns_per_read: Option<f64>,
    hooked_ns_per_read: Option<f64>,
    overhead_ns_per_call: Option<Interval>,
    /// The same from each loop's fastest window (robust to preemption on a shared host).
    overhead_ns_per_call_fastest_window: Option<Interval>,
    overhead_instructions_per_call: Option<Interval>,
    overhead_cycles_per_call: Option<Interval>,
}

pub fn analyse(study: &Study, done: &[Done]) -> Result<Section> {
    let mut loops = Vec::new();
    for point in done {
        loops.extend(read_loops(point)?);
    }
    let mut text = format!(
        "## Method\n\n\
         - **Hook**: `readhook.so` (guest/hook/readhook.c, built from source with the host's cc \
         into the image): LD_PRELOAD interposes libc `read()`, counts the call with one relaxed \
         atomic increment and calls the original (resolved once with dlsym(RTLD_NEXT)).\n\
         - **Micro benchmark**: `simctl-readbench N` (dynamically linked C) reads 1 byte from \
         /dev/zero N times through libc `read()` and times the loop with CLOCK_MONOTONIC; \
         process start, dynamic loading and the hook's constructor are outside the timed loop. \
         `simctl-hookbench` (core 1) runs it without and with `LD_PRELOAD`, interleaved: the \
         order alternates every repetition (bare-hooked, hooked-bare). The hook's counter is \
         checked: every read of a hooked loop must be counted.\n\
         - **Overhead per hooked call**: median ns per read with the hook − median without, with \
         a 95% percentile-bootstrap interval (2000 resamples, both groups resampled \
         independently). On gem5 each read loop is one workbegin/workend pair (one stats dump), \
         giving the overhead in instructions and cycles per call as well.\n\
         - **Fastest windows**: each loop also reports its fastest window of 100 consecutive \
         reads; on a shared host preemption only adds time, so the difference of the medians of \
         these values estimates the undisturbed overhead when whole-loop times are dominated by \
         noise (both are reported).\n\
         - **Clock**: {}\n\
         - **Macro benchmark: not measured.** It would run a Python function (CPython's \
         `os.read` and its socket reads go through libc) with `LD_PRELOAD` on the function's \
         process only, which `simctl run` cannot set yet. Go functions (aes-go, ...) would \
         show nothing: the Go runtime issues system calls itself and bypasses libc `read()`, \
         so an LD_PRELOAD hook never sees them.\n",
        study.clock_note()
    );
    let mut overheads = Vec::new();
    let mut points: Vec<String> = loops.iter().map(|l| l.point.clone()).collect();
    points.dedup();
    for point in &points {
        let of = |variant: &str| -> Vec<&Loop> {
            loops
                .iter()
                .filter(|l| &l.point == point && l.variant == variant)
                .collect()
        };
        let (bare, hooked) = (of("bare"), of("hooked"));
        let values = |rows: &[&Loop], f: fn(&Loop) -> Option<f64>| -> Vec<f64> {
            rows.iter().filter_map(|l| f(l)).collect()
        };
        let ns = |l: &Loop| Some(l.ns_per_read);
        let window = |l: &Loop| Some(l.fastest_window_ns_per_read);
        let uncounted = hooked.iter().filter(|l| l.hooked_calls < l.reads).count();
        let overhead = Overhead {
            point: point.clone(),
            reps_bare: bare.len(),
            reps_hooked: hooked.len(),
            reads_per_loop: median(&values(&hooked, |l| Some(l.reads as f64))),
            hooked_calls_per_loop: median(&values(&hooked, |l| Some(l.hooked_calls as f64))),
            bare_ns_per_read: median(&values(&bare, ns)),
            hooked_ns_per_read: median(&values(&hooked, ns)),
            overhead_ns_per_call: median_difference_ci(&values(&hooked, ns), &values(&bare, ns)),
            overhead_ns_per_call_fastest_window: median_difference_ci(
                &values(&hooked, window),
                &values(&bare, window),
            ),
            overhead_instructions_per_call: median_difference_ci(
                &values(&hooked, |l| l.instructions_per_read),
                &values(&bare, |l| l.instructions_per_read),
            ),
            overhead_cycles_per_call: median_difference_ci(
                &values(&hooked, |l| l.cycles_per_read),
                &values(&bare, |l| l.cycles_per_read),
            ),
        };
        writeln!(text, "\n## {point}\n")?;
        if uncounted > 0 {
            writeln!(
                text,
                "**Warning**: in {uncounted} hooked loops the hook counted fewer calls than reads \
                 (was it loaded?).\n"
            )?;
        }
        let interval = |i: Option<Interval>, digits: usize| {
            format!(
                "{} (95% CI {} to {})",
                cell(i.map(|i| i.estimate), digits),
                cell(i.map(|i| i.low), digits),
                cell(i.map(|i| i.high), digits)
            )
        };
        writeln!(
            text,
            "| measure | value |\n|---|---|\n\
             | repetitions (bare / hooked) | {} / {} |\n\
             | reads per loop (hooked calls counted) | {} ({}) |\n\
             | median ns per read, bare | {} |\n\
             | median ns per read, hooked | {} |\n\
             | **overhead per hooked call, ns** | {} |\n\
             | overhead per hooked call, ns, fastest windows | {} |",
            overhead.reps_bare,
            overhead.reps_hooked,
            cell(overhead.reads_per_loop, 0),
            cell(overhead.hooked_calls_per_loop, 0),
            cell(overhead.bare_ns_per_read, 1),
            cell(overhead.hooked_ns_per_read, 1),
            interval(overhead.overhead_ns_per_call, 1),
            interval(overhead.overhead_ns_per_call_fastest_window, 1),
        )?;
        // gem5 only: instructions and cycles per call from each loop's stats dump.
        for (what, value) in [
            ("instructions", overhead.overhead_instructions_per_call),
            ("cycles", overhead.overhead_cycles_per_call),
        ] {
            if value.is_some() {
                writeln!(
                    text,
                    "| overhead per hooked call, {what} | {} |",
                    interval(value, 1)
                )?;
            }
        }
        let series = |variant: &str, rows: &[&Loop]| Series {
            label: variant.to_string(),
            points: rows.iter().map(|l| (l.rep as f64, l.ns_per_read)).collect(),
        };
        let chart = LineChart {
            title: "ns per read() in each repetition",
            x_label: "repetition",
            y_label: "ns per read",
            series: vec![series("bare", &bare), series("hooked", &hooked)],
        };
        let slug = point.replace(
            |c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "-",
        );
        let mut files = Vec::new();
        embed(
            study.dir,
            &format!("reps_{slug}"),
            chart.svg()?,
            &mut text,
            &mut files,
        )?;
        overheads.push((overhead, files));
    }
    let mut files = vec![write_loops_csv(study, &loops)?];
    let mut summary = Vec::new();
    for (overhead, plots) in overheads {
        files.extend(plots);
        summary.push(overhead);
    }
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({ "overheads": summary }),
        files,
    })
}

fn write_loops_csv(study: &Study, loops: &[Loop]) -> Result<String> {
    let header = [
        "point",
        "variant",
        "rep",
        "position",
        "work_id",
        "reads",
        "ns_per_read",
        "hooked_calls",
        "fastest_window_ns_per_read",
        "instructions_per_read",
        "cycles_per_read",
    ];
    let rows: Vec<Vec<String>> = loops
        .iter()
        .map(|l| {
            vec![
                l.point.clone(),
                l.variant.clone(),
                l.rep.to_string(),
                l.position.to_string(),
                l.work_id.to_string(),
                l.reads.to_string(),
                l.ns_per_read.to_string(),
                l.hooked_calls.to_string(),
                l.fastest_window_ns_per_read.to_string(),
                csv_number(l.instructions_per_read),
                csv_number(l.cycles_per_read),
            ]
        })
        .collect();
    write_csv(study.dir, "loops.csv", &header, &rows)
}

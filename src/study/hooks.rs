//! Function hook overhead (hook-latency paper): `readhook.so`, an LD_PRELOAD hook of libc
//! `read()` (guest/hook/readhook.c), measured twice. Micro: `simctl-hookbench` in the guest runs
//! the same read loop without and with the hook, interleaved, at least 30 times each. Macro: a
//! function (a point without `bench`) is run in alternating runs without and with
//! `--function-env LD_PRELOAD=readhook.so` (the study adds the runs and the hook), the client
//! recording each invocation's latency and the hook counter's growth. The overhead per hooked
//! call is the difference of the medians with a 95% bootstrap interval (divided by the hooked
//! calls per invocation for the macro benchmark); on gem5 also in instructions and cycles per
//! call from one stats dump per loop or invocation.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::parse_run_args;
use super::plot::{LineChart, Series, embed};
use super::stats::{Interval, median, median_difference_ci};
use super::{Done, Planned, Section, Study, bench_option, cell, csv_number, write_csv};
use crate::report::metrics::core_metrics;
use crate::run::Pattern;
use crate::run::plan::{FUNCTION_CPU, HOOK_COUNTER_VAR};
use crate::sweep::Point;

/// The paper asks for at least this many repetitions per variant.
const MIN_REPS: u64 = 30;
/// The hook in the guest image (built by simctl from guest/hook/readhook.c).
const HOOK_LIBRARY: &str = "/usr/local/lib/simctl/readhook.so";
/// Alternating runs of each macro variant at least (so the run order can alternate).
const MIN_MACRO_RUNS: u64 = 2;

/// Checks the micro points (simctl-hookbench with >= 30 repetitions and `invocations` = 2 x
/// reps, one gem5 dump per read loop) and replaces each macro point (no `bench`: a function)
/// with its alternating runs: bare, hooked, hooked, bare, ... (ABBA), enough that each variant
/// has at least 30 measured invocations, the hooked ones with LD_PRELOAD of the hook.
pub fn plan_points(planned: Vec<Planned>) -> Result<Vec<Planned>> {
    let mut points = Vec::new();
    for point in planned {
        if point.run.bench.is_none() {
            points.extend(macro_runs(&point)?);
            continue;
        }
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
        points.push(point);
    }
    Ok(points)
}

/// A macro run's variant: hooked when the function's environment preloads the hook.
fn macro_variant(planned: &Planned) -> &'static str {
    let hooked = planned
        .run
        .function_env
        .iter()
        .any(|pair| pair.starts_with("LD_PRELOAD="));
    if hooked { "hooked" } else { "bare" }
}

fn macro_runs(point: &Planned) -> Result<Vec<Planned>> {
    let name = &point.point.name;
    let env = crate::run::spec::function_env(&point.run.function_env)
        .with_context(|| format!("point '{name}'"))?;
    if !env.contains_key(HOOK_COUNTER_VAR) {
        bail!(
            "point '{name}' runs a function without the hook's counter; hint: function_env = \
             [\"{HOOK_COUNTER_VAR}=/opt/simctl/readhook.count\"] (the study adds LD_PRELOAD to the \
             hooked runs itself)"
        );
    }
    if env.contains_key("LD_PRELOAD") {
        bail!(
            "point '{name}' sets LD_PRELOAD; hint: drop it, the study runs the function without \
             and with LD_PRELOAD={HOOK_LIBRARY}"
        );
    }
    if point.run.pattern != Pattern::Closed {
        bail!(
            "point '{name}': the macro benchmark counts hooked calls per invocation, which needs pattern = \"closed\""
        );
    }
    let runs = MIN_MACRO_RUNS.max(MIN_REPS.div_ceil(point.run.invocations));
    let mut out = Vec::new();
    for pair in 0..runs {
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for hooked in order {
            let mut args = point.point.args.clone();
            if hooked {
                args.extend([
                    "--function-env".to_string(),
                    format!("LD_PRELOAD={HOOK_LIBRARY}"),
                ]);
            }
            let run = parse_run_args(&args)?;
            let point = Point {
                name: format!(
                    "{name}_{:02}-{}",
                    out.len() + 1,
                    if hooked { "hooked" } else { "bare" }
                ),
                args,
            };
            out.push(Planned::new(point, run)?);
        }
    }
    Ok(out)
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
         - **Macro benchmark**: a function whose requests go through libc `read()`: \
         aes-nodejs (Debian's dynamically linked node; libuv reads TCP streams with `read()`), \
         in its OCI container on core 1, driven by simctl-client on core 0 (closed loop, warm-up \
         invocations first). The study runs it in alternating runs, bare and hooked in ABBA \
         order (bare, hooked, hooked, bare, ...), each run a fresh boot, so drift of the host \
         hits both variants alike; the hooked runs start the function with \
         `--function-env LD_PRELOAD={HOOK_LIBRARY}` (the function's process only, set in the \
         container's OCI config), both with `{HOOK_COUNTER_VAR}` naming the hook's counter \
         file. The client reads the counter before the first measured invocation and after \
         each one (outside the timed region): its growth is the hooked `read()` calls of that \
         invocation (results/read-counts.csv); without the hook the file never exists. \
         Repetitions are the measured invocations of all runs of a variant (at least 30). \
         Overhead per hooked call = (median latency hooked − median bare) / median hooked calls \
         per invocation, the 95% bootstrap interval of the difference divided the same way. \
         Python functions would not do: grpcio's C core reads its sockets with `recvmsg()`, \
         not `read()`. Go functions (aes-go, ...) show nothing: the Go runtime issues system \
         calls itself and bypasses libc, so an LD_PRELOAD hook never sees them.\n",
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
    let invocations = macro_invocations(done)?;
    let macros = analyse_macro(study, &invocations, &mut text, &mut files)?;
    if !invocations.is_empty() {
        files.push(write_invocations_csv(study, &invocations)?);
    }
    side_by_side(&summary, &macros, &mut text)?;
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({ "overheads": summary, "macro": macros }),
        files,
    })
}

/// One measured invocation of a macro run.
#[derive(Debug, Clone, Serialize)]
struct MacroInvocation {
    /// The study-file point the run belongs to.
    point: String,
    run: String,
    variant: &'static str,
    index: u64,
    latency_ns: u64,
    hooked_reads: u64,
    counter_present: bool,
    instructions: Option<f64>,
    cycles: Option<f64>,
}

/// The measured invocations of every macro run that ended with a trustworthy clock, with the
/// hook counter's growth from read-counts.csv (results/ on QEMU, m5out/ on gem5) and, on gem5,
/// core 1's instructions and cycles from each invocation's stats dump.
fn macro_invocations(done: &[Done]) -> Result<Vec<MacroInvocation>> {
    let mut rows = Vec::new();
    for run in done.iter().filter(|d| d.planned.run.bench.is_none()) {
        if !run.ended() || !run.clock_ok() {
            continue;
        }
        let name = &run.planned.point.name;
        let point = name
            .rsplit_once('_')
            .map_or(name.as_str(), |(base, _)| base);
        let counts = read_counts(&run.dir)?;
        let dumps = {
            let stats = run.dir.join("m5out/stats.txt");
            if stats.is_file() {
                crate::stats::read_dumps(&stats)
                    .with_context(|| format!("cannot read {}", stats.display()))?
            } else {
                Vec::new()
            }
        };
        for (position, invocation) in run.measured.iter().enumerate() {
            let count = counts.get(&invocation.index);
            let metrics = dumps
                .get(position)
                .filter(|_| dumps.len() == run.measured.len())
                .map(|dump| core_metrics(dump, FUNCTION_CPU));
            rows.push(MacroInvocation {
                point: point.to_string(),
                run: name.clone(),
                variant: macro_variant(&run.planned),
                index: invocation.index,
                latency_ns: invocation.latency_ns,
                hooked_reads: count.map_or(0, |c| c.0),
                counter_present: count.is_some_and(|c| c.1),
                instructions: metrics.as_ref().and_then(|m| m.instructions),
                cycles: metrics.as_ref().and_then(|m| m.cycles),
            });
        }
    }
    Ok(rows)
}

/// read-counts.csv by invocation index: (hooked reads, counter file present).
fn read_counts(dir: &Path) -> Result<std::collections::BTreeMap<u64, (u64, bool)>> {
    let mut counts = std::collections::BTreeMap::new();
    let Some(path) = [
        dir.join("results/read-counts.csv"),
        dir.join("m5out/read-counts.csv"),
    ]
    .into_iter()
    .find(|path| path.is_file()) else {
        return Ok(counts);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    for (line, row) in text.lines().enumerate().skip(1) {
        let bad = || {
            format!(
                "{}: line {}: cannot parse '{row}'",
                path.display(),
                line + 1
            )
        };
        let fields: Vec<&str> = row.split(',').collect();
        let [index, reads, present] = fields[..] else {
            bail!("{}", bad());
        };
        counts.insert(
            index.parse().with_context(bad)?,
            (reads.parse().with_context(bad)?, present == "true"),
        );
    }
    Ok(counts)
}

/// What the macro benchmark found for one study-file point.
#[derive(Debug, Serialize)]
struct MacroOverhead {
    point: String,
    runs_bare: usize,
    runs_hooked: usize,
    invocations_bare: usize,
    invocations_hooked: usize,
    median_latency_us_bare: Option<f64>,
    median_latency_us_hooked: Option<f64>,
    /// Median hooked read() calls per invocation, with the hook.
    hooked_calls_per_invocation: Option<f64>,
    /// The most the counter grew in any bare invocation (0: the hook was not there).
    max_calls_per_invocation_bare: u64,
    /// Bare invocations whose counter file existed (should be none).
    counter_present_bare: usize,
    latency_difference_ns: Option<Interval>,
    overhead_ns_per_call: Option<Interval>,
    overhead_instructions_per_call: Option<Interval>,
    overhead_cycles_per_call: Option<Interval>,
}

/// An interval divided by a positive number of calls.
fn per_call(interval: Option<Interval>, calls: Option<f64>) -> Option<Interval> {
    let (interval, calls) = (interval?, calls.filter(|c| *c > 0.0)?);
    Some(Interval {
        estimate: interval.estimate / calls,
        low: interval.low / calls,
        high: interval.high / calls,
    })
}

fn interval_text(interval: Option<Interval>, digits: usize) -> String {
    format!(
        "{} (95% CI {} to {})",
        cell(interval.map(|i| i.estimate), digits),
        cell(interval.map(|i| i.low), digits),
        cell(interval.map(|i| i.high), digits)
    )
}

fn analyse_macro(
    study: &Study,
    invocations: &[MacroInvocation],
    text: &mut String,
    files: &mut Vec<String>,
) -> Result<Vec<MacroOverhead>> {
    let mut points: Vec<&str> = invocations.iter().map(|i| i.point.as_str()).collect();
    points.dedup();
    let mut out = Vec::new();
    for point in points {
        let of = |variant: &str| -> Vec<&MacroInvocation> {
            invocations
                .iter()
                .filter(|i| i.point == point && i.variant == variant)
                .collect()
        };
        let (bare, hooked) = (of("bare"), of("hooked"));
        let runs = |rows: &[&MacroInvocation]| {
            let mut names: Vec<&str> = rows.iter().map(|i| i.run.as_str()).collect();
            names.dedup();
            names.len()
        };
        let values = |rows: &[&MacroInvocation], f: fn(&MacroInvocation) -> Option<f64>| {
            rows.iter().filter_map(|i| f(i)).collect::<Vec<f64>>()
        };
        let latency = |i: &MacroInvocation| Some(i.latency_ns as f64);
        let calls = median(&values(&hooked, |i| Some(i.hooked_reads as f64)));
        let difference = median_difference_ci(&values(&hooked, latency), &values(&bare, latency));
        let overhead = MacroOverhead {
            point: point.to_string(),
            runs_bare: runs(&bare),
            runs_hooked: runs(&hooked),
            invocations_bare: bare.len(),
            invocations_hooked: hooked.len(),
            median_latency_us_bare: median(&values(&bare, latency)).map(|ns| ns / 1e3),
            median_latency_us_hooked: median(&values(&hooked, latency)).map(|ns| ns / 1e3),
            hooked_calls_per_invocation: calls,
            max_calls_per_invocation_bare: bare.iter().map(|i| i.hooked_reads).max().unwrap_or(0),
            counter_present_bare: bare.iter().filter(|i| i.counter_present).count(),
            latency_difference_ns: difference,
            overhead_ns_per_call: per_call(difference, calls),
            overhead_instructions_per_call: per_call(
                median_difference_ci(
                    &values(&hooked, |i| i.instructions),
                    &values(&bare, |i| i.instructions),
                ),
                calls,
            ),
            overhead_cycles_per_call: per_call(
                median_difference_ci(&values(&hooked, |i| i.cycles), &values(&bare, |i| i.cycles)),
                calls,
            ),
        };
        writeln!(text, "\n## Macro: {point}\n")?;
        if overhead.hooked_calls_per_invocation.unwrap_or(0.0) <= 0.0 {
            writeln!(
                text,
                "**Warning**: the hook counted no read() calls during the hooked invocations: \
                 this function does not read through libc `read()` (or the hook was not \
                 loaded), so its latency difference says nothing about the hook.\n"
            )?;
        }
        writeln!(
            text,
            "| measure | value |\n|---|---|\n\
             | runs (bare / hooked) | {} / {} |\n\
             | measured invocations (bare / hooked) | {} / {} |\n\
             | median latency, bare, us | {} |\n\
             | median latency, hooked, us | {} |\n\
             | hooked read() calls per invocation (median, hooked) | {} |\n\
             | counter growth per invocation without the hook (max; counter file present in) | {} ({} invocations) |\n\
             | latency difference, ns | {} |\n\
             | **overhead per hooked call, ns** | {} |",
            overhead.runs_bare,
            overhead.runs_hooked,
            overhead.invocations_bare,
            overhead.invocations_hooked,
            cell(overhead.median_latency_us_bare, 1),
            cell(overhead.median_latency_us_hooked, 1),
            cell(overhead.hooked_calls_per_invocation, 1),
            overhead.max_calls_per_invocation_bare,
            overhead.counter_present_bare,
            interval_text(overhead.latency_difference_ns, 0),
            interval_text(overhead.overhead_ns_per_call, 1),
        )?;
        for (what, value) in [
            ("instructions", overhead.overhead_instructions_per_call),
            ("cycles", overhead.overhead_cycles_per_call),
        ] {
            if value.is_some() {
                writeln!(
                    text,
                    "| overhead per hooked call, {what} | {} |",
                    interval_text(value, 1)
                )?;
            }
        }
        // Latency of every invocation in run order: drift and run-to-run jumps show here.
        let series = |variant: &str, rows: &[&MacroInvocation]| Series {
            label: variant.to_string(),
            points: rows
                .iter()
                .map(|i| {
                    let sequence = invocations
                        .iter()
                        .position(|other| std::ptr::eq(other, *i))
                        .unwrap_or(0);
                    (sequence as f64, i.latency_ns as f64 / 1e3)
                })
                .collect(),
        };
        let chart = LineChart {
            title: "latency of each measured invocation, in run order",
            x_label: "invocation (all runs, in the order they ran)",
            y_label: "latency, us",
            series: vec![series("bare", &bare), series("hooked", &hooked)],
        };
        let slug = point.replace(
            |c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "-",
        );
        embed(
            study.dir,
            &format!("macro_latency_{slug}"),
            chart.svg()?,
            text,
            files,
        )?;
        out.push(overhead);
    }
    Ok(out)
}

/// The hook-latency paper asks for micro and macro numbers side by side.
fn side_by_side(micro: &[Overhead], macros: &[MacroOverhead], text: &mut String) -> Result<()> {
    if micro.is_empty() && macros.is_empty() {
        return Ok(());
    }
    writeln!(
        text,
        "\n## Micro vs macro\n\n\
         | benchmark | point | hooked calls per unit | overhead per hooked call, ns |\n\
         |---|---|---|---|"
    )?;
    for m in micro {
        writeln!(
            text,
            "| micro (1-byte read loop, per loop) | {} | {} | {} |",
            m.point,
            cell(m.hooked_calls_per_loop, 0),
            interval_text(m.overhead_ns_per_call, 1)
        )?;
    }
    for m in macros {
        writeln!(
            text,
            "| macro (function, per invocation) | {} | {} | {} |",
            m.point,
            cell(m.hooked_calls_per_invocation, 1),
            interval_text(m.overhead_ns_per_call, 1)
        )?;
    }
    Ok(())
}

fn write_invocations_csv(study: &Study, rows: &[MacroInvocation]) -> Result<String> {
    let header = [
        "point",
        "run",
        "variant",
        "index",
        "latency_ns",
        "hooked_reads",
        "counter_present",
        "instructions",
        "cycles",
    ];
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|i| {
            vec![
                i.point.clone(),
                i.run.clone(),
                i.variant.to_string(),
                i.index.to_string(),
                i.latency_ns.to_string(),
                i.hooked_reads.to_string(),
                i.counter_present.to_string(),
                csv_number(i.instructions),
                csv_number(i.cycles),
            ]
        })
        .collect();
    write_csv(study.dir, "macro_invocations.csv", &header, &rows)
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

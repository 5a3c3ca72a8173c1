//! The load sweep (Knative load-testing study): open-loop requests at a target rate, from low
//! to beyond saturation, uniform vs Poisson arrivals. Per point: target vs achieved rate,
//! success rate, latency percentiles, and the slowdown against the service time of an unloaded
//! request, measured by a closed-loop baseline run the study adds for each workload.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{Result, bail};
use serde::Serialize;

use super::latency::{CSV_COLUMNS, LatencySummary, summarise};
use super::plot::{LineChart, Series, cdf, embed};
use super::{Done, Planned, Section, Study, cell, csv_number, parse_run_args, write_csv};
use crate::run::cmdline::PlatformKind;
use crate::run::spec::LoadPattern;
use crate::run::{Arrival, Pattern, RunArgs};
use crate::sweep::Point;

/// Achieved below this share of the target means the point is past saturation.
const KEEPS_UP: f64 = 0.9;

/// The function a point measures: workload and request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Function {
    pub workload: String,
    pub request: Option<String>,
}

impl Function {
    fn of(run: &RunArgs) -> Function {
        Function {
            workload: run.workload.clone(),
            request: run.request.clone(),
        }
    }

    fn label(&self) -> String {
        match &self.request {
            Some(request) => format!("{} (request {request})", self.workload),
            None => self.workload.clone(),
        }
    }

    /// For file names and point names: letters, digits, '-', '_', '.', '+'.
    fn slug(&self) -> String {
        let text = match &self.request {
            Some(request) => format!("{}-{request}", self.workload),
            None => self.workload.clone(),
        };
        text.replace(
            |c: char| !(c.is_ascii_alphanumeric() || "-_.+".contains(c)),
            "-",
        )
    }
}

/// The run column of a table: its state, and the clock factor when the clock was off.
pub fn clock_flag(state: &str, clock_ok: bool, skew: Option<f64>) -> String {
    match skew {
        Some(skew) if !clock_ok => format!("{state}, guest clock ×{skew:.2}: not compared"),
        _ => state.to_string(),
    }
}

fn arrival_name(arrival: Arrival) -> &'static str {
    match arrival {
        Arrival::Uniform => "uniform",
        Arrival::Poisson => "poisson",
    }
}

/// The study's points preceded by one closed-loop baseline per function: same workload,
/// request, warm-up and request count, one request at a time.
pub fn with_baselines(planned: Vec<Planned>, platform: PlatformKind) -> Result<Vec<Planned>> {
    let mut baselines: BTreeMap<Function, Planned> = BTreeMap::new();
    for point in &planned {
        if point.run.pattern != Pattern::Rps {
            bail!(
                "point '{}' uses pattern {:?}; hint: a load sweep sets pattern = \"rps\" (the \
                 study adds the closed-loop baseline itself)",
                point.point.name,
                point.run.pattern
            );
        }
        if point.run.rps.is_none() {
            bail!(
                "point '{}' has no rps; hint: give the target rates in [matrix] rps = [...]",
                point.point.name
            );
        }
        let function = Function::of(&point.run);
        if baselines.contains_key(&function) {
            continue;
        }
        let mut args = vec![
            "--workload".to_string(),
            function.workload.clone(),
            "--pattern".into(),
            "closed".into(),
            "--invocations".into(),
            point.run.invocations.to_string(),
            "--warmup".into(),
            point.run.warmup.to_string(),
            "--platform".into(),
            platform.to_string(),
        ];
        if let Some(request) = &function.request {
            args.extend(["--request".to_string(), request.clone()]);
        }
        let run = parse_run_args(&args)?;
        let point = Point {
            name: format!("baseline_{}", function.slug()),
            args,
        };
        baselines.insert(function, Planned::new(point, run)?);
    }
    Ok(baselines.into_values().chain(planned).collect())
}

/// One load point, summarised.
#[derive(Debug, Serialize)]
struct Row {
    point: String,
    function: Function,
    arrival: &'static str,
    target_rps: f64,
    #[serde(flatten)]
    latency: LatencySummary,
    baseline_p50_ms: Option<f64>,
    slowdown_p50: Option<f64>,
    slowdown_p99: Option<f64>,
    state: String,
    guest_clock_skew: Option<f64>,
    /// The guest clock kept real time (see `study::clock`); false rows stay out of plots and
    /// of the saturation statement.
    clock_ok: bool,
}

/// Per function and arrival: the highest rate sustained and the first one that was not.
#[derive(Debug, Serialize)]
struct Saturation {
    function: Function,
    arrival: &'static str,
    highest_sustained_rps: Option<f64>,
    first_saturated_rps: Option<f64>,
}

fn sustained(row: &Row) -> bool {
    row.latency.success_rate >= 0.99
        && row
            .latency
            .achieved_rps
            .is_some_and(|a| a >= KEEPS_UP * row.target_rps)
}

pub fn analyse(study: &Study, done: &[Done]) -> Result<Section> {
    let mut baselines: BTreeMap<Function, LatencySummary> = BTreeMap::new();
    for point in done
        .iter()
        .filter(|d| d.planned.run.pattern == Pattern::Closed && d.ended())
    {
        baselines.insert(
            Function::of(&point.planned.run),
            summarise(&point.measured, point.planned.run.invocations),
        );
    }
    let mut rows: Vec<Row> = done
        .iter()
        .filter(|d| d.planned.run.pattern == Pattern::Rps && d.ended())
        .map(|d| {
            let run = &d.planned.run;
            let function = Function::of(run);
            let latency = summarise(&d.measured, run.invocations);
            let baseline_p50_ms = baselines.get(&function).and_then(|b| b.p50_ms);
            let ratio = |value: Option<f64>| Some(value? / baseline_p50_ms.filter(|b| *b > 0.0)?);
            Row {
                point: d.planned.point.name.clone(),
                arrival: match d.planned.load {
                    LoadPattern::Rps { arrival, .. } => arrival_name(arrival),
                    _ => "",
                },
                target_rps: run.rps.unwrap_or(f64::NAN),
                slowdown_p50: ratio(latency.p50_ms),
                slowdown_p99: ratio(latency.p99_ms),
                baseline_p50_ms,
                latency,
                function,
                state: d.summary.state.to_string(),
                guest_clock_skew: d.clock_skew,
                clock_ok: d.clock_ok(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.function, a.arrival)
            .cmp(&(&b.function, b.arrival))
            .then(a.target_rps.total_cmp(&b.target_rps))
    });

    let mut files = Vec::new();
    files.push(write_points_csv(study, &rows)?);
    files.push(write_requests_csv(study, done)?);
    let mut saturation = Vec::new();
    let mut text = method(study, done, &baselines);
    let functions: Vec<Function> = {
        let mut list: Vec<Function> = rows.iter().map(|r| r.function.clone()).collect();
        list.dedup();
        list
    };
    for function in &functions {
        let these: Vec<&Row> = rows.iter().filter(|r| &r.function == function).collect();
        writeln!(text, "\n## {}\n", function.label())?;
        if let Some(base) = baselines.get(function) {
            writeln!(
                text,
                "Unloaded service time (closed loop, {} requests): median {} ms (95% CI {}–{} ms), \
                 p99 {} ms.\n",
                base.ok,
                cell(base.p50_ms, 3),
                cell(base.p50_ci_ms.map(|c| c.low), 3),
                cell(base.p50_ci_ms.map(|c| c.high), 3),
                cell(base.p99_ms, 3)
            )?;
        }
        writeln!(
            text,
            "| arrival | target RPS | sent RPS | achieved RPS | success | p50 ms (95% CI) | p90 ms | \
             p95 ms | p99 ms | slowdown p50 | slowdown p99 | run |"
        )?;
        writeln!(text, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
        for row in &these {
            let l = &row.latency;
            writeln!(
                text,
                "| {} | {} | {} | {} | {:.3} ({}/{}) | {} ({}–{}) | {} | {} | {} | {} | {} | {} |",
                row.arrival,
                row.target_rps,
                cell(l.sent_rps, 1),
                cell(l.achieved_rps, 1),
                l.success_rate,
                l.ok,
                l.expected,
                cell(l.p50_ms, 2),
                cell(l.p50_ci_ms.map(|c| c.low), 2),
                cell(l.p50_ci_ms.map(|c| c.high), 2),
                cell(l.p90_ms, 2),
                cell(l.p95_ms, 2),
                cell(l.p99_ms, 2),
                cell(row.slowdown_p50, 2),
                cell(row.slowdown_p99, 2),
                clock_flag(row.state.as_str(), row.clock_ok, row.guest_clock_skew)
            )?;
        }
        for arrival in ["uniform", "poisson"] {
            let series_rows: Vec<&&Row> = these
                .iter()
                .filter(|r| r.arrival == arrival && r.clock_ok)
                .collect();
            if series_rows.is_empty() {
                continue;
            }
            let highest = series_rows
                .iter()
                .take_while(|r| sustained(r))
                .map(|r| r.target_rps)
                .last();
            let first_saturated = series_rows
                .iter()
                .find(|r| !sustained(r))
                .map(|r| r.target_rps);
            writeln!(
                text,
                "\n{arrival}: sustained up to {} RPS (achieved >= {:.0}% of target, success >= 99%); {}.",
                highest.map_or("no".to_string(), |rps| rps.to_string()),
                KEEPS_UP * 100.0,
                match first_saturated {
                    Some(rps) => format!("saturated from {rps} RPS"),
                    None => "no point saturated".into(),
                }
            )?;
            saturation.push(Saturation {
                function: function.clone(),
                arrival,
                highest_sustained_rps: highest,
                first_saturated_rps: first_saturated,
            });
            let stem = format!("percentiles_{}_{arrival}", function.slug());
            let percentile = |label: &str, pick: fn(&LatencySummary) -> Option<f64>| Series {
                label: label.to_string(),
                points: series_rows
                    .iter()
                    .map(|r| (r.target_rps, pick(&r.latency).unwrap_or(f64::NAN)))
                    .collect(),
            };
            let chart = LineChart {
                title: &format!("{}: latency vs load, {arrival} arrivals", function.label()),
                x_label: "target requests per second",
                y_label: "latency (ms)",
                series: vec![
                    percentile("p50", |l| l.p50_ms),
                    percentile("p90", |l| l.p90_ms),
                    percentile("p95", |l| l.p95_ms),
                    percentile("p99", |l| l.p99_ms),
                ],
            };
            embed(study.dir, &stem, chart.svg()?, &mut text, &mut files)?;
            let curves: Vec<Series> = series_rows
                .iter()
                .filter(|r| !r.latency.sorted_ms.is_empty())
                .map(|r| Series {
                    label: format!("{} RPS", r.target_rps),
                    points: cdf(&r.latency.sorted_ms),
                })
                .collect();
            if !curves.is_empty() {
                let stem = format!("cdf_{}_{arrival}", function.slug());
                let chart = LineChart {
                    title: &format!("{}: latency CDF per point, {arrival}", function.label()),
                    x_label: "latency (ms)",
                    y_label: "fraction of requests",
                    series: curves,
                };
                embed(study.dir, &stem, chart.svg()?, &mut text, &mut files)?;
            }
        }
        let stem = format!("achieved_{}", function.slug());
        let mut series: Vec<Series> = ["uniform", "poisson"]
            .iter()
            .map(|arrival| Series {
                label: format!("achieved, {arrival}"),
                points: these
                    .iter()
                    .filter(|r| r.arrival == *arrival && r.clock_ok)
                    .map(|r| (r.target_rps, r.latency.achieved_rps.unwrap_or(f64::NAN)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        series.push(Series {
            label: "target".into(),
            points: these.iter().map(|r| (r.target_rps, r.target_rps)).collect(),
        });
        let chart = LineChart {
            title: &format!("{}: achieved vs target rate", function.label()),
            x_label: "target requests per second",
            y_label: "achieved replies per second",
            series,
        };
        embed(study.dir, &stem, chart.svg()?, &mut text, &mut files)?;
    }
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({
            "baselines": baselines
                .iter()
                .map(|(function, summary)| serde_json::json!({"function": function, "latency": summary}))
                .collect::<Vec<_>>(),
            "points": rows,
            "saturation": saturation,
        }),
        files,
    })
}

fn method(study: &Study, done: &[Done], baselines: &BTreeMap<Function, LatencySummary>) -> String {
    let load: Vec<&RunArgs> = done
        .iter()
        .map(|d| &d.planned.run)
        .filter(|r| r.pattern == Pattern::Rps)
        .collect();
    let span = |pick: fn(&RunArgs) -> u64| {
        let values: Vec<u64> = load.iter().map(|r| pick(r)).collect();
        match (values.iter().min(), values.iter().max()) {
            (Some(low), Some(high)) if low == high => low.to_string(),
            (Some(low), Some(high)) => format!("{low}–{high}"),
            _ => "none".into(),
        }
    };
    format!(
        "## Method\n\n\
         - **Points**: {} load points (target RPS × arrival process × function) and {} unloaded \
         baseline(s). Each point is one run: one boot of the guest, the function pinned to core 1 \
         (isolated), the client on core 0. Runs are executed one at a time.\n\
         - **Warm-up**: {} requests per run, sent one at a time before the measured ones and \
         excluded from every number here.\n\
         - **Requests per point**: {} measured requests at the target rate (open loop: the client \
         starts each request at its scheduled time without waiting for earlier replies).\n\
         - **Arrivals**: uniform = a fixed gap of 1/RPS; Poisson = exponential gaps with mean \
         1/RPS from a fixed-seed generator, so every run sees the same sequence of gaps.\n\
         - **Clock**: {}\n\
         - **Success**: ok replies / requests planned. Failed requests (gRPC errors) and requests \
         without a record (the run ended first) count as failures, never dropped. The client sets \
         no per-request deadline: a request that never returns is ended by the run's watchdog \
         and counted as missing.\n\
         - **Rates**: sent RPS = (requests − 1) / (last send − first send); achieved RPS = ok \
         replies / (last reply − first send). A point is sustained when achieved ≥ {:.0}% of the \
         target and success ≥ 99%.\n\
         - **Slowdown**: latency / median latency of the unloaded baseline (closed loop, one \
         request at a time, same workload and request); {} baseline(s) with results.\n\
         - **Repetitions and intervals**: one run per point. The 95% interval of each median is a \
         percentile bootstrap over that run's requests (2000 resamples, fixed seed): it reflects \
         the spread between requests, not between runs or machines.\n\
         - **Outputs**: `points.csv` (one row per point), `requests.csv` (one row per measured \
         request), the plots below (PNG and SVG), `study.json`.\n",
        load.len(),
        done.len() - load.len(),
        span(|r| r.warmup),
        span(|r| r.invocations),
        study.clock_note(),
        KEEPS_UP * 100.0,
        baselines.values().filter(|b| b.ok > 0).count(),
    )
}

fn write_points_csv(study: &Study, rows: &[Row]) -> Result<String> {
    let mut header = vec!["point", "workload", "request", "arrival", "target_rps"];
    header.extend(CSV_COLUMNS);
    header.extend([
        "baseline_p50_ms",
        "slowdown_p50",
        "slowdown_p99",
        "state",
        "guest_clock_skew",
        "clock_ok",
    ]);
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.point.clone(),
                r.function.workload.clone(),
                r.function.request.clone().unwrap_or_default(),
                r.arrival.to_string(),
                r.target_rps.to_string(),
            ];
            cells.extend(r.latency.csv_cells());
            cells.extend([
                csv_number(r.baseline_p50_ms),
                csv_number(r.slowdown_p50),
                csv_number(r.slowdown_p99),
                r.state.clone(),
                csv_number(r.guest_clock_skew),
                r.clock_ok.to_string(),
            ]);
            cells
        })
        .collect();
    write_csv(study.dir, "points.csv", &header, &rows)
}

/// One row per measured request of every point (baselines included), for pandas.
pub fn write_requests_csv(study: &Study, done: &[Done]) -> Result<String> {
    let header = [
        "point",
        "workload",
        "pattern",
        "arrival",
        "target_rps",
        "parallel",
        "index",
        "send_offset_ms",
        "latency_ms",
        "ok",
        "error",
    ];
    let mut rows = Vec::new();
    for d in done {
        let run = &d.planned.run;
        let pattern = format!("{:?}", run.pattern).to_lowercase();
        for r in &d.measured {
            rows.push(vec![
                d.planned.point.name.clone(),
                run.workload.clone(),
                pattern.clone(),
                match d.planned.load {
                    LoadPattern::Rps { arrival, .. } => arrival_name(arrival).to_string(),
                    _ => String::new(),
                },
                run.rps
                    .filter(|_| run.pattern == Pattern::Rps)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                match d.planned.load {
                    LoadPattern::Rounds { parallel, .. } | LoadPattern::Streams { parallel } => {
                        parallel.to_string()
                    }
                    _ => String::new(),
                },
                r.index.to_string(),
                (r.send_offset_ns as f64 / 1e6).to_string(),
                (r.latency_ns as f64 / 1e6).to_string(),
                r.ok.to_string(),
                r.error.clone(),
            ]);
        }
    }
    write_csv(study.dir, "requests.csv", &header, &rows)
}

//! Concurrent rounds vs independent streams (Cloud Run reconstruction): K parallel requests per
//! round (the next round after every reply and a pause) against K permanent closed-loop
//! streams, for each K: throughput and latency distribution side by side, and where each
//! request's time went (request path, handler, reply path; see `stages`) for a function that
//! stamps its handler.

use std::fmt::Write;

use anyhow::{Result, bail};
use serde::Serialize;

use super::latency::{CSV_COLUMNS, LatencySummary, summarise};
use super::load::{clock_flag, write_requests_csv};
use super::plot::{BarChart, BarLayout, LineChart, Series, cdf, embed};
use super::stages::{self, STAGES, StageSummary};
use super::{Done, Planned, Section, Study, cell, csv_number, write_csv};
use crate::run::Pattern;
use crate::run::spec::LoadPattern;

#[derive(Debug, Serialize)]
struct Row {
    point: String,
    workload: String,
    pattern: &'static str,
    parallel: u64,
    pause_ms: Option<u128>,
    #[serde(flatten)]
    latency: LatencySummary,
    stages: StageSummary,
    state: String,
    guest_clock_skew: Option<f64>,
    clock_ok: bool,
}

/// Every point compares rounds with streams.
pub fn check_points(planned: &[Planned]) -> Result<()> {
    for point in planned {
        if !matches!(point.run.pattern, Pattern::Rounds | Pattern::Streams) {
            bail!(
                "point '{}' uses pattern {:?}; hint: this study compares pattern = [\"rounds\", \
                 \"streams\"]",
                point.point.name,
                point.run.pattern
            );
        }
    }
    Ok(())
}

pub fn analyse(study: &Study, done: &[Done]) -> Result<Section> {
    let mut rows = Vec::new();
    for d in done.iter().filter(|d| d.ended()) {
        let run = &d.planned.run;
        let pattern = if run.pattern == Pattern::Rounds {
            "rounds"
        } else {
            "streams"
        };
        rows.push(Row {
            point: d.planned.point.name.clone(),
            workload: run.workload.clone(),
            pattern,
            parallel: match d.planned.load {
                LoadPattern::Rounds { parallel, .. } | LoadPattern::Streams { parallel } => {
                    parallel
                }
                _ => 1,
            },
            pause_ms: match d.planned.load {
                LoadPattern::Rounds { pause_ms, .. } => Some(u128::from(pause_ms)),
                _ => None,
            },
            latency: summarise(&d.measured, run.invocations),
            stages: stages::summarise(&d.measured),
            state: d.summary.state.to_string(),
            guest_clock_skew: d.clock_skew,
            clock_ok: d.clock_ok(),
        });
    }
    rows.sort_by(|a, b| {
        (&a.workload, a.parallel, a.pattern).cmp(&(&b.workload, b.parallel, b.pattern))
    });

    let mut files = vec![
        write_points_csv(study, &rows)?,
        write_requests_csv(study, done)?,
        write_stages_csv(study, &rows)?,
        write_request_stages_csv(study, done)?,
    ];
    let warmups: Vec<u64> = done.iter().map(|d| d.planned.run.warmup).collect();
    let invocations: Vec<u64> = done.iter().map(|d| d.planned.run.invocations).collect();
    let mut text = format!(
        "## Method\n\n\
         - **Points**: pattern (rounds, streams) × K parallel requests; each point is one run \
         (one boot), the function pinned to core 1, the client on core 0, runs one at a time.\n\
         - **Rounds**: K requests start together; the next round starts after all K replied and \
         the pause. **Streams**: K independent closed loops, each sending its next request when \
         its previous reply arrives.\n\
         - **Warm-up**: {} requests per run, one at a time, excluded.\n\
         - **Requests per point**: {}.\n\
         - **Clock**: {}\n\
         - **Throughput**: ok replies / (last reply − first send). Success: ok / requests \
         planned (failed and missing requests count as failures).\n\
         - **Repetitions and intervals**: one run per point; the 95% interval of each median is \
         a percentile bootstrap over the run's requests (2000 resamples, fixed seed).\n\
         - **Staged decomposition**: the client stamps each request's send and receive, and \
         `spin` (our function) replies with its handler's entry and exit, all four on the \
         guest's CLOCK_REALTIME (the one absolute clock Go and Rust read alike; the guest runs \
         no time daemon). Request path = server receive − client send (client stack, loopback, \
         the function's gRPC stack up to the handler), handler = done − receive, reply path = \
         client receive − done. A request counts when every stage is ≥ 0 and the stages add \
         up to its measured (CLOCK_MONOTONIC) latency within max(0.1 ms, 1%) (the client reads \
         both clocks next to each other; they disagree when the guest's vCPU is descheduled \
         between the two reads); any other stamped request is named below. spin spins for a \
         wall-clock budget, so handlers sharing the function's core show as fewer loop \
         iterations, not a longer handler, until Go's scheduler preempts one (every 10 ms). \
         vSwarm's functions stay byte-identical to vSwarm and report no stamps, so they get \
         end-to-end latency only.\n",
        range(&warmups),
        range(&invocations),
        study.clock_note()
    );
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
    workloads.dedup();
    for workload in workloads {
        let these: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        writeln!(text, "\n## {workload}\n")?;
        writeln!(
            text,
            "| K | pattern | throughput RPS | success | mean ms | p50 ms (95% CI) | p90 ms | p99 ms | run |"
        )?;
        writeln!(text, "|---|---|---|---|---|---|---|---|---|")?;
        for row in &these {
            let l = &row.latency;
            writeln!(
                text,
                "| {} | {}{} | {} | {:.3} ({}/{}) | {} | {} ({}–{}) | {} | {} | {} |",
                row.parallel,
                row.pattern,
                row.pause_ms
                    .map(|p| format!(" (pause {p} ms)"))
                    .unwrap_or_default(),
                cell(l.achieved_rps, 1),
                l.success_rate,
                l.ok,
                l.expected,
                cell(l.mean_ms, 2),
                cell(l.p50_ms, 2),
                cell(l.p50_ci_ms.map(|c| c.low), 2),
                cell(l.p50_ci_ms.map(|c| c.high), 2),
                cell(l.p90_ms, 2),
                cell(l.p99_ms, 2),
                clock_flag(&row.state, row.clock_ok, row.guest_clock_skew)
            )?;
        }
        let by_pattern = |pattern: &str, pick: fn(&LatencySummary) -> Option<f64>| Series {
            label: pattern.to_string(),
            points: these
                .iter()
                .filter(|r| r.pattern == pattern && r.clock_ok)
                .map(|r| (r.parallel as f64, pick(&r.latency).unwrap_or(f64::NAN)))
                .collect(),
        };
        let charts = [
            (
                "throughput",
                "throughput vs K",
                "replies per second",
                vec![
                    by_pattern("rounds", |l| l.achieved_rps),
                    by_pattern("streams", |l| l.achieved_rps),
                ],
            ),
            (
                "latency",
                "latency vs K",
                "latency (ms)",
                vec![
                    Series {
                        label: "rounds p50".into(),
                        ..by_pattern("rounds", |l| l.p50_ms)
                    },
                    Series {
                        label: "rounds p99".into(),
                        ..by_pattern("rounds", |l| l.p99_ms)
                    },
                    Series {
                        label: "streams p50".into(),
                        ..by_pattern("streams", |l| l.p50_ms)
                    },
                    Series {
                        label: "streams p99".into(),
                        ..by_pattern("streams", |l| l.p99_ms)
                    },
                ],
            ),
        ];
        for (stem, title, y_label, series) in charts {
            let stem = format!("{stem}_{workload}");
            let chart = LineChart {
                title: &format!("{workload}: {title}"),
                x_label: "K (parallel requests)",
                y_label,
                series,
            };
            embed(study.dir, &stem, chart.svg()?, &mut text, &mut files)?;
        }
        let curves: Vec<Series> = these
            .iter()
            .filter(|r| !r.latency.sorted_ms.is_empty() && r.clock_ok)
            .map(|r| Series {
                label: format!("{} K={}", r.pattern, r.parallel),
                points: cdf(&r.latency.sorted_ms),
            })
            .collect();
        if !curves.is_empty() {
            let stem = format!("cdf_{workload}");
            let chart = LineChart {
                title: &format!("{workload}: latency CDF per point"),
                x_label: "latency (ms)",
                y_label: "fraction of requests",
                series: curves,
            };
            embed(study.dir, &stem, chart.svg()?, &mut text, &mut files)?;
        }
        staged_section(study, workload, &these, &mut text, &mut files)?;
    }
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({ "points": rows }),
        files,
    })
}

/// The workload's staged decomposition: a table of median and p99 per stage for each K and
/// pattern, the requests whose stages are inconsistent, and the medians as stacked bars.
fn staged_section(
    study: &Study,
    workload: &str,
    rows: &[&Row],
    text: &mut String,
    files: &mut Vec<String>,
) -> Result<()> {
    writeln!(text, "\n### {workload}: where the time goes\n")?;
    if rows
        .iter()
        .all(|r| r.stages.consistent == 0 && r.stages.inconsistent.is_empty())
    {
        writeln!(
            text,
            "No request carries the handler's stamps (only `spin` reports them), so there is no \
             staged decomposition for {workload}."
        )?;
        return Ok(());
    }
    let pair =
        |q: stages::StageQuantiles| format!("{} / {}", cell(q.median_ms, 3), cell(q.p99_ms, 3));
    writeln!(
        text,
        "Median / p99 in ms over the requests with consistent stages (end to end: the same \
         requests' measured latency; medians of the stages need not add up to the median end to \
         end).\n"
    )?;
    writeln!(
        text,
        "| K | pattern | requests | request path | handler | reply path | end to end | inconsistent | run |"
    )?;
    writeln!(text, "|---|---|---|---|---|---|---|---|---|")?;
    for row in rows {
        let s = &row.stages;
        writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.parallel,
            row.pattern,
            s.consistent,
            pair(s.request_path),
            pair(s.handler),
            pair(s.reply_path),
            pair(s.end_to_end),
            s.inconsistent.len(),
            clock_flag(&row.state, row.clock_ok, row.guest_clock_skew)
        )?;
    }
    let inconsistent: Vec<(&str, &(u64, String))> = rows
        .iter()
        .flat_map(|r| r.stages.inconsistent.iter().map(|i| (r.point.as_str(), i)))
        .collect();
    if !inconsistent.is_empty() {
        writeln!(
            text,
            "\nRequests whose stages cannot be right (left out of the table above; \
             `request_stages.csv` has every request):\n"
        )?;
        for (point, (index, why)) in inconsistent {
            writeln!(text, "- `{point}` request {index}: {why}")?;
        }
    }
    let plotted: Vec<&&Row> = rows
        .iter()
        .filter(|r| r.clock_ok && r.stages.consistent > 0)
        .collect();
    let chart = BarChart {
        title: &format!("{workload}: median per stage"),
        y_label: "latency (ms)",
        categories: plotted
            .iter()
            .map(|r| format!("K={} {}", r.parallel, r.pattern))
            .collect(),
        series: STAGES
            .iter()
            .enumerate()
            .map(|(stage, name)| {
                let values = plotted
                    .iter()
                    .map(|r| r.stages.named()[stage].1.median_ms.unwrap_or(f64::NAN))
                    .collect();
                (name.replace('_', " "), values)
            })
            .collect(),
        layout: BarLayout::Stacked,
    };
    embed(
        study.dir,
        &format!("stages_{workload}"),
        chart.svg()?,
        text,
        files,
    )
}

fn range(values: &[u64]) -> String {
    match (values.iter().min(), values.iter().max()) {
        (Some(low), Some(high)) if low == high => low.to_string(),
        (Some(low), Some(high)) => format!("{low}–{high}"),
        _ => "none".into(),
    }
}

fn write_points_csv(study: &Study, rows: &[Row]) -> Result<String> {
    let mut header = vec!["point", "workload", "pattern", "parallel", "pause_ms"];
    header.extend(CSV_COLUMNS);
    header.extend(["state", "guest_clock_skew", "clock_ok"]);
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.point.clone(),
                r.workload.clone(),
                r.pattern.to_string(),
                r.parallel.to_string(),
                r.pause_ms.map(|p| p.to_string()).unwrap_or_default(),
            ];
            cells.extend(r.latency.csv_cells());
            cells.extend([
                r.state.clone(),
                csv_number(r.guest_clock_skew),
                r.clock_ok.to_string(),
            ]);
            cells
        })
        .collect();
    write_csv(study.dir, "points.csv", &header, &rows)
}

/// One row per point and stage (and end to end): median, p99 and mean in ms.
fn write_stages_csv(study: &Study, rows: &[Row]) -> Result<String> {
    let header = [
        "point",
        "workload",
        "pattern",
        "parallel",
        "pause_ms",
        "stage",
        "requests",
        "inconsistent",
        "median_ms",
        "p99_ms",
        "mean_ms",
        "clock_ok",
    ];
    let mut cells = Vec::new();
    for r in rows.iter().filter(|r| r.stages.consistent > 0) {
        for (stage, q) in r.stages.named() {
            cells.push(vec![
                r.point.clone(),
                r.workload.clone(),
                r.pattern.to_string(),
                r.parallel.to_string(),
                r.pause_ms.map(|p| p.to_string()).unwrap_or_default(),
                stage.to_string(),
                r.stages.consistent.to_string(),
                r.stages.inconsistent.len().to_string(),
                csv_number(q.median_ms),
                csv_number(q.p99_ms),
                csv_number(q.mean_ms),
                r.clock_ok.to_string(),
            ]);
        }
    }
    write_csv(study.dir, "stages.csv", &header, &cells)
}

/// One row per measured request with server stamps: its stages in ms, or why they are
/// inconsistent.
fn write_request_stages_csv(study: &Study, done: &[Done]) -> Result<String> {
    let header = [
        "point",
        "workload",
        "index",
        "request_path_ms",
        "handler_ms",
        "reply_path_ms",
        "latency_ms",
        "consistent",
        "problem",
    ];
    let mut cells = Vec::new();
    for d in done {
        for r in &d.measured {
            let (stages, problem) = match stages::split(r) {
                stages::Split::Unstamped => continue,
                stages::Split::Consistent(stages) => (stages, None),
                stages::Split::Inconsistent { stages, why } => (stages, Some(why)),
            };
            let mut row = vec![
                d.planned.point.name.clone(),
                d.planned.run.workload.clone(),
                r.index.to_string(),
            ];
            row.extend(stages.map(|ms| ms.to_string()));
            row.extend([
                (r.latency_ns as f64 / 1e6).to_string(),
                problem.is_none().to_string(),
                problem.unwrap_or_default(),
            ]);
            cells.push(row);
        }
    }
    write_csv(study.dir, "request_stages.csv", &header, &cells)
}

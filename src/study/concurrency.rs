//! Concurrent rounds vs independent streams (Cloud Run reconstruction): K parallel requests per
//! round (the next round after every reply and a pause) against K permanent closed-loop
//! streams, for each K: throughput and latency distribution side by side.
//!
//! The staged decomposition of a request (client send -> server receive -> handler done ->
//! client receive) needs server timestamps in the guest clock returned by the function and
//! recorded by the client; neither exists yet, so the report says so instead of guessing.

use std::fmt::Write;

use anyhow::{Result, bail};
use serde::Serialize;

use super::latency::{CSV_COLUMNS, LatencySummary, summarise};
use super::load::{clock_flag, write_requests_csv};
use super::plot::{LineChart, Series, cdf, embed};
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
         - **Staged decomposition (not measured)**: splitting each request into client send → \
         server receive → handler done → client receive needs server-side timestamps in the \
         guest clock. vSwarm functions must stay byte-identical to vSwarm, so only our own \
         `spin` function could report them; neither spin's reply nor the client's records carry \
         them yet, so this report gives end-to-end latency only.\n",
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
    }
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({ "points": rows }),
        files,
    })
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

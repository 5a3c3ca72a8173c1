//! Lukewarm functions (Schall et al., ISCA 2022), gem5 only. Interleaving many warm instances
//! of functions on one core thrashes each one's microarchitectural state; the paper measured
//! CPI 31-114% above execution with warm state, mostly from instruction misses. Here each
//! function runs its measured invocations back to back with the same think time between them,
//! once alone on its core (warm) and once with `simctl-thrash` beside it (lukewarm): the client
//! stops it (SIGSTOP) during every invocation and lets it run in the think time between them,
//! where it walks a large code and data footprint and data-dependent branches. So an
//! invocation's stats hold the function's instructions only, run on the state the co-runner
//! left. Per function and system: core 1's CPI, L1I/L1D/LLC MPKI and branch
//! MPKI (median over the measured invocations, one stats dump each) and the CPI increase.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::plot::{BarChart, BarLayout, embed};
use super::stats::median;
use super::{Done, Planned, Section, Study, cell, csv_number, write_csv};
use crate::report::metrics::core_metrics;
use crate::run::Pattern;
use crate::run::cmdline::PlatformKind;
use crate::run::plan::FUNCTION_CPU;

/// The paper's range of CPI increases of lukewarm over warm execution.
const PAPER_CPI_INCREASE: (f64, f64) = (31.0, 114.0);

/// gem5 only; every point closed-loop with a think time (the co-runner's window), and the
/// co-runner, where there is one, is simctl-thrash.
pub fn check_points(planned: &[Planned], platform: PlatformKind) -> Result<()> {
    if platform != PlatformKind::Gem5 {
        bail!(
            "the lukewarm study needs gem5: its answer is CPI and cache misses per invocation; \
             hint: `simctl build-gem5`, then `simctl study lukewarm --platform gem5`"
        );
    }
    for point in planned {
        let name = &point.point.name;
        if point.run.pattern != Pattern::Closed || point.run.think.is_none() {
            bail!(
                "point '{name}': the lukewarm study runs closed-loop with a think time (the \
                 window in which a co-runner runs); hint: think = \"1ms\""
            );
        }
        if let Some(co_runner) = &point.run.co_runner
            && !co_runner.starts_with("/sbin/simctl-thrash")
        {
            bail!(
                "point '{name}': co_runner must run /sbin/simctl-thrash; hint: co_runner = \
                 \"/sbin/simctl-thrash --code-kb 2048 --data-kb 8192\""
            );
        }
    }
    Ok(())
}

/// Core 1's medians over one point's measured invocations.
#[derive(Debug, Clone, Serialize)]
struct Row {
    point: String,
    workload: String,
    system: String,
    variant: &'static str,
    invocations: usize,
    cpi: Option<f64>,
    l1i_mpki: Option<f64>,
    l1d_mpki: Option<f64>,
    llc_mpki: Option<f64>,
    branch_mpki: Option<f64>,
}

fn row_of(done: &Done) -> Result<Row> {
    let run = &done.planned.run;
    let stats = done.dir.join("m5out/stats.txt");
    let dumps = if stats.is_file() {
        crate::stats::read_dumps(&stats)
            .with_context(|| format!("cannot read {}", stats.display()))?
    } else {
        Vec::new()
    };
    let metrics: Vec<_> = dumps
        .iter()
        .filter(|dump| dump.complete)
        .map(|dump| core_metrics(dump, FUNCTION_CPU))
        .collect();
    let med = |f: fn(&crate::report::CoreMetrics) -> Option<f64>| {
        median(&metrics.iter().filter_map(f).collect::<Vec<_>>())
    };
    Ok(Row {
        point: done.planned.point.name.clone(),
        workload: run.workload.clone(),
        system: run.system.clone().unwrap_or_else(|| "default".into()),
        variant: if run.co_runner.is_some() {
            "lukewarm"
        } else {
            "warm"
        },
        invocations: metrics.len(),
        cpi: med(|m| m.cpi),
        l1i_mpki: med(|m| m.l1i_mpki),
        l1d_mpki: med(|m| m.l1d_mpki),
        llc_mpki: med(|m| m.llc_mpki),
        branch_mpki: med(|m| m.branch_mpki),
    })
}

/// Warm and lukewarm of one function on one system.
#[derive(Debug, Serialize)]
struct Comparison {
    workload: String,
    system: String,
    warm_cpi: Option<f64>,
    lukewarm_cpi: Option<f64>,
    cpi_increase_percent: Option<f64>,
    l1i_mpki_increase: Option<f64>,
    l1d_mpki_increase: Option<f64>,
    llc_mpki_increase: Option<f64>,
    branch_mpki_increase: Option<f64>,
}

/// The warm and the lukewarm row of one (function, system).
type Pair<'a> = (Option<&'a Row>, Option<&'a Row>);

fn compare(rows: &[Row]) -> Vec<Comparison> {
    let mut pairs: BTreeMap<(String, String), Pair> = BTreeMap::new();
    for row in rows {
        let pair = pairs
            .entry((row.workload.clone(), row.system.clone()))
            .or_default();
        match row.variant {
            "warm" => pair.0 = Some(row),
            _ => pair.1 = Some(row),
        }
    }
    pairs
        .into_iter()
        .map(|((workload, system), (warm, lukewarm))| {
            let delta = |f: fn(&Row) -> Option<f64>| Some(f(lukewarm?)? - f(warm?)?);
            let warm_cpi = warm.and_then(|r| r.cpi);
            let lukewarm_cpi = lukewarm.and_then(|r| r.cpi);
            Comparison {
                cpi_increase_percent: match (warm_cpi, lukewarm_cpi) {
                    (Some(warm), Some(lukewarm)) if warm > 0.0 => {
                        Some((lukewarm / warm - 1.0) * 100.0)
                    }
                    _ => None,
                },
                l1i_mpki_increase: delta(|r| r.l1i_mpki),
                l1d_mpki_increase: delta(|r| r.l1d_mpki),
                llc_mpki_increase: delta(|r| r.llc_mpki),
                branch_mpki_increase: delta(|r| r.branch_mpki),
                workload,
                system,
                warm_cpi,
                lukewarm_cpi,
            }
        })
        .collect()
}

pub fn analyse(study: &Study, done: &[Done]) -> Result<Section> {
    let rows = done.iter().map(row_of).collect::<Result<Vec<_>>>()?;
    let comparisons = compare(&rows);
    let think = done
        .iter()
        .find_map(|d| d.planned.run.think)
        .map_or("?".to_string(), |think| think.to_string());
    let co_runner = done
        .iter()
        .find_map(|d| d.planned.run.co_runner.clone())
        .unwrap_or_default();
    let mut text = format!(
        "## Method\n\n\
         - **Warm**: the function's measured invocations back to back (closed loop) with a \
         think time of {think} after each, alone on core 1 (isolcpus=1; the client on core 0).\n\
         - **Lukewarm**: the same, with `{co_runner}` started on core 1 beside the function at \
         idle priority (SCHED_IDLE). The client stops it (SIGSTOP, and waits until the kernel \
         shows it stopped) before each invocation and continues it after, so it runs only in \
         the think time between invocations, where it walks a code footprint (one called `ret` \
         per 64-byte line), a data footprint (one read-modify-write per 64-byte line) and \
         data-dependent branches, as other function instances sharing the core would; an \
         invocation's stats hold the function's work only.\n\
         - **Measured**: core 1 in each measured invocation's stats dump (workbegin to \
         workend, after the warm-up before the checkpoint and the warming invocations after \
         the restore); CPI = cycles / instructions, misses per kilo-instruction of core 1 (the \
         shared LLC's misses counted by requestor); medians over the invocations.\n\
         - **Paper**: Schall et al., \"Lukewarm Serverless Functions: Characterization and \
         Optimization\" (ISCA 2022) report CPI {:.0}-{:.0}% above warm execution, mostly \
         from instruction misses.\n\
         - **Clock**: {}\n",
        PAPER_CPI_INCREASE.0,
        PAPER_CPI_INCREASE.1,
        study.clock_note()
    );
    writeln!(
        text,
        "\n## Warm vs lukewarm (core 1, medians per invocation)\n\n\
         | function | system | CPI warm | CPI lukewarm | CPI increase | Δ L1I MPKI | Δ L1D MPKI \
         | Δ LLC MPKI | Δ branch MPKI |\n|---|---|---|---|---|---|---|---|---|"
    )?;
    for c in &comparisons {
        writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.workload,
            c.system,
            cell(c.warm_cpi, 2),
            cell(c.lukewarm_cpi, 2),
            c.cpi_increase_percent
                .map_or(String::new(), |p| format!("{p:+.0}%")),
            cell(c.l1i_mpki_increase, 1),
            cell(c.l1d_mpki_increase, 1),
            cell(c.llc_mpki_increase, 1),
            cell(c.branch_mpki_increase, 1),
        )?;
    }
    writeln!(
        text,
        "\nThe paper's range: +{:.0}% to +{:.0}% CPI.\n",
        PAPER_CPI_INCREASE.0, PAPER_CPI_INCREASE.1
    )?;
    let categories: Vec<String> = comparisons
        .iter()
        .map(|c| format!("{} {}", c.workload, c.system))
        .collect();
    let values = |f: fn(&Comparison) -> Option<f64>| -> Vec<f64> {
        comparisons
            .iter()
            .map(|c| f(c).unwrap_or(f64::NAN))
            .collect()
    };
    let mut files = vec![write_rows_csv(study, &rows)?];
    let cpi = BarChart {
        title: "CPI of core 1, warm and lukewarm",
        y_label: "cycles per instruction",
        categories: categories.clone(),
        series: vec![
            ("warm".into(), values(|c| c.warm_cpi)),
            ("lukewarm".into(), values(|c| c.lukewarm_cpi)),
        ],
        layout: BarLayout::Grouped,
    };
    embed(study.dir, "cpi", cpi.svg()?, &mut text, &mut files)?;
    let misses = BarChart {
        title: "Increase of misses per kilo-instruction, lukewarm over warm",
        y_label: "MPKI increase",
        categories,
        series: vec![
            ("L1I".into(), values(|c| c.l1i_mpki_increase)),
            ("L1D".into(), values(|c| c.l1d_mpki_increase)),
            ("LLC".into(), values(|c| c.llc_mpki_increase)),
            ("branch".into(), values(|c| c.branch_mpki_increase)),
        ],
        layout: BarLayout::Grouped,
    };
    embed(
        study.dir,
        "mpki_increase",
        misses.svg()?,
        &mut text,
        &mut files,
    )?;
    Ok(Section {
        markdown: text,
        summary: serde_json::json!({ "comparisons": comparisons, "paper_cpi_increase_percent": PAPER_CPI_INCREASE }),
        files,
    })
}

fn write_rows_csv(study: &Study, rows: &[Row]) -> Result<String> {
    let header = [
        "point",
        "workload",
        "system",
        "variant",
        "invocations",
        "cpi",
        "l1i_mpki",
        "l1d_mpki",
        "llc_mpki",
        "branch_mpki",
    ];
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.point.clone(),
                r.workload.clone(),
                r.system.clone(),
                r.variant.to_string(),
                r.invocations.to_string(),
                csv_number(r.cpi),
                csv_number(r.l1i_mpki),
                csv_number(r.l1d_mpki),
                csv_number(r.llc_mpki),
                csv_number(r.branch_mpki),
            ]
        })
        .collect();
    write_csv(study.dir, "lukewarm.csv", &header, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, variant: &'static str, cpi: f64, l1i: f64) -> Row {
        Row {
            point: format!("{workload}-{variant}"),
            workload: workload.into(),
            system: "default".into(),
            variant,
            invocations: 5,
            cpi: Some(cpi),
            l1i_mpki: Some(l1i),
            l1d_mpki: None,
            llc_mpki: Some(1.0),
            branch_mpki: None,
        }
    }

    #[test]
    fn warm_and_lukewarm_of_each_function_are_paired_and_compared() {
        let rows = [
            row("aes-go", "lukewarm", 3.0, 80.0),
            row("aes-go", "warm", 2.0, 50.0),
            row("auth-go", "warm", 4.0, 10.0),
        ];
        let comparisons = compare(&rows);
        assert_eq!(comparisons.len(), 2);
        let aes = &comparisons[0];
        assert_eq!(aes.workload, "aes-go");
        assert_eq!(aes.cpi_increase_percent, Some(50.0));
        assert_eq!(aes.l1i_mpki_increase, Some(30.0));
        assert_eq!(aes.llc_mpki_increase, Some(0.0));
        assert_eq!(aes.l1d_mpki_increase, None, "no source, no number");
        let auth = &comparisons[1];
        assert_eq!(auth.cpi_increase_percent, None, "no lukewarm run");
    }
}

//! The short report of one run (`report.md`): per measured invocation, the latency the client
//! saw and, under gem5, core 1's (the function's) and core 0's metrics from that invocation's
//! own stats dump; then mean, median and p99.

use std::fmt::Write;

use anyhow::{Context, Result};
use simctl_guest::records::{Phase, from_csv};

use super::rundir::{PhaseTime, RunDir};
use crate::fsutil::write_atomic;
use crate::report::metrics::{core_metrics, format_value};
use crate::stats::read_dumps;

/// mean, median, p99 of the values.
fn summary(values: &mut [f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some((mean, at(0.5), at(0.99)))
}

/// Builds report.md from the run directory (results/, m5out/stats.txt) and prints it.
pub fn write_run_report(dir: &RunDir, invocations: u64, phases: &[PhaseTime]) -> Result<()> {
    let mut text = format!("# simctl run {}\n\n", dir.path().display());
    // Which isolation the function ran under, so container and process runs of one workload
    // can be told apart when their reports are compared.
    let record = std::fs::read_to_string(dir.path().join(super::rundir::RUN_FILE))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok());
    if let Some(isolation) = record
        .as_ref()
        .and_then(|table| table.get("spec")?.get("isolation")?.as_str())
    {
        writeln!(text, "- isolation: {isolation}")?;
    }
    for phase in phases {
        writeln!(text, "- phase {}: {:.1} s wall", phase.name, phase.wall_s)?;
    }
    let csv = dir.results_dir().join("results.csv");
    let records = match std::fs::read_to_string(&csv) {
        Ok(text) => from_csv(&text).map_err(anyhow::Error::msg)?,
        Err(_) => Vec::new(),
    };
    let measured: Vec<_> = records
        .iter()
        .filter(|r| r.phase == Phase::Measured)
        .collect();
    let stats_path = dir.m5out().join("stats.txt");
    let dumps = if stats_path.is_file() {
        read_dumps(&stats_path).with_context(|| format!("cannot read {}", stats_path.display()))?
    } else {
        Vec::new()
    };
    writeln!(
        text,
        "\n{} of {invocations} measured invocations recorded, {} ok; {} stats dump(s)\n",
        measured.len(),
        measured.iter().filter(|r| r.ok).count(),
        dumps.len()
    )?;
    let columns = [
        "instructions",
        "cycles",
        "ipc",
        "l1i_mpki",
        "l1d_mpki",
        "llc_mpki",
        "branch_mpki",
    ];
    let mut header = vec![
        "invocation".to_string(),
        "latency_us".to_string(),
        "ok".to_string(),
    ];
    for cpu in [1, 0] {
        header.extend(columns.iter().map(|c| format!("cpu{cpu} {c}")));
    }
    writeln!(text, "| {} |", header.join(" | "))?;
    writeln!(text, "|{}", "---|".repeat(header.len()))?;
    let mut latencies = Vec::new();
    let mut per_core: std::collections::BTreeMap<(usize, &str), Vec<f64>> = Default::default();
    for (position, record) in measured.iter().enumerate() {
        latencies.push(record.latency_ns as f64 / 1000.0);
        let mut cells = vec![
            record.index.to_string(),
            format!("{:.1}", record.latency_ns as f64 / 1000.0),
            record.ok.to_string(),
        ];
        for cpu in [1, 0] {
            let metrics = dumps.get(position).map(|dump| core_metrics(dump, cpu));
            let values = metrics.map(|m| m.columns()).unwrap_or_default();
            for column in columns {
                let value = values
                    .iter()
                    .find(|(n, _)| *n == column)
                    .and_then(|(_, v)| *v);
                if let Some(value) = value.filter(|v| v.is_finite()) {
                    per_core.entry((cpu, column)).or_default().push(value);
                }
                cells.push(format_value(value));
            }
        }
        writeln!(text, "| {} |", cells.join(" | "))?;
    }
    if let Some((mean, median, p99)) = summary(&mut latencies) {
        writeln!(
            text,
            "\nlatency (us): mean {mean:.1}, median {median:.1}, p99 {p99:.1}"
        )?;
    }
    if !per_core.is_empty() {
        writeln!(
            text,
            "\n| core | metric | mean | median | p99 |\n|---|---|---|---|---|"
        )?;
        for cpu in [1, 0] {
            for column in columns {
                if let Some((mean, median, p99)) =
                    per_core.get_mut(&(cpu, column)).and_then(|v| summary(v))
                {
                    writeln!(
                        text,
                        "| {cpu} | {column} | {mean:.4} | {median:.4} | {p99:.4} |"
                    )?;
                }
            }
        }
    }
    write_atomic(&dir.report_md(), text.as_bytes())?;
    eprint!("{text}");
    Ok(())
}

/// Rewrites report.md of a run directory from what it holds (`simctl report RUN_DIR`).
/// Returns false when `dir` is not a simctl run directory.
pub fn regenerate(dir: &std::path::Path) -> Result<bool> {
    let run = RunDir::open(dir);
    if !run.run_toml().is_file() {
        return Ok(false);
    }
    let invocations = super::spec::RunSpec::load(dir)?.invocations;
    let phases = run
        .status()?
        .map(|status| status.phases)
        .unwrap_or_default();
    write_run_report(&run, invocations, &phases)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_mean_median_p99() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(summary(&mut values), Some((50.5, 51.0, 99.0)));
        assert_eq!(summary(&mut []), None);
    }
}

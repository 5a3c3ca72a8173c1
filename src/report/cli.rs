//! `simctl report PATH...`: run directories (QEMU or gem5), sweep directories, m5out
//! directories and stats files, mixed, in one table: one row per measured invocation (its
//! latency) and, where gem5 stats exist, per stats dump and CPU (derived metrics). Run
//! directories also get a latency summary (mean, p50, p90, p99). `--plot` draws what the inputs
//! have: latency per invocation and its CDF for runs, a metric per dump for stats.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use comfy_table::{
    ContentArrangement, Table, presets::ASCII_MARKDOWN, presets::UTF8_FULL_CONDENSED,
};

use super::integrity::{each_complete_dump, run_still_running, still_running};
use super::metrics::{CoreMetrics, core_metrics, format_value, has_core};
use super::runs::{RunView, runs_in};
use crate::fsutil::write_atomic;
use crate::stats::Dump;

/// Cores probed when `--cpu` is not given.
const MAX_CPUS: usize = 256;

/// Output format of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Markdown,
}

/// Latency per invocation and derived metrics (IPC, MPKI, ...) per run, dump and CPU, with plots.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl report runs/aes-go-qemu-*/ --plot latency.svg\n  simctl report runs/aes-go-gem5-*/ --cpu 1\n  simctl report a/m5out b/m5out --format markdown --plot ipc.svg\n  simctl report sweeps-out/qemu-smoke --format csv"
)]
pub struct ReportArgs {
    /// Run directories, sweep directories, m5out directories or stats.txt files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Only this core (the function runs on core 1).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Output format (csv and json always hold every column).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Say which raw stat each metric came from.
    #[arg(long)]
    pub explain: bool,
    /// Draw into FILE.svg or FILE.png: latency per invocation and its CDF (runs), and
    /// --plot-metric per stats dump (gem5 stats).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Metric to plot per stats dump (a column name, e.g. ipc, l1d_mpki).
    #[arg(long, default_value = "ipc")]
    pub plot_metric: String,
    /// Report a run that is still running or a stats file that ends inside a dump: the
    /// complete dumps are reported, incomplete ones left out (warned); report.md is not rewritten.
    #[arg(long)]
    pub allow_incomplete: bool,
}

/// One table row: a measured invocation, a stats dump of one CPU, or both (gem5 runs).
#[derive(Debug, Clone)]
pub struct Row {
    pub run: String,
    pub dump: Option<usize>,
    pub cpu: Option<usize>,
    pub metrics: CoreMetrics,
    pub invocation: Option<u64>,
    pub latency_us: Option<f64>,
    pub ok: Option<bool>,
}

/// The stats.txt behind a report path.
pub fn stats_file(path: &Path) -> Result<PathBuf> {
    let candidates = [
        path.to_path_buf(),
        path.join("stats.txt"),
        path.join("m5out").join("stats.txt"),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{}: no stats.txt here, and not a run or sweep directory (looked for the file, \
                 DIR/run.toml, DIR/sweep.json, DIR/stats.txt, DIR/m5out/stats.txt)",
                path.display()
            )
        })
}

/// The core numbers with stats in `dump`; stops at the first two missing numbers in a row
/// (core numbers are dense, and probing all MAX_CPUS costs much on files with many dumps).
fn cores_in(dump: &Dump) -> Vec<usize> {
    let mut cores = Vec::new();
    let mut missing_in_a_row = 0;
    for n in 0..MAX_CPUS {
        if has_core(dump, n) {
            cores.push(n);
            missing_in_a_row = 0;
        } else {
            missing_in_a_row += 1;
            if missing_in_a_row == 2 {
                break;
            }
        }
    }
    cores
}

fn stats_row(run: &str, dump: &Dump, cpu: usize) -> Row {
    Row {
        run: run.to_string(),
        dump: Some(dump.index),
        cpu: Some(cpu),
        metrics: core_metrics(dump, cpu),
        invocation: None,
        latency_us: None,
        ok: None,
    }
}

/// Rows for every complete dump and core (or only `cpu`) of a stats file; see
/// `integrity::each_complete_dump` for incomplete ones.
pub fn rows_for(path: &Path, cpu: Option<usize>, allow_incomplete: bool) -> Result<Vec<Row>> {
    stats_rows(
        &stats_file(path)?,
        &path.display().to_string(),
        cpu,
        allow_incomplete,
    )
}

fn stats_rows(
    file: &Path,
    run: &str,
    cpu: Option<usize>,
    allow_incomplete: bool,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // Streamed: a file with thousands of dumps never sits in memory whole.
    each_complete_dump(file, allow_incomplete, |dump| {
        let cpus = cpu.map_or_else(|| cores_in(&dump), |cpu| vec![cpu]);
        rows.extend(cpus.into_iter().map(|n| stats_row(run, &dump, n)));
    })?;
    Ok(rows)
}

/// Rows of a run: one per measured invocation, and with gem5 stats one per CPU of the dump
/// taken around that invocation (the n-th dump belongs to the n-th measured invocation).
fn run_rows(
    view: &RunView,
    label: &str,
    cpu: Option<usize>,
    allow_incomplete: bool,
) -> Result<Vec<Row>> {
    let dumps = view.dumps(allow_incomplete)?;
    let mut rows = Vec::new();
    for position in 0..view.invocations.len().max(dumps.len()) {
        let invocation = view.invocations.get(position);
        let with_invocation = |mut row: Row| {
            row.invocation = invocation.map(|i| i.index);
            row.latency_us = invocation.map(|i| i.latency_us);
            row.ok = invocation.map(|i| i.ok);
            row
        };
        match dumps.get(position) {
            Some(dump) => {
                let cpus = cpu.map_or_else(|| cores_in(dump), |cpu| vec![cpu]);
                rows.extend(
                    cpus.into_iter()
                        .map(|n| with_invocation(stats_row(label, dump, n))),
                );
            }
            None => rows.push(with_invocation(Row {
                run: label.to_string(),
                dump: None,
                cpu: None,
                metrics: CoreMetrics::default(),
                invocation: None,
                latency_us: None,
                ok: None,
            })),
        }
    }
    Ok(rows)
}

/// A report input, read.
enum Input {
    Run(Box<RunView>),
    Stats(PathBuf),
}

/// Every input behind the paths, in order (a sweep directory stands for its runs).
fn inputs(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        let runs = runs_in(path)?;
        if runs.is_empty() {
            if path.join("sweep.json").is_file() {
                bail!(
                    "{}: a sweep directory without run directories yet; hint: wait for the \
                     sweep's points to start (simctl sweep ... --wait)",
                    path.display()
                );
            }
            stats_file(path)?;
            inputs.push(Input::Stats(path.clone()));
        }
        for run in runs {
            inputs.push(Input::Run(Box::new(RunView::load(&run)?)));
        }
    }
    Ok(inputs)
}

/// The run a stats path belongs to (`RUN/m5out` or `RUN/m5out/stats.txt`), if any.
fn enclosing_run(path: &Path) -> Option<RunView> {
    path.ancestors()
        .skip(1)
        .take(2)
        .find(|dir| RunView::is_run(dir))
        .and_then(|dir| RunView::load(dir).ok())
}

/// Names of the inputs in tables and legends: runs by workload/platform/system, with the
/// directory name added where two runs would otherwise share a name; stats by path.
fn labels(inputs: &[Input]) -> Vec<String> {
    let names: Vec<String> = inputs
        .iter()
        .map(|input| match input {
            Input::Run(view) => view.label(),
            Input::Stats(path) => {
                enclosing_run(path).map_or_else(|| path.display().to_string(), |view| view.label())
            }
        })
        .collect();
    names
        .iter()
        .zip(inputs)
        .map(|(name, input)| match input {
            Input::Run(view) if names.iter().filter(|n| *n == name).count() > 1 => {
                let dir = view
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                format!("{name} ({})", dir.unwrap_or_default())
            }
            _ => name.clone(),
        })
        .collect()
}

fn header() -> Vec<&'static str> {
    let mut header = vec!["run", "dump", "cpu"];
    header.extend(
        CoreMetrics::default()
            .columns()
            .into_iter()
            .map(|(name, _)| name),
    );
    header.extend(["invocation", "latency_us", "ok"]);
    header
}

/// Metric columns (between `cpu` and `invocation`).
fn metric_names() -> Vec<&'static str> {
    let header = header();
    header[3..header.len() - 3].to_vec()
}

fn cells(row: &Row) -> Vec<String> {
    let text = |value: Option<String>| value.unwrap_or_default();
    let mut cells = vec![
        row.run.clone(),
        text(row.dump.map(|d| d.to_string())),
        text(row.cpu.map(|c| c.to_string())),
    ];
    cells.extend(
        row.metrics
            .columns()
            .into_iter()
            .map(|(_, v)| format_value(v)),
    );
    cells.extend([
        text(row.invocation.map(|i| i.to_string())),
        text(row.latency_us.map(|l| format!("{l:.1}"))),
        text(row.ok.map(|ok| ok.to_string())),
    ]);
    cells
}

/// Columns a reader sees first when the terminal is too narrow for all of them.
const KEY_COLUMNS: &[&str] = &[
    "run",
    "dump",
    "cpu",
    "ipc",
    "l1i_mpki",
    "l1d_mpki",
    "llc_mpki",
    "branch_mpki",
    "invocation",
    "latency_us",
    "ok",
];

/// The terminal's width when stdout is one, else `$COLUMNS` when set.
pub fn terminal_width() -> Option<u16> {
    Table::new().width().or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|columns| columns.trim().parse().ok())
    })
}

/// Lets a table wrap its cells to the terminal's width.
pub fn fit_to_terminal(table: &mut Table) {
    if let Some(width) = terminal_width() {
        table
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a word longer than that
/// keeps its own line).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

/// A note under a table, wrapped to the terminal's width (100 columns when unknown).
fn note(text: &str) -> String {
    wrap(text, terminal_width().map_or(100, usize::from)) + "\n"
}

fn rendered_width(table: &Table) -> usize {
    table
        .lines()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0)
}

/// A human table of the columns in `keep` (indices into `header()`).
fn table_of(rows: &[Row], keep: &[usize], markdown: bool) -> Table {
    let header = header();
    let mut table = Table::new();
    if markdown {
        table.load_preset(ASCII_MARKDOWN).force_no_tty();
    } else {
        table.load_preset(UTF8_FULL_CONDENSED);
    }
    table.set_header(keep.iter().map(|&i| header[i]));
    for row in rows {
        let cells = cells(row);
        table.add_row(keep.iter().map(|&i| cells[i].clone()));
    }
    table
}

/// Renders rows as a Markdown table of the columns that hold a value.
pub fn markdown(rows: &[Row]) -> String {
    table_of(rows, &filled_columns(rows), true).to_string()
}

/// Indices of the columns with a value in some row (`run` always).
fn filled_columns(rows: &[Row]) -> Vec<usize> {
    let all: Vec<Vec<String>> = rows.iter().map(cells).collect();
    (0..header().len())
        .filter(|&i| i == 0 || all.iter().any(|cells| !cells[i].is_empty()))
        .collect()
}

/// The terminal table: columns without values dropped; when still too wide, the key columns
/// only (and a note of what is left out), wrapped to the terminal's width.
fn terminal_table(rows: &[Row]) -> (Table, Option<String>) {
    let filled = filled_columns(rows);
    let mut table = table_of(rows, &filled, false);
    let mut note = None;
    if let Some(width) = terminal_width()
        && rendered_width(&table) > width as usize
    {
        let header = header();
        let key: Vec<usize> = filled
            .iter()
            .copied()
            .filter(|&i| KEY_COLUMNS.contains(&header[i]))
            .collect();
        if key.len() < filled.len() {
            note = Some(format!(
                "{} more column(s) did not fit ({}); --format csv or json shows every column",
                filled.len() - key.len(),
                filled
                    .iter()
                    .filter(|i| !key.contains(i))
                    .map(|&i| header[i])
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            table = table_of(rows, &key, false);
        }
        fit_to_terminal(&mut table);
    }
    (table, note)
}

/// Renders rows in any output format; table and Markdown show the columns that hold a value,
/// CSV and JSON hold every column.
pub fn render(rows: &[Row], format: Format) -> Result<String> {
    Ok(match format {
        Format::Markdown => markdown(rows) + "\n",
        Format::Table => {
            let (table, note) = terminal_table(rows);
            let mut text = table.to_string() + "\n";
            if let Some(text_of_note) = note {
                text += &self::note(&text_of_note);
            }
            text
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(header())?;
            for row in rows {
                writer.write_record(cells(row))?;
            }
            String::from_utf8(writer.into_inner()?)?
        }
        Format::Json => {
            let values: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    object.insert("run".into(), row.run.clone().into());
                    object.insert("dump".into(), row.dump.into());
                    object.insert("cpu".into(), row.cpu.into());
                    for (name, value) in row.metrics.columns() {
                        object.insert(
                            name.into(),
                            value
                                .filter(|v| v.is_finite())
                                .map_or(serde_json::Value::Null, Into::into),
                        );
                    }
                    object.insert("invocation".into(), row.invocation.into());
                    object.insert(
                        "latency_us".into(),
                        row.latency_us
                            .filter(|v| v.is_finite())
                            .map_or(serde_json::Value::Null, Into::into),
                    );
                    object.insert("ok".into(), row.ok.into());
                    object.into()
                })
                .collect();
            serde_json::to_string_pretty(&values)? + "\n"
        }
    })
}

/// One line per run: state, platform, successes, latency distribution, pinning.
fn run_summary(runs: &[(&RunView, &str)], markdown: bool) -> Table {
    let mut table = Table::new();
    if markdown {
        table.load_preset(ASCII_MARKDOWN).force_no_tty();
    } else {
        table.load_preset(UTF8_FULL_CONDENSED);
        fit_to_terminal(&mut table);
    }
    table.set_header([
        "run",
        "state",
        "ok",
        "mean µs",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "function on",
        "client on",
    ]);
    for (view, label) in runs {
        let ok = view.invocations.iter().filter(|i| i.ok).count();
        let mut cells = vec![
            label.to_string(),
            view.state_text(),
            format!("{ok}/{}", view.invocations.len()),
        ];
        match view.latency() {
            Some(d) => cells.extend([d.mean, d.p50, d.p90, d.p99].map(|v| format!("{v:.1}"))),
            None => cells.extend(std::iter::repeat_n(String::new(), 4)),
        }
        let core = |cores: Option<&str>| cores.map_or("?".into(), |c| format!("core {c}"));
        cells.push(core(view.function_cores()));
        cells.push(core(view.client_cores()));
        table.add_row(cells);
    }
    table
}

/// The axis title of a metric, with its unit.
fn metric_axis(metric: &str) -> String {
    let cache = |name: &str| match name.split('_').next().unwrap_or(name) {
        "l1i" => "L1I".to_string(),
        "l1d" => "L1D".to_string(),
        "llc" => "LLC".to_string(),
        "branch" => "branch".to_string(),
        other => other.to_string(),
    };
    match metric {
        "ipc" => "IPC (instructions per cycle)".into(),
        "cpi" => "CPI (cycles per instruction)".into(),
        "instructions" => "committed instructions".into(),
        "cycles" => "cycles".into(),
        "branch_mispredicts" => "mispredicted branches".into(),
        "branch_mpki" => "branch mispredictions per 1000 instructions".into(),
        "sim_seconds" => "simulated time (s)".into(),
        "host_seconds" => "host time (s)".into(),
        m if m.ends_with("_mpki") => format!("{} misses per 1000 instructions", cache(m)),
        m if m.ends_with("_miss_rate") => format!("{} miss rate (misses per access)", cache(m)),
        m => m.to_string(),
    }
}

/// One line chart: named series of (x, y) points.
struct Panel {
    title: String,
    x_desc: String,
    y_desc: String,
    /// x values are counts (invocations, dumps): labels without decimals.
    x_counts: bool,
    /// Decimals of the y labels.
    y_decimals: usize,
    /// Where the legend covers the least of the lines.
    legend: plotters::chart::SeriesLabelPosition,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

impl Panel {
    fn is_empty(&self) -> bool {
        self.series.iter().all(|(_, points)| points.is_empty())
    }
}

/// The panels the inputs have data for: latency per invocation and latency CDF (runs with
/// results), `metric` per stats dump (inputs with gem5 stats).
fn panels(runs: &[(&RunView, &str)], rows: &[Row], metric: &str) -> Vec<Panel> {
    let mut per_invocation = Panel {
        title: "latency per measured invocation".into(),
        x_desc: "measured invocation".into(),
        y_desc: "latency (µs)".into(),
        x_counts: true,
        y_decimals: 0,
        legend: plotters::chart::SeriesLabelPosition::UpperRight,
        series: Vec::new(),
    };
    let mut cdf = Panel {
        title: "latency CDF".into(),
        x_desc: "latency (µs)".into(),
        y_desc: "fraction of invocations ≤ latency".into(),
        x_counts: false,
        y_decimals: 1,
        legend: plotters::chart::SeriesLabelPosition::LowerRight,
        series: Vec::new(),
    };
    for (view, label) in runs {
        let latencies: Vec<f64> = view.invocations.iter().map(|i| i.latency_us).collect();
        per_invocation.series.push((
            label.to_string(),
            view.invocations
                .iter()
                .map(|i| (i.index as f64, i.latency_us))
                .collect(),
        ));
        let mut sorted = latencies;
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        // A step function: at each measured latency the fraction rises by 1/n.
        let steps = sorted
            .iter()
            .enumerate()
            .flat_map(|(i, &x)| [(x, i as f64 / n), (x, (i + 1) as f64 / n)])
            .collect();
        cdf.series.push((label.to_string(), steps));
    }
    let mut per_dump = Panel {
        title: format!("{metric} per stats dump"),
        x_desc: "stats dump (one per measured invocation in a run)".into(),
        y_desc: metric_axis(metric),
        x_counts: true,
        y_decimals: 3,
        legend: plotters::chart::SeriesLabelPosition::UpperRight,
        series: Vec::new(),
    };
    for row in rows {
        let (Some(dump), Some(cpu)) = (row.dump, row.cpu) else {
            continue;
        };
        let Some(value) = row.metrics.column(metric).filter(|v| v.is_finite()) else {
            continue;
        };
        let label = format!("{} cpu{cpu}", row.run);
        match per_dump.series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, points)) => points.push((dump as f64, value)),
            None => per_dump.series.push((label, vec![(dump as f64, value)])),
        }
    }
    [per_invocation, cdf, per_dump]
        .into_iter()
        .filter(|panel| !panel.is_empty())
        .collect()
}

fn padded_range(values: impl Iterator<Item = f64> + Clone, from_zero: bool) -> (f64, f64) {
    let low = values.clone().fold(f64::INFINITY, f64::min);
    let high = values.fold(f64::NEG_INFINITY, f64::max);
    let low = if from_zero { low.min(0.0) } else { low };
    let pad = ((high - low) * 0.05).max(1e-9);
    (if from_zero { low } else { low - pad }, high + pad)
}

/// Draws the panels one above the other as an SVG document.
fn plot_svg(panels: &[Panel]) -> Result<String> {
    use plotters::prelude::*;
    let plot_error = |err: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw the plot: {err}");
    let mut svg = String::new();
    {
        let height = 480 * panels.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&e))?;
        let areas = root.split_evenly((panels.len(), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            let xs = panel
                .series
                .iter()
                .flat_map(|(_, p)| p.iter().map(|(x, _)| *x));
            let ys = panel
                .series
                .iter()
                .flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
            let (x_low, x_high) = padded_range(xs, false);
            let (y_low, y_high) = padded_range(ys, true);
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 24))
                .margin(20)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(x_low..x_high, y_low..y_high)
                .map_err(|e| plot_error(&e))?;
            let x_label = |x: &f64| {
                if panel.x_counts {
                    format!("{x:.0}")
                } else {
                    format!("{x}")
                }
            };
            let y_label = |y: &f64| format!("{y:.*}", panel.y_decimals);
            chart
                .configure_mesh()
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label)
                .x_desc(panel.x_desc.as_str())
                .y_desc(panel.y_desc.as_str())
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(|e| plot_error(&e))?;
            for (i, (label, points)) in panel.series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| plot_error(&e))?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                // Markers keep a series with a single point visible.
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|&point| Circle::new(point, 3, color.filled())),
                    )
                    .map_err(|e| plot_error(&e))?;
            }
            chart
                .configure_series_labels()
                .position(panel.legend.clone())
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| plot_error(&e))?;
        }
        root.present().map_err(|e| plot_error(&e))?;
    }
    Ok(svg)
}

/// Rasterises the SVG with resvg. Why not plotters' bitmap backend: it needs a font found at
/// build/link time (fontconfig/freetype) and fails at run time without one; resvg is pure Rust,
/// looks fonts up at run time, and still draws every line when no font is installed.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    let families: Vec<String> = fonts
        .faces()
        .flat_map(|face| face.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial"];
    match preferred
        .iter()
        .map(|p| p.to_string())
        .find(|p| families.contains(p))
        .or(families.first().cloned())
    {
        Some(family) => fonts.set_sans_serif_family(family),
        None => eprintln!(
            "warning: no fonts found; the PNG has no text (hint: apt-get install fonts-dejavu-core)"
        ),
    }
    let tree = usvg::Tree::from_str(svg, &options).context("cannot read the plot's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("plot has no area")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().context("cannot encode the plot as PNG")
}

/// The plot's format from its file name, checked before any work is done.
#[derive(Debug, Clone, Copy)]
enum PlotFormat {
    Svg,
    Png,
}

fn plot_format(path: &Path) -> Result<PlotFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => Ok(PlotFormat::Svg),
        Some("png") => Ok(PlotFormat::Png),
        _ => bail!(
            "--plot {}: the file name must end in .svg or .png",
            path.display()
        ),
    }
}

fn plot(panels: &[Panel], format: PlotFormat, path: &Path) -> Result<()> {
    let svg = plot_svg(panels)?;
    let bytes = match format {
        PlotFormat::Svg => svg.into_bytes(),
        PlotFormat::Png => svg_to_png(&svg)?,
    };
    write_atomic(path, &bytes)
}

/// Prints to stdout; a reader that stops reading (`| head`) is not an error.
fn print_all(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

pub fn run(args: ReportArgs) -> Result<()> {
    // Everything that can be checked without reading the inputs is, before anything is printed.
    let plot_format = args.plot.as_deref().map(plot_format).transpose()?;
    if args.plot.is_some() && !metric_names().contains(&args.plot_metric.as_str()) {
        bail!(
            "--plot-metric {}: not a metric; choose one of {}",
            args.plot_metric,
            metric_names().join(", ")
        );
    }
    let inputs = inputs(&args.paths)?;
    let labels = labels(&inputs);
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for (input, label) in inputs.iter().zip(&labels) {
        let these = match input {
            Input::Run(view) => {
                run_still_running(&view.dir, args.allow_incomplete)?;
                runs.push((view.as_ref(), label.as_str()));
                run_rows(view, label, args.cpu, args.allow_incomplete)?
            }
            Input::Stats(path) => {
                let file = stats_file(path)?;
                still_running(&file, args.allow_incomplete)?;
                stats_rows(&file, label, args.cpu, args.allow_incomplete)?
            }
        };
        if args.explain
            && let Some(first) = these.iter().find(|row| row.dump.is_some())
        {
            eprintln!(
                "{} (dump {}, cpu {}):",
                first.run,
                first.dump.unwrap_or_default(),
                first.cpu.unwrap_or_default()
            );
            for (metric, source) in first.metrics.sources() {
                eprintln!(
                    "  {metric:<20} <- {}",
                    source.unwrap_or("(no source stat: left empty)")
                );
            }
        }
        rows.extend(these);
    }
    let panels = match &args.plot {
        Some(_) => {
            let panels = panels(&runs, &rows, &args.plot_metric);
            if panels.is_empty() {
                bail!(
                    "nothing to plot: no measured invocations and no values of {} (see --explain)",
                    args.plot_metric
                );
            }
            panels
        }
        None => Vec::new(),
    };
    let mut out = render(&rows, args.format)?;
    if matches!(args.format, Format::Table | Format::Markdown) {
        let has_metrics = rows
            .iter()
            .any(|row| row.metrics.columns().iter().any(|(_, v)| v.is_some()));
        if !has_metrics && !runs.is_empty() {
            out += &format!(
                "\n{}",
                note(
                    "IPC, cache and branch MPKI need gem5 stats: `simctl build-gem5`, then run \
                     again (gem5 is then the default platform)."
                )
            );
        }
        if !runs.is_empty() {
            out += &format!(
                "\n{}\n",
                run_summary(&runs, args.format == Format::Markdown)
            );
        }
    }
    print_all(&out)?;
    if let (Some(path), Some(format)) = (&args.plot, plot_format) {
        plot(&panels, format, path)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_an_axis_title_with_its_unit() {
        for metric in metric_names() {
            let title = metric_axis(metric);
            assert!(title != metric || metric == "cycles", "{metric}: {title}");
        }
        assert_eq!(metric_axis("l1d_mpki"), "L1D misses per 1000 instructions");
    }

    #[test]
    fn notes_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc dd", 5), "aa bb\ncc dd");
        assert_eq!(wrap("averylongword x", 5), "averylongword\nx");
    }

    #[test]
    fn plot_name_is_checked_before_anything_else() {
        assert!(plot_format(Path::new("x.svg")).is_ok());
        assert!(plot_format(Path::new("x.png")).is_ok());
        let message = plot_format(Path::new("x.jpg")).unwrap_err().to_string();
        assert!(message.contains(".svg or .png"), "{message}");
    }
}

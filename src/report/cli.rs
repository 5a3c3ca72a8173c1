//! `simctl report PATH...`: one row per (run, dump, CPU) with derived metrics; several paths
//! give one comparison table; `--plot` draws a metric per dump per run (SVG or PNG).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::ASCII_MARKDOWN, presets::UTF8_FULL_CONDENSED};

use super::integrity::{each_complete_dump, still_running};
use super::metrics::{CoreMetrics, core_metrics, format_value, has_core};
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

/// Derived metrics (IPC, MPKI, ...) per run, dump and CPU, with plots.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl report runs/aes-go-gem5-*/ --cpu 1\n  simctl report a/m5out b/m5out --format markdown --plot ipc.svg"
)]
pub struct ReportArgs {
    /// stats.txt files, m5out directories or run directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Only this core (the function runs on core 1).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Say which raw stat each metric came from.
    #[arg(long)]
    pub explain: bool,
    /// Draw --plot-metric per dump per run into FILE.svg or FILE.png.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Metric to plot (a column name, e.g. ipc, l1d_mpki).
    #[arg(long, default_value = "ipc")]
    pub plot_metric: String,
    /// Report a run that is still running or a stats file that ends inside a dump: the
    /// complete dumps are reported, incomplete ones left out (warned); report.md is not rewritten.
    #[arg(long)]
    pub allow_incomplete: bool,
}

/// One table row.
#[derive(Debug, Clone)]
pub struct Row {
    pub run: String,
    pub dump: usize,
    pub cpu: usize,
    pub metrics: CoreMetrics,
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
                "{}: no stats.txt here (looked for the file, DIR/stats.txt, DIR/m5out/stats.txt)",
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

/// Rows for every complete dump and core (or only `cpu`) of a stats file; see
/// `integrity::each_complete_dump` for incomplete ones.
pub fn rows_for(path: &Path, cpu: Option<usize>, allow_incomplete: bool) -> Result<Vec<Row>> {
    let file = stats_file(path)?;
    let run = path.display().to_string();
    let mut rows = Vec::new();
    // Streamed: a file with thousands of dumps never sits in memory whole.
    each_complete_dump(&file, allow_incomplete, |dump| {
        let cpus: Vec<usize> = match cpu {
            Some(cpu) => vec![cpu],
            None => cores_in(dump),
        };
        for n in cpus {
            rows.push(Row {
                run: run.clone(),
                dump: dump.index,
                cpu: n,
                metrics: core_metrics(dump, n),
            });
        }
    })?;
    Ok(rows)
}

fn header() -> Vec<&'static str> {
    let mut header = vec!["run", "dump", "cpu"];
    header.extend(
        CoreMetrics::default()
            .columns()
            .into_iter()
            .map(|(name, _)| name),
    );
    header
}

fn cells(row: &Row) -> Vec<String> {
    let mut cells = vec![row.run.clone(), row.dump.to_string(), row.cpu.to_string()];
    cells.extend(
        row.metrics
            .columns()
            .into_iter()
            .map(|(_, v)| format_value(v)),
    );
    cells
}

/// Renders rows as a Markdown table (used by run reports too).
pub fn markdown(rows: &[Row]) -> String {
    let mut table = Table::new();
    table
        .load_preset(ASCII_MARKDOWN)
        .force_no_tty()
        .set_header(header());
    for row in rows {
        table.add_row(cells(row));
    }
    table.to_string()
}

/// Renders rows in any output format (table, CSV, JSON, Markdown).
pub fn render(rows: &[Row], format: Format) -> Result<String> {
    Ok(match format {
        Format::Markdown => markdown(rows) + "\n",
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header(header());
            for row in rows {
                table.add_row(cells(row));
            }
            table.to_string() + "\n"
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
                    object.into()
                })
                .collect();
            serde_json::to_string_pretty(&values)? + "\n"
        }
    })
}

/// Draws `metric` per dump, one line per (run, cpu), as an SVG document.
fn plot_svg(rows: &[Row], metric: &str) -> Result<String> {
    use plotters::prelude::*;
    let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for row in rows {
        let label = format!("{} cpu{}", row.run, row.cpu);
        let Some(value) = row.metrics.column(metric).filter(|v| v.is_finite()) else {
            continue;
        };
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, points)) => points.push((row.dump, value)),
            None => series.push((label, vec![(row.dump, value)])),
        }
    }
    if series.is_empty() {
        bail!("no values of {metric} to plot (every row is empty for it; see --explain)");
    }
    let max_dump = rows.iter().map(|r| r.dump).max().unwrap_or(0) + 1;
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let max_value = values.fold(0.0, f64::max) * 1.1 + 1e-9;
    let plot_error = |err: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw the plot: {err}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{metric} per dump"), ("sans-serif", 24))
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0..max_dump, 0.0..max_value)
            .map_err(|e| plot_error(&e))?;
        chart
            .configure_mesh()
            .x_desc("dump")
            .y_desc(metric)
            .draw()
            .map_err(|e| plot_error(&e))?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| plot_error(&e))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            // Markers keep a run with a single dump visible.
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
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_error(&e))?;
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

fn plot(rows: &[Row], metric: &str, path: &Path) -> Result<()> {
    let bytes = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => plot_svg(rows, metric)?.into_bytes(),
        Some("png") => svg_to_png(&plot_svg(rows, metric)?)?,
        _ => bail!(
            "--plot {}: the file name must end in .svg or .png",
            path.display()
        ),
    };
    write_atomic(path, &bytes)
}

pub fn run(args: ReportArgs) -> Result<()> {
    if args.plot.is_some() && !header()[3..].contains(&args.plot_metric.as_str()) {
        bail!(
            "--plot-metric {}: not a metric; choose one of {}",
            args.plot_metric,
            header()[3..].join(", ")
        );
    }
    let mut rows = Vec::new();
    for path in &args.paths {
        let running = still_running(&stats_file(path)?, args.allow_incomplete)?;
        let these = rows_for(path, args.cpu, args.allow_incomplete)?;
        // report.md is rewritten only from final stats: checked complete, run not running.
        if !running && !args.allow_incomplete && crate::run::report::regenerate(path)? {
            eprintln!("rewrote {}", path.join("report.md").display());
        }
        if args.explain
            && let Some(first) = these.first()
        {
            eprintln!("{} (dump {}, cpu {}):", first.run, first.dump, first.cpu);
            for (metric, source) in first.metrics.sources() {
                eprintln!(
                    "  {metric:<20} <- {}",
                    source.unwrap_or("(no source stat: left empty)")
                );
            }
        }
        rows.extend(these);
    }
    print!("{}", render(&rows, args.format)?);
    if let Some(path) = &args.plot {
        plot(&rows, &args.plot_metric, path)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(())
}

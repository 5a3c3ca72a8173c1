//! The studies' figures: line charts (percentiles against load, CDFs) and grouped bar charts,
//! drawn as SVG with plotters and rasterised to PNG the same way `simctl report` does.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::fsutil::write_atomic;

/// One named line of points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// What a line chart shows.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series>,
}

/// The legend every study chart has: upper left, on a translucent white box.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

fn plot_error(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the plot: {err}")
}

/// Range of the values with a little room, never empty.
fn span(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.filter(|v| v.is_finite()) {
        low = low.min(value);
        high = high.max(value);
    }
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        low = low.min(0.0);
    }
    let room = ((high - low) * 0.05).max(1e-9);
    // From zero means no room below zero, but room below a negative value.
    (
        low - if from_zero && low >= 0.0 { 0.0 } else { room },
        high + room,
    )
}

impl LineChart<'_> {
    /// The SVG document, or None when no series has a finite point (nothing ran yet).
    pub fn svg(&self) -> Result<Option<String>> {
        let finite = |s: &Series| s.points.iter().any(|(x, y)| x.is_finite() && y.is_finite());
        if !self.series.iter().any(finite) {
            return Ok(None);
        }
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let (x_low, x_high) = span(all().map(|p| p.0), false);
        let (y_low, y_high) = span(all().map(|p| p.1), true);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (1000, 600)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 22))
                .margin(20)
                .x_label_area_size(45)
                .y_label_area_size(80)
                .build_cartesian_2d(x_low..x_high, y_low..y_high)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .draw()
                .map_err(plot_error)?;
            for (index, series) in self.series.iter().enumerate() {
                let color = Palette99::pick(index).to_rgba();
                let points: Vec<(f64, f64)> = series
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(plot_error)?
                    .label(series.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                // Markers keep single points visible; CDFs have many points and go without.
                if points.len() <= 50 {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(plot_error)?;
                }
            }
            draw_legend(&mut chart)?;
            root.present().map_err(plot_error)?;
        }
        Ok(Some(svg))
    }
}

/// How a bar chart shows several series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarLayout {
    /// One bar per series side by side within each category.
    Grouped,
    /// One bar per category, the series stacked in order from zero (parts of a whole).
    Stacked,
    /// Side by side on a log10 axis, for values that span orders of magnitude (a ptrace
    /// system call costs hundreds of times a bare one); values <= 0 have no bar.
    GroupedLog,
}

/// Bars: one group (or stack) per category, one bar (or segment) per series.
pub struct BarChart<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub categories: Vec<String>,
    /// (series label, one value per category; NaN for none).
    pub series: Vec<(String, Vec<f64>)>,
    pub layout: BarLayout,
}

impl BarChart<'_> {
    /// The SVG document, or None when no bar has a finite value.
    pub fn svg(&self) -> Result<Option<String>> {
        let values = self.series.iter().flat_map(|(_, v)| v.iter().copied());
        if !values.clone().any(f64::is_finite) {
            return Ok(None);
        }
        // Each bar as (series, category, bottom, top): stacked segments start where the
        // category's previous finite segment ended.
        let log = self.layout == BarLayout::GroupedLog;
        let mut stack_tops = vec![0.0; self.categories.len()];
        let mut bars = Vec::new();
        for (index, (_, values)) in self.series.iter().enumerate() {
            let shown = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && (!log || **v > 0.0));
            for (group, &value) in shown {
                let bottom = match self.layout {
                    BarLayout::Grouped | BarLayout::GroupedLog => 0.0,
                    BarLayout::Stacked => stack_tops.get(group).copied().unwrap_or(0.0),
                };
                if let Some(top) = stack_tops.get_mut(group) {
                    *top = bottom + value;
                }
                let value = if log { value.log10() } else { value };
                bars.push((index, group, bottom, bottom + value));
            }
        }
        let (y_low, y_high) = if log {
            // Whole decades; every bar rises from the lowest one.
            let (low, high) = bars
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), b| {
                    (l.min(b.3), h.max(b.3))
                });
            let low = low.floor().min(0.0);
            for bar in &mut bars {
                bar.2 = low;
            }
            (low, high.ceil().max(low + 1.0))
        } else {
            // From zero, and below it when a value is negative (a decrease is a bar down).
            span(bars.iter().map(|bar| bar.3), true)
        };
        let groups = self.categories.len().max(1);
        let per_group = match self.layout {
            BarLayout::Grouped | BarLayout::GroupedLog => self.series.len().max(1),
            BarLayout::Stacked => 1,
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (1100, 600)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 22))
                .margin(20)
                .x_label_area_size(45)
                .y_label_area_size(80)
                .build_cartesian_2d(0.0..groups as f64, y_low..y_high)
                .map_err(plot_error)?;
            let categories = self.categories.clone();
            let decades = |y: &f64| {
                let value = 10f64.powf(*y);
                if value >= 1.0 {
                    format!("{value:.0}")
                } else {
                    format!("{value:.2}")
                }
            };
            let mut mesh = chart.configure_mesh();
            if log {
                mesh.y_labels((y_high - y_low) as usize + 1)
                    .y_label_formatter(&decades);
            }
            mesh.disable_x_mesh()
                .x_labels(groups * 2 + 1)
                .x_label_formatter(&|x| {
                    let index = (x - 0.5).round();
                    if (x - 0.5 - index).abs() < 1e-6 && index >= 0.0 {
                        categories.get(index as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .y_desc(self.y_label)
                .draw()
                .map_err(plot_error)?;
            let width = 0.8 / per_group as f64;
            for (index, (label, _)) in self.series.iter().enumerate() {
                let color = Palette99::pick(index).to_rgba();
                let slot = match self.layout {
                    BarLayout::Grouped | BarLayout::GroupedLog => index as f64,
                    BarLayout::Stacked => 0.0,
                };
                let rectangles =
                    bars.iter()
                        .filter(|bar| bar.0 == index)
                        .map(|&(_, group, bottom, top)| {
                            let left = group as f64 + 0.1 + slot * width;
                            Rectangle::new([(left, bottom), (left + width, top)], color.filled())
                        });
                chart
                    .draw_series(rectangles)
                    .map_err(plot_error)?
                    .label(label.clone())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                    });
            }
            draw_legend(&mut chart)?;
            root.present().map_err(plot_error)?;
        }
        Ok(Some(svg))
    }
}

/// Writes `<stem>.svg` and `<stem>.png` into `dir`, adds them to `files` and a reference to the
/// PNG to the report `text`; does nothing for a figure without data.
pub fn embed(
    dir: &Path,
    stem: &str,
    svg: Option<String>,
    text: &mut String,
    files: &mut Vec<String>,
) -> Result<()> {
    let Some(svg) = svg else {
        return Ok(());
    };
    let (svg_name, png_name) = (format!("{stem}.svg"), format!("{stem}.png"));
    write_atomic(&dir.join(&svg_name), svg.as_bytes())?;
    write_atomic(&dir.join(&png_name), &crate::report::cli::svg_to_png(&svg)?)?;
    text.push_str(&format!("\n![{stem}]({png_name})\n"));
    files.extend([svg_name, png_name]);
    Ok(())
}

/// The empirical CDF of sorted values as plot points (value, fraction at or below it).
pub fn cdf(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, (i + 1) as f64 / n))
        .collect()
}

//! `simctl stats FILE`: a stats.txt as tidy rows (one per value), ready for pandas.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Result, bail};
use regex::Regex;

use super::parse::{Dump, open};

/// Which dumps to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpSelector {
    All,
    Last,
    Index(usize),
}

fn parse_selector(text: &str) -> Result<DumpSelector, String> {
    match text {
        "all" => Ok(DumpSelector::All),
        "last" => Ok(DumpSelector::Last),
        _ => text
            .parse()
            .map(DumpSelector::Index)
            .map_err(|_| format!("'{text}' is not N, last or all")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Parse a gem5 stats.txt into tidy rows (dump, stat, value, unit).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl stats m5out/stats.txt --match 'cores1.*numCycles' --format csv\n  simctl stats runs/x/m5out/stats.txt --dump last"
)]
pub struct StatsArgs {
    /// The stats.txt file.
    pub file: PathBuf,
    /// Dump to print: N (from 0), last, or all.
    #[arg(long, default_value = "all", value_parser = parse_selector)]
    pub dump: DumpSelector,
    /// Only stats whose full name matches (repeatable; any match keeps the stat).
    #[arg(long = "match")]
    pub patterns: Vec<String>,
    /// Output format; default: table on a terminal, CSV otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Skip malformed lines (and say how many) instead of failing.
    #[arg(long)]
    pub lenient: bool,
}

fn value_text(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        value.to_string()
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

struct Printer<W: Write> {
    out: W,
    format: Format,
    patterns: Vec<Regex>,
    first_json: bool,
}

impl<W: Write> Printer<W> {
    fn begin(&mut self) -> Result<()> {
        match self.format {
            Format::Csv => writeln!(self.out, "dump,stat,value,unit")?,
            Format::Json => write!(self.out, "[")?,
            Format::Table => writeln!(
                self.out,
                "{:>4}  {:<60} {:>20}  unit",
                "dump", "stat", "value"
            )?,
        }
        Ok(())
    }

    fn dump(&mut self, dump: &Dump) -> Result<()> {
        if !dump.complete {
            eprintln!(
                "warning: dump {} (line {}) is incomplete: the file ends before its End line",
                dump.index, dump.line
            );
        }
        for stat in dump.stats() {
            if !self.patterns.is_empty() && !self.patterns.iter().any(|p| p.is_match(stat.name)) {
                continue;
            }
            let unit = stat.unit.unwrap_or("");
            let value = value_text(stat.value);
            match self.format {
                Format::Csv => writeln!(
                    self.out,
                    "{},{},{},{}",
                    dump.index,
                    csv_field(stat.name),
                    value,
                    csv_field(unit)
                )?,
                Format::Table => writeln!(
                    self.out,
                    "{:>4}  {:<60} {:>20}  {unit}",
                    dump.index, stat.name, value
                )?,
                Format::Json => {
                    let row = serde_json::json!({
                        "dump": dump.index, "complete": dump.complete, "stat": stat.name,
                        "value": if stat.value.is_finite() { serde_json::json!(stat.value) } else { serde_json::json!(value) },
                        "unit": stat.unit,
                    });
                    write!(
                        self.out,
                        "{}\n  {row}",
                        if self.first_json { "" } else { "," }
                    )?;
                    self.first_json = false;
                }
            }
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        if self.format == Format::Json {
            writeln!(self.out, "\n]")?;
        }
        self.out.flush()?;
        Ok(())
    }
}

pub fn run(args: StatsArgs) -> Result<()> {
    let patterns = args
        .patterns
        .iter()
        .map(|p| {
            Regex::new(p)
                .map_err(|err| anyhow::anyhow!("--match '{p}' is not a valid regex: {err}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Csv
    });
    let stdout = std::io::stdout();
    let mut printer = Printer {
        out: std::io::BufWriter::new(stdout.lock()),
        format,
        patterns,
        first_json: true,
    };
    let mut reader = open(&args.file)?.lenient(args.lenient);
    printer.begin()?;
    let mut last = None;
    let mut count = 0;
    for dump in &mut reader {
        let dump = dump?;
        count += 1;
        match args.dump {
            DumpSelector::All => printer.dump(&dump)?,
            DumpSelector::Index(n) if n == dump.index => {
                printer.dump(&dump)?;
                break;
            }
            DumpSelector::Index(_) => {}
            DumpSelector::Last => last = Some(dump),
        }
    }
    if let Some(dump) = last {
        printer.dump(&dump)?;
    }
    printer.end()?;
    if reader.skipped() > 0 {
        eprintln!("skipped {} malformed line(s)", reader.skipped());
    }
    if let DumpSelector::Index(n) = args.dump
        && n >= count
    {
        bail!(
            "{} has {count} dump(s); --dump {n} does not exist (dumps count from 0)",
            args.file.display()
        );
    }
    Ok(())
}

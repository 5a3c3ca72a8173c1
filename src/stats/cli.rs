//! `simctl stats FILE`: a stats.txt as tidy rows (one per value), ready for pandas.
//!
//! Rows say whether their dump is complete, and a value past the range of its type is left
//! empty with its text in `overflow`: a reader never gets a cut or rounded number silently.
//! Nothing is printed before the file is known to be a readable stats file with a dump.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use regex::RegexSet;

use super::parse::{Dump, NameFilter, Value, incomplete_message, no_dump_error, open};

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

/// Parse a gem5 stats.txt into tidy rows (dump, stat, value, unit, complete, overflow).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    simctl stats m5out/stats.txt --match 'cores1.*numCycles' --format csv\n  \
    simctl stats runs/x/m5out/stats.txt --dump last\n\n\
    A dump without its End line (gem5 killed or still writing) is incomplete: its rows say \
    complete=false, a cut last line is left out, and simctl exits 2 unless --allow-incomplete. \
    A value too large for its type is left empty, with its text in the overflow column.")]
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
    /// Exit 0 even when a dump is incomplete (its rows still say complete=false).
    #[arg(long)]
    pub allow_incomplete: bool,
}

fn csv_field(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    if text.contains([',', '"', '\n']) {
        write!(out, "\"{}\"", text.replace('"', "\"\""))
    } else {
        out.write_all(text.as_bytes())
    }
}

/// A number as exact text: an integer digit for digit, a float as the shortest text that reads
/// back the same, with `.0` when whole so that it stays a float; `nan`/`inf` as gem5 writes them.
fn write_number(out: &mut impl Write, value: Value<'_>) -> std::io::Result<()> {
    match value {
        Value::Int(value) => write!(out, "{value}"),
        Value::Float(value) if value.is_nan() => out.write_all(b"nan"),
        Value::Float(value) if value.is_infinite() => {
            out.write_all(if value > 0.0 { b"inf" } else { b"-inf" })
        }
        Value::Float(value) if value.fract() == 0.0 => write!(out, "{value}.0"),
        Value::Float(value) => write!(out, "{value}"),
        Value::Overflow(text) => out.write_all(text.as_bytes()),
    }
}

struct Printer<W: Write> {
    out: W,
    format: Format,
    /// Rows printed so far; the header comes with the first row (or at the end), so that an
    /// error before any row leaves stdout empty.
    rows: usize,
    header_done: bool,
}

impl<W: Write> Printer<W> {
    fn header(&mut self) -> Result<()> {
        if !self.header_done {
            self.header_done = true;
            match self.format {
                Format::Csv => writeln!(self.out, "dump,stat,value,unit,complete,overflow")?,
                Format::Json => write!(self.out, "[")?,
                Format::Table => writeln!(
                    self.out,
                    "{:>4}  {:<60} {:>20}  unit",
                    "dump", "stat", "value"
                )?,
            }
        }
        Ok(())
    }

    fn dump(&mut self, dump: &Dump) -> Result<()> {
        self.header()?;
        for stat in dump.stats() {
            let unit = stat.unit.unwrap_or("");
            let out = &mut self.out;
            match self.format {
                Format::Csv => {
                    write!(out, "{},", dump.index)?;
                    csv_field(out, stat.name)?;
                    out.write_all(b",")?;
                    if !matches!(stat.value, Value::Overflow(_)) {
                        write_number(out, stat.value)?;
                    }
                    out.write_all(b",")?;
                    csv_field(out, unit)?;
                    write!(out, ",{},", dump.complete)?;
                    if let Value::Overflow(text) = stat.value {
                        csv_field(out, text)?;
                    }
                    out.write_all(b"\n")?;
                }
                Format::Table => {
                    let mut value = Vec::new();
                    if let Value::Overflow(_) = stat.value {
                        value.extend_from_slice(b"overflow: ");
                    }
                    write_number(&mut value, stat.value)?;
                    let value = String::from_utf8_lossy(&value);
                    writeln!(
                        out,
                        "{:>4}  {:<60} {value:>20}  {unit}",
                        dump.index, stat.name
                    )?;
                }
                Format::Json => {
                    let separator = if self.rows == 0 { "" } else { "," };
                    write!(
                        out,
                        "{separator}\n  {{\"dump\":{},\"complete\":{},\"stat\":",
                        dump.index, dump.complete
                    )?;
                    serde_json::to_writer(&mut *out, stat.name)?;
                    out.write_all(b",\"value\":")?;
                    match stat.value {
                        Value::Float(value) if !value.is_finite() => {
                            out.write_all(b"\"")?;
                            write_number(out, stat.value)?;
                            out.write_all(b"\"")?;
                        }
                        Value::Overflow(text) => {
                            out.write_all(b"null,\"overflow\":")?;
                            serde_json::to_writer(&mut *out, text)?;
                        }
                        _ => write_number(out, stat.value)?,
                    }
                    out.write_all(b",\"unit\":")?;
                    serde_json::to_writer(&mut *out, &stat.unit)?;
                    out.write_all(b"}")?;
                }
            }
            self.rows += 1;
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        self.header()?;
        if self.format == Format::Json {
            writeln!(self.out, "\n]")?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// Keeps the stats whose names match any pattern (every stat without patterns).
fn name_filter(patterns: &[String]) -> Result<Option<NameFilter>> {
    for pattern in patterns {
        if let Err(err) = regex::Regex::new(pattern) {
            bail!("--match '{pattern}' is not a valid regex: {err}");
        }
    }
    if patterns.is_empty() {
        return Ok(None);
    }
    let set = RegexSet::new(patterns)?;
    Ok(Some(NameFilter::new(move |name| set.is_match(name))))
}

/// Incomplete dumps seen: a warning each when allowed, else one error at the end.
struct Incomplete<'a> {
    file: &'a Path,
    allowed: bool,
    first: Option<String>,
    count: usize,
}

impl Incomplete<'_> {
    fn note(&mut self, dump: &Dump) {
        if dump.complete {
            return;
        }
        let message = incomplete_message(self.file, dump);
        if self.allowed {
            eprintln!("warning: {message}; its rows say complete=false");
        }
        self.count += 1;
        self.first.get_or_insert(message);
    }

    fn check(self) -> Result<()> {
        match self.first {
            Some(first) if !self.allowed => {
                let more = match self.count {
                    1 => String::new(),
                    n => format!(" ({} more incomplete dumps)", n - 1),
                };
                bail!(
                    "{first}{more}; its rows say complete=false; hint: --allow-incomplete \
                     accepts incomplete dumps"
                )
            }
            _ => Ok(()),
        }
    }
}

pub fn run(args: StatsArgs) -> Result<()> {
    let filter = name_filter(&args.patterns)?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Csv
    });
    let mut reader = open(&args.file)?.lenient(args.lenient);
    if let Some(filter) = filter {
        reader = reader.filter(filter);
    }
    let stdout = std::io::stdout();
    let mut printer = Printer {
        out: std::io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        format,
        rows: 0,
        header_done: false,
    };
    let mut incomplete = Incomplete {
        file: &args.file,
        allowed: args.allow_incomplete,
        first: None,
        count: 0,
    };
    let mut last = None;
    let mut count = 0;
    for dump in &mut reader {
        let dump = dump?;
        count += 1;
        match args.dump {
            DumpSelector::All => {
                incomplete.note(&dump);
                printer.dump(&dump)?;
            }
            DumpSelector::Index(n) if n == dump.index => {
                incomplete.note(&dump);
                printer.dump(&dump)?;
                break;
            }
            DumpSelector::Index(_) => {}
            DumpSelector::Last => last = Some(dump),
        }
    }
    if count == 0 {
        return Err(no_dump_error(&args.file));
    }
    if let DumpSelector::Index(n) = args.dump
        && n >= count
    {
        bail!(
            "{} has {count} dump(s); --dump {n} does not exist (dumps count from 0)",
            args.file.display()
        );
    }
    if let Some(dump) = last {
        incomplete.note(&dump);
        printer.dump(&dump)?;
    }
    printer.end()?;
    if reader.skipped() > 0 {
        eprintln!("skipped {} malformed line(s)", reader.skipped());
    }
    incomplete.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(value: Value<'_>) -> String {
        let mut out = Vec::new();
        write_number(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_exactly_and_floats_stay_floats() {
        assert_eq!(number(Value::Int(u64::MAX.into())), "18446744073709551615");
        assert_eq!(number(Value::Int(-5)), "-5");
        assert_eq!(number(Value::Float(5.0)), "5.0");
        assert_eq!(number(Value::Float(0.000006)), "0.000006");
        assert_eq!(number(Value::Float(-f64::INFINITY)), "-inf");
        assert_eq!(number(Value::Float(f64::NAN)), "nan");
        let third = 1.0 / 3.0;
        assert_eq!(number(Value::Float(third)).parse::<f64>().unwrap(), third);
    }
}

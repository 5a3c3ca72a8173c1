//! The streaming parser: reads one dump at a time, so memory is bounded by the largest dump.
//!
//! Speed matters (multi-GB files from long runs): lines are found with memchr straight in the
//! reader's buffer, a dump keeps all its names in one string arena instead of a String per stat,
//! common values (integers, fixed decimals) are parsed without going through `str::parse`, and
//! the name index behind `Dump::get` is only built when someone looks a name up.
//! Architecture invariant: it never panics on input; bad lines are errors with file and line.

use std::collections::HashMap;
use std::io::BufRead;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

const BEGIN: &[u8] = b"---------- Begin Simulation Statistics ----------";
const END_PREFIX: &[u8] = b"---------- End Simulation Statistics";
/// Unit names gem5 prints (`src/base/stats/units.hh`); rates print as `(A/B)`.
const UNITS: &[&[u8]] = &[
    b"Cycle",
    b"Tick",
    b"Second",
    b"Bit",
    b"Byte",
    b"Watt",
    b"Joule",
    b"Volt",
    b"Celsius",
    b"Count",
    b"Ratio",
    b"Unspecified",
];

/// One stat value as seen in a dump (borrowed from the dump).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat<'a> {
    /// The full name, including any `::subname`.
    pub name: &'a str,
    pub value: f64,
    /// The unit from a trailing `(Unit)`, when the file has units.
    pub unit: Option<&'a str>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Range<u32>,
    unit: Option<Range<u32>>,
    value: f64,
}

/// One dump (Begin ... End): its stats in file order, and lookup by name.
#[derive(Debug, Clone)]
pub struct Dump {
    /// Position in the file, from 0.
    pub index: usize,
    /// False when the file ended before this dump's End line (a killed simulation).
    pub complete: bool,
    /// Line number of the Begin line (1-based).
    pub line: usize,
    /// Every name and unit, back to back; only printable ASCII (checked by the line parser).
    arena: Vec<u8>,
    entries: Vec<Entry>,
    by_name: OnceLock<HashMap<Box<str>, u32>>,
}

impl Dump {
    /// `capacity` (arena bytes, entries) from the previous dump avoids regrowing every dump.
    fn new(index: usize, line: usize, capacity: (usize, usize)) -> Dump {
        let (arena, entries) = (
            Vec::with_capacity(capacity.0),
            Vec::with_capacity(capacity.1),
        );
        Dump {
            index,
            complete: false,
            line,
            arena,
            entries,
            by_name: OnceLock::new(),
        }
    }

    fn text(&self, range: &Range<u32>) -> &str {
        // The arena holds only ASCII and ranges it handed out, so this never falls back; `get`
        // keeps a (4 GiB+) dump whose u32 offsets wrapped from panicking.
        let bytes = self.arena.get(range.start as usize..range.end as usize);
        bytes
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// Number of stat values in the dump.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn view(&self, entry: &Entry) -> Stat<'_> {
        Stat {
            name: self.text(&entry.name),
            value: entry.value,
            unit: entry.unit.as_ref().map(|unit| self.text(unit)),
        }
    }

    /// The stats in file order.
    pub fn stats(&self) -> impl Iterator<Item = Stat<'_>> {
        self.entries.iter().map(|entry| self.view(entry))
    }

    /// The stat with this full name (the first one, should a name repeat).
    pub fn stat(&self, name: &str) -> Option<Stat<'_>> {
        let index = self.by_name.get_or_init(|| {
            let mut index = HashMap::with_capacity(self.entries.len());
            for (at, entry) in self.entries.iter().enumerate() {
                index
                    .entry(self.text(&entry.name).into())
                    .or_insert(at as u32);
            }
            index
        });
        index
            .get(name)
            .map(|&at| self.view(&self.entries[at as usize]))
    }

    /// The value of a stat, or None when the dump does not have it (absent is not zero).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.stat(name).map(|stat| stat.value)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.stat(name).is_some()
    }

    fn push(&mut self, name: &[u8], value: f64, unit: Option<&[u8]>) {
        let name = self.append(name);
        let unit = unit.map(|unit| self.append(unit));
        self.entries.push(Entry { name, unit, value });
    }

    /// Appends ASCII text (checked by the caller) to the arena.
    fn append(&mut self, text: &[u8]) -> Range<u32> {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(text);
        start..self.arena.len() as u32
    }
}

/// Parses a value as gem5 prints it (`123`, `0.5`, `nan`, `inf`, `-inf`, `-nan`, `no_value`).
pub fn parse_value(token: &[u8]) -> Option<f64> {
    if let Some(value) = parse_fixed(token) {
        return Some(value);
    }
    match token {
        b"nan" | b"-nan" | b"+nan" | b"no_value" => Some(f64::NAN),
        b"inf" | b"+inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        _ => std::str::from_utf8(token).ok()?.parse().ok(),
    }
}

/// Fast path for `[-]digits[.digits]` with at most 15 significant digits: the mantissa and the
/// power of ten are exact doubles, so one division gives the correctly rounded value.
fn parse_fixed(token: &[u8]) -> Option<f64> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, token),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut decimals: Option<usize> = None;
    for (at, &byte) in digits.iter().enumerate() {
        match byte {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(byte - b'0'),
            b'.' if decimals.is_none() && at > 0 => decimals = Some(digits.len() - at - 1),
            _ => return None,
        }
    }
    let scale = match decimals {
        None => 1.0,
        Some(0) => return None,
        Some(count) => 10f64.powi(count as i32),
    };
    if mantissa >= 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / scale;
    Some(if negative { -value } else { value })
}

/// The unit at the end of a line: `(Name)` or, for a rate, `((A/B))`, preceded by a blank and
/// naming a gem5 unit. Checking the name keeps a pre-v21 description ending in `(bytes)` from
/// becoming a unit. Searched from the end with memrchr: the description before it is never read.
fn trailing_unit(line: &[u8]) -> Option<&[u8]> {
    let body = line.strip_suffix(b")")?;
    let open = memchr::memrchr(b'(', body)?;
    let inner = &body[open + 1..];
    let (unit, before) = if inner.ends_with(b")") {
        let outer = open.checked_sub(1).filter(|&at| body[at] == b'(')?;
        (&body[open..], outer.checked_sub(1)?)
    } else {
        (inner, open.checked_sub(1)?)
    };
    if !line[before].is_ascii_whitespace() {
        return None;
    }
    let is_rate = unit.len() > 2
        && unit[0] == b'('
        && unit[1..unit.len() - 1]
            .split(|&b| b == b'/')
            .all(|word| !word.is_empty() && word.iter().all(u8::is_ascii_alphabetic));
    (UNITS.contains(&unit) || is_rate).then_some(unit)
}

fn is_name_byte(byte: u8) -> bool {
    (byte > b' ') & (byte < 0x7f) & (byte != b'#')
}

/// The bucket layout announced by a oneline histogram's `::bucket_size` / `::min_bucket` /
/// `::max_bucket` lines, which gem5 prints right before the `name | v pdf cdf | ...` line.
#[derive(Debug, Default)]
struct OnelineLayout {
    name: Vec<u8>,
    bucket_size: Option<f64>,
    min: f64,
    max: Option<f64>,
}

impl OnelineLayout {
    fn note(&mut self, name: &[u8], value: f64) {
        let Some(split) = memchr::memmem::rfind(name, b"::") else {
            return;
        };
        let (base, suffix) = (&name[..split], &name[split + 2..]);
        if !matches!(suffix, b"bucket_size" | b"min_bucket" | b"max_bucket") {
            return;
        }
        if self.name != base {
            *self = OnelineLayout {
                name: base.to_vec(),
                ..OnelineLayout::default()
            };
        }
        match suffix {
            b"bucket_size" => self.bucket_size = Some(value),
            b"min_bucket" => self.min = value,
            _ => self.max = Some(value),
        }
    }

    /// `name::low-high` like gem5's multi-line buckets, or `name::i` without a known layout.
    fn label(&self, name: &[u8], bucket: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(name);
        out.extend_from_slice(b"::");
        match self.bucket_size.filter(|_| self.name == name) {
            Some(size) => {
                let low = bucket as f64 * size + self.min;
                let high = (low + size - 1.0).min(self.max.unwrap_or(f64::INFINITY));
                out.extend_from_slice(low.to_string().as_bytes());
                if low < high {
                    out.push(b'-');
                    out.extend_from_slice(high.to_string().as_bytes());
                }
            }
            None => out.extend_from_slice(bucket.to_string().as_bytes()),
        }
    }
}

/// Parser state between lines (separate from the reader so lines can borrow its buffer).
#[derive(Debug, Default)]
struct LineParser {
    line: usize,
    next_index: usize,
    lenient: bool,
    skipped: usize,
    current: Option<Dump>,
    /// Sizes of the last complete dump (arena bytes, entries).
    capacity: (usize, usize),
    oneline: OnelineLayout,
    label: Vec<u8>,
}

enum Malformed {
    OutsideDump,
    StatLine,
}

impl LineParser {
    /// Takes one line (without its newline); returns a dump when this line finished one.
    fn take_line(&mut self, raw: &[u8]) -> Result<Option<Dump>, Malformed> {
        self.line += 1;
        let line = raw.trim_ascii();
        if line.is_empty() {
            return Ok(None);
        }
        if line[0] == b'-' {
            if line == BEGIN {
                let finished = self.current.take();
                self.current = Some(Dump::new(self.next_index, self.line, self.capacity));
                self.next_index += 1;
                return Ok(finished);
            }
            if line.starts_with(END_PREFIX) {
                let Some(mut dump) = self.current.take() else {
                    return Err(Malformed::OutsideDump);
                };
                dump.complete = true;
                self.capacity = (dump.arena.len(), dump.entries.len());
                return Ok(Some(dump));
            }
        }
        let Some(dump) = self.current.as_mut() else {
            return Err(Malformed::OutsideDump);
        };
        let name_end = line
            .iter()
            .position(|&b| !is_name_byte(b))
            .ok_or(Malformed::StatLine)?;
        let name = &line[..name_end];
        let rest = line[name_end..].trim_ascii_start();
        if name.is_empty() || name_end == line.len() || !line[name_end].is_ascii_whitespace() {
            return Err(Malformed::StatLine);
        }
        let unit = trailing_unit(rest);
        if rest[0] == b'|' {
            return Self::oneline(dump, &self.oneline, &mut self.label, name, rest, unit)
                .map(|()| None);
        }
        let value_end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        let value = parse_value(&rest[..value_end]).ok_or(Malformed::StatLine)?;
        if name.ends_with(b"_bucket") || name.ends_with(b"bucket_size") {
            self.oneline.note(name, value);
        }
        dump.push(name, value, unit);
        Ok(None)
    }

    /// `name | v pdf cdf | v pdf cdf ... [# desc] [(Unit)]`: one stat per bucket.
    fn oneline(
        dump: &mut Dump,
        layout: &OnelineLayout,
        label: &mut Vec<u8>,
        name: &[u8],
        rest: &[u8],
        unit: Option<&[u8]>,
    ) -> Result<(), Malformed> {
        let columns = rest.split(|&b| b == b'#').next().unwrap_or(rest);
        for (bucket, column) in columns.split(|&b| b == b'|').skip(1).enumerate() {
            let token = column
                .split(u8::is_ascii_whitespace)
                .find(|t| !t.is_empty())
                .ok_or(Malformed::StatLine)?;
            let value = parse_value(token).ok_or(Malformed::StatLine)?;
            layout.label(name, bucket, label);
            dump.push(label, value, unit);
        }
        Ok(())
    }
}

/// Reads dumps one at a time from a stats file.
pub struct DumpReader<R> {
    reader: R,
    source: PathBuf,
    /// A line split across two reads of the buffer.
    carry: Vec<u8>,
    parser: LineParser,
    done: bool,
}

impl<R: BufRead> DumpReader<R> {
    /// `source` names the input in errors.
    pub fn new(reader: R, source: impl Into<PathBuf>) -> DumpReader<R> {
        DumpReader {
            reader,
            source: source.into(),
            carry: Vec::new(),
            parser: LineParser::default(),
            done: false,
        }
    }

    /// Skip malformed lines (and count them) instead of failing.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.parser.lenient = lenient;
        self
    }

    /// Malformed lines skipped so far (lenient mode).
    pub fn skipped(&self) -> usize {
        self.parser.skipped
    }

    fn take_line(parser: &mut LineParser, source: &Path, line: &[u8]) -> Result<Option<Dump>> {
        match parser.take_line(line) {
            Ok(dump) => Ok(dump),
            Err(_) if parser.lenient => {
                parser.skipped += 1;
                Ok(None)
            }
            Err(kind) => {
                let shown =
                    String::from_utf8_lossy(&line.trim_ascii()[..line.trim_ascii().len().min(80)])
                        .into_owned();
                match kind {
                    Malformed::OutsideDump => bail!(
                        "{}:{}: expected '---------- Begin Simulation Statistics ----------', found '{shown}'; \
                         hint: is this a gem5 stats.txt? (--lenient skips bad lines)",
                        source.display(),
                        parser.line
                    ),
                    Malformed::StatLine => bail!(
                        "{}:{}: malformed stat line '{shown}' (expected 'name value ...'); \
                         hint: --lenient skips and counts such lines",
                        source.display(),
                        parser.line
                    ),
                }
            }
        }
    }

    fn read_dump(&mut self) -> Result<Option<Dump>> {
        let DumpReader {
            reader,
            source,
            carry,
            parser,
            ..
        } = self;
        loop {
            let buffer = reader
                .fill_buf()
                .with_context(|| format!("cannot read {}", source.display()))?;
            if buffer.is_empty() {
                if !carry.is_empty() {
                    let finished = Self::take_line(parser, source, carry);
                    carry.clear();
                    if let Some(dump) = finished? {
                        return Ok(Some(dump));
                    }
                }
                return Ok(parser.current.take());
            }
            let mut start = 0;
            let mut finished = None;
            for newline in memchr::memchr_iter(b'\n', buffer) {
                let result = if carry.is_empty() {
                    Self::take_line(parser, source, &buffer[start..newline])
                } else {
                    carry.extend_from_slice(&buffer[start..newline]);
                    let result = Self::take_line(parser, source, carry);
                    carry.clear();
                    result
                };
                start = newline + 1;
                if let Some(dump) = result? {
                    finished = Some(dump);
                    break;
                }
            }
            if finished.is_none() {
                carry.extend_from_slice(&buffer[start..]);
                start = buffer.len();
            }
            reader.consume(start);
            if finished.is_some() {
                return Ok(finished);
            }
        }
    }
}

impl<R: BufRead> Iterator for DumpReader<R> {
    type Item = Result<Dump>;

    fn next(&mut self) -> Option<Result<Dump>> {
        if self.done {
            return None;
        }
        match self.read_dump() {
            Ok(Some(dump)) => Some(Ok(dump)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Opens a stats file for streaming.
pub fn open(path: &Path) -> Result<DumpReader<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open {}; hint: pass a gem5 stats.txt (e.g. m5out/stats.txt)",
            path.display()
        )
    })?;
    Ok(DumpReader::new(
        std::io::BufReader::with_capacity(1 << 20, file),
        path,
    ))
}

/// Every dump of a (small) stats file.
pub fn read_dumps(path: &Path) -> Result<Vec<Dump>> {
    open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_fast_path_matches_std() {
        for text in [
            "0",
            "5381",
            "0.000455",
            "-12.5",
            "38061829252153",
            "779860463.62087262",
            "1.041212",
        ] {
            assert_eq!(parse_value(text.as_bytes()), text.parse().ok(), "{text}");
        }
        assert_eq!(parse_value(b"1e3"), Some(1000.0));
        assert_eq!(parse_value(b"12."), Some(12.0));
        assert_eq!(parse_value(b"."), None);
        assert_eq!(parse_value(b"12a"), None);
    }

    #[test]
    fn unit_is_a_trailing_gem5_unit_or_rate() {
        assert_eq!(
            trailing_unit(b"5 # ticks (restored from checkpoints and never reset) (Tick)"),
            Some(&b"Tick"[..])
        );
        assert_eq!(
            trailing_unit(b"0.5 # IPC ((Count/Cycle))"),
            Some(&b"(Count/Cycle)"[..])
        );
        assert_eq!(trailing_unit(b"5 # number of bytes (bytes)"), None);
        assert_eq!(trailing_unit(b"5 # unbalanced )"), None);
    }
}

//! The streaming parser: reads one dump at a time, so memory is bounded by the largest dump.
//!
//! Speed matters (multi-GB files from long runs): lines are found with memchr straight in the
//! reader's buffer, a dump keeps all its names in one string arena instead of a String per stat,
//! common values (integers, fixed decimals) are parsed without going through `str::parse`, the
//! name index behind `Dump::get` is only built when someone looks a name up, and a reader with a
//! [`NameFilter`] stores only the stats it keeps.
//!
//! Architecture invariants: it never panics on input; bad lines are errors with file and line;
//! memory is bounded whatever the input ([`MAX_LINE_BYTES`], [`MAX_DUMP_BYTES`]); a value is
//! never reported other than gem5 printed it (integers stay exact, a number past the range of
//! its type is [`Value::Overflow`], a line the file ends in the middle of is left out).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};

use super::parallel::{Next, Units};

pub(super) const BEGIN: &[u8] = b"---------- Begin Simulation Statistics ----------";
const END_PREFIX: &[u8] = b"---------- End Simulation Statistics";
/// Unit names gem5 prints (`src/base/stats/units.hh`); rates print as `(A/B)`. A match, so
/// that the compiler compares by length first.
fn is_unit(name: &[u8]) -> bool {
    matches!(
        name,
        b"Cycle"
            | b"Tick"
            | b"Second"
            | b"Bit"
            | b"Byte"
            | b"Watt"
            | b"Joule"
            | b"Volt"
            | b"Celsius"
            | b"Count"
            | b"Ratio"
            | b"Unspecified"
    )
}

/// The longest line read. gem5's longest lines (oneline histograms of big Ruby systems) have
/// some KiB; a longer one means the input is not a stats file (`/dev/zero` has one endless
/// line), and reading it whole would allocate without bound.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// The most memory one dump may take (names, units, values). Real dumps take a few MB; a
/// broken file (a oneline histogram of millions of one-byte buckets) must not take GBs.
pub const MAX_DUMP_BYTES: usize = 512 << 20;

/// One stat value, as gem5 printed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A whole number, exact (gem5's counters are u64; a few stats are negative).
    Int(i128),
    /// A number with a fraction or an exponent, or gem5's `nan`/`inf`.
    Float(f64),
    /// A number past the range of its type (an integer beyond ±2^127, a float beyond
    /// ±1.8e308): its text from the file, so that it is never shown as `inf` or rounded.
    Overflow(&'a str),
}

impl Value<'_> {
    /// The value for arithmetic (metrics); None when it overflowed.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(value) => Some(value as f64),
            Value::Float(value) => Some(value),
            Value::Overflow(_) => None,
        }
    }
}

/// One stat as seen in a dump (borrowed from the dump).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat<'a> {
    /// The full name, including any `::subname`.
    pub name: &'a str,
    pub value: Value<'a>,
    /// The unit from a trailing `(Unit)`, when the file has units.
    pub unit: Option<&'a str>,
}

/// A value as the dump stores it; whole numbers past u64 and overflows keep their text.
#[derive(Debug, Clone, Copy)]
enum Stored {
    Unsigned(u64),
    /// The magnitude of a negative whole number.
    Negative(u64),
    Float(f64),
    /// Arena range of the text of a number too large for the other variants.
    Text(u32, u32),
}

/// A value token, parsed; `Text` = keep the token (whole number past u64, or overflow).
#[derive(Debug, Clone, Copy)]
enum Number {
    Unsigned(u64),
    Negative(u64),
    Float(f64),
    Text,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    name: Range<u32>,
    /// Empty when the line has no unit (a unit is never empty).
    unit: Range<u32>,
    value: Stored,
}

/// One dump (Begin ... End): its stats in file order, and lookup by name.
#[derive(Debug, Clone)]
pub struct Dump {
    /// Position in the file, from 0.
    pub index: usize,
    /// False when the dump has no End line: the file ended inside it (gem5 killed or still
    /// writing) or another dump began.
    pub complete: bool,
    /// Line number of the Begin line (1-based).
    pub line: usize,
    /// The file's unterminated last line, left out because it may be cut (`numInsts 1000` of
    /// `numInsts 1000000`).
    pub cut_line: Option<usize>,
    /// Every name, unit and kept value text, back to back; only printable ASCII (checked by the
    /// line parser), at most MAX_DUMP_BYTES, so u32 offsets hold it.
    arena: Vec<u8>,
    entries: Vec<Entry>,
    by_name: OnceLock<HashMap<Box<str>, u32>>,
    /// Where the buffers go when the dump is dropped.
    recycler: Option<Arc<Recycler>>,
}

/// Buffers of dropped dumps, for the next dumps to reuse. A parallel reader's dumps are made
/// on worker threads and dropped on the caller's: the allocator gives their memory back to the
/// system and the next dump faults it in again (40 times the page faults of one thread).
#[derive(Debug, Default)]
pub(super) struct Recycler(Mutex<Vec<(Vec<u8>, Vec<Entry>)>>);

impl Recycler {
    /// At most this many buffers of at most this size are kept.
    const MAX_KEPT: usize = 16;
    const MAX_BYTES: usize = 2 << 20;

    fn take(&self) -> Option<(Vec<u8>, Vec<Entry>)> {
        self.0.lock().ok()?.pop()
    }

    fn put(&self, mut arena: Vec<u8>, mut entries: Vec<Entry>) {
        if arena.capacity() + entries.capacity() * ENTRY_BYTES > Self::MAX_BYTES {
            return;
        }
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < Self::MAX_KEPT
        {
            arena.clear();
            entries.clear();
            kept.push((arena, entries));
        }
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        if let Some(recycler) = self.recycler.take() {
            let arena = std::mem::take(&mut self.arena);
            recycler.put(arena, std::mem::take(&mut self.entries));
        }
    }
}

impl Dump {
    /// `capacity` (arena bytes, entries) from the previous dump avoids regrowing every dump.
    fn new(
        index: usize,
        line: usize,
        capacity: (usize, usize),
        recycler: Option<&Arc<Recycler>>,
    ) -> Dump {
        let (mut arena, mut entries) = recycler.and_then(|r| r.take()).unwrap_or_default();
        arena.reserve(capacity.0);
        entries.reserve(capacity.1);
        Dump {
            index,
            complete: false,
            line,
            cut_line: None,
            arena,
            entries,
            by_name: OnceLock::new(),
            recycler: recycler.cloned(),
        }
    }

    fn text(&self, range: &Range<u32>) -> &str {
        // The arena holds only ASCII and ranges it handed out, so this never falls back.
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
        let value = match entry.value {
            Stored::Unsigned(value) => Value::Int(i128::from(value)),
            Stored::Negative(magnitude) => Value::Int(-i128::from(magnitude)),
            Stored::Float(value) => Value::Float(value),
            Stored::Text(start, end) => {
                let text = self.text(&(start..end));
                text.parse().map_or(Value::Overflow(text), Value::Int)
            }
        };
        Stat {
            name: self.text(&entry.name),
            value,
            unit: (!entry.unit.is_empty()).then(|| self.text(&entry.unit)),
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
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        self.stat(name).map(|stat| stat.value)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.stat(name).is_some()
    }

    /// Stores one stat; `token` is the value's text, kept when `number` is `Text`.
    fn push(
        &mut self,
        name: &[u8],
        number: Number,
        token: &[u8],
        unit: Option<&[u8]>,
    ) -> Result<(), Malformed> {
        let text_len = if matches!(number, Number::Text) {
            token.len()
        } else {
            0
        };
        let bytes = name.len() + unit.map_or(0, <[u8]>::len) + text_len;
        // Growing doubles a buffer: what the dump holds may be allocated once more. Counted
        // from the content, not the capacity (which a previous dump's size presets), so that
        // where a dump is too large does not depend on the dumps parsed before it.
        let held = self.arena.len() + bytes + (self.entries.len() + 1) * ENTRY_BYTES;
        if held.saturating_mul(2) > MAX_DUMP_BYTES {
            return Err(Malformed::DumpTooLarge);
        }
        let name = self.append(name);
        let unit = unit.map_or(0..0, |unit| self.append(unit));
        let value = match number {
            Number::Unsigned(value) => Stored::Unsigned(value),
            Number::Negative(magnitude) => Stored::Negative(magnitude),
            Number::Float(value) => Stored::Float(value),
            Number::Text => {
                let text = self.append(token);
                Stored::Text(text.start, text.end)
            }
        };
        self.entries.push(Entry { name, unit, value });
        Ok(())
    }

    /// Bytes allocated for this dump (its lookup index aside).
    pub(super) fn memory(&self) -> usize {
        self.arena.capacity() + self.entries.capacity() * ENTRY_BYTES
    }

    /// Moves the dump by `lines` lines and `dumps` dumps: a parallel unit counts from its start.
    pub(super) fn shift(&mut self, lines: usize, dumps: usize) {
        self.index += dumps;
        self.line += lines;
        self.cut_line = self.cut_line.map(|line| line + lines);
    }

    /// Appends ASCII text (checked by the caller) to the arena.
    fn append(&mut self, text: &[u8]) -> Range<u32> {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(text);
        start..self.arena.len() as u32
    }
}

const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// Exact powers of ten as doubles (10^22 is the last one a double holds exactly).
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a value as gem5 prints it: `123`, `-4`, `0.5`, `1.5e-3`, `nan`, `-nan`, `inf`,
/// `-inf`, `no_value` (pre-2012 nan). One pass reads what gem5 writes almost always, an
/// integer or a fixed decimal; anything else goes through `str::parse` (correctly rounded).
fn parse_number(token: &[u8]) -> Option<Number> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, token),
    };
    // Up to 19 digits cannot overflow a u64.
    let mut mantissa: u64 = 0;
    let mut at = 0;
    while let Some(&byte) = digits.get(at).filter(|b| b.is_ascii_digit()) {
        if at < 19 {
            mantissa = mantissa * 10 + u64::from(byte - b'0');
        }
        at += 1;
    }
    let whole_digits = at;
    if whole_digits > 0 && whole_digits == digits.len() {
        if whole_digits > 19 {
            return Some(long_integer(negative, digits));
        }
        return Some(if negative {
            Number::Negative(mantissa)
        } else {
            Number::Unsigned(mantissa)
        });
    }
    if whole_digits > 0 && digits.get(at) == Some(&b'.') {
        at += 1;
        let fraction_start = at;
        while let Some(&byte) = digits.get(at).filter(|b| b.is_ascii_digit()) {
            if at <= 19 {
                mantissa = mantissa * 10 + u64::from(byte - b'0');
            }
            at += 1;
        }
        let decimals = at - fraction_start;
        // Mantissa and power of ten exact as doubles: one division rounds correctly.
        if at == digits.len() && decimals > 0 && at <= 20 && mantissa < 1 << 53 {
            let value = mantissa as f64 / POWERS_OF_TEN[decimals];
            return Some(Number::Float(if negative { -value } else { value }));
        }
    }
    match token {
        b"nan" | b"-nan" | b"+nan" | b"no_value" => return Some(Number::Float(f64::NAN)),
        b"inf" | b"+inf" => return Some(Number::Float(f64::INFINITY)),
        b"-inf" => return Some(Number::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let value: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    if value.is_infinite() && token.iter().any(u8::is_ascii_digit) {
        // A number past the double range, not an `inf` spelled another way.
        return Some(Number::Text);
    }
    Some(Number::Float(value))
}

/// An integer of 20 digits or more: exact as u64 when it fits, else kept as text.
fn long_integer(negative: bool, digits: &[u8]) -> Number {
    let value = digits.iter().try_fold(0u64, |value, &byte| {
        value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
    });
    match (value, negative) {
        (Some(value), false) => Number::Unsigned(value),
        (Some(magnitude), true) => Number::Negative(magnitude),
        (None, _) => Number::Text,
    }
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
    (is_unit(unit) || is_rate).then_some(unit)
}

fn is_name_byte(byte: u8) -> bool {
    (byte > b' ') & (byte < 0x7f) & (byte != b'#')
}

/// Every byte a name byte; without early exit, so that it runs a word at a time.
fn is_name(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().fold(true, |ok, &b| ok & is_name_byte(b))
}

/// `bytes` from its first non-blank byte. gem5 pads names to a column (often 20-40 blanks), so
/// whole words of blanks are skipped first.
fn skip_blanks(bytes: &[u8]) -> &[u8] {
    const BLANKS: u64 = u64::from_ne_bytes([b' '; 8]);
    let mut at = 0;
    while let Some(word) = bytes
        .get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        if u64::from_ne_bytes(word) != BLANKS {
            break;
        }
        at += 8;
    }
    bytes[at..].trim_ascii_start()
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

/// Which stats a reader keeps, by full name (`simctl stats --match`); the others are checked
/// but not stored. The test (a regex) runs once per distinct name, not once per line: every
/// name decided is remembered with an id, and with the name that followed it last time.
/// Dumps list mostly the same names in the same order (gem5 leaves out the zero ones, so a
/// few come and go), so the parser first compares a line with the name that followed the
/// previous line's name last time: when it matches, the name needs neither a search for its
/// end, nor checking, nor a table look-up.
pub struct NameFilter {
    /// Shared by the parallel reader's workers, each with its own cache.
    test: Arc<NameTest>,
    /// Every name decided so far, whether it is kept, and the id of the name that followed it
    /// last time (NONE: not known); an id is a position here.
    names: Vec<Known>,
    ids: HashMap<Arc<[u8]>, u32, BuildHasherDefault<NameHasher>>,
    /// Bytes of the names in `names`.
    name_bytes: usize,
    /// The first name of the last dump.
    first: u32,
    /// The name of the dump's last stat line (NONE at its start).
    last: u32,
}

struct Known {
    name: Arc<[u8]>,
    keep: bool,
    next: u32,
}

type NameTest = dyn Fn(&str) -> bool + Send + Sync;

impl NameFilter {
    /// Names remembered (a real file has some thousand distinct names), and their bytes.
    const MAX_NAMES: usize = 1 << 20;
    const MAX_NAME_BYTES: usize = 64 << 20;
    const NONE: u32 = u32::MAX;

    /// `test` must give the same answer for the same name every time: the parallel reader
    /// asks it from several threads, each with its own cache.
    pub fn new(test: impl Fn(&str) -> bool + Send + Sync + 'static) -> NameFilter {
        NameFilter::shared(Arc::new(test))
    }

    /// The same test with an empty cache (for another thread).
    pub(super) fn fresh(&self) -> NameFilter {
        NameFilter::shared(Arc::clone(&self.test))
    }

    fn shared(test: Arc<NameTest>) -> NameFilter {
        NameFilter {
            test,
            names: Vec::new(),
            ids: HashMap::default(),
            name_bytes: 0,
            first: Self::NONE,
            last: Self::NONE,
        }
    }

    fn begin_dump(&mut self) {
        self.last = Self::NONE;
    }

    /// The id of the name the next line most likely has.
    fn expected_id(&self) -> u32 {
        match self.names.get(self.last as usize) {
            Some(known) => known.next,
            None => self.first,
        }
    }

    /// The name the next line most likely has (a checked name).
    fn expected(&self) -> Option<&[u8]> {
        let known = self.names.get(self.expected_id() as usize)?;
        Some(&known.name)
    }

    /// Whether to keep the next stat, whose name is [`Self::expected`].
    fn keeps_expected(&mut self) -> bool {
        self.last = self.expected_id();
        self.names[self.last as usize].keep
    }

    /// Whether to keep the next stat of the dump (`name` is checked ASCII).
    fn keeps(&mut self, name: &[u8]) -> bool {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let keep = (self.test)(std::str::from_utf8(name).unwrap_or_default());
                if self.names.len() >= Self::MAX_NAMES
                    || self.name_bytes + name.len() > Self::MAX_NAME_BYTES
                {
                    return keep;
                }
                let id = self.names.len() as u32;
                let name: Arc<[u8]> = name.into();
                self.name_bytes += name.len();
                self.names.push(Known {
                    name: Arc::clone(&name),
                    keep,
                    next: Self::NONE,
                });
                self.ids.insert(name, id);
                id
            }
        };
        match self.names.get_mut(self.last as usize) {
            Some(last) => last.next = id,
            None => self.first = id,
        }
        self.last = id;
        self.names[id as usize].keep
    }
}

/// A hash for stat names a word at a time (multiply-rotate, as in rustc's FxHash): a few times
/// cheaper than the default SipHash, whose resistance to crafted keys a local file does not need.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameFilter")
            .field("remembered", &self.names.len())
            .finish()
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
    /// The dump the last line finished, for the reader to take (a Dump is too large to
    /// return from every line).
    finished: Option<Dump>,
    /// Sizes of the last complete dump (arena bytes, entries).
    capacity: (usize, usize),
    oneline: OnelineLayout,
    label: Vec<u8>,
    filter: Option<NameFilter>,
    recycler: Option<Arc<Recycler>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Malformed {
    OutsideDump,
    StatLine,
    LineTooLong,
    DumpTooLarge,
}

impl Malformed {
    /// Lenient mode skips lines it cannot read, but never lifts the memory bounds.
    fn skippable(self) -> bool {
        matches!(self, Malformed::OutsideDump | Malformed::StatLine)
    }
}

impl LineParser {
    fn begin(&mut self) {
        self.finished = self.current.take();
        let recycler = self.recycler.as_ref();
        self.current = Some(Dump::new(
            self.next_index,
            self.line,
            self.capacity,
            recycler,
        ));
        self.next_index += 1;
        // A dump's bucket labels come from its own layout lines, so that a dump reads the
        // same whatever was parsed before it (the parallel reader parses dumps apart).
        self.oneline = OnelineLayout::default();
        if let Some(filter) = self.filter.as_mut() {
            filter.begin_dump();
        }
    }

    /// Takes one line (without its newline); a dump it finishes goes to `finished`.
    fn take_line(&mut self, raw: &[u8]) -> Result<(), Malformed> {
        self.line += 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(Malformed::LineTooLong);
        }
        let line = raw.trim_ascii();
        let Some(&first) = line.first() else {
            return Ok(());
        };
        if first == b'-' {
            if line == BEGIN {
                self.begin();
                return Ok(());
            }
            if line.starts_with(END_PREFIX) {
                let Some(mut dump) = self.current.take() else {
                    return Err(Malformed::OutsideDump);
                };
                dump.complete = true;
                self.capacity = (dump.arena.len(), dump.entries.len());
                self.finished = Some(dump);
                return Ok(());
            }
        }
        let Some(dump) = self.current.as_mut() else {
            return Err(Malformed::OutsideDump);
        };
        // A line most often has the name the filter expects: a checked name, so when the line
        // has it followed by a blank, that is where the name ends.
        let expected = (self.filter.as_ref())
            .and_then(NameFilter::expected)
            .filter(|name| {
                line.starts_with(name) && matches!(line.get(name.len()), Some(b' ' | b'\t'))
            })
            .map(<[u8]>::len);
        let name_end = match expected {
            Some(len) => len,
            None => {
                // The line is trimmed, so a blank inside it ends the name and is followed by more.
                let end = memchr::memchr2(b' ', b'\t', line).ok_or(Malformed::StatLine)?;
                if !is_name(&line[..end]) {
                    return Err(Malformed::StatLine);
                }
                end
            }
        };
        let name = &line[..name_end];
        let rest = skip_blanks(&line[name_end..]);
        if rest.first() == Some(&b'|') {
            return Self::oneline(
                dump,
                &self.oneline,
                &mut self.label,
                &mut self.filter,
                name,
                rest,
            );
        }
        let value_end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        let token = &rest[..value_end];
        let number = parse_number(token).ok_or(Malformed::StatLine)?;
        if name.ends_with(b"_bucket") || name.ends_with(b"bucket_size") {
            let value = match number {
                Number::Unsigned(value) => value as f64,
                Number::Negative(magnitude) => -(magnitude as f64),
                Number::Float(value) => value,
                Number::Text => f64::NAN,
            };
            self.oneline.note(name, value);
        }
        if let Some(filter) = self.filter.as_mut() {
            let keep = match expected {
                Some(_) => filter.keeps_expected(),
                None => filter.keeps(name),
            };
            if !keep {
                return Ok(());
            }
        }
        dump.push(name, number, token, trailing_unit(rest))?;
        Ok(())
    }

    /// `name | v pdf cdf | v pdf cdf ... [# desc] [(Unit)]`: one stat per bucket.
    fn oneline(
        dump: &mut Dump,
        layout: &OnelineLayout,
        label: &mut Vec<u8>,
        filter: &mut Option<NameFilter>,
        name: &[u8],
        rest: &[u8],
    ) -> Result<(), Malformed> {
        let unit = trailing_unit(rest);
        let columns = rest.split(|&b| b == b'#').next().unwrap_or(rest);
        for (bucket, column) in columns.split(|&b| b == b'|').skip(1).enumerate() {
            let token = column
                .split(u8::is_ascii_whitespace)
                .find(|t| !t.is_empty())
                .ok_or(Malformed::StatLine)?;
            let number = parse_number(token).ok_or(Malformed::StatLine)?;
            layout.label(name, bucket, label);
            // Bucket labels are not remembered: oneline lines are few, their buckets many.
            if let Some(filter) = filter.as_mut()
                && !(filter.test)(std::str::from_utf8(label).unwrap_or_default())
            {
                continue;
            }
            dump.push(label, number, token, unit)?;
        }
        Ok(())
    }

    /// Takes the file's last line when it has no newline: gem5 ends every line, so a dump's
    /// line without one is where the file was cut (`numInsts 1000` of `numInsts 1000000`)
    /// and is left out; an End line is whole without its newline.
    fn take_unterminated(&mut self, raw: &[u8]) -> Result<(), Malformed> {
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(END_PREFIX) {
            return self.take_line(raw);
        }
        self.line += 1;
        match self.current.as_mut() {
            Some(dump) => dump.cut_line = Some(self.line),
            // Cut inside a Begin line: a dump began, with nothing in it yet. (Inside a dump,
            // `---------- ` may as well be the start of its End line.)
            None if BEGIN.starts_with(line) => {
                self.begin();
                if let Some(dump) = self.current.as_mut() {
                    dump.cut_line = Some(self.line);
                }
            }
            None => return Err(Malformed::OutsideDump),
        }
        Ok(())
    }
}

/// Why parsing stopped. The line counts from the start of what the parser was given: a
/// parallel unit counts from its own start until it is shifted into place.
pub(super) enum Failure {
    Read(std::io::Error),
    Malformed {
        kind: Malformed,
        line: usize,
        /// The start of the line, as shown in the error.
        shown: String,
    },
}

impl Failure {
    fn malformed(kind: Malformed, line: usize, text: &[u8]) -> Failure {
        let text = text.trim_ascii();
        let shown = String::from_utf8_lossy(&text[..text.len().min(80)]).into_owned();
        Failure::Malformed { kind, line, shown }
    }

    pub(super) fn shift(self, lines: usize) -> Failure {
        match self {
            Failure::Malformed { kind, line, shown } => Failure::Malformed {
                kind,
                line: line + lines,
                shown,
            },
            read => read,
        }
    }

    fn into_error(self, source: &Path) -> anyhow::Error {
        let (kind, line, shown) = match self {
            Failure::Read(err) => {
                return anyhow::Error::new(err)
                    .context(format!("cannot read {}", source.display()));
            }
            Failure::Malformed { kind, line, shown } => (kind, line, shown),
        };
        let at = format!("{}:{line}", source.display());
        match kind {
            Malformed::OutsideDump => anyhow!(
                "{at}: expected '---------- Begin Simulation Statistics ----------', found '{shown}'; \
                 hint: is this a gem5 stats.txt? (--lenient skips bad lines)"
            ),
            Malformed::StatLine => anyhow!(
                "{at}: malformed stat line '{shown}' (expected 'name value ...'); \
                 hint: --lenient skips and counts such lines"
            ),
            Malformed::LineTooLong => anyhow!(
                "{at}: line longer than {} MiB; hint: this is not a gem5 stats.txt (its longest \
                 lines have some KiB)",
                MAX_LINE_BYTES >> 20
            ),
            Malformed::DumpTooLarge => anyhow!(
                "{at}: the dump takes more than {} MiB of memory here; hint: this is not a gem5 \
                 stats.txt (a real dump takes a few MB)",
                MAX_DUMP_BYTES >> 20
            ),
        }
    }
}

/// The sequential parser: lines straight from a buffered reader's buffer, into dumps.
pub(super) struct Lines<R> {
    pub(super) reader: R,
    /// A line split across two reads of the buffer.
    carry: Vec<u8>,
    parser: LineParser,
}

impl<R: BufRead> Lines<R> {
    pub(super) fn new(reader: R, lenient: bool, filter: Option<NameFilter>) -> Lines<R> {
        Lines {
            reader,
            carry: Vec::new(),
            parser: LineParser {
                lenient,
                filter,
                ..LineParser::default()
            },
        }
    }

    /// Dumps take their buffers from `recycler` and give them back when dropped.
    pub(super) fn recycling(mut self, recycler: &Arc<Recycler>) -> Self {
        self.parser.recycler = Some(Arc::clone(recycler));
        self
    }

    /// Lines read so far.
    pub(super) fn lines(&self) -> usize {
        self.parser.line
    }

    /// Dumps begun so far.
    pub(super) fn dumps(&self) -> usize {
        self.parser.next_index
    }

    /// Malformed lines skipped so far (lenient mode).
    pub(super) fn skipped(&self) -> usize {
        self.parser.skipped
    }

    pub(super) fn into_parts(self) -> (R, Option<NameFilter>) {
        (self.reader, self.parser.filter)
    }

    fn take(parser: &mut LineParser, line: &[u8], terminated: bool) -> Result<(), Failure> {
        let result = if terminated {
            parser.take_line(line)
        } else {
            parser.take_unterminated(line)
        };
        match result {
            Ok(()) => Ok(()),
            Err(kind) if parser.lenient && kind.skippable() => {
                parser.skipped += 1;
                Ok(())
            }
            Err(kind) => Err(Failure::malformed(kind, parser.line, line)),
        }
    }

    /// The next dump; None at the end of the input.
    pub(super) fn read_dump(&mut self) -> Result<Option<Dump>, Failure> {
        let Lines {
            reader,
            carry,
            parser,
        } = self;
        loop {
            let buffer = reader.fill_buf().map_err(Failure::Read)?;
            if buffer.is_empty() {
                if !carry.is_empty() {
                    let result = Self::take(parser, carry, false);
                    carry.clear();
                    result?;
                    if let Some(dump) = parser.finished.take() {
                        return Ok(Some(dump));
                    }
                }
                return Ok(parser.current.take());
            }
            let mut start = 0;
            for newline in memchr::memchr_iter(b'\n', buffer) {
                let result = if carry.is_empty() {
                    Self::take(parser, &buffer[start..newline], true)
                } else {
                    if carry.len() + newline - start > MAX_LINE_BYTES {
                        let error = Malformed::LineTooLong;
                        return Err(Failure::malformed(error, parser.line + 1, carry));
                    }
                    carry.extend_from_slice(&buffer[start..newline]);
                    let result = Self::take(parser, carry, true);
                    carry.clear();
                    result
                };
                start = newline + 1;
                result?;
                if parser.finished.is_some() {
                    break;
                }
            }
            if parser.finished.is_none() {
                if carry.len() + buffer.len() - start > MAX_LINE_BYTES {
                    let error = Malformed::LineTooLong;
                    return Err(Failure::malformed(error, parser.line + 1, carry));
                }
                carry.extend_from_slice(&buffer[start..]);
                start = buffer.len();
            }
            reader.consume(start);
            if let Some(dump) = parser.finished.take() {
                return Ok(Some(dump));
            }
        }
    }
}

/// A reader with bytes to give before it, and perhaps an error after them: how the parallel
/// reader hands the rest of the input back to the sequential one.
struct Prefixed<R> {
    prefix: Vec<u8>,
    at: usize,
    error: Option<std::io::Error>,
    inner: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.prefix.len() {
            let count = out.len().min(self.prefix.len() - self.at);
            out[..count].copy_from_slice(&self.prefix[self.at..self.at + count]);
            self.consume_prefix(count);
            return Ok(count);
        }
        match self.error.take() {
            Some(err) => Err(err),
            None => self.inner.read(out),
        }
    }
}

impl<R> Prefixed<R> {
    fn consume_prefix(&mut self, count: usize) {
        self.at += count;
        if self.at == self.prefix.len() {
            self.prefix = Vec::new();
            self.at = 0;
        }
    }
}

impl<R: BufRead> BufRead for Prefixed<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at < self.prefix.len() {
            return Ok(&self.prefix[self.at..]);
        }
        match self.error.take() {
            Some(err) => Err(err),
            None => self.inner.fill_buf(),
        }
    }

    fn consume(&mut self, count: usize) {
        if self.at < self.prefix.len() {
            self.consume_prefix(count);
        } else {
            self.inner.consume(count);
        }
    }
}

/// Whether the reader parses on threads.
enum Threads {
    Off,
    /// Asked for; the threads start with the first dump read (lenient and filter are set).
    Planned {
        workers: usize,
        unit_bytes: usize,
    },
    Running(Box<Units>),
}

/// Reads dumps one at a time from a stats file.
pub struct DumpReader<R> {
    source: PathBuf,
    lines: Lines<Prefixed<R>>,
    threads: Threads,
    done: bool,
}

impl<R: BufRead> DumpReader<R> {
    /// `source` names the input in errors.
    pub fn new(reader: R, source: impl Into<PathBuf>) -> DumpReader<R> {
        let reader = Prefixed {
            prefix: Vec::new(),
            at: 0,
            error: None,
            inner: reader,
        };
        DumpReader {
            source: source.into(),
            lines: Lines::new(reader, false, None),
            threads: Threads::Off,
            done: false,
        }
    }

    /// Skip malformed lines (and count them) instead of failing.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lines.parser.lenient = lenient;
        self
    }

    /// Keep only the stats this filter keeps (every line is still checked).
    pub fn filter(mut self, filter: NameFilter) -> Self {
        self.lines.parser.filter = Some(filter);
        self
    }

    /// Parse on `workers` threads while this one reads: the input is read `unit_bytes` at a
    /// time and cut before a Begin line into units of whole dumps, which the workers parse
    /// apart and this thread hands out in file order. The dumps, values and errors are the
    /// same as without threads. [`open`] asks for this on large files; tests ask for it with
    /// tiny units to cut everywhere. Asked for after dumps were read, it changes nothing.
    pub fn parallel(mut self, workers: usize, unit_bytes: usize) -> Self {
        self.threads = Threads::Planned {
            workers: workers.max(1),
            unit_bytes: unit_bytes.max(1),
        };
        self
    }

    /// Malformed lines skipped so far (lenient mode).
    pub fn skipped(&self) -> usize {
        match &self.threads {
            Threads::Running(units) => units.skipped(),
            _ => self.lines.skipped(),
        }
    }

    fn read_dump(&mut self) -> Result<Option<Dump>, Failure> {
        // Threads start at the beginning of the input only (their line counts start there).
        if let Threads::Planned {
            workers,
            unit_bytes,
        } = self.threads
            && self.lines.parser.line == 0
            && self.lines.carry.is_empty()
        {
            let parser = &self.lines.parser;
            let filter = parser.filter.as_ref().map(NameFilter::fresh);
            self.threads = Units::start(workers, unit_bytes, parser.lenient, filter)
                .map_or(Threads::Off, |units| Threads::Running(Box::new(units)));
        }
        let Threads::Running(units) = &mut self.threads else {
            return self.lines.read_dump();
        };
        match units.next(&mut self.lines.reader) {
            Next::Dump(dump) => Ok(Some(dump)),
            Next::Failed(failure) => Err(failure),
            Next::End => Ok(None),
            Next::Sequential(rest) => {
                let reader = &mut self.lines.reader;
                reader.prefix = rest.pending;
                reader.at = 0;
                reader.error = rest.error;
                let parser = &mut self.lines.parser;
                parser.line = rest.lines;
                parser.next_index = rest.dumps;
                parser.skipped = rest.skipped;
                self.threads = Threads::Off;
                self.lines.read_dump()
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
            Err(failure) => {
                self.done = true;
                Some(Err(failure.into_error(&self.source)))
            }
        }
    }
}

/// Opens a stats file for streaming (a file, or a stream such as a pipe; not a directory).
pub fn open(path: &Path) -> Result<DumpReader<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open {}; hint: pass a gem5 stats.txt (e.g. m5out/stats.txt)",
            path.display()
        )
    })?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.is_dir() {
        bail!(
            "{} is a directory; hint: pass the stats.txt in it (e.g. {}/m5out/stats.txt)",
            path.display(),
            path.display()
        );
    }
    let reader = DumpReader::new(std::io::BufReader::with_capacity(1 << 20, file), path);
    // Threads pay off on files of several units; a pipe or a small file is parsed here.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores > 1 && metadata.is_file() && metadata.len() >= PARALLEL_MIN_BYTES {
        return Ok(reader.parallel(cores.min(MAX_WORKERS), UNIT_BYTES));
    }
    Ok(reader)
}

/// Files from this size on are parsed on threads (starting them takes some 100 µs).
const PARALLEL_MIN_BYTES: u64 = 8 << 20;
/// What the parallel reader reads at a time and hands a worker (cut before a Begin line):
/// a few dumps, small enough to be still in cache when a worker parses it (4 MiB units took
/// more time and twice the memory).
const UNIT_BYTES: usize = 1 << 20;
/// Workers beyond this add memory (units in flight) more than speed: the reading thread is
/// the limit by then.
const MAX_WORKERS: usize = 8;

/// The error for a stats file with no dump at all: a report of it would be empty, not zero.
pub fn no_dump_error(path: &Path) -> anyhow::Error {
    anyhow!(
        "{}: no statistics dump (no '---------- Begin Simulation Statistics ----------' line); \
         hint: gem5 writes a dump at each m5 dumpstats and at exit: was it killed before its \
         first dump?",
        path.display()
    )
}

/// What to say about an incomplete dump (file, dump, where it starts, what was left out).
pub fn incomplete_message(path: &Path, dump: &Dump) -> String {
    let cut = dump.cut_line.map_or(String::new(), |line| {
        format!(", and its cut last line {line} is left out")
    });
    format!(
        "{}: dump {} (line {}) is incomplete: it has no End Simulation Statistics line (gem5 \
         was killed or is still writing){cut}",
        path.display(),
        dump.index,
        dump.line
    )
}

/// Every dump of a (small) stats file.
pub fn read_dumps(path: &Path) -> Result<Vec<Dump>> {
    open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value a one-stat dump gives for `text`, compared with `expected`.
    fn check(text: &str, expected: Option<Value<'_>>) {
        let line = format!("---------- Begin Simulation Statistics ----------\nx {text}\n");
        let dumps: Result<Vec<Dump>> = DumpReader::new(line.as_bytes(), "t").collect();
        let got = dumps.as_ref().ok().and_then(|d| d.first()?.get("x"));
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn integers_are_exact_floats_correctly_rounded_and_overflow_marked() {
        check("0", Some(Value::Int(0)));
        check("-0", Some(Value::Int(0)));
        check("18446744073709551615", Some(Value::Int(u64::MAX.into())));
        check(
            "-18446744073709551615",
            Some(Value::Int(-i128::from(u64::MAX))),
        );
        check("1180591620717411303424", Some(Value::Int(1 << 70)));
        check("9007199254740993", Some(Value::Int((1 << 53) + 1)));
        check(
            "170141183460469231731687303715884105727",
            Some(Value::Int(i128::MAX)),
        );
        check(
            "170141183460469231731687303715884105728",
            Some(Value::Overflow("170141183460469231731687303715884105728")),
        );
        check("1e400", Some(Value::Overflow("1e400")));
        check("-1e400", Some(Value::Overflow("-1e400")));
        check("1e300", Some(Value::Float(1e300)));
        check("inf", Some(Value::Float(f64::INFINITY)));
        check("5.000000", Some(Value::Float(5.0)));
        check("12.", Some(Value::Float(12.0)));
        check("1e3", Some(Value::Float(1000.0)));
        for text in [
            "0.000455",
            "-12.5",
            "779860463.62087262",
            "1.041212",
            "0.1234567890123456789",
        ] {
            check(text, Some(Value::Float(text.parse().unwrap())));
        }
        for bad in [".", "12a", "0x10", "-", "+", "1_000"] {
            check(bad, None);
        }
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

    #[test]
    fn blanks_are_skipped_a_word_at_a_time_and_then_byte_by_byte() {
        for blanks in 0..40 {
            let text = format!("{}\t 5 # x", " ".repeat(blanks));
            assert_eq!(skip_blanks(text.as_bytes()), b"5 # x");
        }
        assert_eq!(skip_blanks(b"        "), b"");
    }
}

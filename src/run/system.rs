//! The simulated machine: `gem5-configs/systems/*.toml` plus `--set KEY=VALUE`, parsed and
//! checked here, in Rust, before any build step, so that a typo costs a second instead of the
//! 15 minutes of kernel and image builds after which gem5's Python would have seen it.
//!
//! Sizes and clocks are read the way gem5 reads them (`m5.util.convert`): a size is an integer
//! with a binary prefix and the unit `B` (`16kB` = 16 KiB = 16384 bytes, `2GB` = 2 GiB), a
//! clock a decimal number with a metric prefix and the unit `Hz` (`2.5GHz`). Once parsed, a
//! system is plain numbers (bytes, Hz), so two spellings of one machine are one machine, and a
//! comment in the file changes nothing.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The keys of a system file, in the order they are written.
pub const SYSTEM_KEYS: [&str; 9] = [
    "num_cores",
    "clock",
    "l1i_size",
    "l1i_assoc",
    "l1d_size",
    "l1d_assoc",
    "llc_size",
    "llc_assoc",
    "memory_size",
];
/// The keys QEMU takes; the others (clock, caches) only gem5 models.
pub const QEMU_KEYS: [&str; 2] = ["num_cores", "memory_size"];

/// The function runs on core 1 and the client on core 0, so a machine needs both.
const MIN_CORES: u64 = 2;
const MAX_CORES: u64 = 64;
/// gem5's caches here have 64-byte lines.
const CACHE_LINE: u64 = 64;
const MIN_CACHE: u64 = 1024;
const MAX_ASSOC: u64 = 64;
const MIN_MEMORY: u64 = 256 << 20;
/// gem5's X86Board refuses more ("only supports memory sizes up to 3GB because of the I/O hole").
pub const GEM5_MAX_MEMORY: u64 = 3 << 30;
const MAX_MEMORY: u64 = 1 << 40;
const MIN_CLOCK: u64 = 1_000_000;
const MAX_CLOCK: u64 = 10_000_000_000;

/// A number of bytes, written as gem5 writes sizes (`128kB`, `2GB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ByteSize(pub u64);

/// A clock frequency in Hz, written as gem5 writes them (`2.5GHz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Frequency(pub u64);

const SIZE_UNITS: [(&str, u64); 9] = [
    ("TiB", 1 << 40),
    ("TB", 1 << 40),
    ("GiB", 1 << 30),
    ("GB", 1 << 30),
    ("MiB", 1 << 20),
    ("MB", 1 << 20),
    ("KiB", 1 << 10),
    ("kB", 1 << 10),
    ("B", 1),
];
const CLOCK_UNITS: [(&str, u64); 4] = [
    ("GHz", 1_000_000_000),
    ("MHz", 1_000_000),
    ("kHz", 1_000),
    ("Hz", 1),
];

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    pub fn mib(self) -> u64 {
        self.0 >> 20
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let hint = "write an integer and a unit, e.g. \"128kB\" (kB = 1024 bytes, MB, GB, or B)";
        let (number, scale) = SIZE_UNITS
            .iter()
            .find_map(|(unit, scale)| text.strip_suffix(unit).map(|number| (number, *scale)))
            .ok_or_else(|| format!("'{text}' is not a size: {hint}"))?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("'{text}' is not a size: {hint}"));
        }
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .map(ByteSize)
            .ok_or_else(|| format!("'{text}' is too large"))
    }
}

impl std::str::FromStr for Frequency {
    type Err = String;

    fn from_str(text: &str) -> Result<Frequency, String> {
        let hint = "write a number and a unit, e.g. \"2.5GHz\" (GHz, MHz, kHz or Hz)";
        let (number, scale) = CLOCK_UNITS
            .iter()
            .find_map(|(unit, scale)| text.strip_suffix(unit).map(|number| (number, *scale)))
            .ok_or_else(|| format!("'{text}' is not a clock: {hint}"))?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let fraction = fraction.trim_end_matches('0');
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(format!("'{text}' is not a clock: {hint}"));
        }
        // Exact decimal arithmetic: 2.5GHz is 2500000000 Hz, not a float near it.
        let mut hz: u128 = whole
            .parse()
            .map_err(|_| format!("'{text}' is too large"))?;
        hz = hz.saturating_mul(u128::from(scale));
        let mut unit = u128::from(scale);
        for digit in fraction.bytes() {
            if unit % 10 != 0 {
                return Err(format!("'{text}' is not a whole number of Hz"));
            }
            unit /= 10;
            hz = hz.saturating_add(u128::from(digit - b'0') * unit);
        }
        u64::try_from(hz)
            .map(Frequency)
            .map_err(|_| format!("'{text}' is too large"))
    }
}

/// How sizes are written back: gem5's own spelling (`kB` = 1024 bytes).
const SIZE_DISPLAY: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("kB", 1 << 10),
    ("B", 1),
];

/// `value` in the largest unit that keeps it whole (`units` ends with the unit of scale 1).
fn with_unit(value: u64, units: &[(&str, u64)]) -> String {
    let (unit, scale) = units
        .iter()
        .find(|(_, scale)| value != 0 && value.is_multiple_of(*scale))
        .copied()
        .unwrap_or(units[units.len() - 1]);
    format!("{}{unit}", value / scale)
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&with_unit(self.0, &SIZE_DISPLAY))
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&with_unit(self.0, &CLOCK_UNITS))
    }
}

impl TryFrom<String> for ByteSize {
    type Error = String;
    fn try_from(text: String) -> Result<ByteSize, String> {
        text.parse()
    }
}

impl From<ByteSize> for String {
    fn from(size: ByteSize) -> String {
        size.to_string()
    }
}

impl TryFrom<String> for Frequency {
    type Error = String;
    fn try_from(text: String) -> Result<Frequency, String> {
        text.parse()
    }
}

impl From<Frequency> for String {
    fn from(clock: Frequency) -> String {
        clock.to_string()
    }
}

/// A resolved machine: every key of a system file, as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    pub num_cores: u32,
    pub clock: Frequency,
    pub l1i_size: ByteSize,
    pub l1i_assoc: u32,
    pub l1d_size: ByteSize,
    pub l1d_assoc: u32,
    pub llc_size: ByteSize,
    pub llc_assoc: u32,
    pub memory_size: ByteSize,
}

/// One key's value before it is checked, with where it came from (for the error message).
struct Given {
    value: toml::Value,
    place: String,
}

impl SystemSpec {
    /// The system file (a name in `systems_dir` or a path ending in `.toml`) with `--set`
    /// overrides applied, checked key by key and as a whole.
    pub fn resolve(systems_dir: &Path, system: &str, overrides: &[String]) -> Result<SystemSpec> {
        let path = system_path(systems_dir, system)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read system file {}", path.display()))?;
        SystemSpec::parse(&path, &text, overrides)
    }

    /// Parses system text; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<SystemSpec> {
        let file = path.display();
        let table: std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(text).map_err(|err| {
                anyhow::anyhow!("{file}: not a valid system file: {err}hint: {KEYS_HINT}")
            })?;
        let mut given: std::collections::BTreeMap<String, Given> = Default::default();
        for (key, value) in table {
            let place = format!("{file}:{}", line_of(text, key.span()));
            if !SYSTEM_KEYS.contains(&key.get_ref().as_str()) {
                bail!(
                    "{place}: unknown key '{}'; hint: {KEYS_HINT}",
                    key.get_ref()
                );
            }
            given.insert(
                key.into_inner(),
                Given {
                    value: value.into_inner(),
                    place,
                },
            );
        }
        for (key, value) in parse_overrides(overrides)? {
            given.insert(
                key.clone(),
                Given {
                    place: format!("--set {key}={value}"),
                    value: toml::Value::String(value),
                },
            );
        }
        let missing: Vec<&str> = SYSTEM_KEYS
            .iter()
            .copied()
            .filter(|key| !given.contains_key(*key))
            .collect();
        if !missing.is_empty() {
            bail!(
                "{file}: missing key(s) {}; hint: a system file sets every one of {}",
                missing.join(", "),
                SYSTEM_KEYS.join(", ")
            );
        }
        let count = |key: &str, min: u64, max: u64| count(&given[key], key, min, max);
        let size = |key: &str| size(&given[key], key);
        let system = SystemSpec {
            num_cores: count("num_cores", MIN_CORES, MAX_CORES)?,
            clock: clock(&given["clock"])?,
            l1i_size: size("l1i_size")?,
            l1i_assoc: count("l1i_assoc", 1, MAX_ASSOC)?,
            l1d_size: size("l1d_size")?,
            l1d_assoc: count("l1d_assoc", 1, MAX_ASSOC)?,
            llc_size: size("llc_size")?,
            llc_assoc: count("llc_assoc", 1, MAX_ASSOC)?,
            memory_size: size("memory_size")?,
        };
        for (name, size, assoc) in [
            ("l1i", system.l1i_size, system.l1i_assoc),
            ("l1d", system.l1d_size, system.l1d_assoc),
            ("llc", system.llc_size, system.llc_assoc),
        ] {
            check_cache(&given[&format!("{name}_size")].place, name, size, assoc)?;
        }
        let memory = system.memory_size.bytes();
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&memory) || !memory.is_multiple_of(1 << 20) {
            bail!(
                "{}: memory_size {} is not a whole number of MiB between {} and {}; hint: e.g. \
                 memory_size = \"2GB\"",
                given["memory_size"].place,
                system.memory_size,
                ByteSize(MIN_MEMORY),
                ByteSize(MAX_MEMORY)
            );
        }
        Ok(system)
    }

    /// What gem5's X86Board cannot build (checked only for gem5 runs: QEMU has no such limit).
    pub fn check_for_gem5(&self) -> Result<()> {
        if self.memory_size.bytes() > GEM5_MAX_MEMORY {
            bail!(
                "memory_size {} is more than gem5's X86Board takes ({}, because of the I/O hole); \
                 hint: --set memory_size=3GB or less",
                self.memory_size,
                ByteSize(GEM5_MAX_MEMORY)
            );
        }
        Ok(())
    }

    /// The system as a system file (what gem5's config reads): canonical units, no comments.
    pub fn to_toml(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

const KEYS_HINT: &str = "a system file sets num_cores, clock, l1i_size, l1i_assoc, l1d_size, \
                         l1d_assoc, llc_size, llc_assoc, memory_size (see \
                         gem5-configs/systems/default.toml)";

/// The file of `--system NAME|FILE.toml`.
pub fn system_path(systems_dir: &Path, system: &str) -> Result<PathBuf> {
    let path = if system.ends_with(".toml") {
        PathBuf::from(system)
    } else {
        systems_dir.join(format!("{system}.toml"))
    };
    if !path.is_file() {
        let known: Vec<String> = std::fs::read_dir(systems_dir)
            .map(|entries| {
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_suffix(".toml").map(str::to_string)
                    })
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default();
        bail!(
            "--system {system}: {} is not a file; hint: name one of {} ({}) or give a path to a \
             .toml file",
            path.display(),
            known.join(", "),
            systems_dir.display()
        );
    }
    Ok(path)
}

/// `--set KEY=VALUE` arguments as (key, value), each key once, each key a system key.
pub fn parse_overrides(overrides: &[String]) -> Result<Vec<(String, String)>> {
    let mut parsed: Vec<(String, String)> = Vec::new();
    for setting in overrides {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--set {setting}: expected KEY=VALUE, e.g. --set llc_size=256kB");
        };
        if key.is_empty() || value.is_empty() {
            bail!(
                "--set {setting}: both the key and the value must be given, e.g. --set llc_size=256kB"
            );
        }
        if setting.chars().any(char::is_whitespace) {
            bail!(
                "--set '{setting}': a value cannot contain spaces; hint: one --set per key, e.g. \
                 --set llc_size=256kB --set l1d_size=32kB"
            );
        }
        if !SYSTEM_KEYS.contains(&key) {
            bail!("--set {setting}: unknown key '{key}'; hint: {KEYS_HINT}");
        }
        if let Some((_, first)) = parsed.iter().find(|(k, _)| k == key) {
            bail!("--set {setting}: {key} is already set to {first}; give each key once");
        }
        parsed.push((key.to_string(), value.to_string()));
    }
    Ok(parsed)
}

fn line_of(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start)
        .unwrap_or_default()
        .matches('\n')
        .count()
        + 1
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => format!("\"{text}\""),
        other => other.to_string(),
    }
}

/// An integer key: a TOML integer in a file, digits after `--set`.
fn count(given: &Given, key: &str, min: u64, max: u64) -> Result<u32> {
    let number = match &given.value {
        toml::Value::Integer(n) => Some(i128::from(*n)),
        toml::Value::String(text) if given.place.starts_with("--set") => text.parse().ok(),
        _ => None,
    };
    let Some(number) = number else {
        bail!(
            "{}: {key} = {} is not a whole number; hint: e.g. {key} = {min}",
            given.place,
            describe(&given.value)
        );
    };
    if !(i128::from(min)..=i128::from(max)).contains(&number) {
        let why = if key == "num_cores" {
            " (the client runs on core 0 and the function has core 1 to itself)"
        } else {
            ""
        };
        bail!(
            "{}: {key} = {number} is out of range: it must be between {min} and {max}{why}",
            given.place
        );
    }
    Ok(number as u32)
}

fn text_value<'a>(given: &'a Given, key: &str, example: &str) -> Result<&'a str> {
    match &given.value {
        toml::Value::String(text) => Ok(text),
        other => bail!(
            "{}: {key} = {} needs a unit; hint: write it as a string, e.g. {key} = \"{example}\"",
            given.place,
            describe(other)
        ),
    }
}

fn size(given: &Given, key: &str) -> Result<ByteSize> {
    let text = text_value(given, key, "128kB")?;
    text.parse()
        .map_err(|err| anyhow::anyhow!("{}: {key}: {err}", given.place))
}

fn clock(given: &Given) -> Result<Frequency> {
    let text = text_value(given, "clock", "2.5GHz")?;
    let clock: Frequency = text
        .parse()
        .map_err(|err| anyhow::anyhow!("{}: clock: {err}", given.place))?;
    if !(MIN_CLOCK..=MAX_CLOCK).contains(&clock.0) {
        bail!(
            "{}: clock {clock} is out of range: it must be between {} and {}",
            given.place,
            Frequency(MIN_CLOCK),
            Frequency(MAX_CLOCK)
        );
    }
    Ok(clock)
}

/// gem5's set-associative caches need a whole, power-of-two number of sets of 64-byte lines.
fn check_cache(place: &str, name: &str, size: ByteSize, assoc: u32) -> Result<()> {
    let bytes = size.bytes();
    let way = CACHE_LINE * u64::from(assoc);
    if bytes < MIN_CACHE {
        bail!(
            "{place}: {name}_size {size} is smaller than {}; hint: e.g. {name}_size = \"16kB\"",
            ByteSize(MIN_CACHE)
        );
    }
    if !bytes.is_multiple_of(way) || !(bytes / way).is_power_of_two() {
        bail!(
            "{place}: {name}_size {size} with {name}_assoc = {assoc} does not make a power-of-two \
             number of sets of {CACHE_LINE}-byte lines, which gem5 needs; hint: use a power of \
             two such as 16kB, 32kB or 128kB (or change {name}_assoc)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "num_cores = 2\nclock = \"2.5GHz\"\nl1i_size = \"16kB\"\nl1i_assoc = 8\n\
        l1d_size = \"16kB\"\nl1d_assoc = 8\nllc_size = \"128kB\"\nllc_assoc = 8\n\
        memory_size = \"2GB\"\n";

    fn parse(text: &str, overrides: &[&str]) -> Result<SystemSpec> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        SystemSpec::parse(Path::new("sys.toml"), text, &overrides)
    }

    fn error(text: &str, overrides: &[&str]) -> String {
        format!("{:#}", parse(text, overrides).unwrap_err())
    }

    fn with(key: &str, value: &str) -> String {
        DEFAULT
            .lines()
            .map(|line| {
                if line.starts_with(&format!("{key} ")) {
                    format!("{key} = {value}")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn units_are_read_as_gem5_reads_them() {
        let size = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(size("16kB"), Ok(16384));
        assert_eq!(size("128KiB"), Ok(131072));
        assert_eq!(size("131072B"), Ok(131072));
        assert_eq!(size("2GB"), Ok(2 << 30));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        for bad in [
            "128",
            "banana",
            "-4kB",
            "1.5MB",
            "kB",
            "16 kB",
            "16KB",
            "99999999999999TB",
        ] {
            assert!(size(bad).is_err(), "{bad}");
        }
        let hz = |s: &str| s.parse::<Frequency>().map(|f| f.0);
        assert_eq!(hz("2.5GHz"), Ok(2_500_000_000));
        assert_eq!(hz("2500MHz"), Ok(2_500_000_000));
        assert_eq!(hz("3GHz"), Ok(3_000_000_000));
        assert_eq!(hz("1000Hz"), Ok(1000));
        for bad in ["2.5", "GHz", "-1GHz", "1.5Hz", "2,5GHz", "1e9Hz"] {
            assert!(hz(bad).is_err(), "{bad}");
        }
        assert_eq!(ByteSize(131072).to_string(), "128kB");
        assert_eq!(ByteSize(2 << 30).to_string(), "2GB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(Frequency(2_500_000_000).to_string(), "2500MHz");
    }

    #[test]
    fn spellings_and_comments_do_not_change_the_system() {
        let plain = parse(DEFAULT, &[]).unwrap();
        let commented = parse(&format!("# a comment\n{DEFAULT}# another\n"), &[]).unwrap();
        assert_eq!(plain, commented);
        let respelled = parse(
            &with("llc_size", "\"131072B\"").replace("2.5GHz", "2500MHz"),
            &[],
        )
        .unwrap();
        assert_eq!(plain, respelled);
        assert_eq!(parse(DEFAULT, &["llc_size=131072B"]).unwrap(), plain);
        assert_eq!(plain.llc_size.bytes(), 131072);
        assert_eq!(plain.clock.0, 2_500_000_000);
        // What gem5 is handed reads back as the same system.
        assert_eq!(parse(&plain.to_toml(), &[]).unwrap(), plain);
    }

    #[test]
    fn wrong_types_name_the_file_line_and_key() {
        let err = error(&with("num_cores", "2.7"), &[]);
        assert!(
            err.starts_with("sys.toml:1: num_cores = 2.7 is not a whole number"),
            "{err}"
        );
        assert!(error(&with("num_cores", "true"), &[]).contains("num_cores = true is not"));
        assert!(error(&with("num_cores", "[1, 2]"), &[]).contains("num_cores = [1, 2] is not"));
        let err = error(&with("llc_size", "128"), &[]);
        assert!(
            err.starts_with("sys.toml:7: llc_size = 128 needs a unit")
                && err.contains("llc_size = \"128kB\""),
            "{err}"
        );
        let err = error(&with("llc_size", "\"banana\""), &[]);
        assert!(
            err.starts_with("sys.toml:7: llc_size: 'banana' is not a size"),
            "{err}"
        );
        let err = error(&format!("{DEFAULT}l2_size = \"1MB\"\n"), &[]);
        assert!(
            err.starts_with("sys.toml:10: unknown key 'l2_size'") && err.contains("llc_size"),
            "{err}"
        );
        let err = error("num_cores = 2\n", &[]);
        assert!(err.contains("missing key(s) clock, l1i_size"), "{err}");
        let err = error("num_cores = \n", &[]);
        assert!(
            err.starts_with("sys.toml: not a valid system file"),
            "{err}"
        );
    }

    #[test]
    fn impossible_values_are_refused() {
        for (key, value, expected) in [
            ("num_cores", "0", "num_cores = 0 is out of range"),
            ("num_cores", "1", "core 1 to itself"),
            ("num_cores", "-4", "num_cores = -4 is out of range"),
            ("llc_assoc", "0", "llc_assoc = 0 is out of range"),
            ("llc_size", "\"0B\"", "llc_size 0B is smaller than 1kB"),
            ("l1d_size", "\"3kB\"", "power-of-two number of sets"),
            ("l1i_size", "\"24kB\"", "power-of-two number of sets"),
            (
                "memory_size",
                "\"1kB\"",
                "memory_size 1kB is not a whole number of MiB",
            ),
            ("clock", "\"0Hz\"", "clock 0Hz is out of range"),
        ] {
            let err = error(&with(key, value), &[]);
            assert!(err.contains(expected), "{key} = {value}: {err}");
        }
        let four = parse(&with("memory_size", "\"4GB\""), &[]).unwrap();
        let err = format!("{:#}", four.check_for_gem5().unwrap_err());
        assert!(err.contains("X86Board"), "{err}");
    }

    #[test]
    fn overrides_are_checked_like_file_values() {
        let err = error(DEFAULT, &["=5"]);
        assert!(
            err.contains("--set =5: both the key and the value"),
            "{err}"
        );
        let err = error(DEFAULT, &["llc_size=256kB l1d_size=32kB"]);
        assert!(
            err.contains("cannot contain spaces") && err.contains("one --set per key"),
            "{err}"
        );
        let err = error(DEFAULT, &["l2_size=1MB"]);
        assert!(err.contains("unknown key 'l2_size'"), "{err}");
        let err = error(DEFAULT, &["llc_size"]);
        assert!(err.contains("expected KEY=VALUE"), "{err}");
        let err = error(DEFAULT, &["llc_size=128"]);
        assert!(
            err.contains("--set llc_size=128: llc_size: '128' is not a size"),
            "{err}"
        );
        let err = error(DEFAULT, &["num_cores=2.7"]);
        assert!(
            err.contains("--set num_cores=2.7: num_cores = \"2.7\""),
            "{err}"
        );
        let err = error(DEFAULT, &["llc_size=1MB", "llc_size=2MB"]);
        assert!(err.contains("already set"), "{err}");
        assert_eq!(parse(DEFAULT, &["num_cores=4"]).unwrap().num_cores, 4);
    }

    #[test]
    fn the_shipped_systems_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/systems");
        for name in ["default", "skylake-like"] {
            let system = SystemSpec::resolve(&dir, name, &[]).unwrap();
            system.check_for_gem5().unwrap();
            // What gem5 gets (RUN/system.toml) reads back as the same system, overrides too.
            for overrides in [
                vec![],
                vec!["llc_size=256kB".to_string(), "clock=3GHz".into()],
            ] {
                let resolved = SystemSpec::resolve(&dir, name, &overrides).unwrap();
                let again = SystemSpec::parse(Path::new("x.toml"), &resolved.to_toml(), &[]);
                assert_eq!(again.unwrap(), resolved, "{name} {overrides:?}");
            }
        }
        let err = format!(
            "{:#}",
            SystemSpec::resolve(&dir, "/nonexistent.toml", &[]).unwrap_err()
        );
        assert!(
            err.contains("/nonexistent.toml is not a file") && err.contains("default"),
            "{err}"
        );
    }
}

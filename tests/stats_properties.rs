//! Properties of the stats parser, checked on generated input in every test run (the cargo-fuzz
//! targets in fuzz/ check the same for hours): it never panics, integers come back exact,
//! floats round-trip, the read buffer size changes nothing, a file cut anywhere never
//! reports a number the whole file does not have, with the cut dump flagged incomplete, and
//! parsing on threads gives exactly the sequential result.

use std::io::{BufRead, BufReader, Cursor};

use proptest::prelude::*;
use simctl::stats::{Dump, DumpReader, NameFilter, Value};

const BEGIN: &str = "---------- Begin Simulation Statistics ----------\n";
const END: &str = "---------- End Simulation Statistics   ----------\n";

fn read(bytes: &[u8], capacity: usize) -> Vec<Result<Dump, String>> {
    DumpReader::new(BufReader::with_capacity(capacity, bytes), "p")
        .map(|dump| dump.map_err(|err| format!("{err:#}")))
        .collect()
}

/// Everything a reader returned, as comparable text (nan != nan as a number).
fn digest(results: &[Result<Dump, String>]) -> Vec<String> {
    results
        .iter()
        .map(|result| match result {
            Ok(dump) => format!(
                "{} line {} {} {:?} {:?}",
                dump.index,
                dump.line,
                dump.complete,
                dump.cut_line,
                dump.stats().map(|s| format!("{s:?}")).collect::<Vec<_>>()
            ),
            Err(err) => err.clone(),
        })
        .collect()
}

fn odd_length(name: &str) -> bool {
    name.len() % 2 == 1
}

/// Everything a configured reader returns, with the skipped count after each result.
fn read_all(reader: DumpReader<impl BufRead>, lenient: bool, filtered: bool) -> Vec<String> {
    let mut reader = reader.lenient(lenient);
    if filtered {
        reader = reader.filter(NameFilter::new(odd_length));
    }
    let mut seen = Vec::new();
    while let Some(result) = reader.next() {
        let result = result.map_err(|err| format!("{err:#}"));
        let digest = digest(std::slice::from_ref(&result)).concat();
        seen.push(format!("{digest} skipped {}", reader.skipped()));
    }
    seen.push(format!("end skipped {}", reader.skipped()));
    seen
}

/// A messier stats file than [`stats_file`]: junk and blank lines, indented Begin lines,
/// dumps without an End line, oneline histograms with and without their layout lines.
fn messy_stats_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        8 => ("[a-z]{1,3}(::[a-z0-9]{1,2})?", 0u32..1000).prop_map(|(name, value)| format!("{name:<12} {value:>6} # d (Count)\n")),
        1 => Just("h::bucket_size 2\nh::max_bucket 3\n".to_string()),
        1 => Just("h |  5 50% 50% |  5 50% 100% # h (Count)\n".to_string()),
        // Many buckets: the dump takes many times its text (a parallel unit parsed again).
        1 => (1usize..200).prop_map(|buckets| format!("h |{}0\n", "0|".repeat(buckets))),
        1 => Just("   \n".to_string()),
        1 => Just("?? junk\n".to_string()),
    ];
    let dump = (
        prop::collection::vec(line, 0..10),
        prop_oneof![Just(""), Just("  ")],
        any::<bool>(),
    )
        .prop_map(|(lines, indent, ended)| {
            let end = if ended { END } else { "" };
            format!("{indent}{BEGIN}{}{end}", lines.concat())
        });
    (
        prop::collection::vec(dump, 0..6),
        prop_oneof![Just(""), Just("x 1\n")],
    )
        .prop_map(|(dumps, before)| format!("{before}{}", dumps.concat()))
}

fn one_value(text: &str) -> Option<String> {
    let file = format!("{BEGIN}x {text}\n{END}");
    let dumps: Vec<Dump> = DumpReader::new(file.as_bytes(), "p")
        .collect::<anyhow::Result<_>>()
        .ok()?;
    dumps.first()?.get("x").map(|value| format!("{value:?}"))
}

/// A stats file: dumps of (name, value text, unit) lines.
fn stats_file() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<u64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (0u64..1 << 40, 0u32..7).prop_map(|(m, d)| format!("{}", m as f64 / 10f64.powi(d as i32))),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e400".to_string()),
    ];
    let unit = prop_oneof![
        Just(""),
        Just(" # count (Count)"),
        Just(" # ipc ((Count/Cycle))")
    ];
    let line = (
        "[a-z]{1,6}(\\.[a-z0-9_]{1,6}){0,3}(::[a-z0-9]{1,4})?",
        value,
        unit,
    )
        .prop_map(|(name, value, unit)| format!("{name:<30} {value:>20}{unit}\n"));
    prop::collection::vec(prop::collection::vec(line, 0..12), 1..4).prop_map(|dumps| {
        dumps
            .into_iter()
            .map(|lines| format!("\n{BEGIN}\n{}\n{END}", lines.concat()))
            .collect()
    })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048), capacity in 1usize..64) {
        let whole = read(&bytes, bytes.len().max(1));
        prop_assert_eq!(digest(&whole), digest(&read(&bytes, capacity)));
        let threads = DumpReader::new(&bytes[..], "p").parallel(2, capacity);
        prop_assert_eq!(read_all(DumpReader::new(&bytes[..], "p"), false, false), read_all(threads, false, false));
    }

    #[test]
    fn never_panics_on_mutated_stats(text in stats_file(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = text.into_bytes();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let whole = read(&bytes, bytes.len());
        prop_assert_eq!(digest(&whole), digest(&read(&bytes, 7)));
    }

    #[test]
    fn threads_give_the_sequential_result(
        text in prop_oneof![stats_file(), messy_stats_file()],
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        workers in 1usize..4,
        unit_bytes in 1usize..400,
        lenient in any::<bool>(),
        filtered in any::<bool>(),
    ) {
        let mut bytes = text.into_bytes();
        for (at, byte) in edits {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let sequential = read_all(DumpReader::new(&bytes[..], "p"), lenient, filtered);
        let threads = DumpReader::new(Cursor::new(&bytes[..]), "p").parallel(workers, unit_bytes);
        prop_assert_eq!(sequential, read_all(threads, lenient, filtered));
    }

    #[test]
    fn integers_are_exact(unsigned in any::<u64>(), signed in any::<i64>(), wide in any::<i128>()) {
        prop_assert_eq!(one_value(&unsigned.to_string()), Some(format!("{:?}", Value::Int(unsigned.into()))));
        prop_assert_eq!(one_value(&signed.to_string()), Some(format!("{:?}", Value::Int(signed.into()))));
        prop_assert_eq!(one_value(&wide.to_string()), Some(format!("{:?}", Value::Int(wide))));
    }

    #[test]
    fn floats_round_trip(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        // Debug always has a '.' or an exponent, so the text is a float, not an integer.
        prop_assert_eq!(one_value(&format!("{value:?}")), Some(format!("{:?}", Value::Float(value))));
        prop_assert_eq!(one_value(&format!("{value:e}")), Some(format!("{:?}", Value::Float(value))));
    }

    #[test]
    fn a_cut_file_never_reports_another_number(text in stats_file(), cut in any::<prop::sample::Index>(), capacity in 1usize..64) {
        let full: Vec<Dump> = DumpReader::new(text.as_bytes(), "p").collect::<anyhow::Result<_>>().unwrap();
        let at = cut.index(text.len() + 1);
        let prefix = &text.as_bytes()[..at];
        let cut_dumps: Vec<Dump> = DumpReader::new(BufReader::with_capacity(capacity, prefix), "p")
            .collect::<anyhow::Result<_>>()
            .unwrap();
        let ends_in_prefix = String::from_utf8_lossy(prefix)
            .matches("---------- End Simulation Statistics")
            .count();
        for dump in &cut_dumps {
            prop_assert_eq!(dump.complete, dump.index < ends_in_prefix, "dump {}", dump.index);
            let whole = &full[dump.index];
            for (position, stat) in dump.stats().enumerate() {
                let same = whole.stats().nth(position).map(|s| format!("{s:?}"));
                prop_assert_eq!(Some(format!("{stat:?}")), same);
            }
        }
    }
}

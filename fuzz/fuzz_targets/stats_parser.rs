//! The stats parser on arbitrary bytes. Properties: it never panics; memory stays bounded
//! (libFuzzer's -rss_limit_mb); the dumps, values and errors are the same whatever the read
//! buffer size (lines split across reads) and on threads (units cut before Begin lines); a
//! name filter keeps exactly the stats it accepts.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use simctl::stats::{Dump, DumpReader, NameFilter};

/// Everything a reader returned, as comparable text (nan != nan as a number).
fn digest(results: &[anyhow::Result<Dump>], keep: impl Fn(&str) -> bool) -> Vec<String> {
    results
        .iter()
        .map(|result| match result {
            Ok(dump) => {
                let stats: Vec<String> = dump
                    .stats()
                    .filter(|stat| keep(stat.name))
                    .map(|stat| format!("{stat:?}"))
                    .collect();
                format!(
                    "dump {} line {} complete {} cut {:?}: {stats:?}",
                    dump.index, dump.line, dump.complete, dump.cut_line
                )
            }
            Err(err) => format!("error: {err:#}"),
        })
        .collect()
}

fn odd_length(name: &str) -> bool {
    name.len() % 2 == 1
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, text)) = data.split_first() else {
        return;
    };
    let lenient = control & 1 == 1;
    let capacity = usize::from(control >> 1) + 1;
    let whole: Vec<_> = DumpReader::new(text, "fuzz").lenient(lenient).collect();
    for dump in whole.iter().flatten() {
        for stat in dump.stats() {
            assert!(!stat.name.is_empty());
            let _ = stat.value.as_f64();
            assert!(dump.contains(stat.name));
        }
    }
    let split: Vec<_> = DumpReader::new(BufReader::with_capacity(capacity, text), "fuzz")
        .lenient(lenient)
        .collect();
    assert_eq!(digest(&whole, |_| true), digest(&split, |_| true));
    let threads: Vec<_> = DumpReader::new(text, "fuzz")
        .lenient(lenient)
        .parallel(2, capacity)
        .collect();
    assert_eq!(digest(&whole, |_| true), digest(&threads, |_| true));
    let filtered: Vec<_> = DumpReader::new(BufReader::with_capacity(capacity, text), "fuzz")
        .lenient(lenient)
        .filter(NameFilter::new(odd_length))
        .collect();
    assert_eq!(digest(&whole, odd_length), digest(&filtered, |_| true));
});

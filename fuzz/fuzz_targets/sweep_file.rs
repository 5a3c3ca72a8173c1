//! Sweep files (`simctl sweep FILE`): parsing and expansion into points (each checked with
//! `simctl run`'s own option definition) never panic on any text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use simctl::sweep::{SweepFile, expand};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sweep) = SweepFile::parse(Path::new("fuzz-sweep.toml"), text) {
        let _ = expand(&sweep);
    }
});

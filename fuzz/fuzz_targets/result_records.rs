//! The guest's result records (results.csv, read by the host for report.md): parsing never
//! panics, and what parses writes back to text that parses to as many records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simctl_guest::records::{from_csv, to_csv};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(records) = from_csv(text) {
        let again = from_csv(&to_csv(&records)).expect("to_csv output parses");
        assert_eq!(again.len(), records.len());
    }
});

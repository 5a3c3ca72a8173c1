//! gem5 system files (`gem5-configs/systems/*.toml`) and `--set` overrides: `SystemSpec::parse`
//! never panics, and a system it accepts, written back as simctl hands it to gem5
//! (`to_toml`), parses again to the same system.
//! Input: the TOML text, then optionally a NUL byte and one `--set` value per line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use simctl::run::system::SystemSpec;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (system, overrides) = text.split_once('\0').unwrap_or((&text, ""));
    let overrides: Vec<String> = overrides.lines().map(str::to_string).collect();
    let path = Path::new("fuzz.toml");
    if let Ok(spec) = SystemSpec::parse(path, system, &overrides) {
        let again = SystemSpec::parse(path, &spec.to_toml(), &[])
            .expect("the resolved system simctl writes for gem5 parses again");
        assert_eq!(again, spec, "to_toml round trip");
    }
});

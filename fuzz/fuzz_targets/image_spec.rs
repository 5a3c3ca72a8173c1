//! Disk image specs (`disk-image/*.toml`): `Spec::parse` (what `Spec::load` calls on the
//! file's text) never panics on any content.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use simctl::image::Spec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = Spec::parse(text, Path::new("fuzz.toml")) {
        let _ = spec.size_bytes();
    }
});

//! Disk image specs (`disk-image/*.toml`): `Spec::load` never panics on any file content.
//! The text goes through a real file because `load` is what `simctl build-image` calls.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use simctl::image::Spec;

fn spec_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("simctl-fuzz-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("spec.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let file = spec_file();
    std::fs::write(file, data).expect("write the spec");
    if let Ok(spec) = Spec::load(file) {
        let _ = spec.size_bytes();
    }
});

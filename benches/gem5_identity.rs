//! `cargo bench --bench gem5_identity`: what a run pays to identify the gem5 binary.
//!
//! Writes a file the size of a gem5.opt (800 MB; GEM5_IDENTITY_BENCH_MB overrides) and times, in
//! the same process, hashing it whole (what every run did) against `gem5build::content_hash`
//! once its stat-keyed record exists (what every run after the first does now). Prints both and
//! their ratio.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

fn main() -> Result<()> {
    let megabytes: usize = std::env::var("GEM5_IDENTITY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    let dir = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    let binary = dir.path().join("gem5.opt");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&binary)?);
    let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    for _ in 0..megabytes {
        file.write_all(&block)?;
    }
    file.into_inner()?.sync_all()?;

    let start = Instant::now();
    let whole = simctl::cache::hash_file(&binary)?;
    let hash_seconds = start.elapsed().as_secs_f64();
    // The first lookup hashes and records; the ones after it are what runs pay.
    assert_eq!(
        simctl::gem5build::content_hash(cache.path(), &binary)?,
        whole
    );
    let rounds = 100;
    let start = Instant::now();
    for _ in 0..rounds {
        assert_eq!(
            simctl::gem5build::content_hash(cache.path(), &binary)?,
            whole
        );
    }
    let lookup_seconds = start.elapsed().as_secs_f64() / rounds as f64;
    println!("gem5 binary of {megabytes} MB:");
    println!("  blake3 of the whole file: {:.3} s", hash_seconds);
    println!("  stat-keyed record lookup: {:.6} s", lookup_seconds);
    println!("  ratio: {:.0}x", hash_seconds / lookup_seconds);
    Ok(())
}

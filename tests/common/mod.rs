//! Helpers shared by the integration tests: running the real simctl binary and reading run
//! directories.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs simctl with `args` plus `extra` (paths and the like), without any configured gem5.
pub fn simctl(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .args(extra)
        .env_remove("SIMCTL_GEM5")
        .output()
        .unwrap()
}

/// Runs simctl, requires success, and returns the last line of stdout (the made path).
pub fn simctl_path(args: &[&str]) -> String {
    let output = simctl(args, &[]);
    assert!(
        output.status.success(),
        "simctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// The `state` of a run directory's status.json.
pub fn run_state(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("status.json")).ok()?;
    let status: serde_json::Value = serde_json::from_str(&text).ok()?;
    status["state"].as_str().map(str::to_string)
}

/// The shared stats fixtures beside the repo, or None (after saying the test is skipped).
pub fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/stats");
    if dir.join("MANIFEST.md").is_file() {
        Some(dir)
    } else {
        println!("skipped: shared fixtures not found");
        None
    }
}

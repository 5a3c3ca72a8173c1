//! `simctl run`: from a workload name to per-invocation numbers, on gem5 or QEMU.

pub mod cmdline;
pub mod console;
pub mod doctor;
pub mod kvm;
pub mod qemu;
pub mod rundir;

use std::path::Path;

use anyhow::{Context, Result};

use crate::process::Command;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn run_cli(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl run is not implemented yet")
}

/// The version gem5 reports for itself (`gem5.opt -B` prints its build information and exits).
pub fn gem5_version(gem5: &Path) -> Result<String> {
    let output = Command::new(gem5).arg("-B").read_stdout()?;
    output
        .lines()
        .find_map(|line| line.strip_prefix("gem5 version "))
        .map(|version| version.trim().to_string())
        .with_context(|| format!("`{} -B` did not print a gem5 version", gem5.display()))
}

//! `simctl run`.

pub mod cmdline;
pub mod console;
pub mod doctor;
pub mod kvm;
pub mod qemu;
pub mod rundir;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn run_cli(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl run is not implemented yet")
}

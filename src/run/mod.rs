//! `simctl run`.

pub mod doctor;
pub mod kvm;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn run_cli(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl run is not implemented yet")
}

//! `simctl sweep`.

#[derive(Debug, clap::Args)]
pub struct SweepArgs {}

pub fn run_cli(_args: SweepArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl sweep is not implemented yet")
}

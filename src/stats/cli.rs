//! Arguments of `simctl stats`.

#[derive(Debug, clap::Args)]
pub struct StatsArgs {}

pub fn run(_args: StatsArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl stats is not implemented yet")
}

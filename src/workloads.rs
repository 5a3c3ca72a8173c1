//! `simctl build-workload`.

#[derive(Debug, clap::Args)]
pub struct BuildWorkloadArgs {}

pub fn run_cli(_args: BuildWorkloadArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl build-workload is not implemented yet")
}

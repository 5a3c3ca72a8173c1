//! `simctl build-kernel`.

#[derive(Debug, clap::Args)]
pub struct BuildKernelArgs {}

pub fn run_cli(_args: BuildKernelArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl build-kernel is not implemented yet")
}

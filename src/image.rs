//! `simctl build-image`.

#[derive(Debug, clap::Args)]
pub struct BuildImageArgs {}

pub fn run_cli(_args: BuildImageArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl build-image is not implemented yet")
}

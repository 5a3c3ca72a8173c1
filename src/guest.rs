//! `simctl build-guest`.

#[derive(Debug, clap::Args)]
pub struct BuildGuestArgs {}

pub fn run_cli(_args: BuildGuestArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl build-guest is not implemented yet")
}

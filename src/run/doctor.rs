//! `simctl doctor`.

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

pub fn run_cli(_args: DoctorArgs) -> anyhow::Result<()> {
    anyhow::bail!("simctl doctor is not implemented yet")
}

//! Command-line interface: one clap subcommand per stage, each owned by its module.
//!
//! Every verb's argument struct lives beside the code that implements it; this file only wires
//! them together and owns the single place where errors are printed and exit codes chosen.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for any error that stopped a command (bad input, failed tool, failed run).
pub const EXIT_FAILURE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "simctl",
    version,
    about = "gem5 full-system simulation of serverless functions",
    long_about = "simctl builds a gem5-bootable kernel and disk image, runs serverless functions in \
gem5 or QEMU with per-invocation stats, and turns gem5's stats.txt into tables and plots.",
    after_help = "Example:\n  simctl run --workload aes-go\n  simctl report runs/<id>"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a gem5 stats.txt into tidy rows (table, CSV, JSON).
    Stats(crate::stats::cli::StatsArgs),
    /// Derived metrics (IPC, MPKI, ...) per run, dump and CPU, with plots.
    Report(crate::report::cli::ReportArgs),
    /// Build a gem5-bootable Linux vmlinux from kernel-configs/.
    BuildKernel(crate::kernel::BuildKernelArgs),
    /// Build the static guest binaries (m5, simctl-client, simctl-init).
    BuildGuest(crate::guest::BuildGuestArgs),
    /// List the workloads (name, language, service, method, default input).
    Workloads(crate::workloads::WorkloadsArgs),
    /// Build a workload from workloads/ and print where its files are.
    BuildWorkload(crate::workloads::BuildWorkloadArgs),
    /// Build a bootable raw disk image without a VM and without loop mounts.
    BuildImage(crate::image::BuildImageArgs),
    /// Build gem5 with scons in the cache and record it for `simctl run`.
    BuildGem5(crate::gem5build::BuildGem5Args),
    /// Run a workload in gem5 or QEMU with warm-up and measured invocations.
    Run(Box<crate::run::RunArgs>),
    /// Check which tools each stage needs and whether they work here.
    Doctor(crate::run::doctor::DoctorArgs),
    /// Run a set of runs across configurations, locally in parallel or on Slurm.
    Sweep(crate::sweep::SweepArgs),
    /// What the artifact cache holds (`ls`) and removing what no recent run needs (`gc`).
    Cache(crate::cache::cli::CacheArgs),
    /// Run a published serverless study (load sweep, rounds vs streams, syscall cost, hook
    /// overhead) and write its report.
    Study(crate::study::StudyArgs),
    /// Run one point of a resolved sweep (what a Slurm array task runs).
    #[command(hide = true)]
    SweepTask(crate::sweep::SweepTaskArgs),
}

/// Parses the command line, runs the verb, prints any error once, and picks the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Stats(args) => crate::stats::cli::run(args),
        Command::Report(args) => crate::report::cli::run(args),
        Command::BuildKernel(args) => crate::kernel::run_cli(args),
        Command::BuildGuest(args) => crate::guest::run_cli(args),
        Command::Workloads(args) => crate::workloads::list_cli(args),
        Command::BuildWorkload(args) => crate::workloads::run_cli(args),
        Command::BuildImage(args) => crate::image::run_cli(args),
        Command::BuildGem5(args) => crate::gem5build::run_cli(args),
        Command::Run(args) => crate::run::run_cli(*args),
        Command::Doctor(args) => crate::run::doctor::run_cli(args),
        Command::Sweep(args) => crate::sweep::run_cli(args),
        Command::SweepTask(args) => crate::sweep::run_task(args),
        Command::Cache(args) => crate::cache::cli::run_cli(args),
        Command::Study(args) => crate::study::run_cli(args),
    }
}

/// A closed stdout (`simctl stats ... | head`) is not an error worth reporting.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

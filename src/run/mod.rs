//! `simctl run`: from a workload name to per-invocation numbers, on gem5 or QEMU.

pub mod checkpoint;
pub mod cmdline;
pub mod conformance;
pub mod console;
pub mod doctor;
pub mod gem5;
pub mod gem5run;
pub mod kvm;
pub mod pipeline;
pub mod plan;
pub mod qemu;
pub mod report;
pub mod rundir;
pub mod spec;
pub mod system;
pub mod watch;

use anyhow::Result;

/// Run a workload in gem5 or QEMU: warm-up invocations, then measured ones, each measured
/// invocation with its own gem5 stats dump.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  simctl run --workload aes-go
  simctl run --workload aes-go --platform qemu --invocations 20 --warmup 5
  simctl run --workload fibonacci-go --cpu o3 --system skylake-like --set llc_size=2MB
  simctl run --workload spin --pattern rps --rps 50 --arrival poisson --invocations 200")]
pub struct RunArgs {
    /// Workload to run (a folder in workloads/).
    #[arg(long)]
    pub workload: String,
    /// gem5 or qemu; default: gem5 when a gem5 binary is configured, QEMU otherwise.
    #[arg(long, value_enum)]
    pub platform: Option<cmdline::PlatformKind>,
    /// System: a name in gem5-configs/systems/ or a TOML file [default: default]. QEMU takes
    /// num_cores and memory_size from it.
    #[arg(long)]
    pub system: Option<String>,
    /// gem5 CPU model for the measured phase [default: timing, the methodology's in-order
    /// core]; gem5 only.
    #[arg(long, value_enum)]
    pub cpu: Option<CpuModel>,
    /// Override a system parameter (repeatable), e.g. --set llc_size=256kB.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Measured invocations (1 to 100000).
    #[arg(long, default_value_t = 10)]
    pub invocations: u64,
    /// Warm-up invocations before the measured ones (checkpoint taken after them on gem5).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// gem5: invocations after the checkpoint is restored and before the first measured one,
    /// on the measured CPU, so that the measured invocations find warm caches, TLBs and branch
    /// predictors instead of the restore's cold ones [default: 5].
    #[arg(long, value_name = "N")]
    pub warm: Option<u64>,
    /// Load pattern of the client.
    #[arg(long, value_enum, default_value_t = Pattern::Closed)]
    pub pattern: Pattern,
    /// Requests per second (pattern rps; required there).
    #[arg(long)]
    pub rps: Option<f64>,
    /// Inter-arrival distribution (pattern rps) [default: poisson].
    #[arg(long, value_enum)]
    pub arrival: Option<Arrival>,
    /// Parallel requests per round, or independent streams (patterns rounds, streams)
    /// [default: 2].
    #[arg(long)]
    pub parallel: Option<u64>,
    /// Pause between rounds (pattern rounds), e.g. 100ms [default: 100ms].
    #[arg(long)]
    pub pause: Option<humantime::Duration>,
    /// Request payload; default: the workload's default request.
    #[arg(long)]
    pub request: Option<String>,
    /// Before the measured load, replay these conformance pairs against the function in the
    /// guest (tests/fixtures/conformance/ format); any different reply fails the run.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// Before the run, every function with a pairs file in DIR (`<workload>.jsonl`, e.g.
    /// tests/fixtures/conformance) is started in the same guest as a process on core 0, on a
    /// port of its own, and answers its recorded pairs (one image and one boot for all); any
    /// different reply fails the run. They stay up, idle, until the run ends.
    #[arg(long, value_name = "DIR")]
    pub conformance: Option<std::path::PathBuf>,
    /// How the function runs in the guest: in an OCI container (runc, cpuset of core 1,
    /// published port), as the methodology measures functions, or as a bare process (pinned
    /// to core 1 too), for comparison. Default: container, but process for a workload that
    /// starts helpers beside it (recommendationservice) and for --bench (which runs in the
    /// workload's container only with --isolation container).
    #[arg(long, value_enum)]
    pub isolation: Option<crate::container::Isolation>,
    /// Extra environment of the function's process (repeatable), e.g. --function-env
    /// LD_PRELOAD=/usr/local/lib/simctl/readhook.so: set on the function only (not on the
    /// client), with either isolation (a container gets it in its OCI config). With
    /// READHOOK_COUNT (the counter file of guest/hook/readhook.so) the client records the
    /// counter's growth per measured invocation in results/read-counts.csv.
    #[arg(long = "function-env", value_name = "KEY=VALUE")]
    pub function_env: Vec<String>,
    /// The function container's seccomp filter: Docker's default profile, as Docker (and
    /// vSwarm-u) runs every container, or none [default: docker-default; container only].
    #[arg(long, value_enum)]
    pub seccomp: Option<crate::container::seccomp::Seccomp>,
    /// Limit for each phase (boot+warm-up, measure) of the run, e.g. 30m.
    #[arg(long)]
    pub timeout: Option<humantime::Duration>,
    /// Stop the run when the guest console is silent this long, e.g. 10m.
    #[arg(long)]
    pub watchdog: Option<humantime::Duration>,
    /// Run directory; default: runs/<workload>-<platform>-<key>.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Run again even when an identical finished run exists, and replace a different run at
    /// --out.
    #[arg(long)]
    pub force: bool,
    /// Kernel config fragment set (see kernel-configs/).
    #[arg(long)]
    pub kernel_config: Option<std::path::PathBuf>,
    /// Disk image spec (see disk-image/).
    #[arg(long)]
    pub image_spec: Option<std::path::PathBuf>,
    /// Parallel jobs for builds (kernel, workloads).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Instead of the function and its client, run this guest program on core 1: its command
    /// line, split at whitespace (no shell), e.g. "/sbin/simctl-syscalls --calls 1000". What it
    /// writes to /tmp/simctl-results comes back in results/; --invocations is the number of
    /// workbegin/workend pairs it marks (one gem5 stats dump each).
    #[arg(long, value_name = "COMMAND", value_parser = bench_command)]
    pub bench: Option<String>,
    /// Pattern closed: the client waits this long after each warming and measured invocation
    /// (outside the measured region), e.g. 1ms; a co-runner runs on the function's core then.
    #[arg(long)]
    pub think: Option<humantime::Duration>,
    /// A guest program that runs on the function's core beside it for the whole measurement,
    /// its command line split at whitespace (no shell), e.g. "/sbin/simctl-thrash --code-kb
    /// 2048" (the lukewarm study's interference: it runs at idle priority while the function
    /// waits).
    #[arg(long, value_name = "COMMAND", value_parser = bench_command)]
    pub co_runner: Option<String>,
    /// A word appended to the guest kernel command line (repeatable), e.g. --kernel-arg
    /// mitigations=off. It comes after simctl's own words, so it overrides them; it is part of
    /// the run key (and, on gem5, of the boot checkpoint's).
    #[arg(long = "kernel-arg", value_name = "WORD", value_parser = kernel_word)]
    pub kernel_args: Vec<String>,
}

/// A --kernel-arg is one word the kernel reads as one parameter.
fn kernel_word(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("give a kernel parameter, e.g. --kernel-arg mitigations=off".into());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '"')
    {
        return Err(format!(
            "{bad:?} cannot be in a kernel parameter (the kernel splits its command line at \
             blanks and reads quotes); hint: one --kernel-arg per parameter"
        ));
    }
    Ok(text.to_string())
}

/// A --bench command names a program.
fn bench_command(text: &str) -> Result<String, String> {
    match text.split_whitespace().next() {
        Some(program) if program.starts_with('/') => Ok(text.to_string()),
        _ => Err(
            "give the guest program's absolute path and its arguments, e.g. \
                  \"/sbin/simctl-syscalls --calls 1000\""
                .into(),
        ),
    }
}

/// gem5 CPU models.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CpuModel {
    Atomic,
    Timing,
    /// In-order.
    Minor,
    /// Out-of-order.
    O3,
}

/// Client load patterns and open-loop arrival processes: the guest's definitions, which the
/// run spec (`LoadPattern`) and the client share.
pub use simctl_guest::load::{Arrival, Pattern};

pub fn run_cli(args: RunArgs) -> Result<()> {
    pipeline::run(&args).map(|_| ())
}

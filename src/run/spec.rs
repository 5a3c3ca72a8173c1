//! The run spec: everything a run's results depend on, resolved from the command line (or a
//! sweep point) and checked once, before any build step; serialised as `run.toml` together with
//! the identities of the artifacts it ran on ([`RunRecord`]), and read back as the same types by
//! `report` and `sweep`.
//!
//! Architecture invariant: the run key is the hash of the resolved record (numbers in canonical
//! units, artifact keys), never of file bytes or option spellings, so two spellings of one run
//! are one run, and a run directory is reused only for the run it holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::cmdline::PlatformKind;
use super::gem5::FastCpu;
use super::kvm::KvmStatus;
use super::qemu::Accel;
use super::rundir::RunDir;
use super::system::{ByteSize, QEMU_KEYS, SystemSpec, parse_overrides};
use super::{Arrival, CpuModel, Pattern, RunArgs};
use crate::cache::CacheKey;
use crate::container::Isolation;
use crate::container::seccomp::Seccomp;
use crate::project::Project;
use crate::workloads::Workload;

/// Bump when the meaning of a run record changes (old run directories then never match).
const RUN_RECIPE: u32 = 2;
/// More measured invocations than this is a mistake, not an experiment: under gem5 each one is
/// a stats dump, and split runs are easier to resume.
pub const MAX_INVOCATIONS: u64 = 100_000;
pub const MAX_WARMUP: u64 = 100_000;
const MAX_PARALLEL: u64 = 256;
const MAX_RPS: f64 = 1_000_000.0;
const MAX_PAUSE_MS: u64 = 3_600_000;
const DEFAULT_PARALLEL: u64 = 2;
const DEFAULT_PAUSE_MS: u64 = 100;
/// The methodology's in-order core (serverless-suite "dual in-order cores", vSwarm-u `simple`).
pub const DEFAULT_CPU: CpuModel = CpuModel::Timing;
/// Warming invocations after a restore (`--warm`): enough for the first measured invocation
/// to find the function's code and data in the caches and its branches in the predictors.
pub const DEFAULT_WARMING: u64 = 5;

/// How the client sends requests: the guest's definition (simctl-client reads back what the
/// plan writes from it).
pub use simctl_guest::load::LoadPattern;

/// The machine both platforms build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub num_cores: u32,
    pub memory_size: ByteSize,
}

/// What only gem5 runs have: the CPU models and the modelled system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gem5Spec {
    /// The CPU model of the measured phase.
    pub cpu: CpuModel,
    /// The CPU that boots and warms up before the checkpoint.
    pub boot_cpu: FastCpu,
    /// Invocations on the measured CPU after the restore and before the first measured one.
    #[serde(default)]
    pub warming: u64,
    pub system: SystemSpec,
}

/// What only QEMU runs have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    pub accel: Accel,
}

/// Everything a run's results depend on, besides the artifacts it runs on. A new input (e.g.
/// an isolation mode) is a new field; an `Option` skipped when `None` keeps the keys of
/// existing runs, anything else needs a new `RUN_RECIPE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub workload: String,
    pub platform: PlatformKind,
    pub invocations: u64,
    pub warmup: u64,
    pub request: String,
    pub load: LoadPattern,
    /// How the function runs in the guest (OCI container or bare process).
    pub isolation: Isolation,
    /// The container's seccomp filter (container isolation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    /// Conformance pairs replayed in the guest before the load (their text is in the plan, so
    /// in the run key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<PathBuf>,
    /// Pairs files of functions replayed in the same boot before the run (`--conformance`;
    /// their text is in the plan, so in the run key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conformance: Option<PathBuf>,
    /// A guest program run on core 1 instead of the function and its client (`--bench`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<String>,
    /// A guest program beside the function on its core (`--co-runner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_runner: Option<String>,
    /// Words appended to the guest kernel command line (`--kernel-arg`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_args: Vec<String>,
    /// Extra environment of the function's process (`--function-env`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub function_env: BTreeMap<String, String>,
    pub machine: Machine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gem5: Option<Gem5Spec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<QemuSpec>,
}

/// The identities of what a run ran on; the keys and hashes are part of the run key, the paths
/// only say where those artifacts were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    pub kernel_key: String,
    pub image_key: String,
    pub kernel_cmdline: String,
    /// blake3 of the guest plan (what the guest agent runs).
    pub plan_blake3: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gem5_blake3: Option<String>,
    /// blake3 of gem5-configs/simctl_fs.py (the system itself is in the spec, as numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gem5_config_blake3: Option<String>,
}

/// Where things were and why they were chosen: recorded, but not part of the run key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub platform_why: String,
    pub accelerator: String,
    pub kernel: PathBuf,
    pub kernel_version: String,
    pub image: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gem5: Option<PathBuf>,
    /// gem5: the boot checkpoint (shared by every workload of the image) and the warm one
    /// (this plan's) that the measured phase restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_checkpoint: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PathBuf>,
    /// gem5: each process (boot, warmup, measure) with its steps' host and simulated seconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gem5_timeline: Vec<super::gem5run::ProcessTimeline>,
}

/// `run.toml`: the spec, the artifacts, the key made from both, and where things were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub run_key: String,
    pub spec: RunSpec,
    pub artifacts: Artifacts,
    pub provenance: Provenance,
}

impl RunSpec {
    /// The spec of the run in `dir` (its run.toml).
    pub fn load(dir: &Path) -> Result<RunSpec> {
        RunRecord::load(dir).map(|record| record.spec)
    }

    pub fn is_gem5(&self) -> bool {
        self.gem5.is_some()
    }
}

impl RunRecord {
    /// Reads `run.toml` of a run directory.
    pub fn load(dir: &Path) -> Result<RunRecord> {
        let path = RunDir::open(dir).run_toml();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        RunRecord::parse(&path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<RunRecord> {
        toml::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "{}: not a run record of this simctl version: {err}hint: run it again with \
                 `simctl run ... --force`",
                path.display()
            )
        })
    }

    /// The run key: a hash of the spec and of the artifacts' identities (not of paths).
    pub fn key(spec: &RunSpec, artifacts: &Artifacts) -> CacheKey {
        CacheKey::new("run", RUN_RECIPE)
            .text("spec", &canonical(spec))
            .text("artifacts", &canonical(artifacts))
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("cannot serialise run.toml")
    }
}

/// A stable text of a value for hashing: JSON with the fields in declaration order.
fn canonical<T: Serialize>(value: &T) -> String {
    // Structs of strings, integers and floats always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

/// What differs between two values, one `path: old -> new` per differing leaf.
pub fn differences<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let mut out = Vec::new();
    let old = serde_json::to_value(old).unwrap_or_default();
    let new = serde_json::to_value(new).unwrap_or_default();
    diff_values("", &old, &new, &mut out);
    out
}

fn diff_values(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let none = Value::Null;
                diff_values(
                    &child,
                    a.get(key).unwrap_or(&none),
                    b.get(key).unwrap_or(&none),
                    out,
                );
            }
        }
        _ if old != new => {
            let show = |v: &Value| match v {
                Value::Null => "(none)".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(format!("{path}: {} -> {}", show(old), show(new)));
        }
        _ => {}
    }
}

/// What `check_args` finds without looking at any file: the load pattern and the overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedArgs {
    pub load: LoadPattern,
    pub overrides: Vec<(String, String)>,
    pub function_env: BTreeMap<String, String>,
}

/// Checks what the command line alone decides: numbers in range, the pattern's parameters,
/// `--set` syntax, CPU models that cannot work, options the chosen platform does not have.
/// `platform` is the platform if known (given, or resolved from the configuration).
pub fn check_args(args: &RunArgs, platform: Option<PlatformKind>) -> Result<CheckedArgs> {
    if args.invocations == 0 || args.invocations > MAX_INVOCATIONS {
        bail!(
            "--invocations {}: give between 1 and {MAX_INVOCATIONS} measured invocations; hint: \
             split a longer experiment into several runs",
            args.invocations
        );
    }
    if args.warmup > MAX_WARMUP {
        bail!(
            "--warmup {}: at most {MAX_WARMUP} warm-up invocations",
            args.warmup
        );
    }
    if let Some(think) = args.think {
        if args.pattern != Pattern::Closed {
            bail!(
                "--think {think}: a think time belongs to the closed pattern (one request at a \
                 time); hint: use --pause for rounds"
            );
        }
        if std::time::Duration::from(think).as_millis() > u128::from(MAX_PAUSE_MS) {
            bail!("--think {think}: at most 1h");
        }
    }
    if args.co_runner.is_some() && args.pattern != Pattern::Closed {
        bail!(
            "--co-runner: the client holds the co-runner during each invocation, which needs one \
             invocation at a time; hint: use the closed pattern (the default) with --think"
        );
    }
    if args.co_runner.is_some() && args.bench.is_some() {
        bail!(
            "--co-runner with --bench: a co-runner runs beside the function, and --bench runs no \
             function; hint: drop one of them"
        );
    }
    if !args.function_env.is_empty() && args.bench.is_some() {
        bail!(
            "--function-env with --bench: the environment is the function's, and --bench runs no \
             function; hint: drop --function-env (a bench sets its own programs' environment)"
        );
    }
    let function_env = function_env(&args.function_env)?;
    if let Some(warm) = args.warm.filter(|warm| *warm > MAX_WARMUP) {
        bail!("--warm {warm}: at most {MAX_WARMUP} warming invocations");
    }
    if args.workload.trim().is_empty() {
        bail!("--workload is empty; hint: name a folder in workloads/");
    }
    let load = load_pattern(args)?;
    let overrides = parse_overrides(&args.overrides)?;
    if args.cpu == Some(CpuModel::Minor) {
        bail!(
            "--cpu minor: gem5's x86 MinorCPU makes no progress in full-system simulation (gem5 \
             issue #1206, \"x86 MinorCPU doesn't work\"); hint: use --cpu timing (in-order, the \
             default) or --cpu o3 (out-of-order)"
        );
    }
    for (option, path) in [
        ("--kernel-config", &args.kernel_config),
        ("--image-spec", &args.image_spec),
    ] {
        if let Some(path) = path
            && !path.is_file()
        {
            bail!(
                "{option} {}: no such file; hint: see kernel-configs/ and disk-image/",
                path.display()
            );
        }
    }
    if args.jobs == Some(0) {
        bail!("--jobs 0: give at least 1 (or leave it out: all cores)");
    }
    if let Some(platform) = platform {
        check_platform(args, &overrides, platform)?;
    }
    Ok(CheckedArgs {
        load,
        overrides,
        function_env,
    })
}

/// `--function-env KEY=VALUE` pairs: KEY a portable environment name (letters, digits and `_`,
/// not starting with a digit), each KEY once, no NUL in VALUE (exec cannot pass it).
pub fn function_env(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!(
                "--function-env {pair}: give KEY=VALUE, e.g. --function-env LD_PRELOAD=/usr/local/lib/simctl/readhook.so"
            );
        };
        let name_ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            bail!(
                "--function-env {pair}: '{key}' is not an environment variable name; hint: use \
                 letters, digits and '_', not starting with a digit"
            );
        }
        if value.contains('\0') {
            bail!(
                "--function-env {key}=...: the value contains a NUL byte, which no process environment can hold"
            );
        }
        if env.insert(key.to_string(), value.to_string()).is_some() {
            bail!("--function-env {key} is given twice; hint: keep one value");
        }
    }
    if let Some(counter) = env.get(super::plan::HOOK_COUNTER_VAR)
        && !counter.starts_with('/')
    {
        bail!(
            "--function-env {}={counter}: give the counter file as an absolute path (it is \
             read from outside the function), e.g. /opt/simctl/readhook.count",
            super::plan::HOOK_COUNTER_VAR
        );
    }
    Ok(env)
}

/// Options the platform does not have are errors (QEMU: `--cpu`, the clock and cache keys).
fn check_platform(
    args: &RunArgs,
    overrides: &[(String, String)],
    platform: PlatformKind,
) -> Result<()> {
    if platform == PlatformKind::Gem5
        && let Some(dir) = &args.conformance
    {
        // Its replayed functions stay up beside the measured one and would land in its stats.
        bail!(
            "--conformance {}: the functions it replays stay up on the client's core while the \
             run's function is measured, which gem5's stats would count; hint: check \
             conformance on QEMU (--platform qemu), then measure on gem5 without it",
            dir.display()
        );
    }
    if platform == PlatformKind::Qemu {
        if let Some(warm) = args.warm {
            bail!(
                "--warm {warm} applies to gem5 only: it warms the measured CPU after a checkpoint \
                 is restored, and QEMU restores none; hint: use --warmup for invocations before \
                 the measured ones"
            );
        }
        if let Some(cpu) = args.cpu {
            bail!(
                "--cpu {} applies to gem5 only: QEMU runs the guest on its own CPU (KVM or TCG); \
                 hint: drop --cpu, or run on gem5 (--platform gem5 with a gem5 binary)",
                cpu.name()
            );
        }
        if let Some((key, _)) = overrides
            .iter()
            .find(|(key, _)| !QEMU_KEYS.contains(&key.as_str()))
        {
            bail!(
                "--set {key}=...: QEMU does not model {key} (it takes only num_cores and \
                 memory_size from the system); hint: drop it, or run on gem5"
            );
        }
    }
    Ok(())
}

/// The load pattern with its parameters; a parameter of another pattern is an error, so that
/// nothing given on the command line is silently ignored.
/// The load pattern a command line asks for, with its defaults, checked.
pub fn load_pattern(args: &RunArgs) -> Result<LoadPattern> {
    let not_for = |option: &str, applies: &str| {
        anyhow::anyhow!(
            "{option} applies to --pattern {applies} only, not to --pattern {}; hint: drop it or \
             choose --pattern {applies}",
            args.pattern.name()
        )
    };
    if args.rps.is_some() && args.pattern != Pattern::Rps {
        return Err(not_for("--rps", "rps"));
    }
    if args.arrival.is_some() && args.pattern != Pattern::Rps {
        return Err(not_for("--arrival", "rps"));
    }
    if args.pause.is_some() && args.pattern != Pattern::Rounds {
        return Err(not_for("--pause", "rounds"));
    }
    if args.parallel.is_some() && !matches!(args.pattern, Pattern::Rounds | Pattern::Streams) {
        return Err(not_for("--parallel", "rounds or streams"));
    }
    let parallel = || -> Result<u64> {
        let parallel = args.parallel.unwrap_or(DEFAULT_PARALLEL);
        if !(1..=MAX_PARALLEL).contains(&parallel) {
            bail!("--parallel {parallel}: give between 1 and {MAX_PARALLEL}");
        }
        Ok(parallel)
    };
    Ok(match args.pattern {
        Pattern::Closed => LoadPattern::Closed {
            think_us: args.think.map_or(0, |think| {
                std::time::Duration::from(think).as_micros() as u64
            }),
        },
        Pattern::Rps => {
            let Some(rate) = args.rps else {
                bail!("--pattern rps needs --rps RATE (requests per second), e.g. --rps 50");
            };
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RPS) {
                bail!("--rps {rate}: give a rate above 0 and at most {MAX_RPS} per second");
            }
            LoadPattern::Rps {
                rate,
                arrival: args.arrival.unwrap_or(Arrival::Poisson),
            }
        }
        Pattern::Rounds => {
            let pause_ms = args
                .pause
                .map(|pause| std::time::Duration::from(pause).as_millis())
                .unwrap_or(u128::from(DEFAULT_PAUSE_MS));
            if pause_ms > u128::from(MAX_PAUSE_MS) {
                bail!("--pause: at most 1h between rounds");
            }
            LoadPattern::Rounds {
                parallel: parallel()?,
                pause_ms: pause_ms as u64,
            }
        }
        Pattern::Streams => LoadPattern::Streams {
            parallel: parallel()?,
        },
    })
}

/// The platform to use and why (said to the user and recorded).
pub fn choose_platform(
    asked: Option<PlatformKind>,
    gem5: Option<&Path>,
) -> Result<(PlatformKind, String)> {
    match (asked, gem5) {
        (Some(PlatformKind::Gem5), None) => bail!(
            "--platform gem5 needs a gem5 binary; hint: `simctl build-gem5 --source <gem5 checkout>` \
             (or set SIMCTL_GEM5 or `gem5 = ...` in simctl.toml)"
        ),
        (Some(platform), _) => Ok((platform, "chosen with --platform".into())),
        (None, Some(path)) => Ok((
            PlatformKind::Gem5,
            format!("gem5 is configured ({})", path.display()),
        )),
        (None, None) => Ok((
            PlatformKind::Qemu,
            "no gem5 (SIMCTL_GEM5, simctl.toml, or a `simctl build-gem5` build)".into(),
        )),
    }
}

/// A spec resolved against the tree, with what the later phases need besides it.
#[derive(Debug)]
pub struct Resolved {
    pub spec: RunSpec,
    pub workload: Workload,
    /// The functions `--conformance` replays, with their pairs.
    pub conformance: Vec<super::conformance::Replayed>,
    pub platform_why: String,
    pub system_file: PathBuf,
    pub gem5: Option<PathBuf>,
}

/// The system file of the run with its overrides, checked (and checked against gem5's limits
/// on gem5).
pub fn resolve_system(
    project: &Project,
    args: &RunArgs,
    platform: PlatformKind,
) -> Result<(PathBuf, SystemSpec)> {
    let systems = project.gem5_configs_dir().join("systems");
    let name = args.system.as_deref().unwrap_or("default");
    let path = super::system::system_path(&systems, name)?;
    let system = SystemSpec::resolve(&systems, name, &args.overrides)?;
    if platform == PlatformKind::Gem5 {
        system
            .check_for_gem5()
            .with_context(|| format!("system {}", path.display()))?;
    }
    Ok((path, system))
}

/// The inputs of a run checked against the tree (all but the workload): the platform, the
/// options, the system.
#[derive(Debug)]
pub struct Checked {
    pub platform: PlatformKind,
    pub platform_why: String,
    pub gem5: Option<PathBuf>,
    pub load: LoadPattern,
    pub function_env: BTreeMap<String, String>,
    pub system_file: PathBuf,
    pub system: SystemSpec,
}

/// Checks a run's options against the tree: what [`check_args`] checks once the platform is
/// known, and the system file with its overrides. Sweeps check every point with this before
/// anything runs.
pub fn check_inputs(project: &Project, args: &RunArgs) -> Result<Checked> {
    let checked = check_args(args, args.platform)?;
    let gem5 = project.gem5()?;
    let (platform, platform_why) = choose_platform(args.platform, gem5.as_deref())?;
    check_platform(args, &checked.overrides, platform)
        .with_context(|| format!("the platform is {platform}: {platform_why}"))?;
    let (system_file, system) = resolve_system(project, args, platform)?;
    Ok(Checked {
        platform,
        platform_why,
        gem5: gem5.filter(|_| platform == PlatformKind::Gem5),
        load: checked.load,
        function_env: checked.function_env,
        system_file,
        system,
    })
}

/// Resolves and checks every input of `simctl run` that needs no build: the platform, the
/// workload, the system, the load; `kvm` decides what boots gem5 and what accelerates QEMU.
pub fn resolve(project: &Project, args: &RunArgs, kvm: &KvmStatus) -> Result<Resolved> {
    let checked = check_inputs(project, args)?;
    let platform = checked.platform;
    if platform == PlatformKind::Qemu && args.system.is_some() {
        eprintln!(
            "note: QEMU takes num_cores = {} and memory_size = {} from {}; its clock and caches \
             apply to gem5 only",
            checked.system.num_cores,
            checked.system.memory_size,
            checked.system_file.display()
        );
    }
    let workload = Workload::load(project, &args.workload)?;
    let request = args
        .request
        .clone()
        .unwrap_or_else(|| workload.manifest.default_request.clone());
    let machine = Machine {
        num_cores: checked.system.num_cores,
        memory_size: checked.system.memory_size,
    };
    let gem5_spec = (platform == PlatformKind::Gem5).then(|| Gem5Spec {
        cpu: args.cpu.unwrap_or(DEFAULT_CPU),
        boot_cpu: if kvm.is_usable() {
            FastCpu::Kvm
        } else {
            FastCpu::Atomic
        },
        warming: args.warm.unwrap_or(DEFAULT_WARMING),
        system: checked.system.clone(),
    });
    let qemu_spec = (platform == PlatformKind::Qemu).then(|| QemuSpec {
        accel: Accel::from_probe(kvm),
    });
    // A bench program runs bare unless a container is asked for.
    let isolation = match (&args.bench, args.isolation) {
        (Some(_), None) => Isolation::Process,
        (_, requested) => crate::container::choose(requested, &workload)?,
    };
    let conformance = match &args.conformance {
        Some(dir) => super::conformance::load(project, dir)?,
        None => Vec::new(),
    };
    Ok(Resolved {
        spec: RunSpec {
            workload: workload.name().to_string(),
            platform,
            invocations: args.invocations,
            warmup: args.warmup,
            request,
            load: checked.load,
            isolation,
            seccomp: seccomp_of(isolation, args.seccomp)?,
            replay: args.replay.clone(),
            conformance: args.conformance.clone(),
            bench: args.bench.clone(),
            co_runner: args.co_runner.clone(),
            kernel_args: args.kernel_args.clone(),
            function_env: checked.function_env,
            machine,
            gem5: gem5_spec,
            qemu: qemu_spec,
        },
        workload,
        conformance,
        platform_why: checked.platform_why,
        system_file: checked.system_file,
        gem5: checked.gem5,
    })
}

/// The container's filter: the one asked for, else Docker's default; none for a process.
fn seccomp_of(isolation: Isolation, requested: Option<Seccomp>) -> Result<Option<Seccomp>> {
    match (isolation, requested) {
        (Isolation::Container, requested) => Ok(Some(requested.unwrap_or(Seccomp::DockerDefault))),
        (Isolation::Process, None) => Ok(None),
        (Isolation::Process, Some(seccomp)) => anyhow::bail!(
            "--seccomp {}: the seccomp filter is the function container's and the function runs \
             as a process; hint: drop --seccomp, or use --isolation container",
            seccomp.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(line: &str) -> RunArgs {
        Cli::try_parse_from(std::iter::once("run").chain(line.split_whitespace()))
            .unwrap()
            .run
    }

    fn error(line: &str, platform: Option<PlatformKind>) -> String {
        format!("{:#}", check_args(&args(line), platform).unwrap_err())
    }

    #[test]
    fn invocation_counts_must_be_sane() {
        let err = error("--workload w --invocations 0", None);
        assert!(
            err.contains("--invocations 0: give between 1 and 100000"),
            "{err}"
        );
        let err = error("--workload w --invocations 99999999999", None);
        assert!(err.contains("--invocations 99999999999"), "{err}");
        let err = error("--workload w --warmup 99999999999", None);
        assert!(err.contains("--warmup 99999999999"), "{err}");
        assert!(check_args(&args("--workload w --invocations 2 --warmup 0"), None).is_ok());
    }

    #[test]
    fn load_patterns_take_their_own_parameters_only() {
        let load = |line: &str| check_args(&args(line), None).map(|c| c.load);
        let err = error("--workload w --pattern rps", None);
        assert!(err.contains("--pattern rps needs --rps"), "{err}");
        assert_eq!(
            load("--workload w --pattern rps --rps 50").unwrap(),
            LoadPattern::Rps {
                rate: 50.0,
                arrival: Arrival::Poisson
            }
        );
        assert!(error("--workload w --pattern rps --rps 0", None).contains("--rps 0"));
        assert!(error("--workload w --pattern rps --rps NaN", None).contains("--rps NaN"));
        let err = error("--workload w --rps 50", None);
        assert!(
            err.contains("--rps applies to --pattern rps only, not to --pattern closed"),
            "{err}"
        );
        assert!(error("--workload w --parallel 4", None).contains("--parallel applies"));
        assert!(
            error("--workload w --pattern streams --pause 1s", None).contains("--pause applies")
        );
        assert!(
            error("--workload w --pattern streams --parallel 0", None).contains("--parallel 0")
        );
        assert_eq!(
            load("--workload w --pattern rounds").unwrap(),
            LoadPattern::Rounds {
                parallel: 2,
                pause_ms: 100
            }
        );
        assert_eq!(
            load("--workload w --pattern streams --parallel 3").unwrap(),
            LoadPattern::Streams { parallel: 3 }
        );
        let shown: Vec<String> = [
            "--workload w",
            "--workload w --pattern rps --rps 2.5 --arrival uniform",
            "--workload w --pattern rounds --pause 1s",
            "--workload w --pattern streams",
        ]
        .iter()
        .map(|line| load(line).unwrap().to_string())
        .collect();
        assert_eq!(
            shown,
            [
                "closed",
                "rps 2.5/s uniform",
                "rounds of 2, 1000 ms apart",
                "2 streams"
            ]
        );
    }

    #[test]
    fn kernel_args_are_single_words_kept_in_order() {
        let parsed = Cli::try_parse_from([
            "run",
            "--workload",
            "w",
            "--kernel-arg",
            "mitigations=off",
            "--kernel-arg",
            "init=/bin/true",
        ])
        .unwrap()
        .run;
        assert_eq!(parsed.kernel_args, ["mitigations=off", "init=/bin/true"]);
        for bad in ["a b", "", "x=\"y\"", "tab\there"] {
            let err = Cli::try_parse_from(["run", "--workload", "w", "--kernel-arg", bad])
                .err()
                .unwrap_or_else(|| panic!("{bad:?} was accepted"))
                .to_string();
            assert!(err.contains("--kernel-arg"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_container_runs_under_dockers_seccomp_profile_unless_asked_and_a_process_under_none() {
        use Seccomp::{DockerDefault, Unconfined};
        assert_eq!(
            seccomp_of(Isolation::Container, None).unwrap(),
            Some(DockerDefault)
        );
        assert_eq!(
            seccomp_of(Isolation::Container, Some(Unconfined)).unwrap(),
            Some(Unconfined)
        );
        assert_eq!(seccomp_of(Isolation::Process, None).unwrap(), None);
        let err = seccomp_of(Isolation::Process, Some(DockerDefault))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hint: drop --seccomp"), "{err}");
        // The filter is part of the run key.
        let container = RunSpec {
            isolation: Isolation::Container,
            seccomp: Some(DockerDefault),
            ..spec()
        };
        let unconfined = RunSpec {
            seccomp: Some(Unconfined),
            ..container.clone()
        };
        let text = toml::to_string(&container).unwrap();
        assert!(text.contains("seccomp = \"docker-default\""), "{text}");
        assert_ne!(
            RunRecord::key(&container, &artifacts()).hex(),
            RunRecord::key(&unconfined, &artifacts()).hex()
        );
    }

    #[test]
    fn options_of_another_platform_and_broken_cpu_models_are_refused() {
        let err = error("--workload w --cpu minor", None);
        assert!(
            err.contains("gem5 issue #1206")
                && err.contains("--cpu timing")
                && err.contains("--cpu o3"),
            "{err}"
        );
        let err = error(
            "--workload w --conformance tests/fixtures/conformance",
            Some(PlatformKind::Gem5),
        );
        assert!(
            err.contains("--conformance tests/fixtures/conformance: the functions it replays"),
            "{err}"
        );
        let err = error("--workload w --cpu o3", Some(PlatformKind::Qemu));
        assert!(err.contains("--cpu o3 applies to gem5 only"), "{err}");
        let err = error(
            "--workload w --platform qemu --warm 3",
            Some(PlatformKind::Qemu),
        );
        assert!(
            err.contains(
                "--warm 3 applies to gem5 only: it warms the measured CPU after a \
                          checkpoint is restored"
            ),
            "{err}"
        );
        let err = error("--workload w --pattern rounds --think 1ms", None);
        assert!(
            err.contains("--think 1ms: a think time belongs to the closed pattern"),
            "{err}"
        );
        let err = error("--workload w --set llc_size=1MB", Some(PlatformKind::Qemu));
        assert!(err.contains("QEMU does not model llc_size"), "{err}");
        assert!(
            check_args(
                &args("--workload w --set num_cores=4 --set memory_size=1GB"),
                Some(PlatformKind::Qemu)
            )
            .is_ok()
        );
        assert!(check_args(&args("--workload w --cpu o3"), Some(PlatformKind::Gem5)).is_ok());
        let err = error("--workload w --set =5", None);
        assert!(err.contains("--set =5"), "{err}");
        let err = format!(
            "{:#}",
            check_args(
                &Cli::try_parse_from(["run", "--workload", "w", "--set", "a=1 b=2"])
                    .unwrap()
                    .run,
                None
            )
            .unwrap_err()
        );
        assert!(err.contains("cannot contain spaces"), "{err}");
    }

    #[test]
    fn function_env_takes_named_pairs_once_and_only_with_a_function() {
        let env = check_args(
            &args("--workload w --function-env A_1=x=y --function-env _B="),
            None,
        )
        .unwrap()
        .function_env;
        assert_eq!(
            env,
            BTreeMap::from([("A_1".into(), "x=y".into()), ("_B".into(), String::new())])
        );
        for (line, expected) in [
            ("--function-env A", "--function-env A: give KEY=VALUE"),
            (
                "--function-env 1A=x",
                "'1A' is not an environment variable name",
            ),
            (
                "--function-env A-B=x",
                "'A-B' is not an environment variable name",
            ),
            (
                "--function-env =x",
                "'' is not an environment variable name",
            ),
            (
                "--function-env A=1 --function-env A=2",
                "--function-env A is given twice",
            ),
            ("--function-env READHOOK_COUNT=c", "as an absolute path"),
            (
                "--bench /sbin/x --function-env A=1",
                "--function-env with --bench",
            ),
        ] {
            let err = error(&format!("--workload w {line}"), None);
            assert!(err.contains(expected), "{line}: {err}");
        }
        let err = format!("{:#}", function_env(&["A=a\0b".to_string()]).unwrap_err());
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn function_env_is_part_of_the_key_and_absent_when_empty() {
        let base = spec();
        let mut hooked = spec();
        hooked
            .function_env
            .insert("LD_PRELOAD".into(), "/x.so".into());
        assert_ne!(
            RunRecord::key(&base, &artifacts()).hex(),
            RunRecord::key(&hooked, &artifacts()).hex()
        );
        assert!(!canonical(&base).contains("function_env"));
        assert_eq!(
            differences(&base, &hooked),
            [r#"function_env: (none) -> {"LD_PRELOAD":"/x.so"}"#]
        );
    }

    fn spec() -> RunSpec {
        let systems = Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/systems");
        let system = SystemSpec::resolve(&systems, "default", &[]).unwrap();
        RunSpec {
            workload: "aes-go".into(),
            platform: PlatformKind::Gem5,
            invocations: 2,
            warmup: 1,
            request: "hello".into(),
            load: LoadPattern::CLOSED,
            isolation: Isolation::Process,
            seccomp: None,
            replay: None,
            conformance: None,
            bench: None,
            co_runner: None,
            kernel_args: Vec::new(),
            function_env: BTreeMap::new(),
            machine: Machine {
                num_cores: system.num_cores,
                memory_size: system.memory_size,
            },
            gem5: Some(Gem5Spec {
                cpu: CpuModel::Timing,
                boot_cpu: FastCpu::Atomic,
                warming: DEFAULT_WARMING,
                system,
            }),
            qemu: None,
        }
    }

    fn artifacts() -> Artifacts {
        Artifacts {
            kernel_key: "k".into(),
            image_key: "i".into(),
            kernel_cmdline: "console=ttyS0".into(),
            plan_blake3: "p".into(),
            gem5_blake3: Some("g".into()),
            gem5_config_blake3: Some("c".into()),
        }
    }

    #[test]
    fn the_key_is_the_resolved_spec_not_its_spelling() {
        let systems = Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/systems");
        let file = SystemSpec::resolve(&systems, "default", &[]).unwrap();
        let respelled = SystemSpec::resolve(
            &systems,
            "default",
            &["llc_size=131072B".into(), "clock=2500MHz".into()],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let commented = dir.path().join("commented.toml");
        std::fs::write(
            &commented,
            format!(
                "# my copy\n{}",
                std::fs::read_to_string(systems.join("default.toml")).unwrap()
            ),
        )
        .unwrap();
        let from_copy = SystemSpec::resolve(&systems, commented.to_str().unwrap(), &[]).unwrap();
        let key_with = |system: SystemSpec| {
            let mut spec = spec();
            spec.gem5.as_mut().unwrap().system = system;
            RunRecord::key(&spec, &artifacts()).hex()
        };
        let base = key_with(file.clone());
        assert_eq!(base, key_with(respelled));
        assert_eq!(base, key_with(from_copy));
        let bigger = SystemSpec::resolve(&systems, "default", &["llc_size=256kB".into()]).unwrap();
        assert_ne!(base, key_with(bigger));
        let mut more = spec();
        more.invocations = 4;
        assert_ne!(base, RunRecord::key(&more, &artifacts()).hex());
    }

    #[test]
    fn the_record_round_trips_and_differences_are_named() {
        let spec = spec();
        let record = RunRecord {
            run_key: RunRecord::key(&spec, &artifacts()).hex(),
            spec: spec.clone(),
            artifacts: artifacts(),
            provenance: Provenance {
                platform_why: "chosen".into(),
                accelerator: "boot on gem5 atomic CPU".into(),
                kernel: "/k/vmlinux".into(),
                kernel_version: "6.1".into(),
                image: "/i/disk.img".into(),
                system_file: Some("/s/default.toml".into()),
                gem5: Some("/g/gem5.opt".into()),
                boot_checkpoint: None,
                checkpoint: None,
                gem5_timeline: Vec::new(),
            },
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.toml"), record.to_toml().unwrap()).unwrap();
        assert_eq!(RunRecord::load(dir.path()).unwrap(), record);
        assert_eq!(RunSpec::load(dir.path()).unwrap(), spec);
        let text = record.to_toml().unwrap();
        assert!(text.contains("llc_size = \"128kB\""), "{text}");

        let mut other = spec.clone();
        other.invocations = 4;
        other.load = LoadPattern::Streams { parallel: 2 };
        assert_eq!(
            differences(&spec, &other),
            [
                "invocations: 2 -> 4",
                "load.parallel: (none) -> 2",
                "load.pattern: closed -> streams"
            ]
        );
        std::fs::write(dir.path().join("run.toml"), "workload = 'x'\n").unwrap();
        let err = format!("{:#}", RunRecord::load(dir.path()).unwrap_err());
        assert!(
            err.contains("run.toml: not a run record") && err.contains("--force"),
            "{err}"
        );
    }
}

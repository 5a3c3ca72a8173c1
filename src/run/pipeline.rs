//! The `simctl run` pipeline: resolve the inputs, build or reuse the artifacts (kernel, image,
//! checkpoint), run on the platform, collect results, write status and report.
//!
//! A run's id is the hash of everything that shapes its results, so an identical request finds
//! its finished run directory and reuses it (`--force` runs again).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::cmdline::{KernelCmdline, M5Mode, PlatformKind};
use super::console::ConsoleState;
use super::gem5::{FastCpu, Gem5Invocation, Phase};
use super::qemu::{Accel, QemuMachine};
use super::rundir::{RunDir, RunState, StatusTracker};
use super::watch::{PhaseLimits, follow, progress_bar};
use super::{RunArgs, plan::FUNCTION_CPU};
use crate::cache::{CacheKey, hash_file, hash_tree};
use crate::fsutil::write_atomic;
use crate::image::{self, ImageArtifact};
use crate::kernel::{self, KernelArtifact, KernelRequest};
use crate::process::find_program;
use crate::project::Project;
use crate::workloads::Workload;

const RUN_RECIPE: u32 = 1;
const CHECKPOINT_RECIPE: u32 = 1;
/// Loops per jiffy for the gem5 guest: skips the delay-loop calibration (simulated seconds).
const GEM5_LPJ: u64 = 7_999_923;

/// Every resolved input of a run, written to run.toml.
#[derive(Debug, Serialize)]
struct RunRecord {
    workload: String,
    platform: String,
    platform_why: String,
    accelerator: String,
    cpu: String,
    system: Option<String>,
    overrides: Vec<String>,
    invocations: u64,
    warmup: u64,
    pattern: String,
    kernel: String,
    kernel_version: String,
    kernel_key: String,
    image: String,
    image_key: String,
    gem5: Option<String>,
    gem5_blake3: Option<String>,
    gem5_config_blake3: Option<String>,
    checkpoint: Option<String>,
    kernel_cmdline: String,
    run_key: String,
}

/// The platform to use and why (said to the user and recorded).
fn choose_platform(args: &RunArgs, gem5: &Option<PathBuf>) -> Result<(PlatformKind, String)> {
    match (args.platform, gem5) {
        (Some(PlatformKind::Gem5), None) => bail!(
            "--platform gem5 needs a gem5 binary; hint: build gem5 (scons build/X86/gem5.opt) and set \
             SIMCTL_GEM5 or `gem5 = ...` in simctl.toml"
        ),
        (Some(platform), _) => Ok((platform, "chosen with --platform".into())),
        (None, Some(path)) => Ok((
            PlatformKind::Gem5,
            format!("gem5 is configured ({})", path.display()),
        )),
        (None, None) => Ok((
            PlatformKind::Qemu,
            "no gem5 binary configured (SIMCTL_GEM5 / simctl.toml)".into(),
        )),
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: RunDir,
    pub reused: bool,
}

pub fn run(args: &RunArgs) -> Result<RunOutcome> {
    let project = Project::locate()?;
    let gem5 = project.gem5()?;
    let (platform, why) = choose_platform(args, &gem5)?;
    eprintln!("platform: {platform} ({why})");
    let workload = Workload::load(&project, &args.workload)?;

    let mut kernel_request = KernelRequest::default_gem5(&project);
    if let Some(fragment) = &args.kernel_config {
        kernel_request.fragments = vec![fragment.clone()];
    }
    if let Some(jobs) = args.jobs {
        kernel_request.jobs = jobs;
    }
    let kernel = kernel::build_kernel(&project, &kernel_request)?;
    eprintln!("kernel: {}", kernel.vmlinux.display());
    let image_request = image::request_with(
        &project,
        args.image_spec.clone(),
        std::slice::from_ref(&workload),
    )?;
    let image = image::build_image(&project, &image_request)?;
    eprintln!("image: {}", image.path.display());
    let spec = image::Spec::load(&image_request.spec_path)?;

    let plan = super::plan::make_plan(&workload, args, platform == PlatformKind::Gem5);
    let plan_text = plan.to_toml();
    let (m5, lpj) = match platform {
        PlatformKind::Gem5 => (M5Mode::Inst, Some(GEM5_LPJ)),
        PlatformKind::Qemu => (M5Mode::Off, None),
    };
    let cmdline = KernelCmdline {
        platform,
        m5,
        isolated_cpu: Some(FUNCTION_CPU as u32),
        lpj,
        fast_init: spec.init == image::Init::Simctl,
        extra: Vec::new(),
    }
    .render();

    let mut key = CacheKey::new("run", RUN_RECIPE)
        .key("kernel", &kernel.key)
        .key("image", &image.key)
        .text("plan", &plan_text)
        .text("platform", &platform.to_string())
        .text("cmdline", &cmdline);
    let gem5_setup = match (&gem5, platform) {
        (Some(binary), PlatformKind::Gem5) => Some(Gem5Setup::resolve(&project, binary, args)?),
        _ => None,
    };
    if let Some(setup) = &gem5_setup {
        key = key.key("gem5", &setup.key).text("cpu", args.cpu.name());
    }
    let dir_path = args.out.clone().unwrap_or_else(|| {
        project.runs_dir().join(format!(
            "{}-{platform}-{}",
            workload.name(),
            &key.hex()[..12]
        ))
    });
    let dir = RunDir::create(&dir_path)?;
    if !args.force
        && let Some(status) = dir.status()?
        && status.state == RunState::Ok
    {
        eprintln!("reusing the finished identical run (use --force to run again)");
        println!("{}", dir.path().display());
        return Ok(RunOutcome { dir, reused: true });
    }
    let mut tracker = StatusTracker::start(&dir)?;
    write_atomic(&dir.plan(), plan_text.as_bytes())?;
    let accel = match platform {
        PlatformKind::Qemu => Accel::choose(),
        PlatformKind::Gem5 => Accel::Tcg { why: String::new() },
    };
    let mut record = RunRecord {
        workload: workload.name().to_string(),
        platform: platform.to_string(),
        platform_why: why,
        accelerator: String::new(),
        cpu: args.cpu.name().to_string(),
        system: gem5_setup.as_ref().map(|s| s.system.display().to_string()),
        overrides: args.overrides.clone(),
        invocations: args.invocations,
        warmup: args.warmup,
        pattern: format!("{:?}", args.pattern).to_lowercase(),
        kernel: kernel.vmlinux.display().to_string(),
        kernel_version: kernel.version.clone(),
        kernel_key: kernel.key.hex(),
        image: image.path.display().to_string(),
        image_key: image.key.hex(),
        gem5: gem5_setup.as_ref().map(|s| s.binary.display().to_string()),
        gem5_blake3: gem5_setup.as_ref().map(|s| s.binary_hash.clone()),
        gem5_config_blake3: gem5_setup.as_ref().map(|s| s.config_hash.clone()),
        checkpoint: None,
        kernel_cmdline: cmdline.clone(),
        run_key: key.hex(),
    };
    let outcome = match (platform, &gem5_setup) {
        (PlatformKind::Qemu, _) => {
            record.accelerator = match &accel {
                Accel::Kvm => "kvm".into(),
                Accel::Tcg { why } => format!("tcg ({why})"),
            };
            eprintln!("accelerator: {}", record.accelerator);
            write_run_record(&dir, &record)?;
            run_qemu(
                &dir,
                &kernel,
                &image,
                &cmdline,
                &plan_text,
                accel,
                args,
                &mut tracker,
            )
        }
        (PlatformKind::Gem5, Some(setup)) => {
            record.accelerator = setup.fast_cpu_why.clone();
            write_run_record(&dir, &record)?;
            run_gem5(
                &project,
                &dir,
                setup,
                &kernel,
                &image,
                &cmdline,
                &plan_text,
                args,
                &mut tracker,
                &mut record,
            )
        }
        (PlatformKind::Gem5, None) => Err(anyhow::anyhow!("gem5 platform without a gem5 binary")),
    };
    let report = super::report::write_run_report(&dir);
    let outcome = outcome.and(report);
    tracker.finish(&outcome)?;
    outcome.with_context(|| {
        format!(
            "run failed; logs and partial results are kept in {}",
            dir.path().display()
        )
    })?;
    println!("{}", dir.path().display());
    Ok(RunOutcome { dir, reused: false })
}

/// Says how long the boot took (guest clock and host wall) and records it as a phase.
fn report_boot(
    tracker: &mut StatusTracker,
    console: &ConsoleState,
    wall: Option<Duration>,
    clock: &str,
) -> Result<()> {
    if let (Some(uptime), Some(wall)) = (console.booted_uptime_s, wall) {
        eprintln!(
            "boot: guest agent up after {uptime:.2} {clock} seconds, {:.1} s host wall",
            wall.as_secs_f64()
        );
        tracker.phase_done("boot", wall)?;
    }
    Ok(())
}

fn write_run_record(dir: &RunDir, record: &RunRecord) -> Result<()> {
    let text = toml::to_string_pretty(record).context("cannot serialise run.toml")?;
    write_atomic(&dir.run_toml(), text.as_bytes())
}

fn default_limits(args: &RunArgs, deadline: Duration, watchdog: Duration) -> PhaseLimits {
    PhaseLimits {
        deadline: args.timeout.map(Into::into).unwrap_or(deadline),
        watchdog: args.watchdog.map(Into::into).unwrap_or(watchdog),
    }
}

/// The guest's own verdict plus the checks every run needs.
fn check_guest(console: &ConsoleState, results: &Path, invocations: u64) -> Result<()> {
    if let Some(panic) = &console.panic {
        bail!("guest kernel panic: {panic}");
    }
    match console.done {
        Some(true) => {}
        Some(false) => bail!("the guest reported failure: {}", console.errors.join("; ")),
        None => bail!(
            "the guest never finished (no SIMCTL-DONE on the console); phase: {}",
            console.phase()
        ),
    }
    if let Some((name, cpus)) = console.affinities.first()
        && cpus != &FUNCTION_CPU.to_string()
    {
        bail!("the function {name} was allowed on CPUs {cpus}, not only on core {FUNCTION_CPU}");
    }
    let csv = results.join("results.csv");
    let text = std::fs::read_to_string(&csv)
        .with_context(|| format!("the guest returned no {}", csv.display()))?;
    let records = simctl_guest::records::from_csv(&text).map_err(anyhow::Error::msg)?;
    let measured = records
        .iter()
        .filter(|r| r.phase == simctl_guest::records::Phase::Measured)
        .count() as u64;
    if measured != invocations {
        bail!("results.csv has {measured} measured invocations, expected {invocations}");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_qemu(
    dir: &RunDir,
    kernel: &KernelArtifact,
    image: &ImageArtifact,
    cmdline: &str,
    plan: &str,
    accel: Accel,
    args: &RunArgs,
    tracker: &mut StatusTracker,
) -> Result<()> {
    let qemu = find_program("qemu-system-x86_64")
        .context("qemu-system-x86_64 not found; hint: apt-get install qemu-system-x86")?;
    let transfer = dir.path().join("transfer.img");
    simctl_guest::transfer::create_with_input(&transfer, plan.as_bytes())
        .with_context(|| format!("cannot write {}", transfer.display()))?;
    let console_log = dir.console_log();
    let _ = std::fs::remove_file(&console_log);
    let machine = QemuMachine {
        qemu,
        kernel: kernel.vmlinux.clone(),
        image: image.path.clone(),
        transfer_disk: transfer.clone(),
        console_log: console_log.clone(),
        cmdline: cmdline.to_string(),
        cpus: 2,
        memory_mib: 2048,
        accel,
    };
    let started = Instant::now();
    let mut child = machine
        .command()
        .spawn_logged(&dir.path().join("qemu.log"))?;
    let bar = progress_bar("qemu");
    let limits = default_limits(args, Duration::from_secs(1800), Duration::from_secs(180));
    let outcome = follow(
        &mut child,
        &console_log,
        &limits,
        ConsoleState::default(),
        &bar,
    )?;
    bar.finish_and_clear();
    report_boot(tracker, &outcome.console, outcome.boot_wall, "guest")?;
    tracker.phase_done("qemu", started.elapsed())?;
    // Results first: even a failed run keeps whatever the guest handed back.
    if let Ok(Some(tar)) = simctl_guest::transfer::read_output(&transfer) {
        simctl_guest::transfer::unpack(&tar, &dir.results_dir())
            .context("cannot unpack the guest's results")?;
    }
    outcome.ended.check()?;
    check_guest(&outcome.console, &dir.results_dir(), args.invocations)
}

/// What every boot of a run shares.
struct Boot<'a> {
    kernel: &'a KernelArtifact,
    image: &'a ImageArtifact,
    cmdline: &'a str,
}

/// The gem5 side of a run: binary, config, system, and the checkpoint's key.
#[derive(Debug)]
struct Gem5Setup {
    binary: PathBuf,
    binary_hash: String,
    config_script: PathBuf,
    config_hash: String,
    system: PathBuf,
    fast_cpu: FastCpu,
    fast_cpu_why: String,
    key: CacheKey,
}

impl Gem5Setup {
    fn resolve(project: &Project, binary: &Path, args: &RunArgs) -> Result<Gem5Setup> {
        let configs = project.gem5_configs_dir();
        let config_script = configs.join("simctl_fs.py");
        let system = if args.system.ends_with(".toml") {
            PathBuf::from(&args.system)
        } else {
            configs
                .join("systems")
                .join(format!("{}.toml", args.system))
        };
        if !system.is_file() {
            bail!(
                "gem5 system {} not found; hint: pick a file from {}",
                system.display(),
                configs.join("systems").display()
            );
        }
        let binary_hash = hash_file(binary)?;
        let config_hash = hash_tree(&configs)?;
        let (fast_cpu, fast_cpu_why) = match super::kvm::probe() {
            super::kvm::KvmStatus::Usable => (FastCpu::Kvm, "boot on gem5 KVM CPU".to_string()),
            status => (
                FastCpu::Atomic,
                format!("boot on gem5 atomic CPU ({})", status.describe()),
            ),
        };
        let key = CacheKey::new("gem5", 1)
            .text("gem5", &binary_hash)
            .text("config", &config_hash)
            .file("system", &system)?
            .text("overrides", &args.overrides.join(" "));
        Ok(Gem5Setup {
            binary: binary.to_path_buf(),
            binary_hash,
            config_script,
            config_hash,
            system,
            fast_cpu,
            fast_cpu_why,
            key,
        })
    }

    /// The gem5 command of one phase; `boot` carries kernel, image and command line.
    fn invocation(
        &self,
        boot: &Boot,
        outdir: PathBuf,
        readfile: &Path,
        args: &RunArgs,
        phase: Phase,
    ) -> Gem5Invocation {
        Gem5Invocation {
            gem5: self.binary.clone(),
            config_script: self.config_script.clone(),
            outdir,
            kernel: boot.kernel.vmlinux.clone(),
            image: boot.image.path.clone(),
            readfile: readfile.to_path_buf(),
            system: self.system.clone(),
            overrides: args.overrides.clone(),
            kernel_args: boot.cmdline.to_string(),
            phase,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_gem5(
    project: &Project,
    dir: &RunDir,
    setup: &Gem5Setup,
    kernel: &KernelArtifact,
    image: &ImageArtifact,
    cmdline: &str,
    plan: &str,
    args: &RunArgs,
    tracker: &mut StatusTracker,
    record: &mut RunRecord,
) -> Result<()> {
    let boot = Boot {
        kernel,
        image,
        cmdline,
    };
    let checkpoint_key = CacheKey::new("checkpoint", CHECKPOINT_RECIPE)
        .key("gem5", &setup.key)
        .key("kernel", &kernel.key)
        .key("image", &image.key)
        .text("plan", plan)
        .text("cmdline", cmdline)
        .text("fast_cpu", setup.fast_cpu.name());
    let started = Instant::now();
    let mut console = ConsoleState::default();
    let mut boot_wall = None;
    let checkpoint = project
        .store()
        .get_or_build("checkpoints", &checkpoint_key, |staging| {
            let readfile = staging.join("plan.toml");
            std::fs::write(&readfile, plan)?;
            let outdir = staging.join("m5out");
            let phase = Phase::Setup {
                fast_cpu: setup.fast_cpu,
                checkpoint_dir: staging.join("cpt"),
            };
            let mut child = setup
                .invocation(&boot, outdir.clone(), &readfile, args, phase)
                .command()
                .spawn_logged(&outdir.join("gem5.log"))?;
            let bar = progress_bar("gem5 boot + warm-up");
            let limits = default_limits(
                args,
                Duration::from_secs(6 * 3600),
                Duration::from_secs(1800),
            );
            let outcome = follow(
                &mut child,
                &super::gem5::console_file(&outdir),
                &limits,
                ConsoleState::default(),
                &bar,
            )?;
            bar.finish_and_clear();
            console = outcome.console;
            boot_wall = outcome.boot_wall;
            outcome.ended.check()?;
            if !staging.join("cpt").is_dir() {
                bail!(
                    "gem5 ended without saving a checkpoint; see {}",
                    outdir.join("gem5.log").display()
                );
            }
            Ok(())
        });
    let checkpoint = match checkpoint {
        Ok(checkpoint) => checkpoint,
        Err(err) => {
            let failed = project
                .store()
                .root()
                .join("checkpoints")
                .join(format!("{}.failed", checkpoint_key.hex()));
            let _ = std::os::unix::fs::symlink(&failed, dir.path().join("setup"));
            return Err(err);
        }
    };
    let _ = std::fs::remove_file(dir.path().join("setup"));
    let _ = std::os::unix::fs::symlink(&checkpoint.path, dir.path().join("setup"));
    if checkpoint.reused {
        eprintln!("checkpoint: reusing {}", checkpoint.path.display());
    } else {
        report_boot(tracker, &console, boot_wall, "simulated")?;
        tracker.phase_done("gem5-setup", started.elapsed())?;
    }
    record.checkpoint = Some(checkpoint.path.display().to_string());
    write_run_record(dir, record)?;

    let started = Instant::now();
    let outdir = dir.m5out();
    let phase = Phase::Measure {
        restore: checkpoint.path.join("cpt"),
        cpu: args.cpu,
        invocations: args.invocations,
    };
    let readfile = dir.plan();
    let mut child = setup
        .invocation(&boot, outdir.clone(), &readfile, args, phase)
        .command()
        .spawn_logged(&outdir.join("gem5.log"))?;
    let bar = progress_bar(&format!("gem5 {}", args.cpu.name()));
    let limits = default_limits(
        args,
        Duration::from_secs(12 * 3600),
        Duration::from_secs(3600),
    );
    let mut measured_console = ConsoleState {
        booted: true,
        function_up: true,
        warmup_done: true,
        ..Default::default()
    };
    measured_console.affinities = console.affinities.clone();
    let outcome = follow(
        &mut child,
        &super::gem5::console_file(&outdir),
        &limits,
        measured_console,
        &bar,
    )?;
    bar.finish_and_clear();
    tracker.phase_done(
        &format!("gem5-measure-{}", args.cpu.name()),
        started.elapsed(),
    )?;
    std::fs::copy(super::gem5::console_file(&outdir), dir.console_log()).ok();
    std::fs::create_dir_all(dir.results_dir())?;
    for name in ["results.csv", "results.json"] {
        let _ = std::fs::copy(outdir.join(name), dir.results_dir().join(name));
    }
    outcome.ended.check()?;
    check_guest(&outcome.console, &dir.results_dir(), args.invocations)
}

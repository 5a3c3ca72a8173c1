//! The `simctl run` pipeline, in phases that each fit in a reader's head:
//!
//! 1. **resolve** ([`spec::resolve`]): the command line becomes a checked [`RunSpec`]; nothing
//!    is built yet, so a mistake in the input costs a second, not a kernel build. An explicit
//!    `--out` is claimed (locked) and compared with the run it holds here too.
//! 2. **artifacts** ([`artifacts`]): kernel, image, plan, kernel command line and gem5
//!    identities; the run record and its key.
//! 3. **run directory** ([`open_run_dir`]): reuse the finished identical run, refuse a
//!    different one (`--force` replaces it), or start a new attempt.
//! 4. **platform**: QEMU boots and measures in one process ([`run_qemu`]); gem5 boots into a
//!    boot checkpoint, warms the function up into a warm checkpoint (both cached artifacts) and
//!    measures from it ([`super::gem5run`]).
//! 5. **collect** ([`check_guest`], the report, status.json).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::cmdline::{KernelCmdline, m5_mode};
use super::console::ConsoleState;
use super::gem5run::{self, Gem5Setup, SYSTEM_FILE};
use super::kvm::KvmStatus;
use super::qemu::{Accel, QemuMachine};
use super::rundir::{RunDir, RunLock, RunState, StatusTracker};
use super::spec::{self, Artifacts, Provenance, Resolved, RunRecord, RunSpec, differences};
use super::watch::{PhaseLimits, follow, progress_bar};
use super::{RunArgs, plan::FUNCTION_CPU};
use crate::cache::hash_file;
use crate::fsutil::write_atomic;
use crate::image::{self, ImageArtifact};
use crate::kernel::{self, KernelArtifact, KernelRequest};
use crate::process::find_program;
use crate::project::Project;

/// Loops per jiffy for the gem5 guest: skips the delay-loop calibration (simulated seconds).
const GEM5_LPJ: u64 = 7_999_923;

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: RunDir,
    pub reused: bool,
}

pub fn run(args: &RunArgs) -> Result<RunOutcome> {
    let project = Project::locate()?;
    // Phase 1: resolve and check everything, claim an explicit --out; no build yet.
    let kvm = super::kvm::probe();
    let resolved = spec::resolve(&project, args, &kvm)?;
    eprintln!(
        "platform: {} ({})",
        resolved.spec.platform, resolved.platform_why
    );
    let claimed = match &args.out {
        Some(out) => Some(claim_out(out, &resolved.spec, args.force)?),
        None => None,
    };
    // Phase 2: artifacts and the run record.
    let built = artifacts(&project, args, &resolved, &kvm)?;
    // Phase 3: the run directory.
    let (dir, _lock) = match claimed {
        Some(claimed) => claimed,
        None => RunDir::claim(project.runs_dir().join(format!(
            "{}-{}-{}",
            resolved.spec.workload,
            resolved.spec.platform,
            &built.record.run_key[..12]
        )))?,
    };
    if open_run_dir(&dir, &built.record, args.force)? == Attempt::Reuse {
        eprintln!("reusing the finished identical run (use --force to run again)");
        println!("{}", dir.path().display());
        return Ok(RunOutcome { dir, reused: true });
    }
    // Phases 4 and 5: run on the platform, collect, report; status.json says how it ended.
    let mut tracker = StatusTracker::start(&dir)?;
    let outcome = execute(&project, &dir, args, built, &mut tracker);
    let outcome = outcome.and_then(|_| super::report::write_run_report(&dir));
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

/// Claims `--out` before any build: refuses a file, a directory another simctl works in, and a
/// run of other inputs (unless `--force`).
fn claim_out(out: &Path, spec: &RunSpec, force: bool) -> Result<(RunDir, RunLock)> {
    let (dir, lock) = RunDir::claim(out)?;
    if force || !dir.run_toml().exists() {
        return Ok((dir, lock));
    }
    let old = RunRecord::load(dir.path())?;
    let changed = differences(&old.spec, spec);
    if !changed.is_empty() {
        bail!(refusal(&dir, &changed));
    }
    Ok((dir, lock))
}

fn refusal(dir: &RunDir, changed: &[String]) -> String {
    format!(
        "run directory {} holds a run of other inputs ({}); hint: give another --out, or add \
         --force to replace that run",
        dir.path().display(),
        changed.join(", ")
    )
}

/// What to do in a run directory.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Reuse,
    New,
}

/// Reuses the finished run with the same key; refuses a run with another key unless `force`;
/// otherwise clears the directory for a new attempt and writes the record.
fn open_run_dir(dir: &RunDir, record: &RunRecord, force: bool) -> Result<Attempt> {
    if dir.run_toml().exists() {
        let old = RunRecord::load(dir.path());
        match old {
            Ok(old) if old.run_key == record.run_key => {
                let finished = dir.status()?.is_some_and(|s| s.state == RunState::Ok);
                if finished && !force {
                    return Ok(Attempt::Reuse);
                }
            }
            Ok(old) => {
                let mut changed = differences(&old.spec, &record.spec);
                changed.extend(differences(&old.artifacts, &record.artifacts));
                if !force {
                    bail!(refusal(dir, &changed));
                }
                eprintln!(
                    "replacing the run in {} (--force): {}",
                    dir.path().display(),
                    changed.join(", ")
                );
            }
            Err(err) if !force => return Err(err),
            Err(_) => {}
        }
    }
    dir.clear_outputs()?;
    write_run_record(dir, record)?;
    Ok(Attempt::New)
}

/// The artifacts of a run and its record.
struct Built {
    spec: RunSpec,
    kernel: KernelArtifact,
    image: ImageArtifact,
    plan: String,
    cmdline: String,
    gem5: Option<Gem5Setup>,
    record: RunRecord,
}

/// Phase 2: builds (or finds) kernel and image, and makes the run record.
fn artifacts(
    project: &Project,
    args: &RunArgs,
    resolved: &Resolved,
    kvm: &KvmStatus,
) -> Result<Built> {
    let spec = &resolved.spec;
    let (kernel, image, fast_init) = build_kernel_and_image(project, args, resolved)?;
    let mut plan = super::plan::make_plan(&resolved.workload, spec)?;
    let timeout_s = plan.steps.last().map_or(600, |step| step.timeout_s);
    super::conformance::prepend_steps(&mut plan, &resolved.conformance, timeout_s);
    let plan = plan.to_toml();
    let cmdline = kernel_cmdline(spec, fast_init);
    let mut artifacts = Artifacts {
        kernel_key: kernel.key.hex(),
        image_key: image.key.hex(),
        kernel_cmdline: cmdline.clone(),
        plan_blake3: blake3::hash(plan.as_bytes()).to_hex().to_string(),
        gem5_blake3: None,
        gem5_config_blake3: None,
    };
    let gem5 = match (&resolved.gem5, &spec.gem5) {
        (Some(binary), Some(gem5_spec)) => {
            let config_script = project.gem5_configs_dir().join("simctl_fs.py");
            // Once per binary file (stat-keyed record), not a 1.3 s read of gem5.opt per run.
            let binary_hash = crate::gem5build::content_hash(&project.cache_dir(), binary)?;
            let config_hash = hash_file(&config_script)?;
            let boot_key = super::checkpoint::BootCheckpointInputs {
                gem5: &binary_hash,
                config_script: &config_script,
                system: &gem5_spec.system,
                kernel: &kernel.key,
                image: &image.key,
                cmdline: &cmdline,
                fast_cpu: gem5_spec.boot_cpu.name(),
            }
            .key()?;
            let warm_key = super::checkpoint::warm_key(&boot_key, &plan);
            artifacts.gem5_blake3 = Some(binary_hash);
            artifacts.gem5_config_blake3 = Some(config_hash);
            Some(Gem5Setup {
                binary: binary.clone(),
                config_script,
                system: gem5_spec.system.clone(),
                boot_cpu: gem5_spec.boot_cpu,
                cpu: gem5_spec.cpu,
                boot_key,
                warm_key,
            })
        }
        _ => None,
    };
    let record = RunRecord {
        run_key: RunRecord::key(spec, &artifacts).hex(),
        spec: spec.clone(),
        artifacts,
        provenance: Provenance {
            platform_why: resolved.platform_why.clone(),
            accelerator: accelerator(spec, kvm),
            kernel: kernel.vmlinux.clone(),
            kernel_version: kernel.version.clone(),
            image: image.path.clone(),
            system_file: Some(resolved.system_file.clone()),
            gem5: resolved.gem5.clone(),
            boot_checkpoint: None,
            checkpoint: None,
            gem5_timeline: Vec::new(),
        },
    };
    eprintln!("accelerator: {}", record.provenance.accelerator);
    Ok(Built {
        spec: spec.clone(),
        kernel,
        image,
        plan,
        cmdline,
        gem5,
        record,
    })
}

/// The kernel and the image with the workload; also whether the image boots simctl-init as
/// PID 1 (the kernel command line says so).
fn build_kernel_and_image(
    project: &Project,
    args: &RunArgs,
    resolved: &Resolved,
) -> Result<(KernelArtifact, ImageArtifact, bool)> {
    let mut kernel_request = KernelRequest::default_gem5(project);
    if let Some(fragment) = &args.kernel_config {
        kernel_request.fragments = vec![fragment.clone()];
    }
    if let Some(jobs) = args.jobs {
        kernel_request.jobs = jobs;
    }
    let kernel = kernel::build_kernel(project, &kernel_request)?;
    eprintln!("kernel: {}", kernel.vmlinux.display());
    let mut image_request = image::request_with(
        project,
        args.image_spec.clone(),
        std::slice::from_ref(&resolved.workload),
    )?;
    // The functions --conformance replays run as processes: their install trees only, no
    // container root file systems.
    for replayed in &resolved.conformance {
        let workload = &replayed.workload;
        image_request.overlays.push(image::Overlay {
            source: crate::workloads::build(project, workload)?,
            target: "/".into(),
        });
        (image_request.extra_packages).extend(workload.manifest.guest_packages.iter().cloned());
    }
    let image = image::build_image(project, &image_request)?;
    eprintln!("image: {}", image.path.display());
    let fast_init = image::Spec::load(&image_request.spec_path)?.init == image::Init::Simctl;
    Ok((kernel, image, fast_init))
}

fn kernel_cmdline(spec: &RunSpec, fast_init: bool) -> String {
    KernelCmdline {
        platform: spec.platform,
        m5: m5_mode(
            spec.platform,
            spec.gem5.as_ref().map(|gem5| gem5.boot_cpu),
            spec.gem5.as_ref().map(|gem5| gem5.cpu),
        ),
        isolated_cpu: Some(FUNCTION_CPU as u32),
        lpj: spec.is_gem5().then_some(GEM5_LPJ),
        fast_init,
        extra: spec.kernel_args.clone(),
    }
    .render()
}

/// What runs the guest, said to the user and recorded.
fn accelerator(spec: &RunSpec, kvm: &KvmStatus) -> String {
    match (&spec.qemu, &spec.gem5) {
        (Some(qemu), _) if qemu.accel == Accel::Kvm => "kvm".into(),
        (Some(_), _) => format!("tcg ({})", kvm.describe()),
        (None, Some(gem5)) if kvm.is_usable() => {
            format!("boot on gem5 {} CPU", gem5.boot_cpu.name())
        }
        (None, Some(gem5)) => format!(
            "boot on gem5 {} CPU ({})",
            gem5.boot_cpu.name(),
            kvm.describe()
        ),
        (None, None) => String::new(),
    }
}

fn write_run_record(dir: &RunDir, record: &RunRecord) -> Result<()> {
    write_atomic(&dir.run_toml(), record.to_toml()?.as_bytes())
}

/// Phase 4 and the checks of phase 5 on the spec's platform; returns the spec for the report.
fn execute(
    project: &Project,
    dir: &RunDir,
    args: &RunArgs,
    mut built: Built,
    tracker: &mut StatusTracker,
) -> Result<RunSpec> {
    write_atomic(&dir.plan(), built.plan.as_bytes())?;
    let boot = Boot {
        kernel: &built.kernel,
        image: &built.image,
        cmdline: &built.cmdline,
    };
    match (&built.spec.qemu, &built.gem5) {
        (Some(qemu), _) => run_qemu(
            dir,
            &boot,
            &built.plan,
            qemu.accel,
            &built.spec,
            args,
            tracker,
        )?,
        (None, Some(setup)) => {
            write_atomic(
                &dir.path().join(SYSTEM_FILE),
                setup.system.to_toml().as_bytes(),
            )?;
            let checkpoints =
                gem5run::checkpoints(project, dir, setup, &boot, &built.plan, args, tracker)?;
            built.record.provenance.boot_checkpoint = Some(checkpoints.boot.clone());
            built.record.provenance.checkpoint = Some(checkpoints.warm.clone());
            built.record.provenance.gem5_timeline = checkpoints.timelines.clone();
            write_run_record(dir, &built.record)?;
            let (timelines, measured) =
                gem5run::measure(dir, setup, &boot, &checkpoints, &built.spec, args, tracker);
            // The timeline goes into run.toml even when the measured phase failed.
            built.record.provenance.gem5_timeline = timelines;
            write_run_record(dir, &built.record)?;
            measured?;
        }
        (None, None) => bail!("a gem5 run without a gem5 binary"),
    }
    Ok(built.spec)
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

pub(super) fn default_limits(
    args: &RunArgs,
    deadline: Duration,
    watchdog: Duration,
) -> PhaseLimits {
    PhaseLimits {
        deadline: args.timeout.map(Into::into).unwrap_or(deadline),
        watchdog: args.watchdog.map(Into::into).unwrap_or(watchdog),
    }
}

/// Phase 5: the guest's own verdict plus the checks every run needs.
/// `spec.bench`: a --bench program writes its own files, so results.csv is not checked.
pub(super) fn check_guest(console: &ConsoleState, results: &Path, spec: &RunSpec) -> Result<()> {
    let invocations = spec.bench.is_none().then_some(spec.invocations);
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
    // The function's own marker: in a container, runc (on the client core) reports too.
    if let Some((name, cpus)) = console
        .affinities
        .iter()
        .find(|(name, _)| name == &spec.workload)
        && cpus != &FUNCTION_CPU.to_string()
    {
        bail!("the function {name} was allowed on CPUs {cpus}, not only on core {FUNCTION_CPU}");
    }
    let Some(invocations) = invocations else {
        return Ok(());
    };
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

/// What every boot of a run shares.
pub(super) struct Boot<'a> {
    pub kernel: &'a KernelArtifact,
    pub image: &'a ImageArtifact,
    pub cmdline: &'a str,
}

/// Phase 4 on QEMU: one process boots, warms up and measures; the results come back on the
/// transfer disk.
fn run_qemu(
    dir: &RunDir,
    boot: &Boot,
    plan: &str,
    accel: Accel,
    spec: &RunSpec,
    args: &RunArgs,
    tracker: &mut StatusTracker,
) -> Result<()> {
    let qemu = find_program("qemu-system-x86_64")
        .context("qemu-system-x86_64 not found; hint: apt-get install qemu-system-x86")?;
    let transfer = dir.path().join("transfer.img");
    simctl_guest::transfer::create_with_input(&transfer, plan.as_bytes())
        .with_context(|| format!("cannot write {}", transfer.display()))?;
    let machine = QemuMachine {
        qemu,
        kernel: boot.kernel.vmlinux.clone(),
        image: boot.image.path.clone(),
        transfer_disk: transfer.clone(),
        console_log: dir.console_log(),
        cmdline: boot.cmdline.to_string(),
        cpus: spec.machine.num_cores,
        memory_mib: spec.machine.memory_size.mib(),
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
        &dir.console_log(),
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
    check_guest(&outcome.console, &dir.results_dir(), spec)
}

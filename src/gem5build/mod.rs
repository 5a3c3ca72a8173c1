//! `simctl build-gem5`: builds `build/<ISA>/gem5.<variant>` with scons in the cache, outside
//! any repository, and records it so that `simctl run` finds it without `SIMCTL_GEM5`.
//!
//! * Work directory: `<cache>/gem5-work/<source identity>/` (see [`source`]): the exported
//!   source plus scons's `build/`. The same source always lands in the same directory, so a
//!   build stopped by Ctrl-C, kill -9 or a reboot resumes there (scons rebuilds only what is
//!   missing). One build per work directory at a time: a lock file, and a scons left running by
//!   a killed simctl is waited for, never doubled.
//! * scons runs with Debian's Python (`/usr/bin/scons`, `/usr/bin` first on PATH so gem5's
//!   python3-config is `/usr/bin/python3-config`), so gem5 links the system's libpython and
//!   runs without `LD_LIBRARY_PATH`, whatever pyenv or conda put on the user's PATH.
//! * Publication: only a binary that exists and prints its version and ISAs becomes a cache entry
//!   `<cache>/gem5/<key>/` (key: source identity, variant, ISA, scons options); the entry holds
//!   the binary (a hard link), gem5's `configs/` and `build.toml`, and becomes the recorded build.

pub mod binary;
pub mod source;
pub mod steps;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cache::{CacheKey, Store, hash_file};
use crate::process::{Command, Ended, LogTail, Watch};
use crate::project::Project;
pub use binary::{
    BuildInfo, Gem5Build, LibPython, build_info, content_hash, libpython, missing_libpython,
    missing_libpython_hint, recorded,
};
use source::{ResolvedSource, SourceArg};

const RECIPE_VERSION: u32 = 1;
/// The Python gem5 must embed: Debian's, whose libpython is on the loader's default path.
const SYSTEM_PYTHON_CONFIG: &str = "/usr/bin/python3-config";
/// Fixed scons options (part of the cache key). `--ignore-style`: the export has no .git for
/// gem5's style hooks.
const SCONS_OPTIONS: [&str; 1] = ["--ignore-style"];

/// gem5 build variants simctl supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// Optimised with assertions and debug flags (what gem5's docs use).
    Opt,
    /// Faster, without assertions or debug flags.
    Fast,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Opt => "opt",
            Variant::Fast => "fast",
        }
    }
}

/// Build gem5 in the cache and record it for `simctl run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  simctl build-gem5 --source ~/gem5 --rev v24.0.0.1
  simctl build-gem5 --source gem5-24.0.0.1.tar.gz --jobs 8
  simctl build-gem5            (clones https://github.com/gem5/gem5.git, tag v24.0.0.1)

The build takes hours on a small machine; Ctrl-C stops it and the same command resumes it.")]
pub struct BuildGem5Args {
    /// A gem5 git checkout or bare repository, a release tarball, or a git URL
    /// (default: the upstream repository).
    #[arg(long)]
    pub source: Option<String>,
    /// Tag, branch or commit to build (default: a checkout as it is, uncommitted changes
    /// included; v24.0.0.1 for a URL).
    #[arg(long)]
    pub rev: Option<String>,
    /// gem5 build variant.
    #[arg(long, value_enum, default_value_t = Variant::Opt)]
    pub variant: Variant,
    /// ISA build configuration (a file in gem5's build_opts/).
    #[arg(long, default_value = "X86")]
    pub isa: String,
    /// Parallel compile jobs (default: the number of CPUs; each needs about 1 GB of memory).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Gem5Request {
    pub source: SourceArg,
    pub source_text: String,
    pub rev: Option<String>,
    pub variant: Variant,
    pub isa: String,
    pub jobs: usize,
}

impl Gem5Request {
    pub fn from_args(args: BuildGem5Args) -> Result<Gem5Request> {
        let source_text = args
            .source
            .unwrap_or_else(|| source::DEFAULT_URL.to_string());
        if args.isa.is_empty()
            || !args
                .isa
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            bail!(
                "--isa {:?} is not a build configuration name; hint: X86 (or another file name in gem5's build_opts/)",
                args.isa
            );
        }
        let source = SourceArg::parse(&source_text)?;
        let source_text = match &source {
            SourceArg::Git(path) | SourceArg::Tarball(path) => path.display().to_string(),
            SourceArg::Url(url) => url.clone(),
        };
        Ok(Gem5Request {
            source,
            source_text,
            rev: args.rev,
            variant: args.variant,
            isa: args.isa,
            jobs: args.jobs.unwrap_or_else(default_jobs),
        })
    }

    /// The configuration a step count belongs to: gem5 version, ISA and variant.
    fn config(&self, version: &str) -> String {
        format!("{version} {} {}", self.isa, self.variant.name())
    }

    fn target(&self) -> String {
        format!("build/{}/gem5.{}", self.isa, self.variant.name())
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

/// The cache key of a build: what shapes the binary (not `--jobs`).
fn build_key(source: &ResolvedSource, request: &Gem5Request) -> CacheKey {
    CacheKey::new("gem5", RECIPE_VERSION)
        .text("source", &source.identity)
        .text("variant", request.variant.name())
        .text("isa", &request.isa)
        .text("scons", &SCONS_OPTIONS.join(" "))
        .text("python-config", SYSTEM_PYTHON_CONFIG)
}

/// Builds (or finds) gem5 and records it as the gem5 `simctl run` uses.
pub fn build_gem5(project: &Project, request: &Gem5Request) -> Result<Gem5Build> {
    let cache = project.cache_dir();
    let store = project.store();
    let source = source::resolve(&cache, &request.source, request.rev.as_deref())?;
    let key = build_key(&source, request);
    if let Some(entry) = store.lookup("gem5", &key) {
        let build = binary::read_build(&entry.join("build.toml"))?;
        binary::write_build(&binary::recorded_path(&cache), &build)?;
        eprintln!(
            "gem5 {} ({} {}) was built before from {}",
            build.version, build.isa, build.variant, build.identity
        );
        return Ok(build);
    }
    crate::process::install_signal_handlers();
    let work_root = cache.join("gem5-work");
    let work = work_root.join(&source.identity);
    std::fs::create_dir_all(&work_root)
        .with_context(|| format!("cannot create {}", work_root.display()))?;
    let lock_path = work_root.join(format!("{}.lock", source.identity));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "gem5: another `simctl build-gem5` builds in {}; waiting for it",
            work.display()
        );
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        if let Some(entry) = store.lookup("gem5", &key) {
            let build = binary::read_build(&entry.join("build.toml"))?;
            binary::write_build(&binary::recorded_path(&cache), &build)?;
            return Ok(build);
        }
    }
    let counts = steps::StepCounts::in_cache(&cache);
    wait_for_running_scons(&work, &counts, request)?;
    source::export(&source, &work)?;
    if !work.join("build_opts").join(&request.isa).is_file() {
        bail!(
            "gem5 has no build configuration {}; hint: pick one of {}",
            request.isa,
            list_dir(&work.join("build_opts")).join(", ")
        );
    }
    let version = source::declared_version(&work)?;
    let config = request.config(&version);
    let log = work.join(format!(
        "build-{}-{}.log",
        request.isa,
        request.variant.name()
    ));
    let scons_seconds = run_scons(&work, &log, &counts, &config, request)?;
    let built = work.join(request.target());
    if !built.is_file() {
        bail!(
            "scons finished but {} is not there; see {}",
            built.display(),
            log.display()
        );
    }
    let build = publish(
        &store,
        &key,
        &source,
        request,
        &built,
        &work,
        &log,
        scons_seconds,
    )?;
    Ok(build)
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn progress_bar(expected: u64, counted: bool, done: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(expected);
    let approx = if counted { "" } else { "~" };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{approx}{{len}} steps [{{elapsed}}, eta {{eta}}] {what}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(done.min(expected.saturating_sub(1)));
    bar.reset_eta();
    bar
}

/// A scons already running in the work directory (a simctl killed with -9 leaves its scons
/// running: it is in its own process group) must finish before another one starts there: two
/// sconses on one build directory corrupt it. Its log still grows, so the bar follows it.
fn wait_for_running_scons(
    work: &Path,
    counts: &steps::StepCounts,
    request: &Gem5Request,
) -> Result<()> {
    let Some((pid, log)) = steps::running_scons(work) else {
        return Ok(());
    };
    eprintln!(
        "gem5: a scons (pid {pid}) is still building in {} (started by an earlier simctl or by \
         hand); waiting for it to end, then resuming from where it got",
        work.display()
    );
    let (expected, counted) = match source::declared_version(work) {
        Ok(version) => steps::expected_steps(counts, &request.config(&version)),
        Err(_) => (steps::STEP_ESTIMATE, false),
    };
    let bar = progress_bar(expected, counted, 0, "(earlier scons)");
    while steps::running_scons(work).is_some() {
        if crate::process::interrupted() {
            bar.abandon();
            bail!(
                "interrupted while waiting; the earlier scons (pid {pid}) keeps running in {}",
                work.display()
            );
        }
        if let Some(log) = &log {
            bar.set_position(steps::count_in_log(log)?.min(expected.saturating_sub(1)));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    bar.finish_and_clear();
    Ok(())
}

/// The scons command: Debian's scons, and /usr/bin first on PATH so that gem5's default
/// `PYTHON_CONFIG` (python3-config) is Debian's, whatever pyenv or conda put on PATH.
fn scons_command(request: &Gem5Request) -> Result<Command> {
    let scons = ["/usr/bin/scons"]
        .map(PathBuf::from)
        .into_iter()
        .find(|path| crate::process::is_executable(path))
        .or_else(|| crate::process::find_program("scons"))
        .context("scons not found; hint: scripts/setup-host (or apt-get install scons)")?;
    if !Path::new(SYSTEM_PYTHON_CONFIG).is_file() {
        bail!(
            "{SYSTEM_PYTHON_CONFIG} not found: gem5 embeds Python and must link the system's \
             libpython; hint: scripts/setup-host (or apt-get install python3-dev)"
        );
    }
    let user_path = std::env::var_os("PATH").unwrap_or_default();
    let mut path = std::ffi::OsString::from("/usr/bin:/bin");
    if !user_path.is_empty() {
        path.push(":");
        path.push(user_path);
    }
    Ok(Command::new(scons)
        .arg(request.target())
        .arg(format!("-j{}", request.jobs))
        .args(SCONS_OPTIONS)
        .env("PATH", path))
}

/// Runs scons with a progress bar; returns the host seconds it took.
fn run_scons(
    work: &Path,
    log: &Path,
    counts: &steps::StepCounts,
    config: &str,
    request: &Gem5Request,
) -> Result<f64> {
    let command = scons_command(request)?.dir(work);
    let fresh = !work.join("build").join(&request.isa).exists();
    if fresh {
        crate::fsutil::write_atomic(log, format!("{}\n", steps::FRESH_MARKER).as_bytes())?;
    } else {
        eprintln!(
            "gem5: resuming in {}: scons keeps what earlier attempts compiled and rebuilds only \
             what is missing or changed",
            work.display()
        );
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .and_then(|mut file| {
            use std::io::Write;
            writeln!(file, "simctl build-gem5: running {}", command.display())
        })
        .with_context(|| format!("cannot write {}", log.display()))?;
    let done_before = steps::count_in_log(log)?;
    let (expected, counted) = steps::expected_steps(counts, config);
    eprintln!(
        "gem5: building {} with {} jobs; log: {}",
        request.target(),
        request.jobs,
        log.display()
    );
    let bar = progress_bar(
        expected,
        counted,
        done_before,
        &format!("gem5.{}", request.variant.name()),
    );
    let started = Instant::now();
    let mut child = command.spawn_logged(log)?;
    let mut tail = LogTail::new();
    // Skip what the log held before this attempt; the position already counts it.
    tail.new_lines(log)?;
    let ended = child.wait(None, |path| {
        let new = tail
            .new_lines(path)?
            .iter()
            .filter(|line| steps::is_step(line))
            .count() as u64;
        if new > 0 {
            let position = (bar.position() + new).min(expected.saturating_sub(1));
            bar.set_position(position);
        }
        Ok(Watch::Continue)
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    match &ended {
        Ended::Interrupted { .. } => bail!(
            "gem5 build stopped after {:.0} s; run the same command again to resume: scons keeps \
             every finished object in {} (log: {})",
            seconds,
            work.join("build").display(),
            log.display()
        ),
        _ => ended.check()?,
    }
    if steps::log_is_fresh(log) {
        counts.remember(config, steps::count_in_log(log)?)?;
    }
    eprintln!("gem5: scons finished in {seconds:.0} s");
    Ok(seconds)
}

/// Checks the binary really runs, then makes it a cache entry and the recorded build.
#[allow(clippy::too_many_arguments)]
fn publish(
    store: &Store,
    key: &CacheKey,
    source: &ResolvedSource,
    request: &Gem5Request,
    built: &Path,
    work: &Path,
    log: &Path,
    scons_seconds: f64,
) -> Result<Gem5Build> {
    let file_name = format!("gem5.{}", request.variant.name());
    let final_binary = store.path("gem5", key).join(&file_name);
    let entry = store.get_or_build("gem5", key, |staging| {
        let binary = staging.join(&file_name);
        // A hard link: no second 800 MB copy, and scons replaces (unlinks) rather than rewrites
        // its target, so the entry never changes under a rebuild of the work directory.
        if std::fs::hard_link(built, &binary).is_err() {
            std::fs::copy(built, &binary).with_context(|| {
                format!("cannot copy {} to {}", built.display(), binary.display())
            })?;
        }
        copy_tree(&work.join("configs"), &staging.join("configs"))?;
        let info = build_info(&binary)?;
        if !info
            .isas
            .iter()
            .any(|isa| request.isa.starts_with(isa.as_str()))
        {
            bail!(
                "{} reports ISAs {:?}, not {}",
                binary.display(),
                info.isas,
                request.isa
            );
        }
        let python = match libpython(&binary)? {
            LibPython::Found { path, .. } => Some(path.display().to_string()),
            LibPython::Missing { name } => bail!(missing_libpython_hint(&name)),
            LibPython::NotLinked => None,
        };
        let record = Gem5Build {
            binary: final_binary.clone(),
            key: key.hex(),
            source: request.source_text.clone(),
            identity: source.identity.clone(),
            variant: request.variant.name().to_string(),
            isa: request.isa.clone(),
            version: info.version,
            blake3: hash_file(&binary)?,
            libpython: python,
            work_dir: work.to_path_buf(),
            log: log.to_path_buf(),
            scons_seconds,
            jobs: request.jobs,
        };
        binary::write_build(&staging.join("build.toml"), &record)
    })?;
    let build = binary::read_build(&entry.path.join("build.toml"))?;
    binary::remember_hash(store.root(), &build.binary, &build.blake3)?;
    binary::write_build(&binary::recorded_path(store.root()), &build)?;
    Ok(build)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.with_context(|| format!("cannot walk {}", from.display()))?;
        let target = to.join(entry.path().strip_prefix(from).unwrap_or(entry.path()));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub fn run_cli(args: BuildGem5Args) -> Result<()> {
    let project = Project::locate()?;
    let request = Gem5Request::from_args(args)?;
    let build = build_gem5(&project, &request)?;
    eprintln!(
        "gem5 {} ({} {}), recorded for `simctl run`; libpython: {}",
        build.version,
        build.isa,
        build.variant,
        build.libpython.as_deref().unwrap_or("none")
    );
    println!("{}", build.binary.display());
    Ok(())
}

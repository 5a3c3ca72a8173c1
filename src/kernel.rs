//! `simctl build-kernel`: a lean x86_64 `vmlinux` that gem5 boots without initrd or modules.
//!
//! Source: Debian's `linux-source-6.1` package (fetched with `apt-get download`, no root) or a
//! kernel tree. Config: `make <base>` (default `tinyconfig`: a defconfig kernel boots far too
//! slowly on gem5's atomic CPU), then the fragments of `kernel-configs/` merged with the
//! kernel's own `merge_config.sh`, then `olddefconfig`. Every `=y` line of the fragments is
//! required: after the build simctl checks they all survived and names the ones that did not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::cache::CacheKey;
use crate::process::{Command, LogTail, Watch};
use crate::project::Project;

const RECIPE_VERSION: u32 = 1;
const DEBIAN_PACKAGE: &str = "linux-source-6.1";
/// Objects (kbuild `CC` lines) of the shipped config: the progress bar's first guess for a
/// config never built here (1238, counted on linux-source-6.1 with tinyconfig +
/// gem5-x86_64.config); the real count of each config is remembered for the next build.
const OBJECT_ESTIMATE: u64 = 1240;

/// Build a gem5-bootable Linux vmlinux from kernel-configs/.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl build-kernel\n  simctl build-kernel --source ~/linux --config kernel-configs/gem5-x86_64.config --jobs 8"
)]
pub struct BuildKernelArgs {
    /// `debian` (the linux-source-6.1 package), a kernel tarball, or a kernel source tree.
    #[arg(long, default_value = "debian")]
    pub source: String,
    /// Config fragment(s) merged onto the base config (repeatable).
    #[arg(long = "config")]
    pub configs: Vec<PathBuf>,
    /// Base config target: tinyconfig (lean, the gem5 default) or defconfig.
    #[arg(long, default_value = "tinyconfig")]
    pub base: String,
    /// Parallel make jobs (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct KernelRequest {
    pub source: KernelSource,
    pub fragments: Vec<PathBuf>,
    pub base: String,
    pub jobs: usize,
}

#[derive(Debug, Clone)]
pub enum KernelSource {
    Debian,
    /// A kernel source tree (e.g. a git checkout).
    Tree(PathBuf),
    /// A release tarball (`linux-6.x.tar.xz` and the like).
    Tarball(PathBuf),
}

impl KernelSource {
    /// `debian`, a tarball (`.tar`, `.tar.xz`, `.tar.gz`, ...) or a tree.
    pub fn parse(text: &str) -> KernelSource {
        let path = PathBuf::from(text);
        if text == "debian" {
            KernelSource::Debian
        } else if path.is_file()
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tar"))
        {
            KernelSource::Tarball(path)
        } else {
            KernelSource::Tree(path)
        }
    }
}

impl KernelRequest {
    /// The gem5 default: Debian's 6.1 source, tinyconfig + `kernel-configs/gem5-x86_64.config`.
    pub fn default_gem5(project: &Project) -> KernelRequest {
        KernelRequest {
            source: KernelSource::Debian,
            fragments: vec![project.kernel_configs_dir().join("gem5-x86_64.config")],
            base: "tinyconfig".into(),
            jobs: default_jobs(),
        }
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

/// A built kernel.
#[derive(Debug, Clone)]
pub struct KernelArtifact {
    pub vmlinux: PathBuf,
    pub config: PathBuf,
    pub version: String,
    pub key: CacheKey,
}

/// The options a fragment sets to `y`: the ones the build must keep.
pub fn required_options(fragment: &str) -> Vec<String> {
    fragment
        .lines()
        .filter_map(|line| line.trim().strip_suffix("=y"))
        .filter(|name| name.starts_with("CONFIG_"))
        .map(str::to_string)
        .collect()
}

/// The values of a `.config` (`CONFIG_X=value`; `# CONFIG_X is not set` is absent).
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| name.starts_with("CONFIG_"))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Required options that did not end up `=y` (olddefconfig drops options whose dependencies
/// are missing, silently).
pub fn missing_options(required: &[String], config: &BTreeMap<String, String>) -> Vec<String> {
    required
        .iter()
        .filter(|name| config.get(*name).map(String::as_str) != Some("y"))
        .cloned()
        .collect()
}

fn source_tree(store: &crate::cache::Store, source: &KernelSource) -> Result<(PathBuf, String)> {
    match source {
        KernelSource::Tree(path) => {
            if !path.join("Makefile").is_file() || !path.join("arch/x86").is_dir() {
                bail!(
                    "{} is not a Linux source tree (no Makefile or arch/x86)",
                    path.display()
                );
            }
            // A git tree is identified by its commit and uncommitted changes, so an edited tree
            // at the same path does not reuse a stale kernel.
            let identity = match crate::gitsrc::working_tree_state(path)? {
                Some(state) => format!(
                    "tree {} {} {}",
                    path.display(),
                    state.commit,
                    state.changes.as_deref().unwrap_or("clean")
                ),
                None => format!("tree {} (not in git)", path.display()),
            };
            Ok((path.clone(), identity))
        }
        KernelSource::Tarball(tarball) => {
            let key = CacheKey::new("kernel-src", RECIPE_VERSION).file("tarball", tarball)?;
            let artifact = store.get_or_build("kernel-src", &key, |staging| {
                Command::new("tar")
                    .arg("xf")
                    .arg(tarball)
                    .arg("-C")
                    .arg(staging)
                    .run_logged(&staging.join("unpack.log"), None)
                    .with_context(|| format!("cannot unpack {}", tarball.display()))?;
                Ok(())
            })?;
            let tree = std::fs::read_dir(&artifact.path)?
                .flatten()
                .map(|entry| entry.path())
                .find(|dir| dir.join("Makefile").is_file())
                .with_context(|| {
                    format!(
                        "{} holds no kernel tree (no top-level dir with a Makefile)",
                        tarball.display()
                    )
                })?;
            Ok((tree, format!("tarball blake3:{}", key.hex())))
        }
        KernelSource::Debian => {
            let version = Command::new("apt-cache")
                .args(["policy", DEBIAN_PACKAGE])
                .read_stdout()
                .ok()
                .and_then(|out| out.lines().find_map(|l| l.trim().strip_prefix("Candidate:").map(|v| v.trim().to_string())))
                .filter(|v| v != "(none)")
                .with_context(|| format!("no candidate for {DEBIAN_PACKAGE}; hint: run `apt-get update` (Debian 12 has it in main)"))?;
            let key = CacheKey::new("kernel-src", RECIPE_VERSION)
                .text("package", DEBIAN_PACKAGE)
                .text("version", &version);
            let artifact = store.get_or_build("kernel-src", &key, |staging| {
                let log = staging.join("fetch.log");
                let stage = crate::progress::Stage::spinner(
                    "kernel source",
                    &format!("apt-get download {DEBIAN_PACKAGE} {version}, then unpack it"),
                );
                stage.message("downloading");
                Command::new("apt-get")
                    .args(["download", DEBIAN_PACKAGE])
                    .dir(staging)
                    .run_logged(&log, None)?;
                let deb = std::fs::read_dir(staging)?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|e| e == "deb"))
                    .context("apt-get download left no .deb")?;
                stage.message("unpacking");
                Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(&deb)
                    .arg(staging.join("pkg"))
                    .run_logged(&log, None)?;
                let tarball = staging.join(format!("pkg/usr/src/{DEBIAN_PACKAGE}.tar.xz"));
                Command::new("tar")
                    .arg("xf")
                    .arg(&tarball)
                    .arg("-C")
                    .arg(staging)
                    .run_logged(&log, None)?;
                std::fs::remove_dir_all(staging.join("pkg"))?;
                std::fs::remove_file(deb)?;
                stage.finish("unpacked");
                Ok(())
            })?;
            Ok((
                artifact.path.join(DEBIAN_PACKAGE),
                format!("{DEBIAN_PACKAGE} {version}"),
            ))
        }
    }
}

/// Builds (or reuses) the kernel.
pub fn build_kernel(project: &Project, request: &KernelRequest) -> Result<KernelArtifact> {
    let (tree, source_id) = source_tree(&project.store(), &request.source)?;
    let mut key = CacheKey::new("kernel", RECIPE_VERSION)
        .text("source", &source_id)
        .text("base", &request.base);
    let mut required = Vec::new();
    for fragment in &request.fragments {
        let text = std::fs::read_to_string(fragment)
            .with_context(|| format!("cannot read config fragment {}", fragment.display()))?;
        required.extend(required_options(&text));
        key = key.file("fragment", fragment)?;
    }
    let build_dir = project.cache_dir().join("kernel-build").join(key.hex());
    let artifact = project.store().get_or_build("kernels", &key, |staging| {
        std::fs::create_dir_all(&build_dir)?;
        let log = staging.join("build.log");
        let make = |args: &[&str]| {
            Command::new("make")
                .arg("-C")
                .arg(&tree)
                .arg(format!("O={}", build_dir.display()))
                .args(args.iter().copied())
        };
        let configuring = crate::progress::Stage::spinner(
            "kernel",
            &format!(
                "configuring: make {} + fragments + olddefconfig",
                request.base
            ),
        );
        make(&[&request.base]).run_logged(&log, None)?;
        let mut merge = Command::new(tree.join("scripts/kconfig/merge_config.sh"))
            .args(["-m", "-O"])
            .arg(&build_dir)
            .arg(build_dir.join(".config"))
            .dir(&tree);
        for fragment in &request.fragments {
            merge = merge.arg(fragment);
        }
        merge.run_logged(&log, None)?;
        make(&["olddefconfig"]).run_logged(&log, None)?;
        configuring.finish("configured");
        let config_text = std::fs::read_to_string(build_dir.join(".config"))?;
        let missing = missing_options(&required, &parse_config(&config_text));
        if !missing.is_empty() {
            bail!(
                "the kernel config lost required options after olddefconfig: {}; hint: add their \
                 dependencies to the fragment",
                missing.join(", ")
            );
        }
        let config_key = CacheKey::new("kernel-config", RECIPE_VERSION)
            .text("source", &source_id)
            .text("config", &config_text);
        let cache = project.cache_dir();
        let known = crate::progress::remembered_total(&cache, "kernel-objects", &config_key);
        let stage = crate::progress::Stage::counted(
            "kernel",
            &format!(
                "building vmlinux with {} jobs (log: {})",
                request.jobs,
                log.display()
            ),
            known.unwrap_or(OBJECT_ESTIMATE),
            "objects",
            known.is_none(),
        );
        let mut child = make(&[&format!("-j{}", request.jobs), "vmlinux"]).spawn_logged(&log)?;
        let mut tail = LogTail::new();
        let ended = child.wait(None, |path| {
            for line in tail.new_lines(path)? {
                if let Some(object) = line.trim_start().strip_prefix("CC") {
                    stage.inc(1);
                    stage.message(object.trim().to_string());
                }
            }
            Ok(Watch::Continue)
        });
        let compiled = stage.position();
        match &ended {
            Ok(ended) if ended.success() => {
                crate::progress::remember_total(&cache, "kernel-objects", &config_key, compiled);
                stage.finish(&format!("vmlinux built, {compiled} objects"));
            }
            _ => drop(stage),
        }
        let ended = ended?;
        ended.check()?;
        std::fs::copy(build_dir.join("vmlinux"), staging.join("vmlinux"))?;
        std::fs::copy(build_dir.join(".config"), staging.join("config"))?;
        let version = make(&["-s", "kernelversion"]).read_stdout()?;
        std::fs::write(staging.join("version"), version.trim())?;
        Ok(())
    })?;
    if !artifact.reused {
        // The objects only speed up a rebuild of the same key, which cannot happen any more.
        let _ = std::fs::remove_dir_all(&build_dir);
    }
    let version = std::fs::read_to_string(artifact.path.join("version")).unwrap_or_default();
    Ok(KernelArtifact {
        vmlinux: artifact.path.join("vmlinux"),
        config: artifact.path.join("config"),
        version: version.trim().to_string(),
        key,
    })
}

pub fn run_cli(args: BuildKernelArgs) -> Result<()> {
    let project = Project::locate()?;
    let mut request = KernelRequest::default_gem5(&project);
    request.source = KernelSource::parse(&args.source);
    if !args.configs.is_empty() {
        request.fragments = args.configs;
    }
    request.base = args.base;
    if let Some(jobs) = args.jobs {
        request.jobs = jobs;
    }
    let kernel = build_kernel(&project, &request)?;
    eprintln!("kernel {} ({})", kernel.version, kernel.key.hex());
    println!("{}", kernel.vmlinux.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_options_are_the_y_lines_of_the_fragment() {
        let fragment = "# comment\nCONFIG_SMP=y\nCONFIG_NR_CPUS=4\n# CONFIG_MODULES is not set\nCONFIG_ATA_PIIX=y\n";
        assert_eq!(
            required_options(fragment),
            vec!["CONFIG_SMP", "CONFIG_ATA_PIIX"]
        );
    }

    #[test]
    fn a_lost_option_is_named() {
        let required = vec![
            "CONFIG_SMP".to_string(),
            "CONFIG_ATA_PIIX".to_string(),
            "CONFIG_EXT4_FS".to_string(),
        ];
        let config = parse_config("CONFIG_SMP=y\n# CONFIG_ATA_PIIX is not set\nCONFIG_EXT4_FS=m\n");
        assert_eq!(
            missing_options(&required, &config),
            vec!["CONFIG_ATA_PIIX", "CONFIG_EXT4_FS"]
        );
    }

    #[test]
    fn shipped_fragment_requires_what_gem5_needs() {
        let project = Project::at(env!("CARGO_MANIFEST_DIR"));
        let text =
            std::fs::read_to_string(&KernelRequest::default_gem5(&project).fragments[0]).unwrap();
        let required = required_options(&text);
        for option in [
            "CONFIG_ATA_PIIX",
            "CONFIG_BLK_DEV_SD",
            "CONFIG_EXT4_FS",
            "CONFIG_SERIAL_8250_CONSOLE",
            "CONFIG_CPU_ISOLATION",
            "CONFIG_DEVMEM",
            "CONFIG_X86_MPPARSE",
        ] {
            assert!(
                required.iter().any(|r| r == option),
                "{option} missing from the fragment"
            );
        }
        assert!(text.contains("# CONFIG_STRICT_DEVMEM is not set"));
    }

    #[test]
    fn source_kinds_are_told_apart() {
        assert!(matches!(
            KernelSource::parse("debian"),
            KernelSource::Debian
        ));
        assert!(matches!(
            KernelSource::parse("/nonexistent/linux"),
            KernelSource::Tree(_)
        ));
        let file = tempfile::Builder::new()
            .suffix(".tar.xz")
            .tempfile()
            .unwrap();
        assert!(matches!(
            KernelSource::parse(file.path().to_str().unwrap()),
            KernelSource::Tarball(_)
        ));
    }

    #[test]
    fn a_tarball_without_a_kernel_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("empty.tar");
        std::fs::create_dir(dir.path().join("stuff")).unwrap();
        let status = std::process::Command::new("tar")
            .arg("cf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir.path())
            .arg("stuff")
            .status()
            .unwrap();
        assert!(status.success());
        let cache = tempfile::tempdir().unwrap();
        let store = crate::cache::Store::new(cache.path());
        let err = source_tree(&store, &KernelSource::Tarball(tarball)).unwrap_err();
        assert!(
            format!("{err:#}").contains("holds no kernel tree"),
            "{err:#}"
        );
    }

    #[test]
    fn a_missing_tree_is_a_clear_error() {
        let store = crate::cache::Store::new(std::env::temp_dir());
        let err = source_tree(&store, &KernelSource::Tree("/nonexistent".into())).unwrap_err();
        assert!(err.to_string().contains("not a Linux source tree"));
    }
}

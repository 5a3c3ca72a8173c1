//! `simctl build-image`: a raw disk image (MBR, one ext4 partition at 1 MiB) that gem5 and
//! QEMU boot with `root=/dev/sda1`, built without a VM, without loop mounts and without root.
//!
//! Steps: mmdebstrap makes the root file system as a tarball (cached under a key of the spec:
//! the slow, network-bound step; `--mode=unshare` for an ordinary user, which needs newuidmap
//! and subordinate ids: `scripts/setup-host` sets both up); the tarball is unpacked into a
//! staging tree, the overlays (static guest binaries, workloads' install trees) and the boot
//! configuration are added; sfdisk writes the partition table and `mke2fs -d ... -E offset=`
//! fills the partition from the tree. So when only the guest binaries or a workload change, the
//! image is rebuilt in seconds.
//!
//! Owners without root: the tarball is unpacked and the file system made under one fakeroot
//! session (one `faked-sysv` that simctl supervises, see `fakeroot.rs`), so tar's chown and
//! mknod are recorded instead of done and mke2fs reads them back; files simctl adds in between (overlays, boot config) belong to the
//! invoking user, which fakeroot reports as root, their owner in the image. (e2fsprogs 1.47.0,
//! Debian 12's, cannot read a tarball with `-d`; that came in 1.47.1.) Root takes the same path,
//! so there is one way images are made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cache::{CacheKey, hash_tree};
use crate::fakeroot::FakerootSession;
use crate::process::{Command, LogTail, Watch, find_program};
use crate::project::Project;

const ROOTFS_RECIPE: u32 = 1;
const IMAGE_RECIPE: u32 = 2;
const PARTITION_OFFSET: u64 = 1024 * 1024;
pub const DEFAULT_SPEC: &str = "debian-bookworm.toml";

/// Build a bootable raw disk image without a VM and without loop mounts.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl build-image --workload aes-go\n  simctl build-image --spec disk-image/ubuntu-jammy.toml --workload aes-go --workload fibonacci-go"
)]
pub struct BuildImageArgs {
    /// Image spec (TOML); default: disk-image/debian-bookworm.toml.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Workloads to install (repeatable).
    #[arg(long = "workload")]
    pub workloads: Vec<String>,
    /// Use these static guest binaries (the directory `simctl build-guest` prints) instead of
    /// building them here: for an account or machine without a Rust toolchain.
    #[arg(long, value_name = "DIR")]
    pub guest_dir: Option<PathBuf>,
}

/// How the guest boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// simctl-init as PID 1: seconds of boot instead of tens under simulation.
    Simctl,
    /// systemd, with a oneshot unit running `simctl-init --service`.
    Systemd,
}

/// A `disk-image/*.toml` spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub distribution: String,
    pub suite: String,
    pub mirror: String,
    #[serde(default = "default_variant")]
    pub variant: String,
    #[serde(default)]
    pub packages: Vec<String>,
    /// Size of the root partition, e.g. "1G", "768M".
    pub size: String,
    pub init: Init,
    /// Keyring that signs the mirror (needed for Ubuntu on a Debian host).
    #[serde(default)]
    pub keyring: Option<PathBuf>,
    /// Archive components (mmdebstrap `--components`); default: the suite's default (main).
    #[serde(default)]
    pub components: Vec<String>,
}

fn default_variant() -> String {
    "minbase".into()
}

impl Spec {
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read image spec {}", path.display()))?;
        Spec::parse(&text, path)
    }

    /// The spec in `text`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Spec> {
        let spec: Spec = toml::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "{}: {err}valid keys: distribution, suite, mirror, variant, packages, size, init, keyring, components",
                path.display()
            )
        })?;
        spec.size_bytes()
            .with_context(|| format!("{}: key `size`", path.display()))?;
        Ok(spec)
    }

    pub fn size_bytes(&self) -> Result<u64> {
        let text = self.size.trim();
        let (number, unit) = text.split_at(
            text.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len()),
        );
        let number: u64 = number
            .parse()
            .map_err(|_| anyhow::anyhow!("'{text}' is not a size like 1G or 768M"))?;
        let factor = match unit {
            "G" | "GiB" => 1 << 30,
            "M" | "MiB" => 1 << 20,
            _ => bail!("'{text}' is not a size like 1G or 768M"),
        };
        // Checked: a product past u64 would panic, or wrap to a wrong size (found by fuzzing).
        number
            .checked_mul(factor)
            .ok_or_else(|| anyhow::anyhow!("'{text}' is larger than a disk image can be"))
    }
}

/// A host directory copied into the image at `target`.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub source: PathBuf,
    pub target: PathBuf,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub spec_path: PathBuf,
    pub overlays: Vec<Overlay>,
    pub extra_packages: Vec<String>,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct ImageArtifact {
    pub path: PathBuf,
    pub manifest: PathBuf,
    pub key: CacheKey,
}

/// Checks what a spec needs from outside before spending minutes on it.
fn preflight(spec: &Spec, spec_path: &Path) -> Result<()> {
    if let Some(keyring) = &spec.keyring
        && !keyring.is_file()
    {
        bail!(
            "{}: keyring {} not found; hint: copy the {} archive keyring there (Debian 12 has no \
             ubuntu-keyring package)",
            spec_path.display(),
            keyring.display(),
            spec.distribution
        );
    }
    let url = spec.mirror.trim_end_matches('/');
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .with_context(|| {
            format!(
                "{}: mirror '{url}' is not a URL like http://deb.debian.org/debian",
                spec_path.display()
            )
        })?;
    let host_port = rest.split('/').next().unwrap_or(rest);
    let address = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok()
        });
    if !reachable {
        bail!(
            "{}: the {} mirror {url} is not reachable; hint: set `mirror` to a mirror this machine \
             can reach (Debian builds work wherever Debian's apt mirror does)",
            spec_path.display(),
            spec.distribution
        );
    }
    Ok(())
}

fn build_rootfs(
    project: &Project,
    spec: &Spec,
    spec_path: &Path,
    packages: &[String],
) -> Result<(PathBuf, CacheKey)> {
    let mut key = CacheKey::new("rootfs", ROOTFS_RECIPE)
        .text("suite", &spec.suite)
        .text("mirror", &spec.mirror)
        .text("variant", &spec.variant)
        .text("packages", &packages.join(","));
    if !spec.components.is_empty() {
        key = key.text("components", &spec.components.join(","));
    }
    if let Some(keyring) = &spec.keyring {
        key = key.file("keyring", keyring)?;
    }
    let root = rustix::process::geteuid().is_root();
    if project.store().lookup("rootfs", &key).is_none() {
        preflight(spec, spec_path)?;
        if !root {
            unshare_preflight()?;
        }
    }
    let artifact = project.store().get_or_build("rootfs", &key, |staging| {
        let log = staging.join("mmdebstrap.log");
        let stage = crate::progress::Stage::spinner(
            "root file system",
            &format!(
                "mmdebstrap {} {} with {} extra packages (log: {})",
                spec.distribution,
                spec.suite,
                packages.len(),
                log.display()
            ),
        );
        let mut command = Command::new("mmdebstrap")
            .arg(format!("--variant={}", spec.variant))
            .arg(if root {
                "--mode=root"
            } else {
                "--mode=unshare"
            });
        if !packages.is_empty() {
            command = command.arg(format!("--include={}", packages.join(",")));
        }
        if let Some(keyring) = &spec.keyring {
            command = command.arg(format!("--keyring={}", keyring.display()));
        }
        if !spec.components.is_empty() {
            command = command.arg(format!("--components={}", spec.components.join(",")));
        }
        let mut child = command
            .arg(&spec.suite)
            .arg(staging.join("rootfs.tar"))
            .arg(&spec.mirror)
            .spawn_logged(&log)?;
        // mmdebstrap logs its steps as `I: ...` lines (downloading, extracting, installing).
        let mut tail = LogTail::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(1800);
        child
            .wait(Some(deadline), |path| {
                if let Some(step) = tail
                    .new_lines(path)?
                    .iter()
                    .rev()
                    .find_map(|line| line.strip_prefix("I: "))
                {
                    stage.message(step.to_string());
                }
                Ok(Watch::Continue)
            })?
            .check()
            .context("mmdebstrap failed; hint: apt-get install mmdebstrap, and check the mirror")?;
        stage.finish("made");
        Ok(())
    })?;
    Ok((artifact.path.join("rootfs.tar"), key))
}

/// mmdebstrap's unshare mode maps the image's owners into the user's subordinate ids through
/// newuidmap: say what is missing before minutes of downloads, not after.
fn unshare_preflight() -> Result<()> {
    let hint = "hint: run `scripts/setup-host` once as root (or with sudo): it installs uidmap and \
                gives your user subordinate ids";
    if find_program("newuidmap").is_none() {
        bail!(
            "building the root file system without root needs newuidmap (package uidmap); {hint}"
        );
    }
    let user = rustix::process::getuid().as_raw().to_string();
    let name = std::env::var("USER").unwrap_or_default();
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let listed = text.lines().any(|line| {
            line.split(':')
                .next()
                .is_some_and(|owner| owner == user || (!name.is_empty() && owner == name))
        });
        if !listed {
            bail!(
                "building the root file system without root needs subordinate ids for your user \
                 in {file}; {hint}"
            );
        }
    }
    Ok(())
}

/// Removes an unpacked tree the invoking user owns, including directories whose modes deny
/// writing (`/proc` and `/sys` are 0555 in a root file system).
fn remove_tree(root: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    std::fs::remove_dir_all(root).with_context(|| format!("cannot remove {}", root.display()))
}

/// Paths simctl wrote into the unpacked tree (they belong to root in the image).
type Written = Vec<PathBuf>;

fn write_file(
    root: &Path,
    path: &str,
    contents: &str,
    mode: u32,
    written: &mut Written,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = root.join(path.trim_start_matches('/'));
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&target, contents)?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
    written.push(target);
    Ok(())
}

/// Gives what simctl wrote to root, with the modes it has on disk, through the fakeroot
/// session: a change made outside the session is invisible to it (an existing file keeps the
/// mode tar gave it, and a new file may reuse the inode number of one tar replaced, with that
/// file's recorded owner and mode).
fn claim_for_root(session: &FakerootSession, written: &[PathBuf], log: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Chunks keep every command line far below the kernel's argument limit.
    const CHUNK: usize = 256;
    for chunk in written.chunks(CHUNK) {
        session
            .command("chown")
            .args(["-h", "0:0", "--"])
            .args(chunk)
            .run_logged(log, None)?;
    }
    let mut by_mode: std::collections::BTreeMap<u32, Vec<&PathBuf>> = Default::default();
    for path in written {
        let metadata = std::fs::symlink_metadata(path)?;
        if !metadata.file_type().is_symlink() {
            by_mode
                .entry(metadata.permissions().mode() & 0o7777)
                .or_default()
                .push(path);
        }
    }
    for (mode, paths) in by_mode {
        for chunk in paths.chunks(CHUNK) {
            session
                .command("chmod")
                .arg(format!("{mode:04o}"))
                .arg("--")
                .args(chunk.iter().copied())
                .run_logged(log, None)?;
        }
    }
    Ok(())
}

/// Hostname, fstab, a password-less root and (for systemd) the unit that runs the agent.
fn boot_config(root: &Path, init: Init, written: &mut Written) -> Result<()> {
    write_file(root, "/etc/hostname", "simctl\n", 0o644, written)?;
    write_file(
        root,
        "/etc/fstab",
        "/dev/sda1 / ext4 defaults 0 1\n",
        0o644,
        written,
    )?;
    let shadow = root.join("etc/shadow");
    if let Ok(text) = std::fs::read_to_string(&shadow) {
        let text: String = text
            .lines()
            .map(|line| match line.strip_prefix("root:") {
                Some(rest) => format!(
                    "root::{}\n",
                    rest.split_once(':').map_or("", |(_, tail)| tail)
                ),
                None => format!("{line}\n"),
            })
            .collect();
        std::fs::write(&shadow, text)?;
    }
    if init == Init::Systemd {
        write_file(
            root,
            "/etc/systemd/system/simctl.service",
            "[Unit]\nDescription=simctl boot agent\nAfter=local-fs.target\n\n[Service]\nType=oneshot\n\
             ExecStart=/sbin/simctl-init --service\nExecStopPost=/usr/bin/systemctl --no-block poweroff\n\
             StandardOutput=tty\nTTYPath=/dev/ttyS0\n\n[Install]\nWantedBy=multi-user.target\n",
            0o644,
            written,
        )?;
        let wants = root.join("etc/systemd/system/multi-user.target.wants");
        if !wants.is_dir() {
            std::fs::create_dir_all(&wants)?;
            written.push(wants.clone());
        }
        let link = wants.join("simctl.service");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/systemd/system/simctl.service", &link)?;
        written.push(link);
    }
    Ok(())
}

fn copy_tree(source: &Path, dest: &Path, written: &mut Written) -> Result<()> {
    for entry in walkdir::WalkDir::new(source) {
        let entry = entry?;
        let relative = entry.path().strip_prefix(source)?;
        let target = dest.join(relative);
        if entry.file_type().is_dir() {
            if !target.is_dir() {
                std::fs::create_dir_all(&target)?;
                written.push(target);
            }
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("cannot copy {} into the image", entry.path().display())
            })?;
            written.push(target);
        }
    }
    Ok(())
}

/// Image manifest written beside disk.img.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    spec: &'a Spec,
    rootfs_key: String,
    packages: Vec<String>,
    overlays: Vec<(String, String)>,
}

fn installed_packages(root: &Path) -> Vec<String> {
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap_or_default();
    let mut packages = Vec::new();
    let mut name = None;
    for line in status.lines() {
        if let Some(value) = line.strip_prefix("Package: ") {
            name = Some(value.to_string());
        } else if let (Some(value), Some(package)) = (line.strip_prefix("Version: "), &name) {
            packages.push(format!("{package}={value}"));
        }
    }
    packages
}

/// Builds (or reuses) the image.
pub fn build_image(project: &Project, request: &ImageRequest) -> Result<ImageArtifact> {
    let spec = Spec::load(&request.spec_path)?;
    let mut packages = spec.packages.clone();
    packages.extend(request.extra_packages.iter().cloned());
    packages.sort();
    packages.dedup();
    let (rootfs, rootfs_key) = build_rootfs(project, &spec, &request.spec_path, &packages)?;
    let mut key = CacheKey::new("image", IMAGE_RECIPE)
        .key("rootfs", &rootfs_key)
        .text("size", &spec.size)
        .text("init", &format!("{:?}", spec.init));
    let mut overlay_hashes = Vec::new();
    for overlay in &request.overlays {
        let digest = hash_tree(&overlay.source)?;
        key = key.text("overlay", &format!("{} {digest}", overlay.target.display()));
        overlay_hashes.push((overlay.target.display().to_string(), digest));
    }
    let artifact = project.store().get_or_build("images", &key, |staging| {
        let log = staging.join("build.log");
        let stage = crate::progress::Stage::counted(
            "image",
            &format!(
                "{} of {}, {} overlay(s) (log: {})",
                spec.size,
                spec.suite,
                request.overlays.len(),
                log.display()
            ),
            4,
            "steps",
            false,
        );
        let root = staging.join("root");
        std::fs::create_dir_all(&root)?;
        let session = FakerootSession::start(&staging.join("faked.log"))?;
        stage.message("unpacking the root file system");
        session
            .command("tar")
            .args(["--numeric-owner", "-xpf"])
            .arg(&rootfs)
            .arg("-C")
            .arg(&root)
            .run_logged(&log, None)
            .context("unpacking the root file system failed; hint: apt-get install fakeroot")?;
        stage.inc(1);
        stage.message("adding guest tools, workloads and boot configuration");
        let mut written = Written::new();
        for overlay in &request.overlays {
            copy_tree(
                &overlay.source,
                &root.join(overlay.target.strip_prefix("/").unwrap_or(&overlay.target)),
                &mut written,
            )?;
        }
        boot_config(&root, spec.init, &mut written)?;
        claim_for_root(&session, &written, &log)?;
        let manifest = Manifest {
            spec: &spec,
            rootfs_key: rootfs_key.hex(),
            packages: installed_packages(&root),
            overlays: overlay_hashes.clone(),
        };
        std::fs::write(
            staging.join("manifest.json"),
            serde_json::to_string_pretty(&manifest)?,
        )?;
        stage.inc(1);
        stage.message("partition table");
        let disk = staging.join("disk.img");
        let size = spec.size_bytes()?;
        std::fs::File::create(&disk)?.set_len(size + PARTITION_OFFSET)?;
        let layout = staging.join("partitions.sfdisk");
        let mut file = std::fs::File::create(&layout)?;
        writeln!(file, "label: dos\nstart=2048, type=83, bootable")?;
        Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel"])
            .arg(&disk)
            .stdin_file(&layout)
            .run_logged(&log, None)
            .context("sfdisk failed; hint: apt-get install fdisk")?;
        stage.inc(1);
        stage.message("mke2fs -d: filling the ext4 partition");
        session
            .command("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", "rootfs", "-d"])
            .arg(&root)
            .args(["-E", &format!("offset={PARTITION_OFFSET}")])
            .arg(&disk)
            .arg(format!("{}k", size / 1024))
            .run_logged(&log, None)
            .context("mke2fs failed; hint: apt-get install e2fsprogs fakeroot")?;
        stage.inc(1);
        session.end();
        remove_tree(&root)?;
        stage.finish(&format!("disk image of {} built", spec.size));
        Ok(())
    })?;
    Ok(ImageArtifact {
        path: artifact.path.join("disk.img"),
        manifest: artifact.path.join("manifest.json"),
        key,
    })
}

/// The request for an image with simctl's guest binaries and the given workloads.
pub fn request_with(
    project: &Project,
    spec: Option<PathBuf>,
    workloads: &[crate::workloads::Workload],
) -> Result<ImageRequest> {
    let guest = crate::guest::build_guest_binaries(project)?;
    request_with_guest(project, spec, workloads, &guest)
}

/// The request for an image with the given guest binaries and workloads.
pub fn request_with_guest(
    project: &Project,
    spec: Option<PathBuf>,
    workloads: &[crate::workloads::Workload],
    guest: &crate::guest::GuestBinaries,
) -> Result<ImageRequest> {
    // The overlay is an artifact like any other: keyed by the binaries' contents, so runs in
    // parallel (sweeps) never copy into a directory another image build is reading.
    let mut key = CacheKey::new("guest-overlay", 1);
    for name in crate::guest::BINARIES {
        key = key.file(name, &guest.path(name))?;
    }
    for (name, path) in crate::guest::hook_sources(project) {
        key = key.file(name, &path)?;
    }
    let staged = project
        .store()
        .get_or_build("guest-overlay", &key, |staging| {
            // Under root/: the artifact dir also holds simctl-key.txt, which is not for the image.
            let staging = &staging.join("root");
            for dir in ["sbin", "usr/local/bin"] {
                std::fs::create_dir_all(staging.join(dir))?;
            }
            for name in crate::guest::BINARIES {
                std::fs::copy(guest.path(name), staging.join("sbin").join(name))?;
            }
            std::fs::copy(guest.path("m5"), staging.join("usr/local/bin/m5"))?;
            let log = project.cache_dir().join("logs").join("hook-tools.log");
            crate::guest::build_hook_tools(project, staging, &log)?;
            Ok(())
        })?
        .path
        .join("root");
    let mut overlays = vec![Overlay {
        source: staged,
        target: "/".into(),
    }];
    let mut extra_packages = Vec::new();
    for workload in workloads {
        let install_root = crate::workloads::build(project, workload)?;
        overlays.push(crate::container::rootfs_overlay(
            workload,
            install_root.clone(),
        ));
        overlays.push(Overlay {
            source: install_root,
            target: "/".into(),
        });
        extra_packages.extend(workload.manifest.guest_packages.iter().cloned());
    }
    Ok(ImageRequest {
        spec_path: spec.unwrap_or_else(|| project.disk_image_dir().join(DEFAULT_SPEC)),
        overlays,
        extra_packages,
    })
}

pub fn run_cli(args: BuildImageArgs) -> Result<()> {
    let project = Project::locate()?;
    let workloads = args
        .workloads
        .iter()
        .map(|name| crate::workloads::Workload::load(&project, name))
        .collect::<Result<Vec<_>>>()?;
    let request = match args.guest_dir {
        Some(dir) => {
            let guest = crate::guest::GuestBinaries::checked(dir)?;
            request_with_guest(&project, args.spec, &workloads, &guest)?
        }
        None => request_with(&project, args.spec, &workloads)?,
    };
    let image = build_image(&project, &request)?;
    eprintln!("manifest: {}", image.manifest.display());
    println!("{}", image.path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_dir() -> PathBuf {
        Project::at(env!("CARGO_MANIFEST_DIR")).disk_image_dir()
    }

    #[test]
    fn shipped_specs_parse() {
        for name in [
            "debian-bookworm.toml",
            "ubuntu-jammy.toml",
            "ubuntu-noble.toml",
        ] {
            let spec = Spec::load(&spec_dir().join(name)).unwrap();
            assert!(spec.size_bytes().unwrap() >= 512 << 20, "{name}");
            // Every image can run functions in containers (the default isolation).
            for package in ["runc", "iproute2", "nftables"] {
                assert!(
                    spec.packages.iter().any(|p| p == package),
                    "{name}: {package}"
                );
            }
        }
        let ubuntu = Spec::load(&spec_dir().join("ubuntu-jammy.toml")).unwrap();
        assert_eq!(ubuntu.components, ["main", "universe"]);
    }

    #[test]
    fn a_size_past_u64_is_an_error_not_a_wrapped_size() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "distribution='debian'\nsuite='bookworm'\nmirror='http://x/'\nsize='99999999999G'\ninit='simctl'\n").unwrap();
        let message = format!("{:#}", Spec::load(file.path()).unwrap_err());
        assert!(
            message.contains("larger than a disk image can be"),
            "{message}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_file_and_line() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "distribution='debian'\nsuite='bookworm'\nmirror='http://x/'\nsize='1G'\ninit='simctl'\ncolour='red'\n").unwrap();
        let message = format!("{:#}", Spec::load(file.path()).unwrap_err());
        assert!(
            message.contains("colour")
                && message.contains("line 6")
                && message.contains("valid keys"),
            "{message}"
        );
    }

    #[test]
    fn unreachable_mirror_and_missing_keyring_are_named() {
        let mut spec = Spec::load(&spec_dir().join("debian-bookworm.toml")).unwrap();
        spec.mirror = "http://127.0.0.1:9/debian".into();
        let message = format!("{:#}", preflight(&spec, Path::new("x.toml")).unwrap_err());
        assert!(
            message.contains("not reachable") && message.contains("127.0.0.1:9"),
            "{message}"
        );
        let ubuntu = Spec::load(&spec_dir().join("ubuntu-jammy.toml")).unwrap();
        if ubuntu.keyring.as_ref().is_some_and(|k| !k.exists()) {
            let message = format!(
                "{:#}",
                preflight(&ubuntu, Path::new("ubuntu-jammy.toml")).unwrap_err()
            );
            assert!(message.contains("keyring"), "{message}");
        }
    }

    #[test]
    fn bad_size_is_rejected() {
        let mut spec = Spec::load(&spec_dir().join("debian-bookworm.toml")).unwrap();
        spec.size = "lots".into();
        assert!(
            spec.size_bytes()
                .unwrap_err()
                .to_string()
                .contains("not a size")
        );
    }
}

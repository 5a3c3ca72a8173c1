//! Building the guest binaries (`m5`, `simctl-client`, `simctl-init` from `guest/`) as static
//! executables, and proving they are static: an ELF with a PT_INTERP program header needs a
//! dynamic loader the image may not have.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::process::{Command, LogTail, Watch};
use crate::project::Project;

pub const BINARIES: [&str; 6] = [
    "m5",
    "simctl-client",
    "simctl-init",
    "simctl-syscalls",
    "simctl-hookbench",
    "simctl-thrash",
];
/// C sources in guest/hook/ (the hook study needs glibc's dynamic linking: LD_PRELOAD does not
/// reach static binaries) and where each lands in the image.
pub const HOOK_TOOLS: [(&str, &str, &[&str]); 2] = [
    (
        "readhook.c",
        "usr/local/lib/simctl/readhook.so",
        &["-O2", "-shared", "-fPIC"],
    ),
    ("readbench.c", "usr/local/bin/simctl-readbench", &["-O2"]),
];
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Build the static guest binaries (m5, simctl-client, simctl-init).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  simctl build-guest")]
pub struct BuildGuestArgs {}

/// Where the built guest binaries are.
#[derive(Debug, Clone)]
pub struct GuestBinaries {
    pub dir: PathBuf,
}

impl GuestBinaries {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Builds with `+crt-static` on the gnu target (the musl target is not available from the
/// registries here) and checks every binary is static.
pub fn build_guest_binaries(project: &Project) -> Result<GuestBinaries> {
    let root = project.root();
    let log = project.cache_dir().join("logs").join("guest-build.log");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let stage = crate::progress::Stage::spinner(
        "guest tools",
        &format!(
            "cargo build of static {} (log: {})",
            BINARIES.join(", "),
            log.display()
        ),
    );
    // The log is appended to by every build: count only what this one adds.
    let mut tail = LogTail::new();
    tail.new_lines(&log)?;
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--profile",
            "guest",
            "--target",
            TARGET,
            "-p",
            "simctl-guest",
            "--bins",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", &target_dir)
        .spawn_logged(&log)?;
    // cargo says `Compiling <crate>` per crate it builds: the count and the latest crate show
    // that the ~1.5 min of a cold build is moving.
    let mut compiled = 0;
    child
        .wait(None, |path| {
            for line in tail.new_lines(path)? {
                if let Some(krate) = line.trim_start().strip_prefix("Compiling ") {
                    compiled += 1;
                    stage.message(format!("{compiled} crates compiled, now {krate}"));
                }
            }
            Ok(Watch::Continue)
        })?
        .check()
        .context(
            "building the guest binaries failed; hint: apt-get install protobuf-compiler libc6-dev",
        )?;
    stage.finish(&match compiled {
        0 => "up to date".to_string(),
        n => format!("built ({n} crates compiled)"),
    });
    GuestBinaries::checked(target_dir.join(TARGET).join("guest"))
}

impl GuestBinaries {
    /// The binaries in `dir` (built here or by `simctl build-guest` elsewhere), each checked to
    /// exist and to be static.
    pub fn checked(dir: PathBuf) -> Result<GuestBinaries> {
        for name in BINARIES {
            let path = dir.join(name);
            if has_interpreter(&path)? {
                bail!(
                    "{} is dynamically linked (it has an ELF interpreter); the guest needs static binaries",
                    path.display()
                );
            }
        }
        Ok(GuestBinaries { dir })
    }
}

/// The C sources of the hook tools.
pub fn hook_sources(project: &Project) -> Vec<(&'static str, PathBuf)> {
    HOOK_TOOLS
        .iter()
        .map(|(source, _, _)| (*source, project.root().join("guest/hook").join(source)))
        .collect()
}

/// Compiles the hook tools with the host's C compiler (Debian's gcc and glibc match the
/// bookworm guest's) into `root` at their image paths.
pub fn build_hook_tools(project: &Project, root: &Path, log: &Path) -> Result<()> {
    for ((source, target, flags), (_, path)) in HOOK_TOOLS.iter().zip(hook_sources(project)) {
        let output = root.join(target);
        if let Some(parent) = output.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Command::new("cc")
            .args(flags.iter().copied())
            .arg("-o")
            .arg(&output)
            .arg(&path)
            .run_logged(log, None)
            .with_context(|| {
                format!("cannot compile {source}; hint: apt-get install gcc libc6-dev")
            })?;
    }
    Ok(())
}

/// Whether an ELF file names a program interpreter (PT_INTERP), i.e. is dynamically linked.
pub fn has_interpreter(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let not_elf = || anyhow::anyhow!("{} is not a 64-bit little-endian ELF file", path.display());
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(not_elf());
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u64_at = |at: usize| -> Result<usize> {
        let slice = bytes.get(at..at + 8).ok_or_else(not_elf)?;
        Ok(u64::from_le_bytes(slice.try_into()?) as usize)
    };
    let (table, entry_size, count) = (u64_at(0x20)?, u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for index in 0..count {
        let at = table + index * entry_size;
        let kind = bytes.get(at..at + 4).ok_or_else(not_elf)?;
        if u32::from_le_bytes(kind.try_into()?) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn run_cli(_args: BuildGuestArgs) -> Result<()> {
    let project = Project::locate()?;
    let binaries = build_guest_binaries(&project)?;
    eprintln!("static guest binaries: {}", BINARIES.join(", "));
    println!("{}", binaries.dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_host_binary_has_an_interpreter() {
        assert!(has_interpreter(Path::new("/bin/sh")).unwrap());
    }

    #[test]
    fn non_elf_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "#!/bin/sh\n").unwrap();
        assert!(
            format!("{:#}", has_interpreter(file.path()).unwrap_err()).contains("not a 64-bit")
        );
    }
}

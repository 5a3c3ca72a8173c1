//! A gem5 binary as simctl sees it: what it says about itself (version, ISAs: `-B` output, printed by a small config script), the
//! libpython it needs and whether the loader finds it, the build `simctl build-gem5` recorded
//! for `simctl run`, and the binary's identity for run and checkpoint keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cache::hash_file;
use crate::fsutil::write_atomic;
use crate::process::Command;

/// What `gem5.opt -B` prints about the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    /// ISAs compiled in (`USE_X86_ISA = True` and the like), upper case.
    pub isas: Vec<String>,
}

/// Parses what [`BUILD_INFO_SCRIPT`] (or gem5's `-B`) prints: `gem5 version 24.0.0.1` and the
/// `USE_<ISA>_ISA = True` build options.
pub fn parse_build_info(text: &str) -> Option<BuildInfo> {
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("gem5 version "))?
        .trim()
        .to_string();
    let isas = text
        .lines()
        .filter_map(|line| line.trim().split_once(" = "))
        .filter(|(_, value)| value.trim() == "True")
        .filter_map(|(name, _)| name.strip_prefix("USE_")?.strip_suffix("_ISA"))
        .map(str::to_string)
        .collect();
    Some(BuildInfo { version, isas })
}

/// What gem5's `-B` prints, from a config script: `-B` itself fails in gem5 v24.0.0.1
/// (`module 'm5.defines' has no attribute 'gem5Version'`: the version moved to `_m5.core`).
const BUILD_INFO_SCRIPT: &str = r#"import m5.defines
try:
    from _m5.core import gem5Version as version
except ImportError:
    version = getattr(m5.defines, "gem5Version", "unknown")
print("Build information:")
print(f"gem5 version {version}")
for key in sorted(m5.defines.buildEnv):
    print(f"    {key} = {m5.defines.buildEnv[key]}")
"#;

/// gem5's version and ISAs, from a binary that starts and runs a config script. A binary that
/// cannot start gets an explanation: a missing libpython is the usual cause (gem5 built against
/// a pyenv or conda Python).
pub fn build_info(gem5: &Path) -> Result<BuildInfo> {
    // gem5 creates its output directory (m5out/) first: keep that out of the user's current
    // directory.
    let scratch = tempfile::tempdir().context("cannot create a temp dir")?;
    let script = scratch.path().join("build_info.py");
    std::fs::write(&script, BUILD_INFO_SCRIPT)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let output = match Command::new(gem5)
        .arg(format!(
            "--outdir={}",
            scratch.path().join("m5out").display()
        ))
        .arg("--quiet")
        .arg(&script)
        .read_stdout()
    {
        Ok(output) => output,
        Err(err) => {
            return Err(match libpython(gem5) {
                Ok(LibPython::Missing { name }) => anyhow::anyhow!(
                    "{} does not start: {}",
                    gem5.display(),
                    missing_libpython_hint(&name)
                ),
                _ => err.context(format!(
                    "{} does not start; hint: rebuild it with `simctl build-gem5`",
                    gem5.display()
                )),
            });
        }
    };
    parse_build_info(&output)
        .with_context(|| format!("{} did not print its gem5 version", gem5.display()))
}

/// The libpython a gem5 binary is linked against, as the loader resolves it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibPython {
    Found {
        name: String,
        path: PathBuf,
    },
    Missing {
        name: String,
    },
    /// Not linked against a shared libpython (static, or not gem5).
    NotLinked,
}

/// Parses `ldd` output for the libpython line.
pub fn parse_ldd(text: &str) -> LibPython {
    for line in text.lines() {
        let line = line.trim();
        let Some((name, resolved)) = line.split_once(" => ") else {
            continue;
        };
        if !name.starts_with("libpython") {
            continue;
        }
        let name = name.trim().to_string();
        let resolved = resolved.trim();
        if resolved.starts_with("not found") {
            return LibPython::Missing { name };
        }
        let path = resolved.split(" (").next().unwrap_or(resolved).trim();
        return LibPython::Found {
            name,
            path: PathBuf::from(path),
        };
    }
    LibPython::NotLinked
}

/// Runs `ldd` on the binary (it reads the dynamic section; the binary itself does not run).
pub fn libpython(gem5: &Path) -> Result<LibPython> {
    match Command::new("ldd").arg(gem5).read_stdout() {
        Ok(out) => Ok(parse_ldd(&out)),
        // A script or a static binary: nothing for the loader to resolve.
        Err(err) if format!("{err:#}").contains("not a dynamic executable") => {
            Ok(LibPython::NotLinked)
        }
        Err(err) => Err(err),
    }
}

/// Why the loader cannot find gem5's libpython, and what to do about it.
pub fn missing_libpython(name: &str) -> (String, String) {
    (
        format!(
            "the loader cannot find {name}: gem5 was linked against a Python that is not the \
             system's (pyenv, conda, a venv)"
        ),
        "rebuild it with `simctl build-gem5` (which uses Debian's /usr/bin/python3-config), or \
         set LD_LIBRARY_PATH to that Python's lib directory"
            .to_string(),
    )
}

/// [`missing_libpython`] as one error message.
pub fn missing_libpython_hint(name: &str) -> String {
    let (cause, fix) = missing_libpython(name);
    format!("{cause}; hint: {fix}")
}

/// A published gem5 build: `<cache>/gem5/<key>/build.toml`, and the most recent one in
/// `<cache>/gem5/recorded.toml`, which `simctl run` uses when nothing else names a gem5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gem5Build {
    pub binary: PathBuf,
    pub key: String,
    /// Where the source came from, as the user gave it.
    pub source: String,
    /// The source identity (`git-<commit>`, `git-<commit>-dirty-<hash>`, `tar-<hash>`).
    pub identity: String,
    pub variant: String,
    pub isa: String,
    pub version: String,
    pub blake3: String,
    pub libpython: Option<String>,
    /// Where scons ran (and can resume or rebuild incrementally).
    pub work_dir: PathBuf,
    pub log: PathBuf,
    /// Host seconds scons took in the call that finished the build (earlier attempts excluded).
    pub scons_seconds: f64,
    pub jobs: usize,
}

/// File in the cache that names the most recent `simctl build-gem5` result.
pub fn recorded_path(cache: &Path) -> PathBuf {
    cache.join("gem5").join("recorded.toml")
}

pub fn read_build(path: &Path) -> Result<Gem5Build> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a gem5 build record; hint: run `simctl build-gem5` again",
            path.display()
        )
    })
}

pub fn write_build(path: &Path, build: &Gem5Build) -> Result<()> {
    let text = toml::to_string_pretty(build).context("cannot serialise the gem5 build record")?;
    write_atomic(path, text.as_bytes())
}

/// The recorded build, if `simctl build-gem5` ran with this cache. A record whose binary is gone
/// is an error (the cache was pruned), not "no gem5".
pub fn recorded(cache: &Path) -> Result<Option<Gem5Build>> {
    let path = recorded_path(cache);
    if !path.is_file() {
        return Ok(None);
    }
    let build = read_build(&path)?;
    if !crate::process::is_executable(&build.binary) {
        bail!(
            "{} names gem5 {}, which is gone; hint: run `simctl build-gem5` again (it resumes \
             from {} when that is still there)",
            path.display(),
            build.binary.display(),
            build.work_dir.display()
        );
    }
    Ok(Some(build))
}

/// The identity of a binary file as the file system states it: path, device, inode, size and
/// modification time. Any rebuild or copy changes at least one of them.
fn stat_key(binary: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let path = binary
        .canonicalize()
        .with_context(|| format!("cannot find {}", binary.display()))?;
    let meta = path
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(path.as_os_str().as_encoded_bytes());
    for number in [meta.dev(), meta.ino(), meta.size()] {
        hasher.update(&number.to_le_bytes());
    }
    hasher.update(&meta.mtime().to_le_bytes());
    hasher.update(&meta.mtime_nsec().to_le_bytes());
    Ok(hasher.finalize().to_hex()[..32].to_string())
}

fn hash_record(cache: &Path, stat_key: &str) -> PathBuf {
    cache.join("gem5-ids").join(stat_key)
}

/// blake3 of a gem5 binary, computed once per file and then found by its stat identity: hashing
/// an 800 MB gem5.opt takes over a second, and every run needs the hash for its keys.
pub fn content_hash(cache: &Path, binary: &Path) -> Result<String> {
    let before = stat_key(binary)?;
    let record = hash_record(cache, &before);
    if let Ok(hash) = std::fs::read_to_string(&record) {
        let hash = hash.trim();
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(hash.to_string());
        }
    }
    let hash = hash_file(binary)?;
    // A binary rewritten while it was hashed would record a hash of neither version.
    if stat_key(binary)? == before {
        remember_hash(cache, binary, &hash)?;
    }
    Ok(hash)
}

/// Records a hash computed elsewhere (at publication) for the binary as it is now.
pub fn remember_hash(cache: &Path, binary: &Path, hash: &str) -> Result<()> {
    write_atomic(&hash_record(cache, &stat_key(binary)?), hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD_INFO: &str = "Build information:\n\ngem5 version 24.0.0.1\ncompiled Dec  1 2026 \
        03:01:02\nbuild options:\n    USE_ARM_ISA = False\n    USE_KVM = True\n    USE_X86_ISA \
        = True\n    PROTOCOL = MI_example\n\n";

    #[test]
    fn build_info_gives_version_and_isas() {
        assert_eq!(
            parse_build_info(BUILD_INFO),
            Some(BuildInfo {
                version: "24.0.0.1".into(),
                isas: vec!["X86".into()],
            })
        );
        assert_eq!(parse_build_info("Hello\n"), None);
    }

    #[test]
    fn ldd_lines_tell_found_missing_and_absent_libpython() {
        let found = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibpython3.11.so.1.0 => \
            /lib/x86_64-linux-gnu/libpython3.11.so.1.0 (0x00007f12)\n\tlibz.so.1 => /lib/libz.so.1 (0x1)\n";
        assert_eq!(
            parse_ldd(found),
            LibPython::Found {
                name: "libpython3.11.so.1.0".into(),
                path: "/lib/x86_64-linux-gnu/libpython3.11.so.1.0".into(),
            }
        );
        let missing = "\tlibpython3.12.so.1.0 => not found\n";
        assert_eq!(
            parse_ldd(missing),
            LibPython::Missing {
                name: "libpython3.12.so.1.0".into()
            }
        );
        assert_eq!(parse_ldd("\tstatically linked\n"), LibPython::NotLinked);
        assert!(missing_libpython_hint("libpython3.12.so.1.0").contains("LD_LIBRARY_PATH"));
    }

    #[test]
    fn content_hash_is_computed_once_per_file_state() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("gem5.opt");
        std::fs::write(&binary, "version one").unwrap();
        let first = content_hash(cache.path(), &binary).unwrap();
        assert_eq!(first, hash_file(&binary).unwrap());
        // The record is what answers next time: overwrite it to prove the file is not re-read.
        let record = hash_record(cache.path(), &stat_key(&binary).unwrap());
        std::fs::write(&record, "a".repeat(64)).unwrap();
        assert_eq!(content_hash(cache.path(), &binary).unwrap(), "a".repeat(64));
        // A rebuilt binary (new size and mtime) is hashed again.
        std::fs::write(&binary, "version two, longer").unwrap();
        let second = content_hash(cache.path(), &binary).unwrap();
        assert_eq!(second, hash_file(&binary).unwrap());
        assert_ne!(first, second);
    }

    #[test]
    fn a_recorded_build_whose_binary_is_gone_is_an_error_that_says_what_to_do() {
        let cache = tempfile::tempdir().unwrap();
        assert_eq!(recorded(cache.path()).unwrap(), None);
        let build = Gem5Build {
            binary: cache.path().join("gem5/k/gem5.opt"),
            key: "k".into(),
            source: "/src/gem5".into(),
            identity: "git-abc".into(),
            variant: "opt".into(),
            isa: "X86".into(),
            version: "24.0.0.1".into(),
            blake3: "0".repeat(64),
            libpython: None,
            work_dir: cache.path().join("gem5-work/git-abc"),
            log: cache.path().join("gem5-work/git-abc/build-X86-opt.log"),
            scons_seconds: 1.0,
            jobs: 2,
        };
        write_build(&recorded_path(cache.path()), &build).unwrap();
        let message = format!("{:#}", recorded(cache.path()).unwrap_err());
        assert!(message.contains("simctl build-gem5"), "{message}");
        std::fs::create_dir_all(build.binary.parent().unwrap()).unwrap();
        std::fs::write(&build.binary, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&build.binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(recorded(cache.path()).unwrap(), Some(build));
    }
}

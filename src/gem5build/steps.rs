//! Progress of a gem5 scons build: gem5's SConstruct prints one ` [     CXX] src -> obj` line
//! per build step (compile, link, embedded Python, generated params). The bar counts those
//! lines against the number of steps a whole build of the same configuration took, remembered
//! in the cache from the first complete build (the log of a build that started from nothing).
//!
//! Why not `scons --dry-run` to count: SCons refuses a dry run while its configure checks are not
//! cached ("Cannot create configure directory .sconf_temp within a dry-run"), which is exactly
//! the case of a first build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fsutil::write_atomic;

/// A rough count of the steps of a whole gem5 v24.0 `build/X86/gem5.opt` build (about 700
/// embedded Python modules at two steps each, plus the C++ objects, generated parameter and
/// debug-flag files, and the links), shown as `~N` until this cache has counted a build itself.
pub const STEP_ESTIMATE: u64 = 3200;

/// First line of a build log started on an empty build directory: only such a log counts
/// every step of the configuration.
pub const FRESH_MARKER: &str = "simctl build-gem5: fresh build";

/// Whether a scons output line is one build step (` [     CXX] ...`, ` [    LINK] ...`,
/// ` [EMBED PY] ...`): a bracketed upper-case tag of gem5's `Transform` strings.
pub fn is_step(line: &str) -> bool {
    let Some(rest) = line.strip_prefix(" [") else {
        return false;
    };
    let Some((tag, _)) = rest.split_once("] ") else {
        return false;
    };
    let tag = tag.trim();
    !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '_')
}

/// Step lines in a log so far (0 when it does not exist yet).
pub fn count_in_log(log: &Path) -> Result<u64> {
    match std::fs::read(log) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| is_step(line))
            .count() as u64),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", log.display())),
    }
}

/// Whether the log covers a build from nothing (its first line is [`FRESH_MARKER`]).
pub fn log_is_fresh(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.lines().next() == Some(FRESH_MARKER))
}

/// Remembered step counts per configuration (`<gem5 version> <ISA> <variant>`), in the cache.
#[derive(Debug)]
pub struct StepCounts {
    path: PathBuf,
}

impl StepCounts {
    pub fn in_cache(cache: &Path) -> StepCounts {
        StepCounts {
            path: cache.join("gem5-work").join("step-counts.toml"),
        }
    }

    fn read(&self) -> BTreeMap<String, u64> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default()
    }

    pub fn get(&self, config: &str) -> Option<u64> {
        self.read().get(config).copied()
    }

    pub fn remember(&self, config: &str, steps: u64) -> Result<()> {
        let mut counts = self.read();
        counts.insert(config.to_string(), steps);
        let text = toml::to_string(&counts).context("cannot serialise step counts")?;
        write_atomic(&self.path, text.as_bytes())
    }
}

/// How many steps a whole build of `config` takes, and whether that is counted or estimated.
pub fn expected_steps(counts: &StepCounts, config: &str) -> (u64, bool) {
    match counts.get(config) {
        Some(steps) => (steps, true),
        None => (STEP_ESTIMATE, false),
    }
}

/// A scons process already building in `work` (started by an earlier simctl that was killed,
/// or by hand), with the file its output goes to. Found through /proc: its working directory
/// is `work` and its command line runs scons.
pub fn running_scons(work: &Path) -> Option<(u32, Option<PathBuf>)> {
    let work = work.canonicalize().ok()?;
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let proc_dir = entry.path();
        if std::fs::read_link(proc_dir.join("cwd")).ok().as_deref() != Some(work.as_path()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let is_scons = cmdline.split(|b| *b == 0).take(2).any(|arg| {
            Path::new(&*String::from_utf8_lossy(arg))
                .file_name()
                .is_some_and(|name| name == "scons")
        });
        if is_scons {
            let log = std::fs::read_link(proc_dir.join("fd/1"))
                .ok()
                .filter(|path| path.is_file());
            return Some((pid, log));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_are_the_bracketed_transform_lines() {
        for line in [
            " [     CXX] src/python/gem5py.cc -> X86/python/gem5py.pyo",
            " [    LINK]  -> X86/gem5py",
            " [EMBED PY] src/systemc/Tlm.py -> X86/systemc/Tlm.py.cc",
            " [ TRACING]  -> X86/debug/Event.hh",
            " [SO PARAM] BaseCPU -> X86/params/BaseCPU.hh",
        ] {
            assert!(is_step(line), "{line}");
        }
        for line in [
            "scons: Reading SConscript files ...",
            "Checking for C header file Python.h... yes",
            "[     CXX] no leading space",
            " [lower] x",
            " []  empty",
            "In file included from src/base/x.hh:3: [-Wfoo] warning",
        ] {
            assert!(!is_step(line), "{line}");
        }
    }

    #[test]
    fn counts_are_remembered_per_configuration() {
        let cache = tempfile::tempdir().unwrap();
        let counts = StepCounts::in_cache(cache.path());
        assert_eq!(
            expected_steps(&counts, "24.0.0.1 X86 opt"),
            (STEP_ESTIMATE, false)
        );
        counts.remember("24.0.0.1 X86 opt", 3000).unwrap();
        counts.remember("24.0.0.1 X86 fast", 2900).unwrap();
        assert_eq!(expected_steps(&counts, "24.0.0.1 X86 opt"), (3000, true));
        assert_eq!(counts.get("24.0.0.1 X86 fast"), Some(2900));
    }

    #[test]
    fn log_counting_and_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        assert_eq!(count_in_log(&log).unwrap(), 0);
        std::fs::write(
            &log,
            format!("{FRESH_MARKER}\nscons: Building targets ...\n [     CXX] a.cc -> a.o\n [    LINK]  -> gem5.opt\n"),
        )
        .unwrap();
        assert_eq!(count_in_log(&log).unwrap(), 2);
        assert!(log_is_fresh(&log));
        std::fs::write(&log, " [     CXX] a.cc -> a.o\n").unwrap();
        assert!(!log_is_fresh(&log));
    }

    #[test]
    fn a_scons_running_in_the_work_dir_is_found_with_its_log() {
        let bin = tempfile::tempdir().unwrap();
        let script = bin.path().join("scons");
        // A builtin that waits on stdin: no grandchild to clean up, "scons" stays argv[1].
        std::fs::write(&script, "read line\n").unwrap();
        let work = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let log = work.path().join("build.log");
        let mut child = std::process::Command::new("sh")
            .arg(&script)
            .current_dir(work.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let found = running_scons(work.path());
        let not_there = running_scons(elsewhere.path());
        child.kill().unwrap();
        child.wait().unwrap();
        let (pid, found_log) = found.expect("the scons in the work dir");
        assert_eq!(pid, child.id());
        assert_eq!(found_log, Some(log.canonicalize().unwrap()));
        assert_eq!(not_there, None);
    }
}

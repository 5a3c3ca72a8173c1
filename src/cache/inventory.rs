//! What is in the cache and who uses it: every entry of every artifact kind with its size (disk
//! usage like `du`), last use and state, the run directories and artifacts that reference it,
//! and the plan of what `simctl cache gc` removes.
//!
//! References are found by key: artifact keys are 32 hex digits, and a run records the paths or
//! keys of what it used (run.toml, status.json), an artifact the keys it was built from (its
//! key file). Any 32-hex-digit word in those files counts, whatever field it is in, so the scan
//! does not depend on how a run record is laid out (and cannot confuse keys: 128-bit hashes).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::lock::{KeyLock, lock_path};
use super::{FAILED_SUFFIX, KEY_FILE, is_key, staging_key};

/// Prefix of an artifact that `gc` is removing (renamed first, so it never looks finished).
pub const REMOVING_PREFIX: &str = ".removing-";

/// Files of a run directory that name the artifacts the run used.
const RUN_RECORDS: [&str; 2] = ["run.toml", "status.json"];
/// How deep below a `--runs` directory run directories are looked for (sweeps nest them).
const RUN_SEARCH_DEPTH: usize = 4;

/// The state of one entry of a kind directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A finished artifact (it has its key file).
    Artifact,
    /// A failed build kept for its logs.
    Failed,
    /// A build in progress (`live`: its lock is held) or left by a killed simctl.
    Staging { live: bool },
    /// An artifact `gc` was removing when it was stopped.
    Removing,
    /// A key directory without a key file: never an artifact, not in use.
    Incomplete,
}

impl State {
    pub fn describe(&self) -> &'static str {
        match self {
            State::Artifact => "ok",
            State::Failed => "failed build (logs)",
            State::Staging { live: true } => "being built",
            State::Staging { live: false } => "stale staging (killed build)",
            State::Removing => "half-removed",
            State::Incomplete => "incomplete",
        }
    }
}

/// One directory in `<cache>/<kind>/`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: String,
    pub name: String,
    pub path: PathBuf,
    /// The artifact key the entry belongs to, if its name says.
    pub key: Option<String>,
    pub state: State,
    /// Disk usage in bytes (allocated blocks, hard links once).
    pub bytes: u64,
    /// Last use of an artifact (see `Store::lookup`), else last change.
    pub modified: SystemTime,
    /// Keys this artifact was built from (from its key file).
    pub inputs: Vec<String>,
}

/// A top-level directory of the cache that is not an artifact kind (gem5's build tree, Go's build
/// cache, kernel objects kept between builds): shown, never removed.
#[derive(Debug, Clone)]
pub struct Other {
    pub name: String,
    pub bytes: u64,
}

/// A run directory and the keys it names.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub dir: PathBuf,
    pub modified: SystemTime,
    pub keys: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// The artifact kind directories (`<cache>/kernels`, ...).
    pub kind_dirs: Vec<PathBuf>,
    pub entries: Vec<Entry>,
    pub others: Vec<Other>,
    pub runs: Vec<RunRef>,
    /// The key of the gem5 build `simctl build-gem5` recorded: what `simctl run` uses without
    /// being told, so kept however long unused (rebuilding it takes an hour).
    pub recorded_gem5: Option<String>,
}

impl Inventory {
    /// Reads the cache at `root` and the run directories under `run_roots`.
    pub fn scan(root: &Path, run_roots: &[PathBuf]) -> Result<Inventory> {
        let mut inventory = Inventory::default();
        let top = match std::fs::read_dir(root) {
            Ok(top) => top,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(inventory),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", root.display())),
        };
        let mut seen = HashSet::new();
        let mut kinds: Vec<PathBuf> = top
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        kinds.sort();
        for kind_dir in kinds {
            let kind = file_name(&kind_dir);
            match scan_kind(&kind_dir, &kind, &mut seen)? {
                Some(entries) => {
                    inventory.entries.extend(entries);
                    inventory.kind_dirs.push(kind_dir);
                }
                None => inventory.others.push(Other {
                    name: kind,
                    bytes: disk_usage(&kind_dir, &mut seen),
                }),
            }
        }
        for run_root in run_roots {
            inventory.runs.extend(scan_runs(run_root));
        }
        inventory.recorded_gem5 =
            crate::gem5build::binary::read_build(&crate::gem5build::binary::recorded_path(root))
                .ok()
                .map(|build| build.key);
        Ok(inventory)
    }

    /// The runs and artifacts that reference the artifact `key`.
    pub fn referenced_by(&self, key: &str) -> Vec<String> {
        let runs = self
            .runs
            .iter()
            .filter(|run| run.keys.contains(key))
            .map(|run| run.dir.display().to_string());
        let artifacts = self
            .entries
            .iter()
            .filter(|e| e.state == State::Artifact && e.inputs.iter().any(|k| k == key))
            .map(|e| format!("{}/{}", e.kind, e.name));
        let recorded = (self.recorded_gem5.as_deref() == Some(key))
            .then(|| "gem5/recorded.toml (simctl run's gem5)".to_string());
        runs.chain(artifacts).chain(recorded).collect()
    }

    /// What `gc` removes: entries with the reason, given the age limit and the time now.
    pub fn garbage(&self, older_than: Duration, now: SystemTime) -> Vec<(&Entry, String)> {
        let old = |time: SystemTime| now.duration_since(time).is_ok_and(|age| age > older_than);
        // Kept: artifacts used recently or named by a recent run, and what they were built from.
        let mut kept: BTreeSet<String> = self
            .runs
            .iter()
            .filter(|run| !old(run.modified))
            .flat_map(|run| run.keys.iter().cloned())
            .collect();
        kept.extend(
            self.entries
                .iter()
                .filter(|e| e.state == State::Artifact && !old(e.modified))
                .filter_map(|e| e.key.clone()),
        );
        kept.extend(self.recorded_gem5.iter().cloned());
        loop {
            let inputs: Vec<String> = self
                .entries
                .iter()
                .filter(|e| e.state == State::Artifact)
                .filter(|e| e.key.as_ref().is_some_and(|key| kept.contains(key)))
                .flat_map(|e| e.inputs.iter().cloned())
                .filter(|input| !kept.contains(input))
                .collect();
            if inputs.is_empty() {
                break;
            }
            kept.extend(inputs);
        }
        self.entries
            .iter()
            .filter_map(|entry| {
                let reason = match &entry.state {
                    State::Artifact => {
                        let key = entry.key.as_deref().unwrap_or_default();
                        (!kept.contains(key)).then(|| {
                            format!(
                                "unused for {} and no recent run references it",
                                age(now, entry.modified)
                            )
                        })
                    }
                    State::Failed => old(entry.modified)
                        .then(|| format!("failed build {} old", age(now, entry.modified))),
                    State::Staging { live: false } => {
                        Some("staging directory of a killed build".into())
                    }
                    State::Staging { live: true } => None,
                    State::Removing => Some("left by an interrupted gc".into()),
                    State::Incomplete => Some("never finished (no key file)".into()),
                }?;
                Some((entry, reason))
            })
            .collect()
    }
}

/// The entries of one kind directory, or None if it is not an artifact kind (no lock files, no
/// finished, failed or staging entries).
fn scan_kind(
    kind_dir: &Path,
    kind: &str,
    seen: &mut HashSet<(u64, u64)>,
) -> Result<Option<Vec<Entry>>> {
    let mut names: Vec<String> = std::fs::read_dir(kind_dir)
        .with_context(|| format!("cannot read {}", kind_dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let is_store = names.iter().any(|name| {
        name.strip_suffix(".lock").is_some_and(is_key)
            || name.strip_suffix(FAILED_SUFFIX).is_some_and(is_key)
            || staging_key(name).is_some()
            || kind_dir.join(name).join(KEY_FILE).is_file()
    });
    if !is_store {
        return Ok(None);
    }
    let mut entries = Vec::new();
    for name in names {
        let path = kind_dir.join(&name);
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if !meta.is_dir() {
            continue; // lock files
        }
        let (key, state) = if let Some(key) = staging_key(&name) {
            let live = !KeyLock::is_free(kind_dir, key);
            (Some(key.to_string()), State::Staging { live })
        } else if let Some(key) = name.strip_suffix(FAILED_SUFFIX).filter(|k| is_key(k)) {
            (Some(key.to_string()), State::Failed)
        } else if name.starts_with(REMOVING_PREFIX) {
            (None, State::Removing)
        } else if path.join(KEY_FILE).is_file() {
            (Some(name.clone()), State::Artifact)
        } else if is_key(&name) {
            (Some(name.clone()), State::Incomplete)
        } else {
            // Not named by the store: someone else's, never listed for removal.
            continue;
        };
        let inputs = match state {
            State::Artifact => std::fs::read_to_string(path.join(KEY_FILE))
                .map(|text| {
                    hex_keys(&text)
                        .filter(|k| Some(k) != key.as_ref())
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        entries.push(Entry {
            kind: kind.to_string(),
            bytes: disk_usage(&path, seen),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            name,
            path,
            key,
            state,
            inputs,
        });
    }
    Ok(Some(entries))
}

/// Run directories (those with a run record) under `root`, with the keys they name.
fn scan_runs(root: &Path) -> Vec<RunRef> {
    let mut runs: BTreeMap<PathBuf, RunRef> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root)
        .max_depth(RUN_SEARCH_DEPTH)
        .into_iter()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy();
        if !RUN_RECORDS.contains(&name.as_ref()) || !entry.file_type().is_file() {
            continue;
        }
        let Some(dir) = entry.path().parent() else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let modified = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let run = runs.entry(dir.to_path_buf()).or_insert_with(|| RunRef {
            dir: dir.to_path_buf(),
            modified,
            keys: BTreeSet::new(),
        });
        run.modified = run.modified.max(modified);
        run.keys.extend(hex_keys(&text));
    }
    runs.into_values().collect()
}

/// Every word of exactly 32 lowercase hex digits in `text` (artifact keys, also inside paths).
pub fn hex_keys(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_hexdigit() || c.is_ascii_uppercase())
        .filter(|word| word.len() == 32)
        .map(str::to_string)
}

/// Bytes allocated on disk under `path`, like `du -s`: sparse files count what they use and a
/// file with several hard links counts once (across the whole scan, through `seen`).
pub fn disk_usage(path: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.nlink() <= 1 || meta.is_dir() || seen.insert((meta.dev(), meta.ino())))
        .map(|meta| meta.blocks() * 512)
        .sum()
}

/// Removes one entry for `gc`: under its key's lock, an artifact is first renamed so that no
/// reader ever sees it half-deleted (a QEMU that has its disk open keeps reading it).
pub fn remove(entry: &Entry) -> Result<()> {
    let kind_dir = entry
        .path
        .parent()
        .context("an entry has a kind directory")?;
    let lock = match (&entry.state, &entry.key) {
        (State::Removing, _) | (_, None) => None,
        (_, Some(key)) => Some(KeyLock::try_acquire(kind_dir, key).with_context(|| {
            format!(
                "{} is in use (its lock {} is held); left in place",
                entry.path.display(),
                lock_path(kind_dir, key).display()
            )
        })?),
    };
    super::refuse_mounted(&entry.path)?;
    let doomed = match entry.state {
        State::Removing => entry.path.clone(),
        _ => {
            let doomed = kind_dir.join(format!(
                "{REMOVING_PREFIX}{}-{}",
                entry.name,
                std::process::id()
            ));
            std::fs::rename(&entry.path, &doomed)
                .with_context(|| format!("cannot move {} aside", entry.path.display()))?;
            doomed
        }
    };
    super::remove_tree(&doomed)?;
    let artifact_left = entry
        .key
        .as_ref()
        .is_some_and(|key| kind_dir.join(key).exists());
    if let Some(lock) = lock {
        if artifact_left {
            drop(lock);
        } else {
            lock.remove();
        }
    }
    Ok(())
}

/// Removes lock files nobody holds (a build makes them again); returns how many.
pub fn remove_free_locks(kind_dirs: &[PathBuf]) -> usize {
    let mut removed = 0;
    for kind_dir in kind_dirs {
        let Ok(names) = std::fs::read_dir(kind_dir) else {
            continue;
        };
        for name in names.flatten() {
            let name = name.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".lock") else {
                continue;
            };
            if let Some(lock) = KeyLock::try_acquire(kind_dir, key) {
                lock.remove();
                removed += 1;
            }
        }
    }
    removed
}

/// "3 d", "5 h", "12 min", "40 s": how long ago `then` was.
pub fn age(now: SystemTime, then: SystemTime) -> String {
    let seconds = now.duration_since(then).unwrap_or_default().as_secs();
    match seconds {
        s if s >= 86_400 => format!("{} d", s / 86_400),
        s if s >= 3_600 => format!("{} h", s / 3_600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_gem5_build_is_kept_however_long_unused() {
        let cache = tempfile::tempdir().unwrap();
        let key = "df972994dcf42cb66675589490140be4";
        let build = cache.path().join("gem5").join(key);
        std::fs::create_dir_all(&build).unwrap();
        std::fs::write(build.join(crate::cache::KEY_FILE), key).unwrap();
        std::fs::write(cache.path().join(format!("gem5/{key}.lock")), "").unwrap();
        let later = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
        let garbage = |inventory: &Inventory| -> Vec<String> {
            inventory
                .garbage(Duration::from_secs(3600), later)
                .iter()
                .map(|(entry, _)| entry.name.clone())
                .collect()
        };
        let unrecorded = Inventory::scan(cache.path(), &[]).unwrap();
        assert_eq!(garbage(&unrecorded), [key]);

        std::fs::write(
            crate::gem5build::binary::recorded_path(cache.path()),
            format!(
                "binary = \"{}/gem5.opt\"\nkey = \"{key}\"\nsource = \"s\"\n\
                 identity = \"git-1\"\nvariant = \"opt\"\nisa = \"X86\"\n\
                 version = \"24.0.0.1\"\nblake3 = \"b\"\nwork_dir = \"/w\"\nlog = \"/l\"\n\
                 scons_seconds = 1.0\njobs = 2\n",
                build.display()
            ),
        )
        .unwrap();
        let recorded = Inventory::scan(cache.path(), &[]).unwrap();
        assert_eq!(recorded.recorded_gem5.as_deref(), Some(key));
        assert!(garbage(&recorded).is_empty());
        assert_eq!(
            recorded.referenced_by(key),
            ["gem5/recorded.toml (simctl run's gem5)"]
        );
    }
}

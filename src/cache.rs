//! The content-addressed artifact store: kernels, root filesystems, images, workload builds and
//! checkpoints live in `<cache>/<kind>/<key>/`, where the key hashes everything that shaped them.
//!
//! Architecture invariant: a directory under a key is complete. Builders fill a staging
//! directory and it is renamed into place only when the build succeeded; a failed build is moved
//! to `<kind>/<key>.failed/` so its logs stay readable, and never looks finished. Artifacts are
//! never changed in place: a different input gives a different key.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fsutil::{free_bytes, is_disk_full};
use lock::KeyLock;

pub mod cli;
pub mod inventory;
mod lock;

/// File written into every finished artifact: the inputs its key was made from.
pub const KEY_FILE: &str = "simctl-key.txt";

/// Bump to invalidate every cached artifact when the layout of artifacts changes.
const STORE_VERSION: &str = "1";

/// The hash of named inputs. Every input is recorded by name so a key can be explained.
#[derive(Clone)]
pub struct CacheKey {
    hasher: blake3::Hasher,
    description: Vec<String>,
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheKey")
            .field("hex", &self.hex())
            .field("inputs", &self.description)
            .finish()
    }
}

impl CacheKey {
    /// A key for one kind of artifact with a recipe version: bumping the version when the
    /// recipe changes makes every old artifact of that kind stale.
    pub fn new(kind: &str, recipe_version: u32) -> CacheKey {
        let mut key = CacheKey {
            hasher: blake3::Hasher::new(),
            description: Vec::new(),
        };
        key.push("store", STORE_VERSION.as_bytes());
        key.push("kind", kind.as_bytes());
        key.push("recipe", recipe_version.to_string().as_bytes());
        key
    }

    fn push(&mut self, name: &str, bytes: &[u8]) {
        // Length-prefixed so that ("ab","c") and ("a","bc") hash differently.
        for part in [name.as_bytes(), bytes] {
            self.hasher.update(&(part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
    }

    /// Adds a named string input.
    pub fn text(mut self, name: &str, value: &str) -> CacheKey {
        self.push(name, value.as_bytes());
        self.description.push(format!("{name} = {value}"));
        self
    }

    /// Adds the contents of a file (not its path or time stamps).
    pub fn file(mut self, name: &str, path: &Path) -> Result<CacheKey> {
        let digest = hash_file(path)?;
        self.push(name, digest.as_bytes());
        self.description
            .push(format!("{name} = file {} blake3:{digest}", path.display()));
        Ok(self)
    }

    /// Adds a directory tree: relative paths, file modes, link targets and contents, in sorted
    /// order, so the same tree gives the same key on any machine.
    pub fn tree(mut self, name: &str, dir: &Path) -> Result<CacheKey> {
        let digest = hash_tree(dir)?;
        self.push(name, digest.as_bytes());
        self.description
            .push(format!("{name} = tree {} blake3:{digest}", dir.display()));
        Ok(self)
    }

    /// Adds another key (an artifact this one is built from).
    pub fn key(mut self, name: &str, other: &CacheKey) -> CacheKey {
        let hex = other.hex();
        self.push(name, hex.as_bytes());
        self.description.push(format!("{name} = key {hex}"));
        self
    }

    /// The key as a directory name: 32 hex digits (128 bits) of the blake3 hash.
    pub fn hex(&self) -> String {
        self.hasher.finalize().to_hex()[..32].to_string()
    }

    /// The inputs, one per line, as written to [`KEY_FILE`].
    pub fn describe(&self) -> String {
        let mut text = format!("key = {}\n", self.hex());
        for line in &self.description {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// blake3 of a file's contents, hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    hasher
        .update_reader(file)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// blake3 of a directory tree (names, modes, symlink targets, contents), hex.
pub fn hash_tree(dir: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut hasher = blake3::Hasher::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
        let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let meta = entry.path().symlink_metadata()?;
        let name = relative.to_string_lossy();
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(&meta.permissions().mode().to_le_bytes());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            hasher.update(target.to_string_lossy().as_bytes());
        } else if meta.is_file() {
            hasher.update(&meta.len().to_le_bytes());
            let file = File::open(entry.path())
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            hasher.update_reader(file)?;
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The artifact cache on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the artifact of `kind` with `key` lives (whether or not it exists yet).
    pub fn path(&self, kind: &str, key: &CacheKey) -> PathBuf {
        self.root.join(kind).join(key.hex())
    }

    /// The finished artifact, if it was built before. Finding it counts as a use: its
    /// directory's modification time is the "last used" that `simctl cache gc` goes by.
    pub fn lookup(&self, kind: &str, key: &CacheKey) -> Option<PathBuf> {
        let path = self.path(kind, key);
        if !path.join(KEY_FILE).is_file() {
            return None;
        }
        // Not a change of the artifact (its files stay as they are); a read-only cache is fine.
        let _ = File::open(&path).and_then(|dir| dir.set_modified(std::time::SystemTime::now()));
        Some(path)
    }

    /// Returns the finished artifact, building it first when needed. `build` fills the staging
    /// directory it is given; only when it returns Ok is that directory renamed into place.
    /// Concurrent callers with the same key wait for each other (a lock file, with a message
    /// naming the builder's pid), so a sweep running many runs in parallel builds each artifact
    /// once. Staging directories that no live build owns (simctl was killed) are removed first.
    pub fn get_or_build(
        &self,
        kind: &str,
        key: &CacheKey,
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Artifact> {
        if let Some(path) = self.lookup(kind, key) {
            return Ok(Artifact { path, reused: true });
        }
        let kind_dir = self.root.join(kind);
        let hex = key.hex();
        std::fs::create_dir_all(&kind_dir)
            .map_err(anyhow::Error::new)
            .map_err(|err| explain_disk_full(err, &kind_dir, kind, &hex))
            .with_context(|| format!("cannot create cache directory {}", kind_dir.display()))?;
        let _lock = KeyLock::acquire(&kind_dir, kind, &hex)?;
        if let Some(path) = self.lookup(kind, key) {
            return Ok(Artifact { path, reused: true });
        }
        remove_stale_staging(&kind_dir, &hex);
        let staging = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{hex}-"))
            .tempdir_in(&kind_dir)
            .map_err(anyhow::Error::new)
            .map_err(|err| explain_disk_full(err, &kind_dir, kind, &hex))
            .with_context(|| {
                format!(
                    "cannot create a staging directory in {}",
                    kind_dir.display()
                )
            })?;
        let built = build(staging.path())
            .and_then(|()| finish(staging.path(), key))
            .map_err(|err| explain_disk_full(err, &kind_dir, kind, &hex));
        match built {
            Ok(()) => {
                let staged = staging.keep();
                let final_path = self.path(kind, key);
                if final_path.exists() {
                    // Left by a build that died before writing KEY_FILE: not an artifact.
                    remove_tree(&final_path).with_context(|| {
                        format!("cannot remove incomplete {}", final_path.display())
                    })?;
                }
                std::fs::rename(&staged, &final_path).with_context(|| {
                    format!(
                        "cannot move {} to {}",
                        staged.display(),
                        final_path.display()
                    )
                })?;
                Ok(Artifact {
                    path: final_path,
                    reused: false,
                })
            }
            Err(err) => {
                if ran_out_of_space(&err, &kind_dir) {
                    // Keep the logs that say what happened, give the rest of the space back.
                    keep_only_logs(staging.path());
                }
                let failed = kind_dir.join(format!("{hex}{FAILED_SUFFIX}"));
                let _ = remove_tree(&failed);
                let staged = staging.keep();
                match std::fs::rename(&staged, &failed) {
                    Ok(()) => Err(err.context(format!(
                        "building {kind} {hex} failed; its files and logs are kept in {}",
                        failed.display()
                    ))),
                    Err(_) => {
                        let _ = remove_tree(&staged);
                        Err(err)
                    }
                }
            }
        }
    }
}

/// Prefix of the directory a build fills before it is renamed to `<key>/`.
const STAGING_PREFIX: &str = ".staging-";
/// Suffix of the directory a failed build is kept in.
const FAILED_SUFFIX: &str = ".failed";

/// Marks a filled staging directory finished: the key file, and permissions for everyone who
/// shares the cache (staging dirs are created 0700; e.g. Slurm jobs of the same group read it).
fn finish(staging: &Path, key: &CacheKey) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let key_file = staging.join(KEY_FILE);
    std::fs::write(&key_file, key.describe())
        .with_context(|| format!("cannot write {}", key_file.display()))?;
    std::fs::set_permissions(staging, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} readable", staging.display()))
}

/// The key a staging directory belongs to (`.staging-<key>-<random>`).
fn staging_key(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(STAGING_PREFIX)?;
    let (key, _) = rest.split_once('-')?;
    is_key(key).then_some(key)
}

/// Whether `name` has the form of an artifact key (32 hex digits, see [`CacheKey::hex`]).
fn is_key(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the staging directories of `kind_dir` that no running build owns: those of
/// `own_key` (whose lock the caller holds) and those whose key lock is free. A build holds its
/// key's lock from before it creates its staging directory until it renamed it, so a free lock
/// means its builder died (kill -9, power loss) and the directory is garbage.
fn remove_stale_staging(kind_dir: &Path, own_key: &str) {
    let Ok(entries) = std::fs::read_dir(kind_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = staging_key(&name) else {
            continue;
        };
        let stale = key == own_key || KeyLock::try_acquire(kind_dir, key).is_some();
        if stale && let Err(err) = remove_tree(&entry.path()) {
            eprintln!("warning: left the staging directory of a killed build: {err:#}");
        }
    }
}

/// Below this many free bytes, a failed build is taken as a victim of a full disk: tools that
/// run out of space (tar, make, mke2fs) only say so in their logs.
const NEARLY_FULL: u64 = 1 << 20;

/// Whether a build failed with `err` because the file system of `dir` is (nearly) full.
fn ran_out_of_space(err: &anyhow::Error, dir: &Path) -> bool {
    is_disk_full(err) || free_bytes(dir).is_some_and(|free| free < NEARLY_FULL)
}

/// Turns an error of a build that ran out of disk into one that says so and what to do.
fn explain_disk_full(err: anyhow::Error, kind_dir: &Path, kind: &str, key: &str) -> anyhow::Error {
    if !ran_out_of_space(&err, kind_dir) {
        return err;
    }
    let free = free_bytes(kind_dir).map_or("unknown".to_string(), human_bytes);
    err.context(format!(
        "no space left on device while writing {kind} {key} into {} ({free} free); hint: free \
         space (`simctl cache ls` shows what takes it, `simctl cache gc` removes what is unused) \
         or set SIMCTL_CACHE to a larger disk",
        kind_dir.display()
    ))
}

/// Removes everything under `dir` except files whose name ends in `.log`.
fn keep_only_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_log = path.extension().is_some_and(|ext| ext == "log");
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = remove_tree(&path);
        } else if !is_log {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Removes a directory tree, but never through a mount point: a build killed with its chroot's
/// /proc, /sys or /dev still mounted (mmdebstrap) must not have them emptied.
pub fn remove_tree(path: &Path) -> Result<()> {
    refuse_mounted(path)?;
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// An error if file systems are mounted at or below `path`.
fn refuse_mounted(path: &Path) -> Result<()> {
    let mounts = mounts_under(path);
    if !mounts.is_empty() {
        bail!(
            "{} has file systems mounted in it ({}); hint: umount them, then remove it \
             (`simctl cache gc` does)",
            path.display(),
            mounts
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Mount points at or below `dir` (from /proc/self/mounts, whose octal escapes are undone).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .map(|field| {
            PathBuf::from(
                field
                    .replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .filter(|mount| mount.starts_with(dir))
        .collect()
}

/// Bytes for people: 1536 -> "1.5 KiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A finished artifact directory and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub path: PathBuf,
    pub reused: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_input_and_on_nothing_else() {
        let a = CacheKey::new("kernel", 1)
            .text("source", "linux-6.1")
            .text("jobs", "x");
        let same = CacheKey::new("kernel", 1)
            .text("source", "linux-6.1")
            .text("jobs", "x");
        let other_value = CacheKey::new("kernel", 1)
            .text("source", "linux-6.12")
            .text("jobs", "x");
        let other_recipe = CacheKey::new("kernel", 2)
            .text("source", "linux-6.1")
            .text("jobs", "x");
        let shifted = CacheKey::new("kernel", 1)
            .text("source", "linux-6.1j")
            .text("obs", "x");
        assert_eq!(a.hex(), same.hex());
        for different in [&other_value, &other_recipe, &shifted] {
            assert_ne!(a.hex(), different.hex());
        }
        assert_eq!(a.hex().len(), 32);
        assert!(a.describe().contains("source = linux-6.1"));
    }

    #[test]
    fn tree_hash_sees_contents_names_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "1").unwrap();
        let first = hash_tree(dir.path()).unwrap();
        std::fs::write(dir.path().join("a"), "2").unwrap();
        let changed = hash_tree(dir.path()).unwrap();
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let chmod = hash_tree(dir.path()).unwrap();
        assert_ne!(first, changed);
        assert_ne!(changed, chmod);
    }

    #[test]
    fn build_runs_once_and_failures_never_look_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let key = CacheKey::new("thing", 1).text("x", "1");

        let err = store
            .get_or_build("thing", &key, |staging| {
                std::fs::write(staging.join("build.log"), "compiler said no")?;
                anyhow::bail!("compile failed")
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains(".failed"), "{err:#}");
        assert!(store.lookup("thing", &key).is_none());
        let failed_log = dir
            .path()
            .join("thing")
            .join(format!("{}.failed/build.log", key.hex()));
        assert_eq!(
            std::fs::read_to_string(failed_log).unwrap(),
            "compiler said no"
        );

        let built = store
            .get_or_build("thing", &key, |staging| {
                Ok(std::fs::write(staging.join("out"), "ok")?)
            })
            .unwrap();
        assert!(!built.reused);
        assert_eq!(
            std::fs::read_to_string(built.path.join("out")).unwrap(),
            "ok"
        );
        let again = store
            .get_or_build("thing", &key, |_| anyhow::bail!("must not rebuild"))
            .unwrap();
        assert!(again.reused);
        assert_eq!(again.path, built.path);
    }

    #[test]
    fn staging_of_a_live_build_stays_and_that_of_a_dead_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let key = |x: &str| CacheKey::new("thing", 1).text("x", x).hex();
        let kind_dir = dir.path().join("thing");
        let staging = |k: &str| kind_dir.join(format!("{STAGING_PREFIX}{k}-abc123"));
        for k in ["own", "live", "dead"] {
            std::fs::create_dir_all(staging(&key(k))).unwrap();
        }
        let live = KeyLock::try_acquire(&kind_dir, &key("live")).unwrap();
        let own = CacheKey::new("thing", 1).text("x", "own");
        store.get_or_build("thing", &own, |_| Ok(())).unwrap();
        assert!(staging(&key("live")).is_dir(), "a build holds its lock");
        assert!(!staging(&key("dead")).exists() && !staging(&key("own")).exists());
        drop(live);
    }

    #[test]
    fn a_lock_file_removed_while_waited_on_is_locked_anew() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyLock::acquire(dir.path(), "thing", "k").unwrap();
        let waiter = {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || KeyLock::acquire(&dir, "thing", "k").unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        // What gc does: delete the file while holding it, then release.
        first.remove();
        let second = waiter.join().unwrap();
        assert!(
            KeyLock::try_acquire(dir.path(), "k").is_none(),
            "the waiter holds the lock file the path names now"
        );
        drop(second);
        // Free at once, unless another test of this process forked a child in that moment: the
        // child shares the lock's open file until it execs (close-on-exec), which on a loaded
        // machine took long enough to fail a single try here (CI, 2026-12-01).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while KeyLock::try_acquire(dir.path(), "k").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the lock stayed held after its holder dropped it"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_tree_with_a_mount_in_it_is_never_removed() {
        // /proc is a mount point on every Linux system; nothing is removed (it is refused first).
        let err = remove_tree(Path::new("/proc")).unwrap_err();
        assert!(format!("{err:#}").contains("umount"), "{err:#}");
        assert!(mounts_under(Path::new("/nonexistent-simctl")).is_empty());
    }
}

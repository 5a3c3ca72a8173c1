//! The per-key build lock: `<cache>/<kind>/<key>.lock`, held (flock) by whoever builds that
//! artifact, from before its staging directory exists until the artifact is in place.
//!
//! flock locks belong to the open file and vanish with the process, so a killed build never
//! leaves a lock behind. The holder writes its pid into the file so that a waiting simctl can
//! say whom it waits for. `simctl cache gc` may delete lock files (holding them); a waiter
//! that was blocked on a deleted file notices that the path names another file now and
//! locks again, so two builders can never both believe they hold the lock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How often a waiting build checks whether the lock became free (and whether Ctrl-C came).
const POLL: Duration = Duration::from_millis(200);

/// A held build lock; dropping it releases the lock.
#[derive(Debug)]
pub struct KeyLock {
    file: File,
    path: PathBuf,
}

/// The lock file of `key` in `kind_dir`.
pub fn lock_path(kind_dir: &Path, key: &str) -> PathBuf {
    kind_dir.join(format!("{key}.lock"))
}

impl KeyLock {
    /// Takes the lock, waiting (with a message naming the holder) while another build has it.
    pub fn acquire(kind_dir: &Path, kind: &str, key: &str) -> Result<KeyLock> {
        let path = lock_path(kind_dir, key);
        let mut told = false;
        loop {
            let file = open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !told {
                        eprintln!(
                            "waiting for {kind} {key} being built by {} (lock {})",
                            holder(&path),
                            path.display()
                        );
                        told = true;
                    }
                    wait_for(&file, kind, key)?;
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            if let Some(mut lock) = KeyLock::held(file, &path) {
                // Who builds, for the message of anyone who waits; a failure only costs that.
                let _ = lock
                    .file
                    .set_len(0)
                    .and_then(|()| writeln!(lock.file, "{}", std::process::id()));
                return Ok(lock);
            }
        }
    }

    /// Whether nobody holds the lock (a missing lock file is free, and is not created).
    pub fn is_free(kind_dir: &Path, key: &str) -> bool {
        match File::open(lock_path(kind_dir, key)) {
            Ok(file) => file.try_lock().is_ok(),
            Err(_) => true,
        }
    }

    /// Takes the lock if nobody holds it.
    pub fn try_acquire(kind_dir: &Path, key: &str) -> Option<KeyLock> {
        let path = lock_path(kind_dir, key);
        let file = open(&path).ok()?;
        file.try_lock().ok()?;
        KeyLock::held(file, &path)
    }

    /// The lock on `file` is ours; it counts only if `path` still names that file.
    fn held(file: File, path: &Path) -> Option<KeyLock> {
        let same = match (file.metadata(), std::fs::metadata(path)) {
            (Ok(ours), Ok(named)) => ours.dev() == named.dev() && ours.ino() == named.ino(),
            _ => false,
        };
        if !same {
            return None;
        }
        Some(KeyLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Deletes the lock file while holding the lock (see the module comment), then releases it.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot create lock file {}", path.display()))
}

/// "pid N" of the lock's holder, as it wrote it, or "another simctl".
fn holder(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .map_or("another simctl".to_string(), |pid| format!("pid {pid}"))
}

/// Blocks until `file` is locked by us; Ctrl-C ends the wait.
fn wait_for(file: &File, kind: &str, key: &str) -> Result<()> {
    crate::process::install_signal_handlers();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(err)) => return Err(err.into()),
        }
        if crate::process::interrupted() {
            bail!("interrupted while waiting for {kind} {key} to be built");
        }
        std::thread::sleep(POLL);
    }
}

//! Small file-system helpers shared by every stage: atomic writes.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, so that a
/// reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    // Temp files are created 0600; outputs are meant to be read by others (group, CI).
    use std::os::unix::fs::PermissionsExt;
    temp.write_all(bytes)
        .and_then(|()| {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(|err| explain_full_disk(err, dir))?;
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A write that failed on a full file system says which one and what to do.
fn explain_full_disk(err: anyhow::Error, dir: &Path) -> anyhow::Error {
    if !is_disk_full(&err) {
        return err;
    }
    let free = free_bytes(dir).map_or("unknown".to_string(), crate::cache::human_bytes);
    err.context(format!(
        "the file system of {} is full ({free} free); hint: free space there, or write \
         elsewhere (for a run: --out on a larger disk); what was written before stays",
        dir.display()
    ))
}

/// Whether an error comes from a full file system (or an exhausted quota).
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        }) || cause.to_string().contains(NO_SPACE)
    })
}

/// What the C library calls ENOSPC; tools print it in their logs, which end up in our errors.
const NO_SPACE: &str = "No space left on device";

/// Free bytes for unprivileged users on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_on_a_full_file_system_names_it_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let full = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("cannot write status.json");
        let message = format!("{:#}", explain_full_disk(full, dir.path()));
        assert!(
            message.starts_with(&format!(
                "the file system of {} is full (",
                dir.path().display()
            )) && message.contains("hint: free space there, or write elsewhere (for a run: --out")
                && message.ends_with("cannot write status.json: no storage space"),
            "{message}"
        );
        let other = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let message = format!("{:#}", explain_full_disk(other, dir.path()));
        assert_eq!(message, "permission denied");
    }

    #[test]
    fn write_atomic_replaces_whole_file_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        write_atomic(&path, b"first version, longer").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }
}

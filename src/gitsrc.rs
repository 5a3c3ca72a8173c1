//! Identity of source trees kept in git (a kernel tree, a gem5 checkout): the commit plus a
//! hash of what differs from it, so that an edited tree never reuses an artifact built from
//! the unedited one, and a clean tree at a commit is the same source wherever it lives.

use std::path::Path;

use anyhow::{Context, Result};

use crate::process::Command;

/// Where a git source stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// The full commit id of HEAD (or of the requested revision).
    pub commit: String,
    /// blake3 of the uncommitted changes (tracked diff and untracked files); None when clean.
    pub changes: Option<String>,
}

fn git(repo: &Path) -> Command {
    Command::new("git").arg("-C").arg(repo)
}

/// Whether `dir` is inside a git repository (a checkout or a bare repository).
pub fn is_repository(dir: &Path) -> bool {
    git(dir)
        .args(["rev-parse", "--git-dir"])
        .read_stdout()
        .is_ok()
}

/// Whether `dir` is a bare repository (no working tree, so no uncommitted changes).
pub fn is_bare(dir: &Path) -> bool {
    git(dir)
        .args(["rev-parse", "--is-bare-repository"])
        .read_stdout()
        .is_ok_and(|out| out.trim() == "true")
}

/// The commit a revision (tag, branch, abbreviated id) names.
pub fn resolve(repo: &Path, rev: &str) -> Result<String> {
    let out = git(repo)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{rev}^{{commit}}"))
        .read_stdout()
        .with_context(|| {
            format!(
                "{} has no commit `{rev}`; hint: `git -C {} tag --list` shows the tags",
                repo.display(),
                repo.display()
            )
        })?;
    Ok(out.trim().to_string())
}

/// HEAD and the uncommitted changes of a working tree; None when `dir` is not in git.
pub fn working_tree_state(dir: &Path) -> Result<Option<GitState>> {
    if !is_repository(dir) {
        return Ok(None);
    }
    let commit = resolve(dir, "HEAD")?;
    if is_bare(dir) {
        return Ok(Some(GitState {
            commit,
            changes: None,
        }));
    }
    // Contents, not just names: editing an already modified file changes the identity too.
    let diff = git(dir)
        .args(["diff", "HEAD", "--binary", "--no-ext-diff", "--no-color"])
        .read_stdout()?;
    let untracked = git(dir)
        .args(["ls-files", "-z", "--others", "--exclude-standard"])
        .read_stdout()?;
    if diff.is_empty() && untracked.is_empty() {
        return Ok(Some(GitState {
            commit,
            changes: None,
        }));
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(diff.as_bytes());
    for name in untracked.split('\0').filter(|name| !name.is_empty()) {
        hasher.update(name.as_bytes());
        let path = dir.join(name);
        if path.is_file() {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            hasher.update_reader(file)?;
        }
    }
    Ok(Some(GitState {
        commit,
        changes: Some(hasher.finalize().to_hex().to_string()),
    }))
}

/// Files of a working tree as git sees them: tracked plus untracked-but-not-ignored, relative.
pub fn working_tree_files(dir: &Path) -> Result<Vec<String>> {
    let out = git(dir)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .read_stdout()?;
    let mut files: Vec<String> = out
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    files.dedup();
    Ok(files)
}

/// Writes the tree of `commit` into `dest` without the paths in `exclude`, through a temporary
/// index: works for bare repositories and never touches the repository's own index or tree.
pub fn export_commit(repo: &Path, commit: &str, exclude: &[&str], dest: &Path) -> Result<()> {
    let index_dir = tempfile::tempdir().context("cannot create a temp dir for a git index")?;
    let index = index_dir.path().join("index");
    let log = index_dir.path().join("git.log");
    let with_index = |command: Command| command.env("GIT_INDEX_FILE", &index);
    with_index(git(repo).args(["read-tree", commit])).run_logged(&log, None)?;
    if !exclude.is_empty() {
        with_index(
            git(repo)
                .args(["rm", "--cached", "-r", "-q", "--ignore-unmatch", "--"])
                .args(exclude.iter().copied()),
        )
        .run_logged(&log, None)?;
    }
    // A work tree of its own: checkout-index refuses to run in a bare repository without one.
    let dest = dest
        .canonicalize()
        .with_context(|| format!("cannot find {}", dest.display()))?;
    let mut work_tree = std::ffi::OsString::from("--work-tree=");
    work_tree.push(&dest);
    with_index(
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .arg(work_tree)
            .args(["checkout-index", "-a", "-f"]),
    )
    .run_logged(&log, None)
    .with_context(|| format!("cannot export {commit} into {}", dest.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs git in `dir` as a test author; panics when it fails.
    pub(crate) fn git_in(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    /// A git repository with one commit: `a.txt`, `tests/t.txt`, `src/x/tests/y.txt`.
    pub(crate) fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| git_in(dir.path(), args);
        run(&["init", "-q"]);
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        std::fs::create_dir_all(dir.path().join("tests")).unwrap();
        std::fs::write(dir.path().join("tests/t.txt"), "t\n").unwrap();
        std::fs::create_dir_all(dir.path().join("src/x/tests")).unwrap();
        std::fs::write(dir.path().join("src/x/tests/y.txt"), "y\n").unwrap();
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "one"]);
        run(&["tag", "v1"]);
        dir
    }

    #[test]
    fn clean_tree_is_its_commit_and_every_edit_changes_the_identity() {
        let repo = repo();
        let clean = working_tree_state(repo.path()).unwrap().unwrap();
        assert_eq!(clean.changes, None);
        assert_eq!(clean.commit, resolve(repo.path(), "v1").unwrap());
        assert_eq!(clean.commit.len(), 40);

        std::fs::write(repo.path().join("a.txt"), "b\n").unwrap();
        let edited = working_tree_state(repo.path()).unwrap().unwrap();
        assert_eq!(edited.commit, clean.commit);
        assert!(edited.changes.is_some());
        std::fs::write(repo.path().join("a.txt"), "c\n").unwrap();
        let edited_again = working_tree_state(repo.path()).unwrap().unwrap();
        assert_ne!(
            edited.changes, edited_again.changes,
            "same names, new contents"
        );

        std::fs::write(repo.path().join("a.txt"), "a\n").unwrap();
        std::fs::write(repo.path().join("new.txt"), "n\n").unwrap();
        let untracked = working_tree_state(repo.path()).unwrap().unwrap();
        assert!(untracked.changes.is_some());
        assert!(
            working_tree_files(repo.path())
                .unwrap()
                .contains(&"new.txt".to_string())
        );
    }

    #[test]
    fn not_a_repository_has_no_state_and_a_bad_rev_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(working_tree_state(dir.path()).unwrap(), None);
        let repo = repo();
        let message = format!("{:#}", resolve(repo.path(), "v9").unwrap_err());
        assert!(message.contains("no commit `v9`"), "{message}");
    }

    #[test]
    fn export_leaves_out_excluded_paths_and_the_repository_untouched() {
        let repo = repo();
        let commit = resolve(repo.path(), "v1").unwrap();
        let dest = tempfile::tempdir().unwrap();
        export_commit(repo.path(), &commit, &["tests", "src/x/tests"], dest.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("a.txt")).unwrap(),
            "a\n"
        );
        assert!(!dest.path().join("tests").exists());
        assert!(!dest.path().join("src/x/tests").exists());
        let state = working_tree_state(repo.path()).unwrap().unwrap();
        assert_eq!(state.changes, None, "the repository's index is untouched");
    }
}

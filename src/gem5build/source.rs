//! Where the gem5 source comes from and what identifies it: a git checkout or bare repository
//! (commit, plus a hash of uncommitted changes), a release tarball (its blake3), or a git URL
//! (mirrored into the cache, then a commit). The identity names the work directory scons builds
//! in, `<cache>/gem5-work/<identity>`, so the same source always resumes the same build.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cache::hash_file;
use crate::gitsrc;
use crate::process::Command;

/// The upstream repository and the stable release simctl is tested with.
pub const DEFAULT_URL: &str = "https://github.com/gem5/gem5.git";
pub const DEFAULT_REV: &str = "v24.0.0.1";

/// Paths left out of the export: gem5's test suites (test programs and data, not part of the
/// simulator build).
pub const EXCLUDED: [&str; 2] = ["tests", "src/systemc/tests"];

/// File written into a work directory once its source is complete.
const EXPORTED_MARKER: &str = ".simctl-exported";

/// What the user passed to `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceArg {
    /// A git checkout or bare repository.
    Git(PathBuf),
    Tarball(PathBuf),
    Url(String),
}

impl SourceArg {
    pub fn parse(text: &str) -> Result<SourceArg> {
        let path = Path::new(text);
        let is_url = ["https://", "http://", "ssh://", "git://", "file://", "git@"]
            .iter()
            .any(|scheme| text.starts_with(scheme));
        if is_url {
            return Ok(SourceArg::Url(text.to_string()));
        }
        if path.is_file() {
            if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().contains(".tar"))
            {
                return Ok(SourceArg::Tarball(absolute(path)));
            }
            bail!(
                "--source {text} is a file but not a tarball (.tar, .tar.gz, .tar.xz, ...); hint: \
                 pass a gem5 git checkout, a release tarball or a git URL"
            );
        }
        if !path.is_dir() {
            bail!(
                "--source {text} does not exist; hint: pass a gem5 git checkout, a release tarball or a git URL"
            );
        }
        if !gitsrc::is_repository(path) {
            bail!(
                "--source {text} is not a git checkout, so simctl cannot tell one state of it from \
                 another; hint: pass the release tarball instead, or `git init && git add -A && \
                 git commit` in it"
            );
        }
        Ok(SourceArg::Git(absolute(path)))
    }
}

/// The path as recorded in build.toml: absolute, so the record means the same from anywhere.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// How to write the source into the work directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Commit {
        repo: PathBuf,
        commit: String,
    },
    /// The working tree as it is, uncommitted and untracked (not ignored) files included.
    WorkingTree {
        dir: PathBuf,
    },
    Tarball {
        path: PathBuf,
    },
}

/// A source pinned down: its identity and how to export it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSource {
    /// `git-<commit>`, `git-<commit>-dirty-<hash16>` or `tar-<hash32>`: the work directory's name
    /// and the source part of the cache key.
    pub identity: String,
    pub export: Export,
}

/// Pins the source down. URLs are mirrored into `<cache>/gem5-src/` first (needs the network
/// once; afterwards a tag that is already there resolves offline).
pub fn resolve(cache: &Path, source: &SourceArg, rev: Option<&str>) -> Result<ResolvedSource> {
    match source {
        SourceArg::Git(dir) => resolve_git(dir, rev),
        SourceArg::Url(url) => {
            let mirror = mirror(cache, url, rev.unwrap_or(DEFAULT_REV))?;
            resolve_git(&mirror, Some(rev.unwrap_or(DEFAULT_REV)))
        }
        SourceArg::Tarball(path) => {
            if let Some(rev) = rev {
                bail!("--rev {rev} does not apply to a tarball (it holds one version)");
            }
            let hash = hash_file(path)?;
            Ok(ResolvedSource {
                identity: format!("tar-{}", &hash[..32]),
                export: Export::Tarball { path: path.clone() },
            })
        }
    }
}

fn resolve_git(dir: &Path, rev: Option<&str>) -> Result<ResolvedSource> {
    let commit_source = |commit: String| ResolvedSource {
        identity: format!("git-{commit}"),
        export: Export::Commit {
            repo: dir.to_path_buf(),
            commit,
        },
    };
    if let Some(rev) = rev {
        return Ok(commit_source(gitsrc::resolve(dir, rev)?));
    }
    let state = gitsrc::working_tree_state(dir)?
        .with_context(|| format!("{} is not a git repository", dir.display()))?;
    Ok(match state.changes {
        None => commit_source(state.commit),
        Some(changes) => ResolvedSource {
            identity: format!("git-{}-dirty-{}", state.commit, &changes[..16]),
            export: Export::WorkingTree {
                dir: dir.to_path_buf(),
            },
        },
    })
}

/// A mirror of `url` in the cache, fetched when `rev` is not in it yet.
fn mirror(cache: &Path, url: &str, rev: &str) -> Result<PathBuf> {
    let dir = cache.join("gem5-src").join(format!(
        "{}.git",
        &blake3::hash(url.as_bytes()).to_hex()[..16]
    ));
    let log = cache.join("gem5-src").join("fetch.log");
    if !dir.is_dir() {
        std::fs::create_dir_all(cache.join("gem5-src"))?;
        let staging = tempfile::Builder::new()
            .prefix(".clone-")
            .tempdir_in(cache.join("gem5-src"))?;
        eprintln!("gem5: cloning {url} (once; later builds fetch only what is new)");
        Command::new("git")
            .args(["clone", "--mirror", "--quiet", url])
            .arg(staging.path().join("repo"))
            .run_logged(&log, None)
            .with_context(|| {
                format!("cannot clone {url}; hint: pass a local gem5 checkout with --source")
            })?;
        std::fs::rename(staging.path().join("repo"), &dir)?;
    } else if gitsrc::resolve(&dir, rev).is_err() {
        Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["fetch", "--quiet", "--prune", "origin"])
            .run_logged(&log, None)
            .with_context(|| format!("cannot fetch {url}"))?;
    }
    Ok(dir)
}

/// Writes the source into `work` unless an earlier call finished doing so.
pub fn export(source: &ResolvedSource, work: &Path) -> Result<()> {
    let marker = work.join(EXPORTED_MARKER);
    if std::fs::read_to_string(&marker).is_ok_and(|text| text.trim() == source.identity) {
        return Ok(());
    }
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    // Files already there (an interrupted export, an earlier build) are overwritten with the
    // same contents; scons (MD5-timestamp decider) sees new times but equal contents and
    // rebuilds nothing for them.
    match &source.export {
        Export::Commit { repo, commit } => gitsrc::export_commit(repo, commit, &EXCLUDED, work)?,
        Export::WorkingTree { dir } => copy_working_tree(dir, work)?,
        Export::Tarball { path } => {
            Command::new("tar")
                .arg("xf")
                .arg(path)
                .args(["--strip-components=1", "-C"])
                .arg(work)
                .run_logged(&work.join("unpack.log"), None)
                .with_context(|| format!("cannot unpack {}", path.display()))?;
            for excluded in EXCLUDED {
                let dir = work.join(excluded);
                if dir.is_dir() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot remove {}", dir.display()))?;
                }
            }
        }
    }
    if !work.join("SConstruct").is_file() || !work.join("src/base/version.cc").is_file() {
        bail!(
            "{} has no SConstruct or src/base/version.cc after the export: not a gem5 source",
            work.display()
        );
    }
    crate::fsutil::write_atomic(&marker, source.identity.as_bytes())
}

fn is_excluded(relative: &str) -> bool {
    EXCLUDED
        .iter()
        .any(|prefix| relative == *prefix || relative.starts_with(&format!("{prefix}/")))
}

fn copy_working_tree(dir: &Path, work: &Path) -> Result<()> {
    for relative in gitsrc::working_tree_files(dir)? {
        if is_excluded(&relative) {
            continue;
        }
        let from = dir.join(&relative);
        let to = work.join(&relative);
        let Ok(meta) = from.symlink_metadata() else {
            continue; // deleted in the working tree
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if meta.file_type().is_symlink() {
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// The gem5 version a source declares (`src/base/version.cc`: `gem5Version = "24.0.0.1"`).
pub fn declared_version(work: &Path) -> Result<String> {
    let path = work.join("src/base/version.cc");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("gem5Version")?;
            let quoted = rest.split('"').nth(1)?;
            Some(quoted.to_string())
        })
        .with_context(|| format!("{} declares no gem5Version", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitsrc::tests::{git_in, repo};

    fn gem5_like_repo() -> tempfile::TempDir {
        let repo = repo();
        std::fs::write(repo.path().join("SConstruct"), "# scons\n").unwrap();
        std::fs::create_dir_all(repo.path().join("src/base")).unwrap();
        std::fs::write(
            repo.path().join("src/base/version.cc"),
            "namespace gem5 {\nconst char *gem5Version = \"24.0.0.1\";\n}\n",
        )
        .unwrap();
        let git = |args: &[&str]| git_in(repo.path(), args);
        git(&["add", "SConstruct", "src/base/version.cc"]);
        git(&["commit", "-q", "-m", "gem5"]);
        repo
    }

    #[test]
    fn source_arguments_are_told_apart_and_a_plain_dir_is_refused() {
        let repo = repo();
        assert_eq!(
            SourceArg::parse(repo.path().to_str().unwrap()).unwrap(),
            SourceArg::Git(repo.path().canonicalize().unwrap())
        );
        assert_eq!(
            SourceArg::parse("https://github.com/gem5/gem5.git").unwrap(),
            SourceArg::Url("https://github.com/gem5/gem5.git".into())
        );
        let plain = tempfile::tempdir().unwrap();
        let message = format!(
            "{:#}",
            SourceArg::parse(plain.path().to_str().unwrap()).unwrap_err()
        );
        assert!(message.contains("not a git checkout"), "{message}");
        assert!(
            SourceArg::parse("/nonexistent/gem5")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn a_clean_checkout_and_its_tag_are_the_same_source_and_an_edit_is_another() {
        let repo = gem5_like_repo();
        let cache = tempfile::tempdir().unwrap();
        let source = SourceArg::Git(repo.path().to_path_buf());
        let head = resolve(cache.path(), &source, None).unwrap();
        let commit = gitsrc::resolve(repo.path(), "HEAD").unwrap();
        assert_eq!(head.identity, format!("git-{commit}"));
        let tagged = resolve(cache.path(), &source, Some("v1")).unwrap();
        assert_ne!(tagged.identity, head.identity, "v1 is the commit before");

        std::fs::write(repo.path().join("src/base/new.cc"), "int x;\n").unwrap();
        let dirty = resolve(cache.path(), &source, None).unwrap();
        assert!(
            dirty.identity.starts_with(&format!("git-{commit}-dirty-")),
            "{}",
            dirty.identity
        );
        let work = tempfile::tempdir().unwrap();
        export(&dirty, work.path()).unwrap();
        assert!(work.path().join("src/base/new.cc").is_file());
        assert!(!work.path().join("tests").exists());
        assert_eq!(declared_version(work.path()).unwrap(), "24.0.0.1");
    }

    #[test]
    fn a_url_is_mirrored_once_and_resolves_its_tag() {
        let repo = gem5_like_repo();
        let cache = tempfile::tempdir().unwrap();
        let url = format!("file://{}", repo.path().display());
        let source = SourceArg::Url(url);
        let resolved = resolve(cache.path(), &source, Some("HEAD")).unwrap();
        let commit = gitsrc::resolve(repo.path(), "HEAD").unwrap();
        assert_eq!(resolved.identity, format!("git-{commit}"));
        let work = tempfile::tempdir().unwrap();
        export(&resolved, work.path()).unwrap();
        assert!(work.path().join("SConstruct").is_file());
        assert!(!work.path().join("tests").exists());
        // The marker makes the second export a no-op even if the work dir was edited.
        std::fs::write(work.path().join("SConstruct"), "# edited\n").unwrap();
        export(&resolved, work.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(work.path().join("SConstruct")).unwrap(),
            "# edited\n"
        );
    }

    #[test]
    fn a_tarball_is_identified_by_its_contents_and_unpacked_without_tests() {
        let repo = gem5_like_repo();
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("gem5-24.0.0.1.tar.gz");
        let status = std::process::Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg("-C")
            .arg(repo.path().parent().unwrap())
            .arg("--exclude=.git")
            .arg(repo.path().file_name().unwrap())
            .status()
            .unwrap();
        assert!(status.success());
        let cache = tempfile::tempdir().unwrap();
        let source = SourceArg::parse(tarball.to_str().unwrap()).unwrap();
        let resolved = resolve(cache.path(), &source, None).unwrap();
        assert!(resolved.identity.starts_with("tar-"));
        assert!(
            resolve(cache.path(), &source, Some("v1"))
                .unwrap_err()
                .to_string()
                .contains("does not apply to a tarball")
        );
        let work = tempfile::tempdir().unwrap();
        export(&resolved, work.path()).unwrap();
        assert!(work.path().join("SConstruct").is_file());
        assert!(!work.path().join("tests").exists());
    }
}

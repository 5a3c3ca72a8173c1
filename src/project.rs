//! Where things are: the simctl source tree (workloads/, kernel-configs/, disk-image/,
//! gem5-configs/, guest/), the user's `simctl.toml`, the artifact cache and the gem5 binary.
//!
//! Precedence for every setting: environment variable, then `simctl.toml`, then the default
//! (for gem5: the build `simctl build-gem5` recorded in the cache).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cache::Store;

/// Name of the optional configuration file, looked up in the current directory and the tree root.
pub const CONFIG_FILE: &str = "simctl.toml";

/// Folders that identify a simctl source tree.
const TREE_MARKERS: [&str; 3] = ["workloads", "kernel-configs", "gem5-configs"];

/// The user's `simctl.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gem5 binary (e.g. `/opt/gem5/build/X86/gem5.opt`).
    pub gem5: Option<PathBuf>,
    /// Where content-addressed artifacts (kernels, images, checkpoints) are kept.
    pub cache_dir: Option<PathBuf>,
    /// Where `simctl run` puts run directories by default.
    pub runs_dir: Option<PathBuf>,
}

/// The gem5 binary simctl uses and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedGem5 {
    pub path: PathBuf,
    /// `$SIMCTL_GEM5`, `` `gem5` in simctl.toml ``, or the recorded `simctl build-gem5` build.
    pub found_by: String,
}

/// A located simctl tree plus the user's settings.
#[derive(Debug)]
pub struct Project {
    root: PathBuf,
    config: Config,
    config_path: Option<PathBuf>,
}

impl Project {
    /// Finds the tree from `$SIMCTL_ROOT`, the current directory's ancestors, or the tree simctl
    /// was built from, and reads `simctl.toml` from the current directory or that tree.
    pub fn locate() -> Result<Project> {
        let root = locate_root()?;
        let candidates = [std::env::current_dir().ok(), Some(root.clone())];
        let config_path = candidates
            .into_iter()
            .flatten()
            .map(|dir| dir.join(CONFIG_FILE))
            .find(|path| path.is_file());
        let config = match &config_path {
            Some(path) => read_config(path)?,
            None => Config::default(),
        };
        Ok(Project {
            root,
            config,
            config_path,
        })
    }

    /// A project at an explicit root with default settings (tests, tools).
    pub fn at(root: impl Into<PathBuf>) -> Project {
        Project {
            root: root.into(),
            config: Config::default(),
            config_path: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn workloads_dir(&self) -> PathBuf {
        self.root.join("workloads")
    }

    pub fn kernel_configs_dir(&self) -> PathBuf {
        self.root.join("kernel-configs")
    }

    pub fn disk_image_dir(&self) -> PathBuf {
        self.root.join("disk-image")
    }

    pub fn gem5_configs_dir(&self) -> PathBuf {
        self.root.join("gem5-configs")
    }

    /// The artifact cache: `$SIMCTL_CACHE`, `cache_dir` in simctl.toml, or `~/.cache/simctl`.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = std::env::var_os("SIMCTL_CACHE").filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
        if let Some(dir) = &self.config.cache_dir {
            return self.relative_to_config(dir);
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        base.join("simctl")
    }

    pub fn store(&self) -> Store {
        Store::new(self.cache_dir())
    }

    /// Default parent of run directories: `runs_dir` in simctl.toml or `./runs`.
    pub fn runs_dir(&self) -> PathBuf {
        match &self.config.runs_dir {
            Some(dir) => self.relative_to_config(dir),
            None => PathBuf::from("runs"),
        }
    }

    /// The gem5 binary to use, if any: `$SIMCTL_GEM5`, then `gem5` in simctl.toml, then the
    /// build `simctl build-gem5` recorded in the cache.
    pub fn gem5(&self) -> Result<Option<PathBuf>> {
        Ok(self.locate_gem5()?.map(|gem5| gem5.path))
    }

    /// [`Project::gem5`] and how it was found (for `simctl doctor`).
    /// A configured path that is not an executable file is an error, not "no gem5".
    pub fn locate_gem5(&self) -> Result<Option<LocatedGem5>> {
        let (path, found_by) =
            if let Some(path) = std::env::var_os("SIMCTL_GEM5").filter(|v| !v.is_empty()) {
                (PathBuf::from(path), "$SIMCTL_GEM5".to_string())
            } else if let Some(path) = &self.config.gem5 {
                let file = self
                    .config_path
                    .as_deref()
                    .unwrap_or(Path::new(CONFIG_FILE));
                (
                    self.relative_to_config(path),
                    format!("`gem5` in {}", file.display()),
                )
            } else if let Some(build) = crate::gem5build::recorded(&self.cache_dir())? {
                let found_by = format!(
                    "the build `simctl build-gem5` recorded in {}",
                    crate::gem5build::binary::recorded_path(&self.cache_dir()).display()
                );
                (build.binary, found_by)
            } else {
                return Ok(None);
            };
        if !crate::process::is_executable(&path) {
            bail!(
                "{found_by} points to {}, which is not an executable file; hint: run `simctl \
                 build-gem5` and unset it, or point it at a gem5 build/X86/gem5.opt",
                path.display()
            );
        }
        Ok(Some(LocatedGem5 { path, found_by }))
    }

    fn relative_to_config(&self, path: &Path) -> PathBuf {
        match self.config_path.as_deref().and_then(Path::parent) {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
}

fn read_config(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "{}: {}hint: valid keys are gem5, cache_dir, runs_dir",
            path.display(),
            err
        )
    })
}

fn is_tree(dir: &Path) -> bool {
    TREE_MARKERS.iter().all(|marker| dir.join(marker).is_dir())
}

fn locate_root() -> Result<PathBuf> {
    if let Some(root) = std::env::var_os("SIMCTL_ROOT").filter(|v| !v.is_empty()) {
        let root = PathBuf::from(root);
        if !is_tree(&root) {
            bail!(
                "$SIMCTL_ROOT={} is not a simctl tree (it needs {}); hint: point it at a simctl checkout",
                root.display(),
                TREE_MARKERS.join("/, ")
            );
        }
        return Ok(root);
    }
    if let Ok(cwd) = std::env::current_dir()
        && let Some(root) = cwd.ancestors().find(|dir| is_tree(dir))
    {
        return Ok(root.to_path_buf());
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if is_tree(&built_from) {
        return Ok(built_from);
    }
    bail!(
        "cannot find the simctl tree (workloads/, kernel-configs/, gem5-configs/); hint: run simctl \
         inside a simctl checkout or set SIMCTL_ROOT"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_with_unknown_key_names_file_line_and_valid_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, "gem5 = \"/x\"\ngem6 = 1\n").unwrap();
        let message = format!("{:#}", read_config(&path).unwrap_err());
        assert!(message.contains("simctl.toml"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("gem6"), "{message}");
        assert!(message.contains("valid keys"), "{message}");
    }

    #[test]
    fn the_source_tree_is_a_tree() {
        assert!(is_tree(Path::new(env!("CARGO_MANIFEST_DIR"))));
    }
}

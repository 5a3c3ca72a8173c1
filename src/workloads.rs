//! Workloads: the serverless functions in `workloads/<name>/`, their manifests
//! (`workload.toml`) and their offline builds into an install tree for the image
//! (`opt/simctl/workloads/<name>/`).
//!
//! Go functions are built with Debian's Go and gRPC packages in GOPATH mode (no module proxy),
//! statically (`CGO_ENABLED=0`); the gRPC code is generated from `workloads/proto/` with
//! Debian's protoc-gen-go and protoc-gen-go-grpc. Python functions ship their sources and the
//! generated modules and name the Debian packages they need at run time; what Debian lacks
//! comes as pinned PyPI wheels (downloaded into the cache, installed into `site-packages/`).
//! Node.js functions ship their sources, `workloads/proto/` as `proto/` (loaded at start-up by
//! @grpc/proto-loader, as vSwarm's do) and a `node_modules/` installed by `npm ci` from the
//! committed `package-lock.json` (exact versions and integrity hashes), with npm's download
//! cache inside simctl's cache; nothing fetched is committed. Every other file of a workload
//! folder (data such as a product catalogue) is copied into the install tree as is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cache::CacheKey;
use crate::process::Command;
use crate::project::Project;

/// Bump when the build recipe changes.
const RECIPE_VERSION: u32 = 3;
/// Where workloads live inside the guest.
pub const GUEST_ROOT: &str = "/opt/simctl/workloads";

/// Build a workload from workloads/ and print where its install tree is.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  simctl build-workload aes-go fibonacci-go")]
pub struct BuildWorkloadArgs {
    /// Workload names (folders in workloads/).
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// List the workloads in workloads/ with language, service and default input.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  simctl workloads\n  simctl run --workload fibonacci-nodejs")]
pub struct WorkloadsArgs {}

/// The language a workload is written in, which decides how it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Go,
    Python,
    Nodejs,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Go => "go",
            Language::Python => "python",
            Language::Nodejs => "nodejs",
        }
    }
}

/// `workloads/<name>/workload.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub language: Language,
    pub description: String,
    /// The proto file in workloads/proto/ (without `.proto`) the function serves.
    pub proto: String,
    /// The simctl-client `--service` that speaks to it.
    pub service: String,
    /// The gRPC method, for people (`package.Service/Method`).
    pub method: String,
    pub port: u16,
    pub default_request: String,
    /// Server command in the guest; `{dir}` is the install dir, `{port}` the port, `{host}` the
    /// address to listen on (127.0.0.1 for a bare process, 0.0.0.0 in a container).
    pub server: Vec<String>,
    /// Debian packages the function needs at run time inside the image.
    #[serde(default)]
    pub guest_packages: Vec<String>,
    /// Workloads this one calls (e.g. the product catalogue behind recommendationservice):
    /// built and installed into the same tree; the `server` command starts them.
    #[serde(default)]
    pub helpers: Vec<String>,
    /// Pinned PyPI packages (`name==version`, pure-Python wheels) installed into
    /// `<install>/site-packages` for what Debian does not package; the server finds them
    /// through `PYTHONPATH`.
    #[serde(default)]
    pub python_wheels: Vec<String>,
    /// The vSwarm commit whose implementation this function reproduces (absent for our own).
    #[serde(default)]
    pub vswarm_commit: Option<String>,
    /// The vSwarm source file it reproduces, relative to vSwarm's root.
    #[serde(default)]
    pub vswarm_source: Option<String>,
}

/// A workload found in the tree.
#[derive(Debug, Clone)]
pub struct Workload {
    pub manifest: Manifest,
    pub dir: PathBuf,
}

impl Workload {
    /// Loads `workloads/<name>/workload.toml`; an unknown name lists the known ones.
    pub fn load(project: &Project, name: &str) -> Result<Workload> {
        let dir = project.workloads_dir().join(name);
        let path = dir.join("workload.toml");
        if !path.is_file() {
            let known = list(project)?.join(", ");
            bail!(
                "unknown workload '{name}' (no {}); available: {known}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        if manifest.name != name {
            bail!(
                "{}: name = \"{}\" but the folder is '{name}'; make them equal",
                path.display(),
                manifest.name
            );
        }
        if manifest.server.is_empty() {
            bail!("{}: `server` must name the server command", path.display());
        }
        Ok(Workload { manifest, dir })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The install dir inside the guest.
    pub fn guest_dir(&self) -> String {
        format!("{GUEST_ROOT}/{}", self.manifest.name)
    }

    /// The server's argument vector inside the guest, listening on `host`.
    pub fn server_argv(&self, host: &str) -> Vec<String> {
        self.server_argv_on(host, self.manifest.port)
    }

    /// The server's argument vector inside the guest, listening on `host`:`port`.
    pub fn server_argv_on(&self, host: &str, port: u16) -> Vec<String> {
        let dir = self.guest_dir();
        let port = port.to_string();
        self.manifest
            .server
            .iter()
            .map(|arg| {
                arg.replace("{dir}", &dir)
                    .replace("{port}", &port)
                    .replace("{host}", host)
            })
            .collect()
    }

    /// Key of the build: sources, protos, recipe and the helpers' keys.
    pub fn key(&self, project: &Project) -> Result<CacheKey> {
        let mut key = CacheKey::new("workload", RECIPE_VERSION)
            .text("name", self.name())
            .tree("source", &self.dir)?
            .tree("proto", &project.workloads_dir().join("proto"))?;
        if self.manifest.language == Language::Python {
            key = key.tree("python-lib", &python_lib(project))?;
        }
        for helper in self.helpers(project)? {
            key = key.key(helper.name(), &helper.key(project)?);
        }
        Ok(key)
    }

    /// The workloads named in `helpers`; a helper may not have helpers of its own.
    fn helpers(&self, project: &Project) -> Result<Vec<Workload>> {
        let manifest = self.dir.join("workload.toml");
        self.manifest
            .helpers
            .iter()
            .map(|name| {
                let helper = Workload::load(project, name)
                    .with_context(|| format!("{}: helper '{name}'", manifest.display()))?;
                if !helper.manifest.helpers.is_empty() {
                    bail!(
                        "{}: helper '{name}' has helpers of its own; hint: list them here instead",
                        manifest.display()
                    );
                }
                Ok(helper)
            })
            .collect()
    }
}

/// Names of every workload in the tree.
pub fn list(project: &Project) -> Result<Vec<String>> {
    let dir = project.workloads_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .filter(|entry| entry.path().join("workload.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Builds (or reuses) the workload; returns the install tree root (to overlay at `/`).
pub fn build(project: &Project, workload: &Workload) -> Result<PathBuf> {
    let key = workload.key(project)?;
    let artifact = project.store().get_or_build("workloads", &key, |staging| {
        let install = staging
            .join("root")
            .join(workload.guest_dir().trim_start_matches('/'));
        std::fs::create_dir_all(&install)?;
        std::fs::copy(
            workload.dir.join("workload.toml"),
            install.join("workload.toml"),
        )?;
        match workload.manifest.language {
            Language::Go => build_go(project, workload, staging, &install)?,
            Language::Python => build_python(project, workload, staging, &install)?,
            Language::Nodejs => build_nodejs(project, workload, staging, &install)?,
        }
        for helper in workload.helpers(project)? {
            copy_tree(&build(project, &helper)?, &staging.join("root"), &|_| false)?;
        }
        Ok(())
    })?;
    Ok(artifact.path.join("root"))
}

fn protoc_go(project: &Project, proto: &str, out: &Path, log: &Path) -> Result<()> {
    let proto_dir = project.workloads_dir().join("proto");
    Command::new("protoc")
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!("--go_out={}", out.display()))
        .arg("--go_opt=paths=import")
        .arg(format!("--go-grpc_out={}", out.display()))
        .arg("--go-grpc_opt=paths=import")
        .arg(proto_dir.join(format!("{proto}.proto")))
        .run_logged(log, None)
        .context("protoc could not generate the Go gRPC code; hint: apt-get install protobuf-compiler protoc-gen-go protoc-gen-go-grpc")
}

fn build_go(project: &Project, workload: &Workload, staging: &Path, install: &Path) -> Result<()> {
    let log = staging.join("build.log");
    let gopath = staging.join("gopath");
    let src = gopath.join("src");
    std::fs::create_dir_all(&src)?;
    protoc_go(project, &workload.manifest.proto, &src, &log)?;
    let package = src.join("simctl-function");
    std::fs::create_dir_all(&package)?;
    for entry in std::fs::read_dir(&workload.dir)? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|ext| ext == "go") {
            std::fs::copy(entry.path(), package.join(entry.file_name()))?;
        }
    }
    copy_sources(&workload.dir, install, &["go"])?;
    let gocache = project.cache_dir().join("go-build-cache");
    let stage = crate::progress::Stage::spinner(
        &format!("workload {}", workload.name()),
        &format!(
            "go build, offline from Debian's Go packages (log: {})",
            log.display()
        ),
    );
    let gopath_value = format!("{}:/usr/share/gocode", gopath.display());
    Command::new("go")
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(install.join("server"))
        .arg(".")
        .dir(&package)
        .env("GOPATH", gopath_value)
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", gocache)
        .run_logged(&log, None)
        .context(
            "go build failed; hint: apt-get install golang-go golang-google-grpc-dev \
             golang-github-golang-protobuf-1-5-dev (the 1-3 package builds but panics)",
        )?;
    stage.finish("built");
    std::fs::remove_dir_all(&gopath)?;
    Ok(())
}

fn build_python(
    project: &Project,
    workload: &Workload,
    staging: &Path,
    install: &Path,
) -> Result<()> {
    let log = staging.join("build.log");
    let proto_dir = project.workloads_dir().join("proto");
    Command::new("/usr/bin/python3")
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!("--python_out={}", install.display()))
        .arg(format!("--grpc_python_out={}", install.display()))
        .arg(proto_dir.join(format!("{}.proto", workload.manifest.proto)))
        .run_logged(&log, None)
        .context(
            "cannot generate the Python gRPC code; hint: apt-get install python3-grpc-tools",
        )?;
    copy_sources(&workload.dir, install, &[])?;
    copy_sources(&python_lib(project), install, &[])?;
    install_wheels(project, workload, install, &log)
}

/// Python modules every Python function finds beside its server, as vSwarm's functions find
/// its `utils/tracing/python/tracing.py`.
fn python_lib(project: &Project) -> PathBuf {
    project.workloads_dir().join("python-lib")
}

/// Downloads the workload's pinned wheels into the cache (only wheels, no dependency
/// resolution: the manifest lists every package) and installs them from there.
fn install_wheels(
    project: &Project,
    workload: &Workload,
    install: &Path,
    log: &Path,
) -> Result<()> {
    let pins = &workload.manifest.python_wheels;
    if pins.is_empty() {
        return Ok(());
    }
    if let Some(pin) = pins.iter().find(|pin| !pin.contains("==")) {
        bail!(
            "{}: python_wheels entry '{pin}' has no exact version; hint: write it as name==version",
            workload.dir.join("workload.toml").display()
        );
    }
    let wheels = project.cache_dir().join("pip-wheels");
    Command::new("/usr/bin/python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--dest"])
        .arg(&wheels)
        .args(pins)
        .run_logged(log, None)
        .context(
            "cannot download the workload's wheels from PyPI; hint: apt-get install python3-pip, \
             and check that PyPI is reachable",
        )?;
    // --no-compile: .pyc files carry timestamps, which would make the tree differ per build.
    Command::new("/usr/bin/python3")
        .args(["-m", "pip", "install", "--no-deps", "--no-index"])
        .args([
            "--disable-pip-version-check",
            "--no-compile",
            "--find-links",
        ])
        .arg(&wheels)
        .arg("--target")
        .arg(install.join("site-packages"))
        .args(pins)
        .run_logged(log, None)
        .context("cannot install the workload's wheels")
}

fn build_nodejs(
    project: &Project,
    workload: &Workload,
    staging: &Path,
    install: &Path,
) -> Result<()> {
    let log = staging.join("build.log");
    if !workload.dir.join("package-lock.json").is_file() {
        bail!(
            "{}: a Node.js workload needs a package-lock.json beside package.json so that its \
             build is reproducible; hint: run `npm install --package-lock-only` there and commit it",
            workload.dir.display()
        );
    }
    let protos = install.join("proto");
    std::fs::create_dir_all(&protos)?;
    copy_tree(&project.workloads_dir().join("proto"), &protos, &|_| false)?;
    copy_sources(&workload.dir, install, &[])?;
    Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
        ])
        .arg("--cache")
        .arg(project.cache_dir().join("npm-cache"))
        .dir(install)
        .env("NODE_ENV", "production")
        .run_logged(&log, None)
        .context(
            "npm ci failed (it needs the npm registry unless every package is in the cache); \
             hint: apt-get install npm, and check the registry is reachable",
        )
}

/// Copies the folder `from` into `to`, sub-folders included, leaving out the entries `skip`
/// names (by file name).
fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<()> {
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&path, &target, skip)?;
        } else {
            std::fs::copy(&path, &target)
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

/// Copies a workload folder into its install tree, except `workload.toml` (copied first, by
/// `build`), a stray `node_modules/` and files with the `compiled` extensions.
fn copy_sources(from: &Path, install: &Path, compiled: &[&str]) -> Result<()> {
    copy_tree(from, install, &|path| {
        path.file_name()
            .is_some_and(|name| name == "workload.toml" || name == "node_modules")
            || path
                .extension()
                .is_some_and(|ext| compiled.iter().any(|c| ext == *c))
    })
}

/// `simctl workloads`: one aligned row per workload; every manifest is loaded, so a broken one
/// is reported with its file instead of being left out.
pub fn list_cli(_args: WorkloadsArgs) -> Result<()> {
    let project = Project::locate()?;
    let mut rows = vec![[
        "NAME".to_string(),
        "LANGUAGE".to_string(),
        "SERVICE".to_string(),
        "METHOD".to_string(),
        "DEFAULT INPUT".to_string(),
    ]];
    for name in list(&project)? {
        let manifest = Workload::load(&project, &name)?.manifest;
        rows.push([
            manifest.name,
            manifest.language.as_str().to_string(),
            manifest.service,
            manifest.method,
            format!("{:?}", manifest.default_request),
        ]);
    }
    print!("{}", format_table(&rows));
    Ok(())
}

/// Left-aligned columns separated by two spaces, last column unpadded.
fn format_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        out.push('\n');
    }
    out
}

pub fn run_cli(args: BuildWorkloadArgs) -> Result<()> {
    let project = Project::locate()?;
    let mut last = None;
    for name in &args.names {
        let workload = Workload::load(&project, name)?;
        let root = build(&project, &workload)?;
        eprintln!(
            "built {name}: {}",
            root.join(workload.guest_dir().trim_start_matches('/'))
                .display()
        );
        last = Some(root);
    }
    if let Some(root) = last {
        println!("{}", root.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project::at(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn manifests_load_and_server_argv_is_filled_in() {
        let aes = Workload::load(&project(), "aes-go").unwrap();
        assert_eq!(aes.manifest.service, "aes");
        assert_eq!(
            aes.server_argv("127.0.0.1"),
            vec![
                "/opt/simctl/workloads/aes-go/server",
                "-addr=127.0.0.1:50051"
            ]
        );
        assert!(
            list(&project())
                .unwrap()
                .contains(&"fibonacci-go".to_string())
        );
    }

    #[test]
    fn table_columns_line_up() {
        let rows = [
            ["NAME".to_string(), "LANGUAGE".to_string()],
            ["fibonacci-nodejs".to_string(), "nodejs".to_string()],
        ];
        assert_eq!(
            format_table(&rows),
            "NAME              LANGUAGE\nfibonacci-nodejs  nodejs\n"
        );
    }

    #[test]
    fn unknown_workload_lists_the_known_ones() {
        let message = format!("{:#}", Workload::load(&project(), "nope").unwrap_err());
        assert!(
            message.contains("unknown workload 'nope'") && message.contains("aes-go"),
            "{message}"
        );
    }

    #[test]
    fn unknown_manifest_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["workloads/bad", "kernel-configs", "gem5-configs"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let text = std::fs::read_to_string(project().workloads_dir().join("aes-go/workload.toml"))
            .unwrap();
        let text = text.replace("name = \"aes-go\"", "name = \"bad\"\ncolour = \"red\"");
        std::fs::write(dir.path().join("workloads/bad/workload.toml"), text).unwrap();
        let message = format!(
            "{:#}",
            Workload::load(&Project::at(dir.path()), "bad").unwrap_err()
        );
        assert!(
            message.contains("workload.toml") && message.contains("colour"),
            "{message}"
        );
    }
}

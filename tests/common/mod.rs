//! Helpers shared by the integration tests: running the real simctl binary and reading run
//! directories.
#![allow(dead_code)] // each test binary uses its own subset

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs simctl with `args` plus `extra` (paths and the like), without any configured gem5.
pub fn simctl(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .args(extra)
        .env_remove("SIMCTL_GEM5")
        .output()
        .unwrap()
}

/// Runs simctl, requires success, and returns the last line of stdout (the made path).
pub fn simctl_path(args: &[&str]) -> String {
    let output = simctl(args, &[]);
    assert!(
        output.status.success(),
        "simctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// The `state` of a run directory's status.json.
pub fn run_state(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("status.json")).ok()?;
    let status: serde_json::Value = serde_json::from_str(&text).ok()?;
    status["state"].as_str().map(str::to_string)
}

/// The shared stats fixtures beside the repo, or None (after saying the test is skipped).
pub fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/stats");
    if dir.join("MANIFEST.md").is_file() {
        Some(dir)
    } else {
        println!("skipped: shared fixtures not found");
        None
    }
}

/// A function server started on the host for a test, in its own process group; the group
/// (with any helper the server started) is killed when dropped.
pub struct FunctionServer {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for FunctionServer {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Builds `name` with `simctl build-workload` and serves it on a free loopback port with the
/// server command of its manifest; returns once the port answers.
pub fn start_workload(name: &str) -> FunctionServer {
    let project = simctl::project::Project::at(env!("CARGO_MANIFEST_DIR"));
    let workload = simctl::workloads::Workload::load(&project, name).unwrap();
    let root = PathBuf::from(simctl_path(&["build-workload", name]));
    let host_dir = root.join(workload.guest_dir().trim_start_matches('/'));
    let port = free_port();
    let argv: Vec<String> = workload
        .manifest
        .server
        .iter()
        .map(|arg| {
            arg.replace("{dir}", &host_dir.to_string_lossy())
                .replace("{port}", &port.to_string())
                .replace("{host}", "127.0.0.1")
        })
        .collect();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {name} ({argv:?}): {err}"));
    let server = FunctionServer { child, port };
    // Python and Node.js servers load many modules; a busy CI machine needs the margin.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} did not listen on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server
}

/// A guest binary (m5, simctl-client, simctl-init) built by `simctl build-guest`.
pub fn guest_binary(name: &str) -> PathBuf {
    PathBuf::from(simctl_path(&["build-guest"])).join(name)
}

/// The conformance pairs files, `tests/fixtures/conformance/<workload>.jsonl`, sorted.
pub fn conformance_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    files
}

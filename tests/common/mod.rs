//! Helpers shared by the integration tests: running the real simctl binary and reading run
//! directories.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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

/// The directory of the decompressed stats fixtures (tests/fixtures/stats/*.txt.gz, described in
/// MANIFEST.md there), made once per test binary in cargo's temp dir. A missing or unreadable
/// fixture fails the test: the fixtures are part of the repository, a test never skips them.
pub fn fixtures() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stats");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stats-fixtures");
        decompress_fixtures(&source, &target);
        target
    })
    .clone()
}

/// Decompresses every `NAME.gz` of `source` to `target/NAME` (through a temp file and a rename:
/// test binaries run at the same time).
fn decompress_fixtures(source: &Path, target: &Path) {
    let entries = std::fs::read_dir(source).unwrap_or_else(|err| {
        panic!(
            "stats fixtures missing: cannot read {}: {err}; hint: they are part of the repository \
             (git checkout -- tests/fixtures)",
            source.display()
        )
    });
    std::fs::create_dir_all(target).unwrap();
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(plain) = name.strip_suffix(".gz") else {
            continue;
        };
        let text = gunzip(&path);
        let mut temp = tempfile::NamedTempFile::new_in(target).unwrap();
        temp.write_all(&text).unwrap();
        temp.persist(target.join(plain)).unwrap();
        count += 1;
    }
    assert!(
        count > 0 && source.join("MANIFEST.md").is_file(),
        "stats fixtures missing in {}: expected *.txt.gz and MANIFEST.md",
        source.display()
    );
}

/// The decompressed bytes of a gzipped fixture; an unreadable one fails the test, naming it.
pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut text = Vec::new();
    let file =
        std::fs::File::open(path).unwrap_or_else(|err| panic!("fixture {}: {err}", path.display()));
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut text)
        .unwrap_or_else(|err| panic!("fixture {}: {err}", path.display()));
    text
}

/// The fixture's stat line that a cut turns into a smaller number.
pub const CUT_LINE: &str = "board.processor.cores.core.commitStats0.numInsts      1000000";

/// v24-se-x86-o3-2dumps.txt as gem5 leaves it when killed while writing dump 1: cut in the
/// middle of `commitStats0.numInsts      1000000`, right after `1000`.
pub fn cut_mid_number() -> String {
    let text = std::fs::read_to_string(fixtures().join("v24-se-x86-o3-2dumps.txt")).unwrap();
    let at = text.rfind(CUT_LINE).unwrap() + CUT_LINE.len() - 3;
    text[..at].to_string()
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

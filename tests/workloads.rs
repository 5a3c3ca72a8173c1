//! Every workload, built by `simctl build-workload` and served on loopback, answers its gRPC
//! call correctly when driven by the real `simctl-client`. Needs Go (and Debian's Python gRPC
//! for aes-python); CI installs both.

mod common;

use common::simctl_path;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use simctl::project::Project;
use simctl::workloads::Workload;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (workload, request, text the answer must contain)
const CASES: [(&str, &str, &str); 6] = [
    (
        "aes-go",
        "A unique message",
        "ciphertext: f47598b1d1349e8f4bac5b04725476c4",
    ),
    (
        "aes-python",
        "A unique message",
        "ciphertext: f47598b1d1349e8f4bac5b04725476c4",
    ),
    ("fibonacci-go", "10", "x: 10 y: 55"),
    (
        "auth-go",
        "allow",
        "fn: Auth | {\"principalId\":\"user\",\"policyDocument\"",
    ),
    ("auth-go", "stranger", "fn: Auth | Unauthorized"),
    ("spin", "3000", "busy_us="),
];

#[test]
fn every_workload_answers_correctly_on_loopback() {
    if Command::new("go").arg("version").output().is_err() {
        println!("skipped: go not found");
        return;
    }
    let project = Project::at(env!("CARGO_MANIFEST_DIR"));
    let listed = simctl::workloads::list(&project).unwrap();
    for (name, _, _) in CASES {
        assert!(listed.iter().any(|w| w == name), "{name} not in {listed:?}");
    }
    let client = PathBuf::from(simctl_path(&["build-guest"])).join("simctl-client");
    for (name, request, expected) in CASES {
        let workload = Workload::load(&project, name).unwrap();
        let root = PathBuf::from(simctl_path(&["build-workload", name]));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host_dir = root.join(workload.guest_dir().trim_start_matches('/'));
        let argv: Vec<String> = workload
            .manifest
            .server
            .iter()
            .map(|arg| {
                arg.replace("{dir}", &host_dir.to_string_lossy())
                    .replace("{port}", &port.to_string())
            })
            .collect();
        let _server = Server(
            Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{name} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(&client)
            .args([
                "--service",
                &workload.manifest.service,
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--request",
                request,
            ])
            .args(["--invocations", "20", "--m5", "off", "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(expected),
            "{name}: expected '{expected}' in the answer: {stdout}"
        );
    }
}

//! The Python, Node.js and online-shop functions give vSwarm's replies: each is built with
//! `simctl build-workload`, served on loopback from its install tree with its manifest's own
//! server command, and the request/reply pairs recorded from vSwarm's servers
//! (tests/fixtures/conformance/<workload>.jsonl, see README.md there) are replayed against it by
//! tests/fixtures/conformance/replay.py (Debian's python3-grpcio). Needs Go and Debian's Python
//! gRPC packages; the workloads with npm packages or PyPI wheels also need those registries on
//! a cold cache, so they are in a separate test run with `--ignored`.

mod common;

use common::simctl_path;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use simctl::project::Project;
use simctl::workloads::Workload;

/// A server in its own process group, so that helpers it starts end with it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conformance")
        .join(format!("{name}.jsonl"))
}

/// Builds `name`, serves it on a free port and replays its recorded pairs.
fn replays_recorded_pairs(name: &str) {
    let project = Project::at(env!("CARGO_MANIFEST_DIR"));
    let workload = Workload::load(&project, name).unwrap();
    let root = PathBuf::from(simctl_path(&["build-workload", name]));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = root.join(workload.guest_dir().trim_start_matches('/'));
    let argv: Vec<String> = workload
        .manifest
        .server
        .iter()
        .map(|arg| {
            arg.replace("{dir}", &dir.to_string_lossy())
                .replace("{port}", &port.to_string())
        })
        .collect();
    let _server = Server(
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{name} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance/replay.py"))
        .arg(format!("127.0.0.1:{port}"))
        .arg(fixture(name))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} differs from vSwarm:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn python_and_go_functions_reply_as_vswarm() {
    for name in [
        "aes-python",
        "auth-python",
        "fibonacci-python",
        "productcatalogservice",
        "shippingservice",
    ] {
        replays_recorded_pairs(name);
    }
}

#[test]
#[ignore = "needs the npm registry and PyPI on a cold cache: cargo test --test workloads_breadth -- --ignored"]
fn nodejs_and_wheel_functions_reply_as_vswarm() {
    for name in [
        "aes-nodejs",
        "auth-nodejs",
        "fibonacci-nodejs",
        "currencyservice",
        "paymentservice",
        "emailservice",
        "recommendationservice",
    ] {
        replays_recorded_pairs(name);
    }
}

#[test]
fn every_breadth_workload_has_recorded_pairs_and_names_its_vswarm_source() {
    let project = Project::at(env!("CARGO_MANIFEST_DIR"));
    let names = simctl::workloads::list(&project).unwrap();
    assert!(names.len() >= 15, "{names:?}");
    for name in names.iter().filter(|name| *name != "spin") {
        let manifest = Workload::load(&project, name).unwrap().manifest;
        if name.ends_with("-python") || name.ends_with("-nodejs") || manifest.proto == "demo" {
            assert!(fixture(name).is_file(), "{name}: no recorded pairs");
            assert!(
                manifest
                    .vswarm_commit
                    .as_deref()
                    .is_some_and(|c| c.len() == 40)
                    && manifest.vswarm_source.is_some(),
                "{name}: vswarm_commit/vswarm_source missing"
            );
        }
    }
}

#[test]
fn workloads_lists_every_function_with_language_service_and_input() {
    let output = common::simctl(&["workloads"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert!(rows.len() >= 15, "{text}");
    let fib = rows
        .iter()
        .find(|row| row.starts_with("fibonacci-nodejs "))
        .unwrap();
    let columns: Vec<&str> = fib.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "fibonacci-nodejs",
            "nodejs",
            "fibonacci",
            "fibonacci.Greeter/SayHello",
            "\"10\""
        ]
    );
}

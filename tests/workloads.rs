//! Every workload, built by `simctl build-workload` and served on loopback, answers the request
//! a run sends it (its manifest's service and default request) when driven by the real
//! `simctl-client`, and the client uses vSwarm's default request when given none. What the
//! answers contain is proven byte for byte by tests/conformance.rs. Needs Go (and Debian's
//! Python gRPC for aes-python); CI installs both.

mod common;

use common::{guest_binary, start_workload};
use std::process::Command;

use simctl::project::Project;
use simctl::workloads::Workload;

#[test]
fn every_workload_answers_its_default_request_on_loopback() {
    let project = Project::at(env!("CARGO_MANIFEST_DIR"));
    let listed = simctl::workloads::list(&project).unwrap();
    for name in ["aes-go", "auth-go", "fibonacci-go", "spin"] {
        assert!(listed.iter().any(|w| w == name), "{name} not in {listed:?}");
    }
    let client = guest_binary("simctl-client");
    for name in &listed {
        let workload = Workload::load(&project, name).unwrap();
        let server = start_workload(name);
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(&client)
            .args(["--service", &workload.manifest.service])
            .args(["--addr", &format!("127.0.0.1:{}", server.port)])
            .args(["--request", &workload.manifest.default_request])
            .args(["--invocations", "20", "--m5", "off", "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let csv = std::fs::read_to_string(out.path().join("results.csv")).unwrap();
        assert_eq!(
            csv.lines()
                .filter(|l| l.contains(",measured,") && l.contains(",true,"))
                .count(),
            20,
            "{name}: {csv}"
        );
        // spin stamps its handler: entry and exit lie between the client's send and receive
        // (one clock on one machine), which the rounds-streams study's stages rest on.
        let records = simctl_guest::records::from_csv(&csv).unwrap();
        let mut stamped = 0;
        for record in records
            .iter()
            .filter(|r| r.stamps.server_receive_unix_ns.is_some())
        {
            let s = record.stamps;
            let order: Vec<u64> = [
                s.client_send_unix_ns,
                s.server_receive_unix_ns,
                s.server_done_unix_ns,
                s.client_receive_unix_ns,
            ]
            .into_iter()
            .map(|stamp| stamp.unwrap_or_else(|| panic!("{name}: a stamp missing: {record:?}")))
            .collect();
            assert!(order.is_sorted(), "{name}: stamps out of order: {record:?}");
            stamped += 1;
        }
        let expected = if name == "spin" { 20 } else { 0 };
        assert_eq!(stamped, expected, "{name}: records with handler stamps");
    }
}

#[test]
fn client_sends_vswarms_default_request_when_given_none() {
    let client = guest_binary("simctl-client");
    for (name, service, expected) in [
        (
            "aes-go",
            "aes",
            "fn: AES | plaintext: A unique message | ciphertext: fd4b8dc72677cafa719c946be09d1bb8 | runtime: golang",
        ),
        (
            "auth-go",
            "auth",
            "fn: Auth | token: A unique message | resp: Error: Invalid token | runtime: golang",
        ),
        (
            "fibonacci-go",
            "fibonacci",
            "fn: Fib: y = fib(x) | x: 10 y: 55 | runtime: GoLang",
        ),
    ] {
        let server = start_workload(name);
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(&client)
            .args(["--service", service])
            .args(["--addr", &format!("127.0.0.1:{}", server.port)])
            .args(["--invocations", "1", "--m5", "off", "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("first response: {expected}")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn client_speaks_like_a_unix_tool() {
    let client = guest_binary("simctl-client");
    let run = |args: &[&str]| Command::new(&client).args(args).output().unwrap();
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Usage: simctl-client") && text.contains("Exit status: 0"),
        "{text}"
    );
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.starts_with("simctl-client 0."), "{text}");
    for (args, message) in [
        (
            &[][..],
            "the following required arguments were not provided",
        ),
        (
            &["--service", "nope"][..],
            "invalid value 'nope' for '--service",
        ),
        (
            &["--service", "aes", "--warmup", "x"][..],
            "invalid value 'x' for '--warmup",
        ),
        (
            &["--service", "aes", "--bogus"][..],
            "unexpected argument '--bogus'",
        ),
        (
            &["--service", "aes", "--m5", "magic"][..],
            "'magic' is not one of inst, addr, off",
        ),
    ] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let unreachable = run(&[
        "--service",
        "aes",
        "--addr",
        &format!("127.0.0.1:{}", common::free_port()),
        "--m5",
        "off",
    ]);
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot connect to 127.0.0.1:"));
}

//! simctl-init's plan executor on the host (`--plan FILE --no-mount --no-poweroff`): a
//! background server with a readiness port and CPU affinity, a foreground step, results handed
//! back, and the failure markers when a step fails or times out.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

fn run_init(plan: &str, dir: &Path) -> (bool, String) {
    let plan_file = dir.join("plan.toml");
    std::fs::write(&plan_file, plan).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_simctl-init"))
        .arg("--plan")
        .arg(&plan_file)
        .args(["--no-mount", "--no-poweroff", "--results-out"])
        .arg(dir.join("back"))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[test]
fn plan_runs_server_then_client_and_hands_results_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let results = dir.path().join("results");
    let plan = format!(
        r#"results_dir = "{results}"

[[step]]
name = "server"
argv = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
cpu = 0
background = true
wait_for_port = {port}
timeout_s = 30

[[step]]
name = "client"
argv = ["sh", "-c", "echo measured > {results}/out.txt"]
cpu = 0
timeout_s = 30
"#,
        results = results.display()
    );
    let (ok, console) = run_init(&plan, dir.path());
    assert!(ok, "{console}");
    for marker in [
        "SIMCTL-BOOT up",
        "SIMCTL-PROGRESS function-up",
        "SIMCTL-DONE status=ok",
    ] {
        assert!(console.contains(marker), "no {marker}:\n{console}");
    }
    let affinity = console
        .lines()
        .find(|l| l.starts_with("SIMCTL-AFFINITY"))
        .unwrap();
    assert!(affinity.ends_with("name=server cpus=0"), "{affinity}");
    let client = console
        .lines()
        .filter(|l| l.starts_with("SIMCTL-AFFINITY"))
        .nth(1)
        .unwrap_or_default();
    assert!(client.ends_with("name=client cpus=0"), "{console}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("back/out.txt")).unwrap(),
        "measured\n"
    );
}

#[test]
fn failing_and_hanging_steps_end_with_error_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, console) = run_init("[[step]]\nname = \"bad\"\nargv = [\"false\"]\n", dir.path());
    assert!(!ok);
    assert!(
        console.contains("SIMCTL-ERROR step bad failed"),
        "{console}"
    );
    assert!(console.contains("SIMCTL-DONE status=failed"), "{console}");

    let (ok, console) = run_init(
        "[[step]]\nname = \"slow\"\nargv = [\"sleep\", \"30\"]\ntimeout_s = 1\n",
        dir.path(),
    );
    assert!(!ok);
    assert!(
        console.contains("SIMCTL-ERROR step slow timed out after 1 s"),
        "{console}"
    );

    let (ok, console) = run_init("[[step]]\nname = 'x'\n", dir.path());
    assert!(!ok);
    assert!(console.contains("SIMCTL-ERROR bad run plan"), "{console}");
}

#[test]
fn a_function_that_dies_under_its_client_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The client kills the function by the pid file simctl-init writes for background steps,
    // then would wait far longer than the test allows.
    let plan = format!(
        r#"[[step]]
name = "crashing-function"
argv = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
background = true
wait_for_port = {port}
timeout_s = 30

[[step]]
name = "client"
argv = ["sh", "-c", "sleep 1; kill -KILL $(cat /run/simctl/crashing-function.pid); sleep 60"]
timeout_s = 120
"#
    );
    let start = std::time::Instant::now();
    let (ok, console) = run_init(&plan, dir.path());
    assert!(!ok, "{console}");
    assert!(
        console.contains(
            "SIMCTL-ERROR background step crashing-function exited (signal: 9 (SIGKILL)) while \
             step client ran; client is stopped"
        ),
        "{console}"
    );
    assert!(console.contains("SIMCTL-DONE status=failed"), "{console}");
    // Named when it happened, not when the client gave up (60 s) or timed out (120 s).
    assert!(start.elapsed().as_secs() < 30, "{:?}", start.elapsed());
    // Reported once: the end-of-plan check does not report the same exit again.
    assert!(!console.contains("had exited early"), "{console}");
}

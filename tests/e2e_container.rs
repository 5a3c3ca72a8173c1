//! End to end, for real: aes-go in an OCI container (runc) on QEMU, as the serverless-suite
//! methodology measures functions: under Docker's default seccomp profile, without it, and as a
//! bare process. Ignored by default; scripts/test runs it when SIMCTL_TEST_E2E=1 (CI sets it); a
//! cold run builds the kernel and the Debian image.

mod common;

use common::{run_state, simctl};

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn aes_go_in_a_runc_container_on_qemu_answers_like_vswarm_pinned_to_core_1_and_bare_for_comparison()
{
    let temp = tempfile::tempdir().unwrap();
    let run_dir = temp.path().join("container");
    // The recorded vSwarm pairs are replayed through the published port before the load:
    // the containerized function gives vSwarm's reply bytes.
    let pairs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/conformance/aes-go.jsonl"
    );
    let output = simctl(
        &[
            "run",
            "--workload",
            "aes-go",
            "--platform",
            "qemu",
            "--isolation",
            "container",
            "--invocations",
            "5",
            "--warmup",
            "2",
            "--replay",
            pairs,
            "--out",
        ],
        &[&run_dir],
    );
    let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "simctl run failed:\n{}\n{console}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(run_state(&run_dir).as_deref(), Some("ok"));
    assert!(
        console.contains(
            "replayed 16 pairs from /tmp/simctl-conformance.jsonl: 16 identical, 0 different"
        ),
        "{console}"
    );

    // The guest's view of the process runc started: the server, on core 1 only, in the
    // container's cgroup and in its own pid (where it is pid 1) and network namespaces, under
    // Docker's default seccomp profile (filter mode 2, one filter: runc's).
    let function = console
        .lines()
        .find(|line| line.contains("SIMCTL-AFFINITY") && line.contains("name=aes-go"))
        .unwrap_or_else(|| panic!("no affinity marker of the function:\n{console}"));
    for expected in [
        "cpus=1 ",
        "isolation=container",
        "exe=/opt/simctl/workloads/aes-go/server",
        "cgroup=/simctl/function",
        "own-pid-ns=yes",
        "own-net-ns=yes",
        "seccomp=2 seccomp-filters=1",
    ] {
        assert!(function.contains(expected), "{expected} in: {function}");
    }
    let nspid = function
        .split_whitespace()
        .find_map(|word| word.strip_prefix("nspid="))
        .unwrap();
    assert!(
        nspid.ends_with(",1"),
        "pid 1 in its own namespace: {function}"
    );

    let csv = std::fs::read_to_string(run_dir.join("results/results.csv")).unwrap();
    let measured: Vec<&str> = csv.lines().filter(|l| l.contains(",measured,")).collect();
    assert_eq!(measured.len(), 5, "{csv}");
    assert!(measured.iter().all(|l| l.contains(",true,")), "{csv}");
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("| isolation | container (seccomp docker-default) |"),
        "{report}"
    );

    // Without the filter (docker run --security-opt seccomp=unconfined), the check sees none.
    let unconfined_dir = temp.path().join("unconfined");
    let output = simctl(
        &[
            "run",
            "--workload",
            "aes-go",
            "--platform",
            "qemu",
            "--seccomp",
            "unconfined",
            "--invocations",
            "5",
            "--warmup",
            "2",
            "--out",
        ],
        &[&unconfined_dir],
    );
    let console = std::fs::read_to_string(unconfined_dir.join("console.log")).unwrap_or_default();
    assert!(output.status.success(), "{console}");
    assert!(
        console.lines().any(|line| line.contains("SIMCTL-AFFINITY")
            && line.contains("isolation=container")
            && line.contains("seccomp=0 ")),
        "{console}"
    );

    // For comparison, the bare process: pinned to core 1 by the boot agent, no runc.
    let process_dir = temp.path().join("process");
    let output = simctl(
        &[
            "run",
            "--workload",
            "aes-go",
            "--platform",
            "qemu",
            "--isolation",
            "process",
            "--invocations",
            "5",
            "--warmup",
            "2",
            "--out",
        ],
        &[&process_dir],
    );
    let console = std::fs::read_to_string(process_dir.join("console.log")).unwrap_or_default();
    assert!(output.status.success(), "{console}");
    // The boot agent prints one marker per pinned step (the client's too): the function's.
    let affinities: Vec<&str> = console
        .lines()
        .filter(|line| line.contains("SIMCTL-AFFINITY") && line.contains("name=aes-go"))
        .collect();
    assert_eq!(affinities.len(), 1, "{console}");
    assert!(
        affinities[0].trim_end().ends_with("name=aes-go cpus=1"),
        "{console}"
    );
    assert!(!console.contains("runc"), "{console}");
    let report = std::fs::read_to_string(process_dir.join("report.md")).unwrap();
    assert!(report.contains("| isolation | process |"), "{report}");
}

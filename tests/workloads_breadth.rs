//! The breadth of functions: at least 15, each vSwarm function naming the vSwarm revision it
//! reproduces and having recorded pairs (replayed by tests/conformance.rs), and
//! `simctl workloads` listing them with language, service, method and default input.

mod common;

use std::path::Path;

use simctl::project::Project;
use simctl::workloads::Workload;

#[test]
fn every_vswarm_function_has_recorded_pairs_and_names_its_vswarm_source() {
    let project = Project::at(env!("CARGO_MANIFEST_DIR"));
    let names = simctl::workloads::list(&project).unwrap();
    assert!(names.len() >= 15, "{names:?}");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance");
    for name in names.iter().filter(|name| *name != "spin") {
        assert!(
            fixtures.join(format!("{name}.jsonl")).is_file(),
            "{name}: no recorded pairs"
        );
        let manifest = Workload::load(&project, name).unwrap().manifest;
        if manifest.language != simctl::workloads::Language::Go || manifest.proto == "demo" {
            assert!(
                manifest
                    .vswarm_commit
                    .as_deref()
                    .is_some_and(|commit| commit.len() == 40)
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

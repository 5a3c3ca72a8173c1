//! `simctl run --conformance DIR`: in one boot, every function with a pairs file in DIR
//! (`<workload>.jsonl`, tests/fixtures/conformance/) answers its recorded vSwarm pairs inside
//! the guest, before the run's own function is measured. One image holds all those functions
//! (one image and one boot instead of one each: what makes guest conformance of every function
//! affordable in CI). Each is started as a process on core 0 on a port of its own (many share
//! vSwarm's 50051) and replayed by `simctl-client --replay`; a different reply fails the run.
//! They keep running (idle, on core 0) until the run ends.

use std::path::Path;

use anyhow::{Context, Result, bail};
use simctl_guest::plan::{Plan, Step};

use super::plan::CLIENT_CPU;
use crate::project::Project;
use crate::workloads::Workload;

/// The first port the replayed functions listen on (one each, upwards).
const FIRST_PORT: u16 = 51000;
/// Where the pairs files go in the guest.
const PAIRS_DIR: &str = "/tmp/simctl-conformance";

/// A function whose pairs are replayed, with their text.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub workload: Workload,
    pub pairs: String,
}

/// Every `<workload>.jsonl` of `dir`, with its workload, in name order.
pub fn load(project: &Project, dir: &Path) -> Result<Vec<Replayed>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "--conformance {}: cannot read the directory; hint: pass tests/fixtures/conformance",
            dir.display()
        )
    })?;
    let mut files: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "--conformance {}: no <workload>.jsonl pairs file in it; hint: pass \
             tests/fixtures/conformance",
            dir.display()
        );
    }
    files
        .iter()
        .map(|file| {
            let name = file.file_stem().unwrap_or_default().to_string_lossy();
            let workload = Workload::load(project, &name).with_context(|| {
                format!(
                    "--conformance: {} names no workload of workloads/",
                    file.display()
                )
            })?;
            let pairs = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            Ok(Replayed { workload, pairs })
        })
        .collect()
}

/// Puts the replay in front of the plan's steps: every function started in the background (on
/// core 0, on its own port), then one replay step per function.
pub fn prepend_steps(plan: &mut Plan, replayed: &[Replayed], timeout_s: u64) {
    let mut servers = Vec::new();
    let mut replays = Vec::new();
    for (index, function) in replayed.iter().enumerate() {
        let name = function.workload.name();
        let port = FIRST_PORT + index as u16;
        let pairs_file = format!("{PAIRS_DIR}/{name}.jsonl");
        plan.files
            .insert(pairs_file.clone(), function.pairs.clone());
        servers.push(Step {
            name: format!("conformance-server-{name}"),
            argv: function.workload.server_argv_on("127.0.0.1", port),
            cpu: Some(CLIENT_CPU),
            background: true,
            wait_for_port: Some(port),
            timeout_s,
            env: Default::default(),
        });
        replays.push(Step {
            name: format!("conformance-{name}"),
            argv: vec![
                "/sbin/simctl-client".into(),
                "--replay".into(),
                pairs_file,
                "--addr".into(),
                format!("127.0.0.1:{port}"),
            ],
            cpu: Some(CLIENT_CPU),
            background: false,
            wait_for_port: None,
            timeout_s,
            env: Default::default(),
        });
    }
    plan.steps.splice(0..0, servers.into_iter().chain(replays));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pairs_file_becomes_a_server_on_its_own_port_and_a_replay() {
        let project = Project::at(env!("CARGO_MANIFEST_DIR"));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance");
        let replayed = load(&project, &dir).unwrap();
        assert!(replayed.len() >= 15);
        let mut plan = Plan {
            results_dir: "/tmp/r".into(),
            files: Default::default(),
            steps: vec![Step {
                name: "client".into(),
                argv: vec!["/sbin/simctl-client".into()],
                cpu: Some(0),
                background: false,
                wait_for_port: None,
                timeout_s: 1,
                env: Default::default(),
            }],
        };
        prepend_steps(&mut plan, &replayed, 600);
        let count = replayed.len();
        assert_eq!(plan.steps.len(), 2 * count + 1);
        assert_eq!(plan.steps.last().unwrap().name, "client");
        let aes = &plan.steps[0];
        assert_eq!(aes.name, "conformance-server-aes-go");
        assert_eq!(
            aes.argv,
            [
                "/opt/simctl/workloads/aes-go/server",
                "-addr=127.0.0.1:51000"
            ]
        );
        assert!(aes.background && aes.wait_for_port == Some(51000));
        let replay = &plan.steps[count];
        assert_eq!(replay.argv[2], "/tmp/simctl-conformance/aes-go.jsonl");
        assert_eq!(replay.argv[4], "127.0.0.1:51000");
        assert_eq!(
            plan.files["/tmp/simctl-conformance/aes-go.jsonl"],
            replayed[0].pairs
        );
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("nosuch.jsonl"), "").unwrap();
        let err = format!("{:#}", load(&project, temp.path()).unwrap_err());
        assert!(err.contains("nosuch.jsonl names no workload"), "{err}");
    }
}

//! The guest run plan for a run: start the function pinned to core 1, wait for its port, then
//! run the client pinned to core 0 with the run's load pattern.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use simctl_guest::plan::{DEFAULT_RESULTS_DIR, Plan, Step};

use super::{Arrival, Pattern, RunArgs};
use crate::workloads::Workload;

/// The core the function gets to itself (`isolcpus=1`).
pub const FUNCTION_CPU: usize = 1;
/// The core the client and everything else run on.
pub const CLIENT_CPU: usize = 0;

/// Where `--replay` pairs are written in the guest.
const REPLAY_FILE: &str = "/tmp/simctl-conformance.jsonl";

/// Builds the plan; `slow` stretches the guest-side timeouts for simulation.
pub fn make_plan(workload: &Workload, args: &RunArgs, slow: bool) -> Result<Plan> {
    let timeout_s = if slow { 24 * 3600 } else { 600 };
    let port = workload.manifest.port;
    let request = args
        .request
        .clone()
        .unwrap_or_else(|| workload.manifest.default_request.clone());
    let mut client = vec![
        "/sbin/simctl-client".to_string(),
        "--service".into(),
        workload.manifest.service.clone(),
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--request".into(),
        request,
        "--warmup".into(),
        args.warmup.to_string(),
        "--invocations".into(),
        args.invocations.to_string(),
        "--cpu".into(),
        CLIENT_CPU.to_string(),
        "--out".into(),
        DEFAULT_RESULTS_DIR.into(),
        "--pattern".into(),
    ];
    match args.pattern {
        Pattern::Closed => client.push("closed".into()),
        Pattern::Rps => {
            client.extend([
                "rps".into(),
                "--rps".into(),
                args.rps.unwrap_or(10.0).to_string(),
                "--arrival".into(),
            ]);
            client.push(match args.arrival {
                Arrival::Uniform => "uniform".into(),
                Arrival::Poisson => "poisson".into(),
            });
        }
        Pattern::Rounds => client.extend([
            "rounds".into(),
            "--parallel".into(),
            args.parallel.to_string(),
            "--pause-ms".into(),
            std::time::Duration::from(args.pause)
                .as_millis()
                .to_string(),
        ]),
        Pattern::Streams => client.extend([
            "streams".into(),
            "--parallel".into(),
            args.parallel.to_string(),
        ]),
    }
    let function = Step {
        name: workload.name().to_string(),
        argv: workload.server_argv(),
        cpu: Some(FUNCTION_CPU),
        background: true,
        wait_for_port: Some(port),
        timeout_s,
        env: Default::default(),
    };
    let client_step = |name: &str, argv: Vec<String>| Step {
        name: name.into(),
        argv,
        cpu: Some(CLIENT_CPU),
        background: false,
        wait_for_port: None,
        timeout_s,
        env: Default::default(),
    };
    let mut files = BTreeMap::new();
    let mut steps = vec![function];
    if let Some(pairs) = &args.replay {
        // The guest client checks the pairs (and names a bad line) before the load runs.
        let text = std::fs::read_to_string(pairs).with_context(|| {
            format!(
                "cannot read --replay {}; hint: pass a file from tests/fixtures/conformance/",
                pairs.display()
            )
        })?;
        files.insert(REPLAY_FILE.to_string(), text);
        steps.push(client_step(
            "conformance",
            vec![
                "/sbin/simctl-client".into(),
                "--replay".into(),
                REPLAY_FILE.into(),
                "--addr".into(),
                format!("127.0.0.1:{port}"),
            ],
        ));
    }
    steps.push(client_step("client", client));
    Ok(Plan {
        results_dir: DEFAULT_RESULTS_DIR.into(),
        files,
        steps,
    })
}

//! The guest run plan for a run: start the function pinned to core 1, wait for its port, then
//! run the client pinned to core 0 with the run's load pattern.

use simctl_guest::plan::{DEFAULT_RESULTS_DIR, Plan, Step};

use super::Arrival;
use super::spec::{LoadPattern, RunSpec};
use crate::workloads::Workload;

/// The core the function gets to itself (`isolcpus=1`).
pub const FUNCTION_CPU: usize = 1;
/// The core the client and everything else run on.
pub const CLIENT_CPU: usize = 0;

/// Builds the plan; a gem5 run stretches the guest-side timeouts for simulation.
pub fn make_plan(workload: &Workload, spec: &RunSpec) -> Plan {
    let timeout_s = if spec.is_gem5() { 24 * 3600 } else { 600 };
    let port = workload.manifest.port;
    let mut client = vec![
        "/sbin/simctl-client".to_string(),
        "--service".into(),
        workload.manifest.service.clone(),
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--request".into(),
        spec.request.clone(),
        "--warmup".into(),
        spec.warmup.to_string(),
        "--invocations".into(),
        spec.invocations.to_string(),
        "--cpu".into(),
        CLIENT_CPU.to_string(),
        "--out".into(),
        DEFAULT_RESULTS_DIR.into(),
        "--pattern".into(),
    ];
    match &spec.load {
        LoadPattern::Closed => client.push("closed".into()),
        LoadPattern::Rps { rate, arrival } => client.extend([
            "rps".into(),
            "--rps".into(),
            rate.to_string(),
            "--arrival".into(),
            match arrival {
                Arrival::Uniform => "uniform".into(),
                Arrival::Poisson => "poisson".into(),
            },
        ]),
        LoadPattern::Rounds { parallel, pause_ms } => client.extend([
            "rounds".into(),
            "--parallel".into(),
            parallel.to_string(),
            "--pause-ms".into(),
            pause_ms.to_string(),
        ]),
        LoadPattern::Streams { parallel } => {
            client.extend(["streams".into(), "--parallel".into(), parallel.to_string()])
        }
    }
    Plan {
        results_dir: DEFAULT_RESULTS_DIR.into(),
        steps: vec![
            Step {
                name: workload.name().to_string(),
                argv: workload.server_argv(),
                cpu: Some(FUNCTION_CPU),
                background: true,
                wait_for_port: Some(port),
                timeout_s,
                env: Default::default(),
            },
            Step {
                name: "client".into(),
                argv: client,
                cpu: Some(CLIENT_CPU),
                background: false,
                wait_for_port: None,
                timeout_s,
                env: Default::default(),
            },
        ],
    }
}

//! The guest run plan for a run: start the function pinned to core 1, wait for its port, then
//! run the client pinned to core 0 with the run's load pattern.

use simctl_guest::plan::{DEFAULT_RESULTS_DIR, Plan, Step};

use super::{Arrival, Pattern, RunArgs};
use crate::workloads::Workload;

/// The core the function gets to itself (`isolcpus=1`).
pub const FUNCTION_CPU: usize = 1;
/// The core the client and everything else run on.
pub const CLIENT_CPU: usize = 0;

/// Builds the plan; `slow` stretches the guest-side timeouts for simulation.
pub fn make_plan(workload: &Workload, args: &RunArgs, slow: bool) -> Plan {
    let timeout_s = if slow { 24 * 3600 } else { 600 };
    if let Some(bench) = &args.bench {
        return Plan {
            results_dir: DEFAULT_RESULTS_DIR.into(),
            steps: vec![Step {
                name: "bench".into(),
                argv: bench.split_whitespace().map(String::from).collect(),
                cpu: Some(FUNCTION_CPU),
                background: false,
                wait_for_port: None,
                timeout_s,
                env: Default::default(),
            }],
        };
    }
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

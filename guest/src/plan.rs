//! The run plan the host hands to the guest agent: steps with argument vectors, CPU
//! affinity, background servers with a readiness port, timeouts. TOML, so a researcher can read
//! and edit `plan.toml` in a run directory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the guest agent collects results by default.
pub const DEFAULT_RESULTS_DIR: &str = "/tmp/simctl-results";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Directory whose files are handed back to the host after the steps.
    #[serde(default = "default_results_dir")]
    pub results_dir: String,
    /// Files the agent writes before the first step (absolute guest path -> contents), such as
    /// the conformance pairs a replay step reads; the plan is the only thing the host hands in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

fn default_results_dir() -> String {
    DEFAULT_RESULTS_DIR.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub argv: Vec<String>,
    /// The only CPU the step may run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<usize>,
    /// Keep running while later steps run; stopped at the end.
    #[serde(default)]
    pub background: bool,
    /// Wait until 127.0.0.1:port accepts connections before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_port: Option<u16>,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn default_timeout() -> u64 {
    600
}

impl Plan {
    pub fn parse(text: &str) -> Result<Plan, String> {
        let plan: Plan = toml::from_str(text).map_err(|err| format!("bad run plan: {err}"))?;
        if plan.steps.is_empty() {
            return Err("bad run plan: no [[step]]".into());
        }
        if let Some(path) = plan.files.keys().find(|path| !path.starts_with('/')) {
            return Err(format!(
                "bad run plan: file '{path}' is not an absolute guest path"
            ));
        }
        if let Some(step) = plan.steps.iter().find(|step| step.argv.is_empty()) {
            return Err(format!(
                "bad run plan: step '{}' has an empty argv",
                step.name
            ));
        }
        Ok(plan)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trips_and_rejects_bad_input() {
        let text = r#"
[files]
"/tmp/pairs.jsonl" = "{}\n"

[[step]]
name = "function"
argv = ["/opt/f", "-addr=127.0.0.1:50051"]
cpu = 1
background = true
wait_for_port = 50051

[[step]]
name = "client"
argv = ["/sbin/simctl-client"]
cpu = 0
env = { A = "b" }
"#;
        let plan = Plan::parse(text).unwrap();
        assert_eq!(plan.results_dir, DEFAULT_RESULTS_DIR);
        assert_eq!(plan.files["/tmp/pairs.jsonl"], "{}\n");
        assert_eq!(plan.steps[0].wait_for_port, Some(50051));
        assert_eq!(plan.steps[1].timeout_s, 600);
        assert_eq!(Plan::parse(&plan.to_toml()).unwrap(), plan);
        assert!(
            Plan::parse("[[step]]\nname='x'\nargv=[]\n")
                .unwrap_err()
                .contains("empty argv")
        );
        assert!(
            Plan::parse("[[step]]\nname='x'\nargv=['a']\nbogus=1\n")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            Plan::parse("[files]\n'rel' = ''\n[[step]]\nname='x'\nargv=['a']\n")
                .unwrap_err()
                .contains("'rel' is not an absolute guest path")
        );
    }
}

//! simctl-syscalls on the host: every variant runs in its own child (seccomp and ptrace need a
//! kernel that has them, as the host's has), one row per batch, and the tracer makes a real
//! system call much dearer while the vDSO clock, which never enters the kernel, stays cheap.

use std::collections::BTreeMap;
use std::process::Command;

fn medians(csv: &str) -> BTreeMap<(String, String), f64> {
    let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 9, "{line}");
        assert_eq!(fields[8], "true", "every call succeeded: {line}");
        if fields[2] == "measured" {
            values
                .entry((fields[0].to_string(), fields[1].to_string()))
                .or_default()
                .push(fields[7].parse().unwrap());
        }
    }
    values
        .into_iter()
        .map(|(key, mut v)| {
            v.sort_by(f64::total_cmp);
            (key, v[v.len() / 2])
        })
        .collect()
}

#[test]
fn all_three_variants_run_and_ptrace_costs_more_than_bare() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_simctl-syscalls"))
        .args([
            "--calls",
            "300",
            "--warmup",
            "1",
            "--batches",
            "5",
            "--m5",
            "off",
        ])
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let variants = std::fs::read_to_string(out.path().join("variants.csv")).unwrap();
    assert_eq!(
        variants,
        "variant,state,detail\nbare,ok,\nseccomp,ok,\nptrace,ok,\n"
    );
    let csv = std::fs::read_to_string(out.path().join("syscalls.csv")).unwrap();
    // 8 calls x (1 warm-up + 5 measured) x 3 variants, after the header.
    assert_eq!(csv.lines().count(), 1 + 8 * 6 * 3);
    let work_ids: Vec<u64> = csv
        .lines()
        .filter(|l| l.contains(",measured,"))
        .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    assert_eq!(work_ids, (0..120).collect::<Vec<u64>>(), "unique, in order");
    let cost = medians(&csv);
    let of = |variant: &str, call: &str| cost[&(variant.to_string(), call.to_string())];
    assert!(
        of("ptrace", "getpid") > 3.0 * of("bare", "getpid"),
        "{cost:?}"
    );
    assert!(
        of("ptrace", "clock_gettime-vdso") < of("ptrace", "getpid") / 3.0,
        "{cost:?}"
    );
}

#[test]
fn an_unknown_variant_is_refused_with_the_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_simctl-syscalls"))
        .args(["--variants", "bare,sandbox"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("'sandbox' is not a variant; give bare, seccomp or ptrace")
            && stderr.contains("--help"),
        "{stderr}"
    );
}

//! Studies: the analysis on run directories whose requests follow a known queue (report-only,
//! no guest), bad study files, and, with SIMCTL_TEST_E2E=1, the quick studies end to end on QEMU
//! with the sanity of their reports checked (success in [0, 1], achieved rate monotone up to
//! saturation, throughput and latency for every K).

mod common;

use common::simctl;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn study(args: &[&str], file: Option<&Path>, out: &Path) -> std::process::Output {
    let mut all: Vec<String> = std::iter::once("study")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    if let Some(file) = file {
        all.extend(["--file".to_string(), file.display().to_string()]);
    }
    all.extend(["--out".to_string(), out.display().to_string()]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    simctl(&all, &[])
}

/// Runs `simctl study NAME --quick --platform qemu` into a temp dir; the study must succeed.
fn quick_on_qemu(name: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join(name);
    let output = study(&[name, "--quick", "--platform", "qemu"], None, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (temp, out)
}

/// report.md of a study, which must mention every needle.
fn report_mentioning(dir: &Path, needles: &[&str]) -> String {
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for needle in needles {
        assert!(
            report.contains(needle),
            "report.md lacks {needle}:\n{report}"
        );
    }
    report
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Rows of a CSV as maps from column to text.
fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

fn number(row: &std::collections::BTreeMap<String, String>, column: &str) -> Option<f64> {
    row.get(column).and_then(|text| text.parse().ok())
}

/// The report's structure and sanity, for any load sweep: every file named in study.json
/// exists, success rates lie in [0, 1], and within each function and arrival the achieved rate
/// never falls while the point before kept up (up to saturation). Returns the points.csv rows.
fn check_load_study(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let report = report_mentioning(
        dir,
        &[
            "## Method",
            "Warm-up",
            "Arrivals",
            "Clock",
            "bootstrap",
            "Slowdown",
        ],
    );
    let record = json(&dir.join("study.json"));
    assert_eq!(record["study"], "load-sweep");
    for file in record["files"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        assert!(dir.join(file).is_file(), "{file} is listed but missing");
        if let Some(stem) = file.strip_suffix(".png") {
            assert!(
                report.contains(&format!("({stem}.png)")),
                "{file} not in report.md"
            );
            let bytes = std::fs::read(dir.join(file)).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
        }
    }
    let rows = csv_rows(&dir.join("points.csv"));
    assert!(!rows.is_empty());
    for row in &rows {
        let success = number(row, "success_rate").unwrap();
        assert!((0.0..=1.0).contains(&success), "{row:?}");
    }
    let mut groups: std::collections::BTreeMap<(String, String), Vec<_>> = Default::default();
    for row in &rows {
        // A run whose guest clock was miscalibrated is listed but not compared.
        if row["clock_ok"] == "true" {
            let key = (row["workload"].clone(), row["arrival"].clone());
            groups.entry(key).or_default().push(row);
        }
    }
    for ((workload, arrival), mut points) in groups {
        points.sort_by(|a, b| {
            number(a, "target_rps")
                .partial_cmp(&number(b, "target_rps"))
                .unwrap()
        });
        for pair in points.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            let target = number(before, "target_rps").unwrap();
            let Some(achieved) = number(before, "achieved_rps") else {
                continue;
            };
            let kept_up = achieved >= 0.9 * target && number(before, "success_rate") == Some(1.0);
            if !kept_up {
                break;
            }
            let next = number(after, "achieved_rps").unwrap_or(0.0);
            assert!(
                next >= achieved * 0.95,
                "{workload} {arrival}: achieved {next} RPS at target {} after {achieved} at {target}",
                after["target_rps"]
            );
        }
    }
    rows
}

/// A single server with a fixed service time, fed at `rps` (uniform, or Poisson from a fixed
/// LCG): each request's send offset and latency in ms.
fn queue(rps: f64, poisson: bool, service_ms: f64, count: usize) -> Vec<(f64, f64)> {
    let mut state: u64 = 12345;
    let mut send: f64 = 0.0;
    let mut free_at: f64 = 0.0;
    (0..count)
        .map(|_| {
            let start = send.max(free_at);
            free_at = start + service_ms;
            let request = (send, free_at - send);
            let gap = if poisson {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
                -(1000.0 / rps) * (1.0 - uniform).ln()
            } else {
                1000.0 / rps
            };
            send += gap;
            request
        })
        .collect()
}

fn results_csv(requests: &[(f64, f64)], failed_every: Option<usize>) -> String {
    let mut text = String::from("index,phase,send_offset_ns,latency_ns,ok,error,response_bytes\n");
    text.push_str("0,warmup,0,999000000,true,,20\n");
    for (index, (send, latency)) in requests.iter().enumerate() {
        let failed = failed_every.is_some_and(|every| index % every == every - 1);
        text.push_str(&format!(
            "{index},measured,{},{},{},{},20\n",
            (send * 1e6) as u64,
            (latency * 1e6) as u64,
            !failed,
            if failed { "Unavailable: refused" } else { "" }
        ));
    }
    text
}

#[test]
fn load_sweep_report_from_runs_with_a_known_queue() {
    let temp = tempfile::tempdir().unwrap();
    let file = write(
        temp.path(),
        "sweep.toml",
        "name = 'load-test'\n[base]\npattern = 'rps'\nworkload = 'spin'\nrequest = '20000'\n\
         warmup = 1\ninvocations = 200\n[matrix]\narrival = ['uniform', 'poisson']\n\
         rps = [10, 20, 40, 80]\n",
    );
    let out = temp.path().join("study");
    // Nothing ran yet: the report says so and still has its structure.
    let output = study(
        &["load-sweep", "--platform", "qemu", "--report-only"],
        Some(&file),
        &out,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = json(&out.join("study.json"));
    let names: Vec<String> = record["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 9, "8 load points and the baseline: {names:?}");
    assert_eq!(names[0], "baseline_spin-20000");
    assert!(
        record["points"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "closed")
    );
    assert!(
        std::fs::read_to_string(out.join("report.md"))
            .unwrap()
            .contains("0 of 9 runs ok")
    );

    // A server with a 20 ms service time: 50 RPS capacity.
    for name in &names {
        let dir = out.join("runs").join(name);
        let (rps, poisson) = if name.starts_with("baseline") {
            (1.0, false)
        } else {
            let rps: f64 = name
                .split("rps-")
                .nth(1)
                .unwrap()
                .split('_')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (rps, name.contains("poisson"))
        };
        let requests = queue(rps, poisson, 20.0, 200);
        // One point failed part-way: 150 of 200 recorded, every 10th of those failed.
        let failing = name.contains("uniform_rps-40");
        let (requests, failed_every, state) = if failing {
            (&requests[..150], Some(10), "failed")
        } else {
            (&requests[..], None, "ok")
        };
        write(
            &dir,
            "results/results.csv",
            &results_csv(requests, failed_every),
        );
        write(
            &dir,
            "status.json",
            &format!("{{\"state\":\"{state}\",\"started_unix_s\":1}}"),
        );
    }
    let output = study(
        &["load-sweep", "--platform", "qemu", "--report-only"],
        Some(&file),
        &out,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = check_load_study(&out);
    assert_eq!(rows.len(), 8);
    let row = |arrival: &str, rps: &str| {
        rows.iter()
            .find(|r| r["arrival"] == arrival && r["target_rps"] == rps)
            .unwrap()
    };
    // Under capacity: every reply, at the offered rate, no queueing for uniform arrivals.
    let easy = row("uniform", "20");
    assert_eq!(number(easy, "success_rate"), Some(1.0));
    assert!((number(easy, "sent_rps").unwrap() - 20.0).abs() < 0.01);
    assert!((number(easy, "slowdown_p50").unwrap() - 1.0).abs() < 1e-6);
    // The failed run: 135 ok of 200 planned (15 failed, 50 missing), never dropped.
    let broken = row("uniform", "40");
    assert_eq!(broken["ok"], "135");
    assert_eq!(
        (broken["errors"].as_str(), broken["missing"].as_str()),
        ("15", "50")
    );
    assert_eq!(number(broken, "success_rate"), Some(0.675));
    assert_eq!(broken["state"], "failed");
    // Beyond capacity the server does 50 replies/s and the queue grows.
    let over = row("uniform", "80");
    assert!(
        (number(over, "achieved_rps").unwrap() - 50.0).abs() < 0.5,
        "{over:?}"
    );
    assert!(number(over, "slowdown_p99").unwrap() > 10.0, "{over:?}");
    // Poisson arrivals queue below capacity where uniform ones do not.
    assert!(
        number(row("poisson", "40"), "p99_ms").unwrap()
            > number(row("uniform", "20"), "p99_ms").unwrap()
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("uniform: sustained up to 20 RPS"),
        "{report}"
    );
    assert!(report.contains("8 of 9 runs ok") && report.contains("`arrival-uniform_rps-40"));
    let requests = csv_rows(&out.join("requests.csv"));
    assert_eq!(
        requests.len(),
        200 * 8 + 150,
        "every measured request, warm-up excluded"
    );
}

#[test]
fn study_files_that_cannot_work_are_refused_with_a_hint() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    let platform = write(
        temp.path(),
        "p.toml",
        "name = 'x'\n[base]\nworkload = 'spin'\npattern = 'rps'\nplatform = 'qemu'\n[matrix]\nrps = [1, 2]\n",
    );
    let output = study(&["load-sweep", "--report-only"], Some(&platform), &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("p.toml") && stderr.contains("platform") && stderr.contains("hint:"),
        "{stderr}"
    );
    let closed = write(
        temp.path(),
        "c.toml",
        "name = 'x'\n[base]\nworkload = 'spin'\n[matrix]\ninvocations = [1, 2]\n",
    );
    let output = study(&["load-sweep", "--report-only"], Some(&closed), &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pattern = \\\"rps\\\"") || stderr.contains("pattern = \"rps\""),
        "{stderr}"
    );
    let output = study(&["rounds-streams", "--report-only"], Some(&closed), &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("rounds"),
        "{stderr}"
    );
}

/// How many points `simctl study NAME --report-only` plans from the shipped study file (the
/// study must accept it).
fn planned_points(name: &str, platform: &str, quick: bool, out: &Path) -> usize {
    let mut args = vec![name, "--platform", platform, "--report-only"];
    if quick {
        args.push("--quick");
    }
    let output = study(&args, None, out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json(&out.join("study.json"))["points"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn the_lukewarm_study_needs_gem5_and_its_files_expand_to_warm_and_lukewarm_pairs() {
    let temp = tempfile::tempdir().unwrap();
    let output = study(
        &["lukewarm", "--platform", "qemu", "--report-only"],
        None,
        &temp.path().join("q"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("needs gem5") && stderr.contains("hint:"),
        "{stderr}"
    );
    for (quick, points) in [(false, 12), (true, 2)] {
        let out = temp.path().join(format!("lukewarm-{quick}"));
        assert_eq!(
            planned_points("lukewarm", "gem5", quick, &out),
            points,
            "quick {quick}"
        );
    }
    let no_think = write(
        temp.path(),
        "l.toml",
        "name = 'x'\n[base]\nworkload = 'aes-go'\n[[run]]\n[[run]]\nco_runner = '/sbin/simctl-thrash'\n",
    );
    let output = study(
        &["lukewarm", "--platform", "gem5", "--report-only"],
        Some(&no_think),
        &temp.path().join("t"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("think = \"1ms\""), "{stderr}");
}

#[test]
#[ignore = "needs gem5: run with `cargo test --test study -- --ignored gem5` after `simctl build-gem5`"]
fn quick_lukewarm_study_on_gem5() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("lukewarm");
    let output = study(&["lukewarm", "--quick", "--platform", "gem5"], None, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json(&out.join("study.json"));
    let comparison = &summary["summary"]["comparisons"][0];
    for key in [
        "warm_cpi",
        "lukewarm_cpi",
        "cpi_increase_percent",
        "l1i_mpki_increase",
    ] {
        assert!(comparison[key].as_f64().is_some(), "{key}: {comparison}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("31-114%"), "{report}");
}

#[test]
fn the_shipped_study_files_expand() {
    let temp = tempfile::tempdir().unwrap();
    // (study, points, quick points); None: fewer than the full study, at least 4.
    for (name, points, quick_points) in [
        ("load-sweep", 30, None),
        ("rounds-streams", 8, None),
        // process (bare, seccomp, ptrace) and container.
        ("syscalls", 2, Some(2)),
        // micro + 3 (quick: 2) alternating function runs per macro variant.
        ("hook-overhead", 7, Some(5)),
    ] {
        for quick in [false, true] {
            let out = temp.path().join(format!("{name}-{quick}"));
            let count = planned_points(name, "qemu", quick, &out);
            match (quick, quick_points) {
                (false, _) => assert_eq!(count, points, "{name}"),
                (true, Some(expected)) => assert_eq!(count, expected, "{name} --quick"),
                (true, None) => assert!(count >= 4 && count < points, "{name} --quick: {count}"),
            }
        }
    }
    // The macro runs alternate bare and hooked (ABBA), the hooked ones preloading the hook.
    let out = temp.path().join("hook-overhead-true");
    let points = json(&out.join("study.json"))["points"].clone();
    let names: Vec<&str> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .filter(|name| name.contains("aes-nodejs"))
        .map(|name| name.rsplit_once('_').unwrap().1)
        .collect();
    assert_eq!(names, ["01-bare", "02-hooked", "03-hooked", "04-bare"]);
    for point in points.as_array().unwrap() {
        let args = point["args"].to_string();
        assert_eq!(
            args.contains("LD_PRELOAD=/usr/local/lib/simctl/readhook.so"),
            point["name"].as_str().unwrap().ends_with("hooked"),
            "{point}"
        );
    }
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn quick_load_sweep_on_qemu() {
    let (_temp, out) = quick_on_qemu("load-sweep");
    let rows = check_load_study(&out);
    assert_eq!(rows.len(), 6);
    let record = json(&out.join("study.json"));
    assert!(record["wall_s"].as_f64().unwrap() > 0.0);
    assert!(
        rows.iter()
            .all(|r| number(r, "p50_ms").is_some_and(|v| v > 0.0)),
        "{rows:?}"
    );
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn quick_rounds_vs_streams_on_qemu() {
    let (_temp, out) = quick_on_qemu("rounds-streams");
    let rows = csv_rows(&out.join("points.csv"));
    assert_eq!(rows.len(), 4);
    for row in rows.iter().filter(|r| r["clock_ok"] == "true") {
        assert_eq!(number(row, "success_rate"), Some(1.0), "{row:?}");
        assert!(
            number(row, "achieved_rps").is_some_and(|v| v > 0.0),
            "{row:?}"
        );
        assert!(number(row, "p99_ms") >= number(row, "p50_ms"), "{row:?}");
    }
    let stages = check_stages(&out);
    // spin stamps every request: each point of each K and pattern has its stages, and all but
    // a few of its requests are consistent (a broken clock would make none of them so).
    for row in rows.iter().filter(|r| r["clock_ok"] == "true") {
        let stage = stages
            .iter()
            .find(|s| s["point"] == row["point"])
            .unwrap_or_else(|| panic!("{} has no stages", row["point"]));
        let consistent = number(stage, "requests").unwrap();
        assert!(
            consistent >= 0.9 * number(row, "ok").unwrap(),
            "{stage:?} of {row:?}"
        );
    }
}

/// Stamps of a request that starts `send_ms` after 1 s (Unix time), with its stages in ms; the
/// latency the client measured is their sum.
fn stamped_row(index: usize, send_ms: f64, stages_ms: [f64; 3]) -> String {
    let ns = |ms: f64| (ms * 1e6).round() as i64;
    let send = 1_000_000_000 + ns(send_ms);
    let receive = send + ns(stages_ms[0]);
    let done = receive + ns(stages_ms[1]);
    let back = done + ns(stages_ms[2]);
    format!(
        "{index},measured,{},{},true,,28,{send},{receive},{done},{back}\n",
        ns(send_ms),
        back - send
    )
}

/// The staged decomposition's files and their sanity: every stage of every point and every
/// consistent request non-negative, a request's stages adding up to its latency and a point's
/// mean stages to its mean end-to-end latency, the stacked plot in the report.
fn check_stages(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let report = report_mentioning(dir, &["Staged decomposition", "where the time goes"]);
    let stages = csv_rows(&dir.join("stages.csv"));
    assert!(!stages.is_empty(), "no stages in stages.csv");
    let mut points: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
    for row in &stages {
        for column in [
            "pattern",
            "parallel",
            "requests",
            "inconsistent",
            "clock_ok",
        ] {
            assert!(!row[column].is_empty(), "{column} empty: {row:?}");
        }
        for column in ["median_ms", "p99_ms", "mean_ms"] {
            assert!(number(row, column).unwrap() >= 0.0, "{column}: {row:?}");
        }
        assert!(number(row, "p99_ms") >= number(row, "median_ms"), "{row:?}");
        points.entry(row["point"].as_str()).or_default().push(row);
    }
    for (point, rows) in points {
        let mean = |stage: &str| {
            let row = rows.iter().find(|r| r["stage"] == stage);
            number(
                row.unwrap_or_else(|| panic!("{point} lacks {stage}")),
                "mean_ms",
            )
            .unwrap()
        };
        let sum = mean("request_path") + mean("handler") + mean("reply_path");
        let end_to_end = mean("end_to_end");
        assert!(
            (sum - end_to_end).abs() <= 0.1_f64.max(0.01 * end_to_end),
            "{point}: mean stages add up to {sum} ms, mean end to end {end_to_end} ms"
        );
        assert!(report.contains(&format!("(stages_{}.png)", rows[0]["workload"])));
    }
    for request in csv_rows(&dir.join("request_stages.csv"))
        .iter()
        .filter(|r| r["consistent"] == "true")
    {
        let stage = |column: &str| number(request, column).unwrap();
        let parts = [
            stage("request_path_ms"),
            stage("handler_ms"),
            stage("reply_path_ms"),
        ];
        assert!(parts.iter().all(|&ms| ms >= 0.0), "{request:?}");
        let latency = stage("latency_ms");
        assert!(
            (parts.iter().sum::<f64>() - latency).abs() <= 0.1_f64.max(0.01 * latency),
            "{request:?}"
        );
    }
    stages
}

#[test]
fn rounds_streams_report_splits_stamped_requests_into_stages() {
    let temp = tempfile::tempdir().unwrap();
    let file = write(
        temp.path(),
        "rs.toml",
        "name = 'rs-test'\n[base]\nworkload = 'spin'\nrequest = '5000'\nwarmup = 1\n\
         invocations = 40\n[matrix]\nparallel = [1, 4]\n[[run]]\npattern = 'rounds'\n\
         pause = '50ms'\n[[run]]\npattern = 'streams'\n",
    );
    let out = temp.path().join("study");
    let plan = study(
        &["rounds-streams", "--platform", "qemu", "--report-only"],
        Some(&file),
        &out,
    );
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let names: Vec<String> = json(&out.join("study.json"))["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    // A 5 ms handler; with K requests in flight the request waits (K - 1) x 5 ms on average
    // before its handler runs (streams) or up to that (rounds).
    for name in &names {
        let parallel: f64 = if name.contains("parallel-4") {
            4.0
        } else {
            1.0
        };
        let streams = name.contains("streams");
        let mut text = String::from(
            "index,phase,send_offset_ns,latency_ns,ok,error,response_bytes,client_send_unix_ns,\
             server_receive_unix_ns,server_done_unix_ns,client_receive_unix_ns\n",
        );
        for index in 0..40 {
            let queued = if streams {
                (parallel - 1.0) * 5.0
            } else {
                (index % parallel as usize) as f64 * 5.0
            };
            text.push_str(&stamped_row(
                index,
                index as f64 * 30.0,
                [0.3 + queued, 5.0, 0.2],
            ));
        }
        if name.contains("parallel-4_pattern-streams") {
            // The handler stamped its exit before its entry: named, not summarised.
            text.push_str(&stamped_row(40, 1300.0, [5.3, -1.0, 0.2]));
        }
        write(&out.join("runs").join(name), "results/results.csv", &text);
        write(
            &out.join("runs").join(name),
            "status.json",
            "{\"state\":\"ok\",\"started_unix_s\":1}",
        );
    }
    let output = study(
        &["rounds-streams", "--platform", "qemu", "--report-only"],
        Some(&file),
        &out,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stages = check_stages(&out);
    assert_eq!(stages.len(), 4 * 4, "three stages and end to end per point");
    let median = |point: &str, stage: &str| {
        let row = stages
            .iter()
            .find(|r| r["point"].contains(point) && r["stage"] == stage)
            .unwrap();
        number(row, "median_ms").unwrap()
    };
    assert!((median("parallel-4_pattern-streams", "request_path") - 15.3).abs() < 1e-6);
    assert!((median("parallel-1_pattern-streams", "request_path") - 0.3).abs() < 1e-6);
    assert!((median("parallel-4_pattern-rounds", "handler") - 5.0).abs() < 1e-6);
    assert!((median("parallel-4_pattern-rounds", "reply_path") - 0.2).abs() < 1e-6);
    let inconsistent = stages
        .iter()
        .find(|r| r["point"].contains("parallel-4_pattern-streams"))
        .unwrap();
    assert_eq!(
        (
            inconsistent["requests"].as_str(),
            inconsistent["inconsistent"].as_str()
        ),
        ("40", "1")
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("request 40: negative stage: handler -1.000 ms"),
        "{report}"
    );
    let requests = csv_rows(&out.join("request_stages.csv"));
    assert_eq!(requests.len(), 4 * 40 + 1);
    assert!(
        requests
            .iter()
            .any(|r| r["index"] == "40" && r["consistent"] == "false" && r["handler_ms"] == "-1")
    );
}

/// The syscall study's rows: every call of every variant that ran, a cost per call, ratios to
/// bare of 1 for bare itself; variants the guest could not run are named with the reason.
fn check_syscall_study(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    report_mentioning(
        dir,
        &[
            "## Method",
            "Batches",
            "Variants",
            "the functions' OCI container: runc",
        ],
    );
    let rows = csv_rows(&dir.join("syscalls.csv"));
    let bare: Vec<_> = rows.iter().filter(|r| r["variant"] == "bare").collect();
    assert_eq!(bare.len(), 8, "{rows:?}");
    for row in &rows {
        assert!(
            number(row, "ns_per_call_median").is_some_and(|v| v > 0.0),
            "{row:?}"
        );
        let low = number(row, "ns_per_call_ci_low").unwrap();
        let high = number(row, "ns_per_call_ci_high").unwrap();
        assert!(
            low <= number(row, "ns_per_call_median").unwrap() && high >= low,
            "{row:?}"
        );
    }
    for row in bare {
        assert_eq!(number(row, "ratio_to_bare"), Some(1.0), "{row:?}");
    }
    for stem in ["ns_per_call", "ratio"] {
        assert!(
            dir.join(format!("{stem}.png")).is_file() && dir.join(format!("{stem}.svg")).is_file()
        );
    }
    rows
}

#[test]
fn syscall_study_files_must_match_the_benchmark() {
    let temp = tempfile::tempdir().unwrap();
    let file = write(
        temp.path(),
        "s.toml",
        "name = 's'\n[base]\nworkload = 'spin'\nbench = '/sbin/simctl-syscalls --batches 4'\n\
         invocations = 10\n",
    );
    let output = study(
        &["syscalls", "--report-only"],
        Some(&file),
        &temp.path().join("o"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("invocations = 96"), "{stderr}");
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn quick_syscall_study_on_qemu() {
    let (_temp, out) = quick_on_qemu("syscalls");
    let rows = check_syscall_study(&out);
    // The same benchmark in the functions' OCI container: every call, next to bare.
    let container: Vec<_> = rows
        .iter()
        .filter(|r| r["variant"] == "container")
        .collect();
    assert_eq!(container.len(), 8, "{rows:?}");
    assert!(
        container
            .iter()
            .all(|r| number(r, "ratio_to_bare").is_some_and(|v| v > 0.0)),
        "{rows:?}"
    );
    report_mentioning(&out, &["| container |", "seccomp"]);
    // The tracer stops every system call twice: ptrace costs more than bare.
    let cost = |variant: &str, call: &str| {
        rows.iter()
            .find(|r| r["variant"] == variant && r["syscall"] == call)
            .and_then(|r| number(r, "ns_per_call_median"))
            .unwrap()
    };
    assert!(
        cost("ptrace", "getpid") > 2.0 * cost("bare", "getpid"),
        "{rows:?}"
    );
    // The guest kernel has seccomp-BPF (CONFIG_SECCOMP_FILTER): the allow-list variant runs.
    assert!(
        rows.iter().any(|r| r["variant"] == "seccomp"),
        "no seccomp rows: {rows:?}"
    );
}

#[test]
fn hook_study_macro_points_need_the_counter_and_leave_the_hook_to_the_study() {
    let temp = tempfile::tempdir().unwrap();
    for (env, expected) in [
        ("[]", "without the hook's counter"),
        (
            "['READHOOK_COUNT=/c', 'LD_PRELOAD=/x.so']",
            "sets LD_PRELOAD; hint: drop it",
        ),
        ("['READHOOK_COUNT=c']", "absolute path"),
    ] {
        let file = write(
            temp.path(),
            "m.toml",
            &format!("name = 'm'\n[base]\nworkload = 'aes-nodejs'\nfunction_env = {env}\n"),
        );
        let output = study(
            &["hook-overhead", "--report-only"],
            Some(&file),
            &temp.path().join("o"),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(expected),
            "{stderr}"
        );
    }
}

#[test]
fn syscall_study_files_have_one_point_per_isolation() {
    let temp = tempfile::tempdir().unwrap();
    let file = write(
        temp.path(),
        "s.toml",
        "name = 's'\n[base]\nworkload = 'spin'\nbench = '/sbin/simctl-syscalls --batches 4'\n\
         invocations = 96\n[matrix]\nwarmup = [0, 1]\n",
    );
    let output = study(
        &["syscalls", "--report-only"],
        Some(&file),
        &temp.path().join("o"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("one point per isolation"),
        "{stderr}"
    );
}

#[test]
fn hook_study_files_need_thirty_interleaved_repetitions() {
    let temp = tempfile::tempdir().unwrap();
    for (reps, invocations, expected) in [(10, 20, "at least 30"), (30, 30, "invocations = 60")] {
        let file = write(
            temp.path(),
            "h.toml",
            &format!(
                "name = 'h'\n[base]\nworkload = 'spin'\n\
                 bench = '/sbin/simctl-hookbench --reps {reps}'\ninvocations = {invocations}\n"
            ),
        );
        let output = study(
            &["hook-overhead", "--report-only"],
            Some(&file),
            &temp.path().join("o"),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(expected),
            "{stderr}"
        );
    }
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn quick_hook_overhead_on_qemu() {
    let (_temp, out) = quick_on_qemu("hook-overhead");
    // Macro: the function's reads are counted with the hook, and nothing is without it (the
    // counter file never exists).
    let invocations = csv_rows(&out.join("macro_invocations.csv"));
    for variant in ["bare", "hooked"] {
        assert_eq!(
            invocations
                .iter()
                .filter(|r| r["variant"] == variant)
                .count(),
            30,
            "{variant}: {invocations:?}"
        );
    }
    for row in &invocations {
        let reads = number(row, "hooked_reads").unwrap();
        if row["variant"] == "hooked" {
            assert!(reads > 0.0 && row["counter_present"] == "true", "{row:?}");
        } else {
            assert!(reads == 0.0 && row["counter_present"] == "false", "{row:?}");
        }
    }
    let record = json(&out.join("study.json"));
    let summary = &record["summary"]["macro"][0];
    assert!(
        summary["hooked_calls_per_invocation"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(
        summary["overhead_ns_per_call"]["estimate"].is_f64(),
        "{summary}"
    );
    report_mentioning(&out, &["## Macro", "## Micro vs macro", "recvmsg"]);
    let loops = csv_rows(&out.join("loops.csv"));
    assert_eq!(loops.len(), 60);
    for row in &loops {
        let expected = if row["variant"] == "hooked" {
            "5000"
        } else {
            "0"
        };
        assert_eq!(
            row["hooked_calls"], expected,
            "the hook saw exactly the hooked reads: {row:?}"
        );
    }
    // Whole-loop medians drown in the noise of a busy host; the fastest windows do not.
    let overhead = &record["summary"]["overheads"][0]["overhead_ns_per_call_fastest_window"];
    assert!(overhead["estimate"].as_f64().unwrap() > 0.0, "{overhead}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("overhead per hooked call, ns") && report.contains("bypasses libc"));
}

//! `simctl run` with bad input fails at once, before any build step, with a message that names
//! what is wrong: each case runs the real binary with an empty artifact cache and checks that
//! the cache stays empty (nothing was built) and that no run directory was made. Also the
//! run directory's lock and the refusal of a run of other inputs at `--out`.

mod common;

use std::path::Path;
use std::process::Output;

use simctl::run::rundir::RunDir;
use simctl::run::spec::{Artifacts, Provenance, RunRecord};
use simctl::sweep::{Point, file::point_args};

/// `simctl run ARGS` with an empty cache in `temp` and no gem5.
fn run_in(temp: &Path, args: &[&str]) -> Output {
    let cache = temp.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_simctl"))
        .arg("run")
        .args(args)
        .env("SIMCTL_CACHE", &cache)
        .env_remove("SIMCTL_GEM5")
        .current_dir(temp)
        .output()
        .unwrap()
}

/// The run failed with exit 2 before building anything; returns its error text.
fn refused_before_builds(temp: &Path, args: &[&str]) -> String {
    let output = run_in(temp, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    let built: Vec<_> = std::fs::read_dir(temp.join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        built.is_empty(),
        "{args:?} started building {built:?}: {stderr}"
    );
    assert!(!temp.join("runs").exists(), "{args:?} made a run directory");
    stderr
}

#[test]
fn bad_options_fail_before_any_build_naming_the_option() {
    let temp = tempfile::tempdir().unwrap();
    let base = ["--workload", "aes-go", "--platform", "qemu"];
    for (extra, expected) in [
        (
            &["--invocations", "0"][..],
            "--invocations 0: give between 1 and 100000",
        ),
        (
            &["--invocations", "99999999999"],
            "--invocations 99999999999",
        ),
        (&["--pattern", "rps"], "--pattern rps needs --rps"),
        (&["--rps", "5"], "--rps applies to --pattern rps only"),
        (&["--set", "=5"], "--set =5: both the key and the value"),
        (
            &["--set", "memory_size=1GB num_cores=4"],
            "one --set per key",
        ),
        (
            &["--set", "num_cores=2.7"],
            "num_cores = \"2.7\" is not a whole number",
        ),
        (&["--set", "memory_size=128"], "'128' is not a size"),
        (&["--set", "llc_size=1MB"], "QEMU does not model llc_size"),
        (
            &["--system", "/nonexistent.toml"],
            "/nonexistent.toml is not a file",
        ),
        (&["--cpu", "o3"], "--cpu o3 applies to gem5 only"),
        (&["--cpu", "minor"], "gem5 issue #1206"),
        (
            &["--kernel-config", "/nonexistent.config"],
            "--kernel-config /nonexistent.config: no such file",
        ),
        (
            &["--image-spec", "/nonexistent.toml"],
            "--image-spec /nonexistent.toml: no such file",
        ),
        (&["--jobs", "0"], "--jobs 0: give at least 1"),
        (
            &["--isolation", "process", "--seccomp", "unconfined"],
            "--seccomp unconfined: the seccomp filter is the function container's",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let stderr = refused_before_builds(temp.path(), &args);
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
    // Without --platform and without gem5 the platform is QEMU, and the error says why.
    let stderr = refused_before_builds(temp.path(), &["--workload", "aes-go", "--cpu", "o3"]);
    assert!(
        stderr.contains("the platform is qemu: no gem5 (SIMCTL_GEM5, simctl.toml, or a `simctl build-gem5` build)"),
        "{stderr}"
    );
    let bad_system = temp.path().join("bad.toml");
    std::fs::write(
        &bad_system,
        "num_cores = [1, 2]\nclock = \"2GHz\"\nl1i_size = \"16kB\"\nl1i_assoc = 8\n\
         l1d_size = \"16kB\"\nl1d_assoc = 8\nllc_size = \"128kB\"\nllc_assoc = 8\n\
         memory_size = \"2GB\"\n",
    )
    .unwrap();
    let stderr = refused_before_builds(
        temp.path(),
        &[
            "--workload",
            "aes-go",
            "--system",
            bad_system.to_str().unwrap(),
        ],
    );
    assert!(
        stderr.contains("bad.toml:1: num_cores = [1, 2] is not a whole number"),
        "{stderr}"
    );
    let file = temp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let stderr = refused_before_builds(
        temp.path(),
        &["--workload", "aes-go", "--out", file.to_str().unwrap()],
    );
    assert!(
        stderr.contains("is a file, not a run directory"),
        "{stderr}"
    );
}

#[test]
fn a_second_simctl_on_the_same_out_fails_at_once_naming_the_holder() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("run");
    let (_dir, _lock) = RunDir::claim(&out).unwrap();
    std::fs::write(out.join("console.log"), "the other run's console").unwrap();
    let stderr = refused_before_builds(
        temp.path(),
        &["--workload", "aes-go", "--out", out.to_str().unwrap()],
    );
    assert!(
        stderr.contains(&format!("is in use by simctl pid {}", std::process::id())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("console.log")).unwrap(),
        "the other run's console",
        "nothing of the other run may be touched"
    );
}

/// A finished run of `args` at `out`, as `simctl run` records it (the artifacts are made up:
/// the refusal must come before any artifact exists).
fn finished_run(out: &Path, args: &[&str]) {
    let project = simctl::project::Project::at(env!("CARGO_MANIFEST_DIR"));
    let point = Point {
        name: "p".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let args = point_args(&point).unwrap();
    let resolved = simctl::run::spec::resolve(&project, &args, &simctl::run::kvm::probe()).unwrap();
    let artifacts = Artifacts {
        kernel_key: "k".into(),
        image_key: "i".into(),
        kernel_cmdline: "console=ttyS0".into(),
        plan_blake3: "p".into(),
        gem5_blake3: None,
        gem5_config_blake3: None,
    };
    let record = RunRecord {
        run_key: RunRecord::key(&resolved.spec, &artifacts).hex(),
        spec: resolved.spec,
        artifacts,
        provenance: Provenance {
            platform_why: "test".into(),
            accelerator: "test".into(),
            kernel: "/k".into(),
            kernel_version: "6.1".into(),
            image: "/i".into(),
            system_file: None,
            gem5: None,
            boot_checkpoint: None,
            checkpoint: None,
            gem5_timeline: Vec::new(),
        },
    };
    let (dir, _lock) = RunDir::claim(out).unwrap();
    std::fs::write(dir.run_toml(), record.to_toml().unwrap()).unwrap();
    std::fs::write(
        dir.status_path(),
        r#"{"state":"ok","started_unix_s":1,"finished_unix_s":2}"#,
    )
    .unwrap();
}

#[test]
fn out_holding_a_run_of_other_inputs_is_refused_naming_what_differs() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("run");
    let first = [
        "--workload",
        "aes-go",
        "--platform",
        "qemu",
        "--invocations",
        "2",
        "--warmup",
        "1",
    ];
    finished_run(&out, &first);
    let before = std::fs::read_to_string(out.join("run.toml")).unwrap();
    let mut more = first.to_vec();
    more[5] = "4";
    more.extend(["--out", out.to_str().unwrap()]);
    let stderr = refused_before_builds(temp.path(), &more);
    assert!(
        stderr.contains("holds a run of other inputs (invocations: 2 -> 4)")
            && stderr.contains("--force"),
        "{stderr}"
    );
    let mut other = first.to_vec();
    other[1] = "fibonacci-go";
    other.extend(["--out", out.to_str().unwrap()]);
    let stderr = refused_before_builds(temp.path(), &other);
    assert!(
        stderr.contains("workload: aes-go -> fibonacci-go"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("run.toml")).unwrap(),
        before
    );
}

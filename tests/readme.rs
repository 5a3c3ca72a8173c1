//! The README's commands, run as written. Every ```sh block of README.md is classified by its
//! info string, and an unknown marking is an error (so no block is left out by accident):
//! - `sh`: runs here, in a fresh copy of the tree (no target/, runs/ or sweeps-out/), with
//!   `cargo install` going to a temporary root put first on PATH: the first command, the tour.
//!   Needs SIMCTL_TEST_E2E=1 (the first run builds a kernel and an image and boots QEMU).
//! - `sh gem5`: needs a gem5 build; run by the ignored test below where gem5 exists.
//! - `sh tests`: the test command itself (scripts/test), which CI runs; running it from a test
//!   would run this test again.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a README block needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Gem5,
    IsTheTestCommand,
}

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    needs: Needs,
    script: String,
}

/// Where the parser is in the Markdown text.
enum State {
    Prose,
    Sh(Block),
    /// Inside a block of another language (documentation, not commands).
    Other,
}

/// The ```sh blocks of a Markdown text; an unknown marking after `sh` is an error.
fn sh_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut state = State::Prose;
    for (number, line) in markdown.lines().enumerate() {
        let number = number + 1;
        let fence = line.trim_start().strip_prefix("```");
        state = match (state, fence) {
            (State::Sh(block), Some(_)) => {
                blocks.push(block);
                State::Prose
            }
            (State::Other, Some(_)) => State::Prose,
            (State::Sh(mut block), None) => {
                block.script.push_str(line);
                block.script.push('\n');
                State::Sh(block)
            }
            (state, None) => state,
            (State::Prose, Some(info)) => {
                let mut words = info.split_whitespace();
                if words.next() != Some("sh") {
                    State::Other
                } else {
                    let needs = match words.collect::<Vec<_>>().as_slice() {
                        [] => Needs::Nothing,
                        ["gem5"] => Needs::Gem5,
                        ["tests"] => Needs::IsTheTestCommand,
                        other => {
                            return Err(format!(
                                "README.md:{number}: ```sh {} is not a known marking (sh, sh \
                                 gem5, sh tests)",
                                other.join(" ")
                            ));
                        }
                    };
                    State::Sh(Block {
                        line: number,
                        needs,
                        script: String::new(),
                    })
                }
            }
        };
    }
    match state {
        State::Sh(block) => Err(format!("README.md:{}: code block never closed", block.line)),
        _ => Ok(blocks),
    }
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn markings_are_an_explicit_rule() {
    let blocks = sh_blocks(
        "# x\n```sh\necho a\n```\ntext\n```sh gem5\nsimctl run\n```\n```toml\n[a]\n```\n```sh tests\nscripts/test\n```\n",
    )
    .unwrap();
    let summary: Vec<(usize, Needs, &str)> = blocks
        .iter()
        .map(|b| (b.line, b.needs, b.script.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, Needs::Nothing, "echo a\n"),
            (6, Needs::Gem5, "simctl run\n"),
            (12, Needs::IsTheTestCommand, "scripts/test\n"),
        ]
    );
    let message = sh_blocks("```sh maybe\nx\n```\n").unwrap_err();
    assert!(
        message.contains("README.md:1") && message.contains("maybe"),
        "{message}"
    );
    assert!(
        sh_blocks("```sh\nx\n")
            .unwrap_err()
            .contains("never closed")
    );
}

#[test]
fn readme_blocks_are_marked_by_what_they_need() {
    let blocks = sh_blocks(&readme()).unwrap();
    let runnable: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.needs == Needs::Nothing)
        .collect();
    assert!(
        runnable.len() >= 2,
        "the first command and the tour: {blocks:?}"
    );
    assert!(
        runnable[0]
            .script
            .contains("cargo install --path . --locked")
            && runnable[0].script.contains("simctl run --workload aes-go"),
        "the first command installs simctl and runs aes-go: {:?}",
        runnable[0]
    );
    for block in &blocks {
        let mentions_gem5 = block.script.contains("gem5") || block.script.contains("--cpu");
        assert_eq!(
            mentions_gem5,
            block.needs == Needs::Gem5,
            "README.md:{}: a block that needs gem5 is marked `sh gem5`, and only such a block",
            block.line
        );
        if block.needs == Needs::IsTheTestCommand {
            assert_eq!(block.script.trim(), "scripts/test");
        }
    }
}

/// A copy of the tree as a fresh clone has it: no build output, runs or sweeps.
fn fresh_copy(to: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let skip = ["target", ".git", "runs", "sweeps-out", ".simctl"];
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || !skip.iter().any(|s| e.file_name() == *s))
    {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(root).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if entry.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the blocks that need `needs`, in order, in a fresh copy; returns the copy.
fn run_blocks(needs: Needs) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("simctl");
    fresh_copy(&tree);
    let install_root = work.path().join("cargo-root");
    let path = format!(
        "{}:{}",
        install_root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The install compiles into this checkout's target/ (incremental), not a new one.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    for block in sh_blocks(&readme()).unwrap() {
        if block.needs != needs {
            continue;
        }
        let started = std::time::Instant::now();
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block.script])
            .current_dir(&tree)
            .env("PATH", &path)
            .env("CARGO_INSTALL_ROOT", &install_root)
            .env("CARGO_TARGET_DIR", &target)
            // The crates are in cargo's cache already (this test was built from them). Online,
            // `cargo install` first updates the registry index, which waits for an exclusive
            // lock that every other cargo process on the machine holds shared while it builds.
            .env("CARGO_NET_OFFLINE", "true")
            // Straight to the test's stderr, past the harness's capture: CI's log shows each
            // stage of the fresh-machine path with its time as it happens.
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "README.md:{} failed (its stderr is above):\n{}\n--- stdout\n{}",
            block.line,
            block.script,
            String::from_utf8_lossy(&output.stdout)
        );
        eprintln!(
            "README.md:{} ok in {:.0} s",
            block.line,
            started.elapsed().as_secs_f64()
        );
    }
    (work, tree)
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn readme_commands_run_on_a_fresh_copy() {
    let (_work, tree) = run_blocks(Needs::Nothing);
    // The tour's reports drew their plots, and the first run wrote its report.
    for plot in ["latency.svg", "qemu-smoke.png"] {
        let bytes = std::fs::read(tree.join(plot)).unwrap_or_default();
        assert!(bytes.len() > 1000, "{plot} was not drawn");
    }
    let svg = std::fs::read_to_string(tree.join("latency.svg")).unwrap();
    for text in ["latency CDF", "latency (µs)", "aes-go/qemu-"] {
        assert!(svg.contains(text), "latency.svg lacks {text:?}");
    }
    let reports: Vec<PathBuf> = std::fs::read_dir(tree.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("report.md"))
        .filter(|p| p.is_file())
        .collect();
    assert!(!reports.is_empty(), "no run wrote report.md");
    let report = std::fs::read_to_string(&reports[0]).unwrap();
    for text in ["p99", "client: core(s) 0", "core(s) 1", "simctl build-gem5"] {
        assert!(report.contains(text), "report.md lacks {text:?}:\n{report}");
    }
}

#[test]
#[ignore = "needs gem5 (a gem5 build: simctl build-gem5 or SIMCTL_GEM5)"]
fn readme_gem5_commands_run() {
    run_blocks(Needs::Gem5);
}

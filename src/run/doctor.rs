//! `simctl doctor`: for each stage, whether its tools are present and usable, and what to
//! install when they are not. Checks run the tools for real where that is cheap (versions, the
//! KVM probe), so "present but broken" is reported as broken.

use std::path::Path;

use anyhow::Result;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::gem5build::LibPython;
use crate::process::{Command, find_program};
use crate::project::Project;

/// Check which tools each stage needs and whether they work here.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  simctl doctor\n  simctl doctor --stage run-gem5")]
pub struct DoctorArgs {
    /// Only check this stage (e.g. build-image, build-gem5, run-qemu, run-gem5, sweep-slurm).
    #[arg(long)]
    pub stage: Option<String>,
}

/// The verdict on one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    Missing { hint: String },
    Broken { detail: String, hint: String },
}

/// One line of the doctor's table.
#[derive(Debug, Clone)]
pub struct Check {
    pub stage: &'static str,
    pub tool: &'static str,
    pub verdict: Verdict,
}

fn program_check(
    stage: &'static str,
    tool: &'static str,
    version_args: &[&str],
    package: &str,
) -> Check {
    let verdict = match find_program(tool) {
        None => Verdict::Missing {
            hint: format!("apt-get install {package}"),
        },
        Some(path) => {
            if version_args.is_empty() {
                Verdict::Ok(path.display().to_string())
            } else {
                match Command::new(&path)
                    .args(version_args.iter().copied())
                    .read_stdout()
                {
                    Ok(out) => Verdict::Ok(first_line(&out).unwrap_or(path.display().to_string())),
                    Err(err) => Verdict::Broken {
                        detail: format!("{err:#}"),
                        hint: format!("reinstall {package}"),
                    },
                }
            }
        }
    };
    Check {
        stage,
        tool,
        verdict,
    }
}

fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
}

fn file_check(stage: &'static str, tool: &'static str, path: &str, package: &str) -> Check {
    let verdict = if Path::new(path).exists() {
        Verdict::Ok(path.to_string())
    } else {
        Verdict::Missing {
            hint: format!("apt-get install {package}"),
        }
    };
    Check {
        stage,
        tool,
        verdict,
    }
}

fn kvm_check() -> Check {
    let status = super::kvm::probe();
    let verdict = if status.is_usable() {
        Verdict::Ok(status.describe())
    } else {
        Verdict::Broken {
            detail: status.describe(),
            hint: "optional: QEMU falls back to TCG and gem5 to the atomic CPU".into(),
        }
    };
    Check {
        stage: "run-qemu",
        tool: "kvm",
        verdict,
    }
}

/// Which gem5 `simctl run` would use, how it was found, its version and ISAs, and whether its
/// libpython resolves (the usual reason a gem5 that built fine does not start).
fn gem5_checks(project: &Project) -> Vec<Check> {
    let check = |tool, verdict| Check {
        stage: "run-gem5",
        tool,
        verdict,
    };
    let gem5 = match project.locate_gem5() {
        Ok(Some(gem5)) => gem5,
        Ok(None) => {
            return vec![check(
                "gem5",
                Verdict::Missing {
                    hint: "run `simctl build-gem5 --source <gem5 checkout>` (or set SIMCTL_GEM5 \
                           or `gem5 = ...` in simctl.toml)"
                        .into(),
                },
            )];
        }
        Err(err) => {
            return vec![check(
                "gem5",
                Verdict::Broken {
                    detail: format!("{err:#}"),
                    hint: "fix the gem5 path".into(),
                },
            )];
        }
    };
    let python = crate::gem5build::libpython(&gem5.path);
    let python_verdict = match &python {
        Ok(LibPython::Found { name, path }) => Verdict::Ok(format!("{name} => {}", path.display())),
        Ok(LibPython::NotLinked) => Verdict::Ok("not linked against a shared libpython".into()),
        Ok(LibPython::Missing { name }) => {
            let (detail, hint) = crate::gem5build::missing_libpython(name);
            Verdict::Broken { detail, hint }
        }
        Err(err) => Verdict::Broken {
            detail: format!("{err:#}"),
            hint: "apt-get install libc-bin (ldd)".into(),
        },
    };
    let binary = match (&python, crate::gem5build::build_info(&gem5.path)) {
        (_, Ok(info)) => Verdict::Ok(format!(
            "gem5 {} ({}) at {}; found by {}",
            info.version,
            info.isas.join(", "),
            gem5.path.display(),
            gem5.found_by
        )),
        (Ok(LibPython::Missing { name }), Err(_)) => Verdict::Broken {
            detail: format!(
                "{} (found by {}) does not start: it needs {name}",
                gem5.path.display(),
                gem5.found_by
            ),
            hint: "see the libpython line".into(),
        },
        (_, Err(err)) => Verdict::Broken {
            detail: format!("{err:#} (found by {})", gem5.found_by),
            hint: "rebuild it: simctl build-gem5".into(),
        },
    };
    vec![check("gem5", binary), check("libpython", python_verdict)]
}

/// What `simctl build-gem5` needs: scons, m4, Debian's python3-config and the libraries gem5
/// links (headers checked where Debian puts them).
fn gem5_build_checks() -> Vec<Check> {
    vec![
        program_check("build-gem5", "scons", &["--version"], "scons"),
        program_check("build-gem5", "m4", &["--version"], "m4"),
        program_check("build-gem5", "g++", &["--version"], "g++"),
        file_check(
            "build-gem5",
            "python3-config",
            "/usr/bin/python3-config",
            "python3-dev",
        ),
        file_check(
            "build-gem5",
            "protobuf",
            "/usr/include/google/protobuf/message.h",
            "libprotobuf-dev protobuf-compiler",
        ),
        file_check(
            "build-gem5",
            "tcmalloc",
            "/usr/include/gperftools/tcmalloc.h",
            "libgoogle-perftools-dev",
        ),
        file_check("build-gem5", "zlib", "/usr/include/zlib.h", "zlib1g-dev"),
        file_check("build-gem5", "libpng", "/usr/include/png.h", "libpng-dev"),
    ]
}

/// Every check, in stage order.
pub fn checks(project: &Project) -> Vec<Check> {
    vec![
        program_check("build-kernel", "make", &["--version"], "make"),
        program_check("build-kernel", "gcc", &["--version"], "build-essential"),
        program_check("build-kernel", "flex", &["--version"], "flex"),
        program_check("build-kernel", "bison", &["--version"], "bison"),
        program_check("build-kernel", "bc", &["--version"], "bc"),
        file_check(
            "build-kernel",
            "libelf",
            "/usr/include/libelf.h",
            "libelf-dev",
        ),
        program_check("build-kernel", "dpkg-deb", &["--version"], "dpkg"),
        program_check(
            "build-guest",
            "cargo",
            &["--version"],
            "rustup (https://rustup.rs)",
        ),
        file_check(
            "build-guest",
            "static glibc",
            "/usr/lib/x86_64-linux-gnu/libc.a",
            "libc6-dev",
        ),
        program_check("build-guest", "protoc", &["--version"], "protobuf-compiler"),
        program_check("build-workload", "go", &["version"], "golang-go"),
        program_check("build-workload", "protoc-gen-go", &[], "protoc-gen-go"),
        program_check(
            "build-workload",
            "protoc-gen-go-grpc",
            &[],
            "protoc-gen-go-grpc",
        ),
        file_check(
            "build-workload",
            "go grpc",
            "/usr/share/gocode/src/google.golang.org/grpc",
            "golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev",
        ),
        program_check("build-workload", "npm", &["--version"], "npm"),
        file_check(
            "build-workload",
            "go opencensus",
            "/usr/share/gocode/src/go.opencensus.io",
            "golang-go.opencensus-dev",
        ),
        program_check("build-image", "mmdebstrap", &["--version"], "mmdebstrap"),
        program_check("build-image", "newuidmap", &[], "uidmap"),
        program_check("build-image", "fakeroot", &["--version"], "fakeroot"),
        program_check("build-image", "mke2fs", &["-V"], "e2fsprogs"),
        program_check("build-image", "sfdisk", &["--version"], "fdisk"),
        program_check("build-image", "debugfs", &["-V"], "e2fsprogs"),
        program_check(
            "run-qemu",
            "qemu-system-x86_64",
            &["--version"],
            "qemu-system-x86",
        ),
        kvm_check(),
    ]
    .into_iter()
    .chain(gem5_build_checks())
    .chain(gem5_checks(project))
    .chain([
        program_check("sweep-slurm", "sbatch", &["--version"], "slurm-client"),
        program_check("sweep-slurm", "squeue", &["--version"], "slurm-client"),
    ])
    .collect()
}

/// Width of the doctor's table when the terminal's is unknown (output to a file or a pipe).
const DEFAULT_WIDTH: u16 = 100;

/// The checks as a table that wraps its detail column to `width`; returns it with the number
/// of problems.
fn table(checks: &[Check], width: u16) -> (Table, usize) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    table.set_header(["stage", "tool", "state", "detail / what to do"]);
    let mut problems = 0;
    for check in checks {
        let (state, detail) = match &check.verdict {
            Verdict::Ok(detail) => ("ok", detail.clone()),
            Verdict::Missing { hint } => ("missing", hint.clone()),
            Verdict::Broken { detail, hint } => ("broken", format!("{detail}; {hint}")),
        };
        if state != "ok" {
            problems += 1;
        }
        table.add_row([check.stage, check.tool, state, detail.as_str()]);
    }
    (table, problems)
}

pub fn run_cli(args: DoctorArgs) -> Result<()> {
    let project = Project::locate()?;
    let checks: Vec<Check> = checks(&project)
        .into_iter()
        .filter(|check| {
            args.stage
                .as_deref()
                .is_none_or(|stage| stage == check.stage)
        })
        .collect();
    let width = crate::report::cli::terminal_width().unwrap_or(DEFAULT_WIDTH);
    let (table, problems) = table(&checks, width);
    println!("{table}");
    println!("cache: {}", project.cache_dir().display());
    println!("{problems} tool(s) missing or broken (stages that need them will say so when run)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_gets_an_install_hint() {
        let check = program_check(
            "x",
            "simctl-no-such-program",
            &["--version"],
            "some-package",
        );
        assert_eq!(
            check.verdict,
            Verdict::Missing {
                hint: "apt-get install some-package".into()
            }
        );
    }

    #[test]
    fn present_program_reports_its_version_line() {
        let check = program_check("x", "sh", &["-c", "echo; echo shell 1.0"], "dash");
        assert_eq!(check.verdict, Verdict::Ok("shell 1.0".into()));
    }

    #[test]
    fn table_fits_the_width_even_with_long_details() {
        let long = "x".repeat(150);
        let checks = vec![
            Check {
                stage: "build-workload",
                tool: "protoc-gen-go-grpc",
                verdict: Verdict::Broken {
                    detail: long.clone(),
                    hint: "reinstall golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev"
                        .into(),
                },
            },
            Check {
                stage: "run-qemu",
                tool: "kvm",
                verdict: Verdict::Ok(long),
            },
        ];
        let (table, problems) = table(&checks, DEFAULT_WIDTH);
        assert_eq!(problems, 1);
        let text = table.to_string();
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            widest <= DEFAULT_WIDTH as usize,
            "{widest} columns:\n{text}"
        );
        assert!(text.contains("protoc-gen-go-grpc"), "{text}");
    }

    #[test]
    fn failing_program_is_broken_not_missing() {
        let check = program_check("x", "false", &["--version"], "coreutils");
        assert!(
            matches!(check.verdict, Verdict::Broken { .. }),
            "{:?}",
            check.verdict
        );
    }
}

//! The gem5 platform: one gem5 process per phase, running `gem5-configs/simctl_fs.py`.
//!
//! * boot: boot Linux on the fast CPU (KVM when it really works, atomic otherwise) and save the
//!   boot checkpoint as soon as the guest agent is up, before it reads any plan: one boot serves
//!   every workload of the image and every design point.
//! * warmup: restore the boot checkpoint on the fast CPU with the run's plan as the readfile;
//!   the guest starts the function and runs the warm-up invocations, and the client's m5
//!   checkpoint saves the warm checkpoint. Both checkpoints are artifacts, cached under keys of
//!   what a restore depends on (see `checkpoint.rs`), always made with the same caches, so runs
//!   that differ only in the measured phase (CPU model, cache sizes) reuse them.
//! * measure: restore the warm checkpoint on the detailed CPU; the warming invocations run
//!   unmarked, then gem5 resets stats at each measured invocation's workbegin and dumps them at
//!   its workend, so `stats.txt` has one dump per measured invocation.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::CpuModel;
use crate::process::Command;

/// The CPU that boots and warms up before the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FastCpu {
    Kvm,
    Atomic,
}

impl FastCpu {
    pub fn name(self) -> &'static str {
        match self {
            FastCpu::Kvm => "kvm",
            FastCpu::Atomic => "atomic",
        }
    }
}

impl CpuModel {
    pub fn name(self) -> &'static str {
        match self {
            CpuModel::Atomic => "atomic",
            CpuModel::Timing => "timing",
            CpuModel::Minor => "minor",
            CpuModel::O3 => "o3",
        }
    }
}

/// Which phase one gem5 process runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Boot {
        fast_cpu: FastCpu,
        checkpoint_dir: PathBuf,
    },
    Warmup {
        fast_cpu: FastCpu,
        restore: PathBuf,
        checkpoint_dir: PathBuf,
    },
    Measure {
        restore: PathBuf,
        cpu: CpuModel,
        invocations: u64,
    },
}

/// Everything one gem5 process needs. Building the command runs nothing.
#[derive(Debug, Clone)]
pub struct Gem5Invocation {
    pub gem5: PathBuf,
    pub config_script: PathBuf,
    pub outdir: PathBuf,
    pub kernel: PathBuf,
    pub image: PathBuf,
    pub readfile: PathBuf,
    /// The resolved system file (every key, canonical units; see run/system.rs).
    pub system: PathBuf,
    pub kernel_args: String,
    pub phase: Phase,
}

impl Gem5Invocation {
    pub fn command(&self) -> Command {
        Command::new(&self.gem5).args(self.args())
    }

    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            path_flag("--outdir=", &self.outdir),
            self.config_script.clone().into_os_string(),
        ];
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        push("--kernel", self.kernel.clone().into_os_string());
        push("--disk", self.image.clone().into_os_string());
        push("--readfile", self.readfile.clone().into_os_string());
        push("--system", self.system.clone().into_os_string());
        push("--kernel-args", self.kernel_args.clone().into());
        match &self.phase {
            Phase::Boot {
                fast_cpu,
                checkpoint_dir,
            } => {
                push("--phase", "boot".into());
                push("--fast-cpu", fast_cpu.name().into());
                push("--checkpoint-dir", checkpoint_dir.clone().into_os_string());
            }
            Phase::Warmup {
                fast_cpu,
                restore,
                checkpoint_dir,
            } => {
                push("--phase", "warmup".into());
                push("--fast-cpu", fast_cpu.name().into());
                push("--restore", restore.clone().into_os_string());
                push("--checkpoint-dir", checkpoint_dir.clone().into_os_string());
            }
            Phase::Measure {
                restore,
                cpu,
                invocations,
            } => {
                push("--phase", "measure".into());
                push("--restore", restore.clone().into_os_string());
                push("--cpu", cpu.name().into());
                push("--invocations", invocations.to_string().into());
            }
        }
        args
    }
}

fn path_flag(flag: &str, path: &Path) -> OsString {
    let mut value = OsString::from(flag);
    value.push(path);
    value
}

/// The guest console gem5 writes for the X86 board's first UART.
pub fn console_file(outdir: &Path) -> PathBuf {
    outdir.join("board.pc.com_1.device")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(phase: Phase) -> Gem5Invocation {
        Gem5Invocation {
            gem5: "/g/gem5.opt".into(),
            config_script: "/s/gem5-configs/simctl_fs.py".into(),
            outdir: "/r/m5out".into(),
            kernel: "/k/vmlinux".into(),
            image: "/i/disk.img".into(),
            readfile: "/r/plan.toml".into(),
            system: "/r/system.toml".into(),
            kernel_args: "console=ttyS0 isolcpus=1".into(),
            phase,
        }
    }

    fn text(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn boot_phase_arguments() {
        let args = text(
            invocation(Phase::Boot {
                fast_cpu: FastCpu::Atomic,
                checkpoint_dir: "/c/cpt".into(),
            })
            .args(),
        );
        assert_eq!(
            &args[..2],
            ["--outdir=/r/m5out", "/s/gem5-configs/simctl_fs.py"]
        );
        let joined = args.join(" ");
        assert!(
            joined.contains("--phase boot --fast-cpu atomic --checkpoint-dir /c/cpt"),
            "{joined}"
        );
        assert!(joined.contains("--system /r/system.toml"), "{joined}");
        assert!(
            args.contains(&"console=ttyS0 isolcpus=1".to_string()),
            "kernel args stay one argument"
        );
    }

    #[test]
    fn warmup_phase_restores_the_boot_checkpoint_and_saves_another() {
        let args = text(
            invocation(Phase::Warmup {
                fast_cpu: FastCpu::Kvm,
                restore: "/b/cpt".into(),
                checkpoint_dir: "/w/cpt".into(),
            })
            .args(),
        );
        let joined = args.join(" ");
        assert!(
            joined.ends_with(
                "--phase warmup --fast-cpu kvm --restore /b/cpt --checkpoint-dir /w/cpt"
            ),
            "{joined}"
        );
    }

    #[test]
    fn measure_phase_arguments() {
        let args = text(
            invocation(Phase::Measure {
                restore: "/c/cpt".into(),
                cpu: CpuModel::O3,
                invocations: 10,
            })
            .args(),
        );
        let joined = args.join(" ");
        assert!(
            joined.ends_with("--phase measure --restore /c/cpt --cpu o3 --invocations 10"),
            "{joined}"
        );
    }
}

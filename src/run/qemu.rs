//! The QEMU platform: boots the kernel and image with the system's core count and memory, the
//! image as a copy-on-write IDE disk (the image file is never modified) and a second IDE disk that carries the run plan
//! in and the results out, the same way under KVM and TCG.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::process::Command;

/// Which QEMU accelerator to use (part of the run spec: latencies under TCG are not KVM's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// KVM when the real probe says it works, TCG otherwise.
    pub fn from_probe(kvm: &super::kvm::KvmStatus) -> Accel {
        if kvm.is_usable() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

/// Everything QEMU needs for one boot. Building the command runs nothing.
#[derive(Debug, Clone)]
pub struct QemuMachine {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub image: PathBuf,
    pub transfer_disk: PathBuf,
    pub console_log: PathBuf,
    pub cmdline: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub accel: Accel,
}

impl QemuMachine {
    pub fn command(&self) -> Command {
        Command::new(&self.qemu).args(self.args())
    }

    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        match self.accel {
            Accel::Kvm => {
                push("-accel", "kvm".into());
                push("-cpu", "host".into());
            }
            Accel::Tcg => {
                // Several host threads for the vCPUs; `max` gives the guest every feature TCG
                // emulates (the Go runtime and Rust std like SSE4/popcnt).
                push("-accel", "tcg,thread=multi".into());
                push("-cpu", "max".into());
            }
        }
        push("-smp", self.cpus.to_string().into());
        push("-m", format!("{}M", self.memory_mib).into());
        push("-kernel", self.kernel.clone().into_os_string());
        push("-append", self.cmdline.clone().into());
        // snapshot=on keeps guest writes in a temp file: the image is shared by every run.
        push(
            "-drive",
            drive(
                "file=",
                &self.image,
                ",format=raw,if=ide,index=0,media=disk,snapshot=on",
            ),
        );
        push(
            "-drive",
            drive(
                "file=",
                &self.transfer_disk,
                ",format=raw,if=ide,index=1,media=disk",
            ),
        );
        push("-serial", drive("file:", &self.console_log, ""));
        push("-display", "none".into());
        push("-monitor", "none".into());
        push("-net", "none".into());
        // A guest reboot (or panic=-1) ends QEMU instead of booting again.
        args.push("-no-reboot".into());
        args.push("-nodefaults".into());
        args
    }
}

/// `prefix + path + suffix` as an OsString; QEMU's option syntax gives ',' a meaning, so a path
/// with a comma is doubled as QEMU expects.
fn drive(prefix: &str, path: &Path, suffix: &str) -> OsString {
    let mut value = OsString::from(prefix);
    value.push(path.to_string_lossy().replace(',', ",,"));
    value.push(suffix);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(accel: Accel) -> QemuMachine {
        QemuMachine {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/k/vmlinux".into(),
            image: "/i/disk,1.img".into(),
            transfer_disk: "/r/transfer.img".into(),
            console_log: "/r/console.log".into(),
            cmdline: "console=ttyS0 root=/dev/sda1".into(),
            cpus: 4,
            memory_mib: 1024,
            accel,
        }
    }

    fn pairs(args: &[OsString]) -> Vec<(String, String)> {
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        text.windows(2)
            .filter(|w| w[0].starts_with('-') && !w[1].starts_with('-'))
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect()
    }

    #[test]
    fn tcg_machine_has_cow_image_transfer_disk_and_serial_file() {
        let args = machine(Accel::Tcg).args();
        let pairs = pairs(&args);
        let has = |flag: &str, value: &str| pairs.iter().any(|(f, v)| f == flag && v == value);
        assert!(has("-accel", "tcg,thread=multi"));
        assert!(has("-smp", "4"));
        assert!(has("-m", "1024M"));
        assert!(has("-append", "console=ttyS0 root=/dev/sda1"));
        assert!(has(
            "-drive",
            "file=/i/disk,,1.img,format=raw,if=ide,index=0,media=disk,snapshot=on"
        ));
        assert!(has(
            "-drive",
            "file=/r/transfer.img,format=raw,if=ide,index=1,media=disk"
        ));
        assert!(has("-serial", "file:/r/console.log"));
        assert!(args.iter().any(|a| a == "-no-reboot"));
    }

    #[test]
    fn kvm_machine_uses_host_cpu() {
        let pairs = pairs(&machine(Accel::Kvm).args());
        assert!(pairs.contains(&("-accel".into(), "kvm".into())));
        assert!(pairs.contains(&("-cpu".into(), "host".into())));
    }
}

//! The guest kernel command line, built in one place for both platforms.
//!
//! It carries what the guest agent needs to know about where it runs (`simctl.platform`,
//! `simctl.m5`), the core isolation (`isolcpus=1`: the function gets core 1 to itself) and the
//! root disk (`/dev/sda1`: the kernels simctl builds have libata only, so gem5's and QEMU's IDE
//! disks are SCSI disks).

use std::fmt;

use super::CpuModel;
use super::gem5::FastCpu;

/// Where the guest runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    Gem5,
    Qemu,
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlatformKind::Gem5 => "gem5",
            PlatformKind::Qemu => "qemu",
        })
    }
}

/// How the guest triggers m5 ops: the guest's own definition (guest/src/m5.rs), so that the
/// word the host writes is the word the guest parses.
pub use simctl_guest::m5::Mode as M5Mode;

/// The m5 trigger for a run. One word on the kernel command line serves the whole run: on
/// gem5 the boot CPU executes the ops up to the checkpoint and the measured CPU the ones after
/// it. gem5's KVM CPU cannot decode the magic instruction (the guest would die of SIGILL), so
/// whenever KVM executes m5 ops the guest uses the MMIO address, which gem5's own CPUs decode
/// as well (the x86 TLB maps `m5ops_base`). QEMU has no m5 ops at all.
pub fn m5_mode(
    platform: PlatformKind,
    boot_cpu: Option<FastCpu>,
    measured_cpu: Option<CpuModel>,
) -> M5Mode {
    // Every measured CPU model simctl offers is one of gem5's own; only the boot CPU can be KVM.
    let _ = measured_cpu;
    match (platform, boot_cpu) {
        (PlatformKind::Qemu, _) => M5Mode::Off,
        (PlatformKind::Gem5, Some(FastCpu::Kvm)) => M5Mode::Addr,
        (PlatformKind::Gem5, _) => M5Mode::Inst,
    }
}

/// Inputs of the kernel command line.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelCmdline {
    pub platform: PlatformKind,
    pub m5: M5Mode,
    /// The core reserved for the function (`isolcpus=`).
    pub isolated_cpu: Option<u32>,
    /// Loops per jiffy: skips the delay-loop calibration, which costs seconds of simulated time.
    pub lpj: Option<u64>,
    /// Boot with the simctl agent as PID 1 (fast) instead of systemd.
    pub fast_init: bool,
    /// Extra words appended last, so they override the defaults.
    pub extra: Vec<String>,
}

impl KernelCmdline {
    pub fn render(&self) -> String {
        let mut words: Vec<String> = vec![
            "console=ttyS0".into(),
            "earlyprintk=ttyS0".into(),
            "root=/dev/sda1".into(),
            // The disk is probed asynchronously; without rootwait an emulated disk that answers
            // late (a busy host under TCG) panics the boot with "VFS: Unable to mount root fs
            // on unknown-block(8,1)" (seen about once in 30 QEMU boots here).
            "rootwait".into(),
            "rw".into(),
            // A panic stops the machine at once instead of hanging until the watchdog fires.
            "panic=-1".into(),
        ];
        words.push(match self.platform {
            // gem5's cores start their TSCs at different times, so Linux would mark the TSC
            // unstable and fall back to jiffies: 10 ms resolution for every latency measured.
            PlatformKind::Gem5 => "tsc=reliable".into(),
            // Under QEMU TCG the boot-time PIT calibration of the TSC is off by 4-22x in about
            // half the boots on a busy host (seen here), and Linux keeps it: the guest clock,
            // every latency and every arrival gap would run that much too fast, differently in
            // each boot. The HPET is emulated from the host clock and always right.
            PlatformKind::Qemu => "clocksource=hpet".into(),
        });
        if let Some(cpu) = self.isolated_cpu {
            words.push(format!("isolcpus={cpu}"));
        }
        if let Some(lpj) = self.lpj {
            words.push(format!("lpj={lpj}"));
        }
        if self.fast_init {
            words.push("init=/sbin/simctl-init".into());
        }
        words.push(format!("simctl.platform={}", self.platform));
        words.push(format!("simctl.m5={}", self.m5));
        words.extend(self.extra.iter().cloned());
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m5_mode_is_addr_whenever_kvm_executes_m5_ops() {
        use CpuModel::*;
        use PlatformKind::*;
        let table = [
            (Qemu, None, None, M5Mode::Off),
            (Gem5, Some(FastCpu::Kvm), Some(Timing), M5Mode::Addr),
            (Gem5, Some(FastCpu::Kvm), Some(O3), M5Mode::Addr),
            (Gem5, Some(FastCpu::Kvm), Some(Atomic), M5Mode::Addr),
            (Gem5, Some(FastCpu::Atomic), Some(Timing), M5Mode::Inst),
            (Gem5, Some(FastCpu::Atomic), Some(O3), M5Mode::Inst),
            (Gem5, Some(FastCpu::Atomic), Some(Atomic), M5Mode::Inst),
        ];
        for (platform, boot, measured, mode) in table {
            assert_eq!(
                m5_mode(platform, boot, measured),
                mode,
                "{platform} boot {boot:?} measured {measured:?}"
            );
            // The guest reads the mode back from the command line the host renders.
            let rendered = KernelCmdline {
                platform,
                m5: mode,
                isolated_cpu: Some(1),
                lpj: None,
                fast_init: true,
                extra: vec![],
            }
            .render();
            let read =
                simctl_guest::m5::cmdline_value(&rendered, "simctl.m5").and_then(M5Mode::parse);
            assert_eq!(read, Some(mode), "{rendered}");
        }
    }

    #[test]
    fn qemu_cmdline_has_isolation_root_and_markers() {
        let cmdline = KernelCmdline {
            platform: PlatformKind::Qemu,
            m5: M5Mode::Off,
            isolated_cpu: Some(1),
            lpj: None,
            fast_init: true,
            extra: vec!["quiet".into()],
        };
        assert_eq!(
            cmdline.render(),
            "console=ttyS0 earlyprintk=ttyS0 root=/dev/sda1 rootwait rw panic=-1 clocksource=hpet \
             isolcpus=1 init=/sbin/simctl-init simctl.platform=qemu simctl.m5=off quiet"
        );
    }

    #[test]
    fn gem5_cmdline_carries_lpj_and_inst_mode_without_fast_init() {
        let cmdline = KernelCmdline {
            platform: PlatformKind::Gem5,
            m5: M5Mode::Inst,
            isolated_cpu: Some(1),
            lpj: Some(7_999_923),
            fast_init: false,
            extra: vec![],
        };
        let text = cmdline.render();
        assert!(
            text.contains("lpj=7999923 simctl.platform=gem5 simctl.m5=inst"),
            "{text}"
        );
        assert!(!text.contains("init="), "{text}");
        assert!(text.contains(" tsc=reliable "), "{text}");
    }
}

//! The guest kernel command line, built in one place for both platforms.
//!
//! It carries what the guest agent needs to know about where it runs (`simctl.platform`,
//! `simctl.m5`), the core isolation (`isolcpus=1`: the function gets core 1 to itself) and the
//! root disk (`/dev/sda1`: the kernels simctl builds have libata only, so gem5's and QEMU's IDE
//! disks are SCSI disks).

use std::fmt;

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

/// How the guest triggers m5 ops (see guest/src/m5.rs): the magic instruction on gem5's own
/// CPUs, the MMIO page under gem5's KVM CPU, nothing under QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum M5Mode {
    Inst,
    Addr,
    Off,
}

impl fmt::Display for M5Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            M5Mode::Inst => "inst",
            M5Mode::Addr => "addr",
            M5Mode::Off => "off",
        })
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
            "console=ttyS0 earlyprintk=ttyS0 root=/dev/sda1 rw panic=-1 clocksource=hpet \
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

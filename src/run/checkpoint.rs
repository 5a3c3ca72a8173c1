//! What gem5's two checkpoints depend on, so that design points that only change what happens
//! after the restore share one boot and one warm-up.
//!
//! * The **boot checkpoint** (Linux up, the guest agent waiting for its plan) depends on the
//!   gem5 binary, the config script, kernel, image, kernel command line, boot CPU and the boot
//!   system keys below, and on no workload or plan: every workload of an image restores it.
//! * The **warm checkpoint** (function started, warm-up invocations done) is the boot
//!   checkpoint plus the run plan (function, warm-up, and the client's load, which the client
//!   already holds in memory when the checkpoint is taken).
//!
//! Restoring needs the same memory size and core count (memory and CPUs are serialized state),
//! and the same clock: the guest calibrated its TSC against the CPU clock at boot, so another
//! clock after the restore would skew every latency the guest measures. Caches are not state in
//! a checkpoint (gem5 writes dirty lines back before it saves one, and a restore looks up only
//! the objects the checkpoint has), so cache sizes and associativities, like the CPU model, may
//! differ between the checkpoint and the measured phase. The setup phase therefore always runs
//! with the same caches (`BOOT_CACHES` in `gem5-configs/simctl_fs.py`), whatever the run's
//! system says, so the checkpoint is the same whichever design point made it.

use std::path::Path;

use anyhow::Result;

use super::system::SystemSpec;
use crate::cache::CacheKey;

/// Bump when what a checkpoint holds or how it is made changes.
const CHECKPOINT_RECIPE: u32 = 3;

/// Everything the boot checkpoint is made from.
#[derive(Debug)]
pub struct BootCheckpointInputs<'a> {
    /// Content hash of the gem5 binary.
    pub gem5: &'a str,
    pub config_script: &'a Path,
    /// The run's resolved system; only [`BOOT_SYSTEM_KEYS`] of it enter the key.
    pub system: &'a SystemSpec,
    pub kernel: &'a CacheKey,
    pub image: &'a CacheKey,
    pub cmdline: &'a str,
    /// The CPU that boots and warms up (atomic or KVM).
    pub fast_cpu: &'a str,
}

impl BootCheckpointInputs<'_> {
    /// The boot checkpoint's key: the system enters only through [`BOOT_SYSTEM_KEYS`], the CPU
    /// model of the measured phase and the workload not at all.
    pub fn key(&self) -> Result<CacheKey> {
        Ok(CacheKey::new("boot-checkpoint", CHECKPOINT_RECIPE)
            .text("gem5", self.gem5)
            .file("config", self.config_script)?
            .text("boot_system", &boot_system(self.system))
            .key("kernel", self.kernel)
            .key("image", self.image)
            .text("cmdline", self.cmdline)
            .text("fast_cpu", self.fast_cpu))
    }
}

/// The warm checkpoint's key: the boot checkpoint it restores plus the run plan.
pub fn warm_key(boot: &CacheKey, plan: &str) -> CacheKey {
    CacheKey::new("warm-checkpoint", CHECKPOINT_RECIPE)
        .key("boot", boot)
        .text("plan", plan)
}

/// System keys (gem5-configs/systems/*.toml) a checkpoint depends on; simctl_fs.py checks the
/// same list when it restores.
pub const BOOT_SYSTEM_KEYS: [&str; 3] = ["num_cores", "memory_size", "clock"];

/// The boot-relevant values of a resolved system as `key=value` lines in canonical units (bytes,
/// Hz), so two spellings of one value share a checkpoint.
pub fn boot_system(system: &SystemSpec) -> String {
    format!(
        "num_cores={}\nmemory_size={}\nclock={}\n",
        system.num_cores,
        system.memory_size.bytes(),
        system.clock.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn systems_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/systems")
    }

    fn default_with(overrides: &[&str]) -> SystemSpec {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        SystemSpec::resolve(&systems_dir(), "default", &overrides).unwrap()
    }

    #[test]
    fn cache_and_cpu_points_share_the_boot_but_memory_cores_and_clock_do_not() {
        let base = boot_system(&default_with(&[]));
        assert_eq!(
            base,
            "num_cores=2\nmemory_size=2147483648\nclock=2500000000\n"
        );
        for cache_point in [
            "llc_size=256kB",
            "llc_size=1MB",
            "l1d_size=32kB",
            "l1i_assoc=4",
            "llc_assoc=16",
        ] {
            assert_eq!(
                boot_system(&default_with(&[cache_point])),
                base,
                "{cache_point} must not re-boot"
            );
        }
        assert_eq!(
            boot_system(&default_with(&["memory_size=2048MB"])),
            base,
            "another spelling of the same memory size must not re-boot"
        );
        for boot_point in ["memory_size=3GB", "num_cores=4", "clock=3GHz"] {
            assert_ne!(
                boot_system(&default_with(&[boot_point])),
                base,
                "{boot_point} must re-boot"
            );
        }
    }

    #[test]
    fn boot_key_follows_the_boot_inputs_only_and_the_warm_key_adds_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("simctl_fs.py");
        std::fs::write(&script, "# config\n").unwrap();
        let kernel = CacheKey::new("kernel", 1).text("v", "6.1");
        let other_kernel = CacheKey::new("kernel", 1).text("v", "6.12");
        let image = CacheKey::new("image", 1).text("w", "aes-go");
        let key = |overrides: &[&str], kernel: &CacheKey| {
            BootCheckpointInputs {
                gem5: "abc",
                config_script: &script,
                system: &default_with(overrides),
                kernel,
                image: &image,
                cmdline: "console=ttyS0",
                fast_cpu: "atomic",
            }
            .key()
            .unwrap()
        };
        let boot = key(&[], &kernel);
        let warm = warm_key(&boot, "warmup = 5").hex();
        assert_eq!(
            warm_key(&key(&["llc_size=256kB"], &kernel), "warmup = 5").hex(),
            warm
        );
        assert_ne!(
            warm_key(&boot, "warmup = 6").hex(),
            warm,
            "another plan warms up again"
        );
        assert_ne!(
            warm_key(&key(&["num_cores=4"], &kernel), "warmup = 5").hex(),
            warm,
            "another boot warms up again"
        );
        let key = |overrides: &[&str], kernel: &CacheKey| key(overrides, kernel).hex();
        let base = key(&[], &kernel);
        assert_eq!(key(&["llc_size=256kB"], &kernel), base);
        assert_ne!(key(&["memory_size=3GB"], &kernel), base);
        assert_ne!(key(&[], &other_kernel), base);
        std::fs::write(&script, "# config, edited\n").unwrap();
        assert_ne!(key(&[], &kernel), base, "the config script shapes the boot");
    }

    #[test]
    fn the_config_script_checks_the_same_boot_keys() {
        let script = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/simctl_fs.py"),
        )
        .unwrap();
        let listed = format!(
            "BOOT_SYSTEM_KEYS = [{}]",
            BOOT_SYSTEM_KEYS
                .iter()
                .map(|key| format!("\"{key}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(script.contains(&listed), "simctl_fs.py must say {listed}");
    }
}

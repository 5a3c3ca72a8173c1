//! What a gem5 checkpoint depends on, so that design points that only change what happens after
//! the restore share one boot and warm-up.
//!
//! Restoring needs the same memory size and core count (memory and CPUs are serialized state),
//! and the same clock: the guest calibrated its TSC against the CPU clock at boot, so another
//! clock after the restore would skew every latency the guest measures. Caches are not state in
//! a checkpoint (gem5 writes dirty lines back before it saves one, and a restore looks up only
//! the objects the checkpoint has), so cache sizes and associativities, like the CPU model, may
//! differ between the checkpoint and the measured phase. The setup phase therefore always runs
//! with the same caches (`BOOT_CACHES` in `gem5-configs/simctl_fs.py`), whatever the run's
//! system says, so the checkpoint is the same whichever design point made it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cache::CacheKey;

/// Bump when what a checkpoint holds or how it is made changes.
const CHECKPOINT_RECIPE: u32 = 2;

/// Everything a checkpoint (boot + function start + warm-up on the fast CPU) is made from.
#[derive(Debug)]
pub struct CheckpointInputs<'a> {
    /// Content hash of the gem5 binary.
    pub gem5: &'a str,
    pub config_script: &'a Path,
    pub system: &'a Path,
    pub overrides: &'a [String],
    pub kernel: &'a CacheKey,
    pub image: &'a CacheKey,
    /// The run plan: the function, its warm-up invocations and the client's load.
    pub plan: &'a str,
    pub cmdline: &'a str,
    /// The CPU that boots and warms up (atomic or KVM).
    pub fast_cpu: &'a str,
}

impl CheckpointInputs<'_> {
    /// The checkpoint's key: the system enters only through [`BOOT_SYSTEM_KEYS`], and the CPU
    /// model of the measured phase not at all.
    pub fn key(&self) -> Result<CacheKey> {
        Ok(CacheKey::new("checkpoint", CHECKPOINT_RECIPE)
            .text("gem5", self.gem5)
            .file("config", self.config_script)?
            .text("boot_system", &boot_system(self.system, self.overrides)?)
            .key("kernel", self.kernel)
            .key("image", self.image)
            .text("plan", self.plan)
            .text("cmdline", self.cmdline)
            .text("fast_cpu", self.fast_cpu))
    }
}

/// System keys (gem5-configs/systems/*.toml) a checkpoint depends on; simctl_fs.py checks the
/// same list when it restores.
pub const BOOT_SYSTEM_KEYS: [&str; 3] = ["num_cores", "memory_size", "clock"];

/// The boot-relevant values of a system file after `--set` overrides, as `key=value` lines in
/// key order (TOML integers and strings both as their text).
pub fn boot_system(system: &Path, overrides: &[String]) -> Result<String> {
    let text = std::fs::read_to_string(system)
        .with_context(|| format!("cannot read gem5 system {}", system.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", system.display()))?;
    let mut values: BTreeMap<String, String> = table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(text) => text,
                other => other.to_string(),
            };
            (key, text)
        })
        .collect();
    for setting in overrides {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--set {setting}: expected KEY=VALUE, e.g. --set llc_size=256kB");
        };
        values.insert(key.trim().to_string(), value.trim().to_string());
    }
    let mut lines = String::new();
    for key in BOOT_SYSTEM_KEYS {
        let value = values.get(key).with_context(|| {
            format!(
                "{} has no `{key}`; hint: copy it from gem5-configs/systems/default.toml",
                system.display()
            )
        })?;
        lines.push_str(&format!("{key}={value}\n"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_system() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/systems/default.toml")
    }

    #[test]
    fn cache_and_cpu_points_share_the_boot_but_memory_cores_and_clock_do_not() {
        let base = boot_system(&default_system(), &[]).unwrap();
        assert_eq!(base, "num_cores=2\nmemory_size=2GB\nclock=2.5GHz\n");
        for cache_point in [
            "llc_size=256kB",
            "llc_size=1MB",
            "l1d_size=32kB",
            "l1i_assoc=4",
            "llc_assoc=16",
        ] {
            assert_eq!(
                boot_system(&default_system(), &[cache_point.to_string()]).unwrap(),
                base,
                "{cache_point} must not re-boot"
            );
        }
        for boot_point in ["memory_size=4GB", "num_cores=4", "clock=3GHz"] {
            assert_ne!(
                boot_system(&default_system(), &[boot_point.to_string()]).unwrap(),
                base,
                "{boot_point} must re-boot"
            );
        }
    }

    #[test]
    fn checkpoint_key_follows_the_boot_inputs_only() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("simctl_fs.py");
        std::fs::write(&script, "# config\n").unwrap();
        let kernel = CacheKey::new("kernel", 1).text("v", "6.1");
        let other_kernel = CacheKey::new("kernel", 1).text("v", "6.12");
        let image = CacheKey::new("image", 1).text("w", "aes-go");
        let system = default_system();
        let key = |overrides: &[&str], kernel: &CacheKey| {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            CheckpointInputs {
                gem5: "abc",
                config_script: &script,
                system: &system,
                overrides: &overrides,
                kernel,
                image: &image,
                plan: "warmup = 5",
                cmdline: "console=ttyS0",
                fast_cpu: "atomic",
            }
            .key()
            .unwrap()
            .hex()
        };
        let base = key(&[], &kernel);
        assert_eq!(key(&["llc_size=256kB"], &kernel), base);
        assert_ne!(key(&["memory_size=4GB"], &kernel), base);
        assert_ne!(key(&[], &other_kernel), base);
        std::fs::write(&script, "# config, edited\n").unwrap();
        assert_ne!(key(&[], &kernel), base, "the config script shapes the boot");
    }

    #[test]
    fn shipped_systems_name_every_boot_key() {
        let systems = Path::new(env!("CARGO_MANIFEST_DIR")).join("gem5-configs/systems");
        for entry in std::fs::read_dir(systems).unwrap().flatten() {
            boot_system(&entry.path(), &[]).unwrap();
        }
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

    #[test]
    fn a_bad_override_or_a_system_without_a_boot_key_is_named() {
        let message = format!(
            "{:#}",
            boot_system(&default_system(), &["llc_size".to_string()]).unwrap_err()
        );
        assert!(message.contains("KEY=VALUE"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("partial.toml");
        std::fs::write(&partial, "num_cores = 2\nclock = \"1GHz\"\n").unwrap();
        let message = format!("{:#}", boot_system(&partial, &[]).unwrap_err());
        assert!(message.contains("memory_size"), "{message}");
    }
}

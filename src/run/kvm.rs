//! Whether hardware virtualization really works here: a real probe, not the presence of
//! `/dev/kvm`.
//!
//! The probe creates a VM with one vCPU, runs a few real-mode instructions in it (an `out` to a
//! port, then `hlt`) and checks that KVM reports exactly those exits. It runs on its own thread
//! with a deadline because a broken nested KVM can hang in `KVM_RUN`. A KVM that passes but is
//! the nested "PVM" flavour is still refused: it runs tiny guests but fails on stock kernels
//! (emulation failure on `lock cmpxchg16b`, seen on the machines simctl is developed on).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};

/// How long the probe may take before KVM counts as hung.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);
/// Guest-physical address the probe code is loaded at.
const CODE_ADDR: u64 = 0x1000;
const MEMORY_SIZE: usize = 0x4000;
const PROBE_PORT: u16 = 0x3f8;

/// Real-mode code: `mov dx, 0x3f8; mov al, '5'; out dx, al; hlt`.
const PROBE_CODE: [u8; 8] = [0xba, 0xf8, 0x03, 0xb0, b'5', 0xee, 0xf4, 0xf4];

/// Whether KVM can be used, with the reason when it cannot (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmStatus {
    Usable,
    Unusable(String),
}

impl KvmStatus {
    pub fn is_usable(&self) -> bool {
        matches!(self, KvmStatus::Usable)
    }

    /// One line for logs and `simctl doctor`.
    pub fn describe(&self) -> String {
        match self {
            KvmStatus::Usable => "KVM works (a probe VM ran guest code)".to_string(),
            KvmStatus::Unusable(reason) => format!("KVM not usable: {reason}"),
        }
    }
}

/// Probes KVM for real. Cheap (milliseconds) when KVM works or is absent.
pub fn probe() -> KvmStatus {
    if !Path::new("/dev/kvm").exists() {
        return KvmStatus::Unusable(
            "/dev/kvm does not exist (no KVM module or not exposed)".into(),
        );
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(run_probe_vm());
    });
    let status = match receiver.recv_timeout(PROBE_DEADLINE) {
        Ok(Ok(())) => KvmStatus::Usable,
        Ok(Err(reason)) => KvmStatus::Unusable(reason),
        Err(_) => KvmStatus::Unusable(format!(
            "a probe VM did not finish {} instructions within {PROBE_DEADLINE:?}",
            PROBE_CODE.len()
        )),
    };
    match status {
        KvmStatus::Usable if Path::new("/sys/module/kvm_pvm").exists() => KvmStatus::Unusable(
            "this is nested PVM KVM (kvm_pvm module): it runs tiny guests but stock kernels die \
             with an emulation failure"
                .into(),
        ),
        other => other,
    }
}

fn run_probe_vm() -> Result<(), String> {
    let kvm = Kvm::new().map_err(|err| format!("cannot open /dev/kvm: {err}"))?;
    let vm = kvm
        .create_vm()
        .map_err(|err| format!("KVM_CREATE_VM failed: {err}"))?;
    let memory = GuestMemory::new(MEMORY_SIZE)?;
    memory.write(0, &PROBE_CODE);
    let region = kvm_userspace_memory_region {
        slot: 0,
        guest_phys_addr: CODE_ADDR,
        memory_size: MEMORY_SIZE as u64,
        userspace_addr: memory.address(),
        flags: 0,
    };
    // SAFETY: the region points at `memory`, which outlives the VM (declared before it is
    // dropped at the end of this function, after `vcpu` and `vm`).
    unsafe { vm.set_user_memory_region(region) }
        .map_err(|err| format!("KVM_SET_USER_MEMORY_REGION failed: {err}"))?;
    let mut vcpu = vm
        .create_vcpu(0)
        .map_err(|err| format!("KVM_CREATE_VCPU failed: {err}"))?;
    let mut sregs = vcpu
        .get_sregs()
        .map_err(|err| format!("KVM_GET_SREGS failed: {err}"))?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs)
        .map_err(|err| format!("KVM_SET_SREGS failed: {err}"))?;
    let mut regs = vcpu
        .get_regs()
        .map_err(|err| format!("KVM_GET_REGS failed: {err}"))?;
    regs.rip = CODE_ADDR;
    regs.rflags = 2;
    vcpu.set_regs(&regs)
        .map_err(|err| format!("KVM_SET_REGS failed: {err}"))?;

    let mut saw_output = false;
    for _ in 0..16 {
        match vcpu.run().map_err(|err| format!("KVM_RUN failed: {err}"))? {
            VcpuExit::IoOut(PROBE_PORT, [b'5']) => saw_output = true,
            VcpuExit::Hlt if saw_output => return Ok(()),
            other => return Err(format!("the probe VM exited unexpectedly: {other:?}")),
        }
    }
    Err("the probe VM never reached its hlt".into())
}

/// Anonymous shared memory handed to KVM as guest RAM.
struct GuestMemory {
    pointer: *mut std::ffi::c_void,
    len: usize,
}

impl GuestMemory {
    fn new(len: usize) -> Result<GuestMemory, String> {
        use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous};
        // SAFETY: a fresh anonymous mapping that nothing else refers to.
        let pointer = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }
        .map_err(|err| format!("cannot map guest memory: {err}"))?;
        Ok(GuestMemory { pointer, len })
    }

    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(
            offset + bytes.len() <= self.len,
            "probe code larger than its memory"
        );
        // SAFETY: in bounds (checked above) of a live mapping we own.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.pointer.cast::<u8>().add(offset),
                bytes.len(),
            );
        }
    }

    fn address(&self) -> u64 {
        self.pointer as u64
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`.
        let _ = unsafe { rustix::mm::munmap(self.pointer, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_refuses_known_broken_kvm_and_names_the_reason() {
        let status = probe();
        println!("{}", status.describe());
        if !Path::new("/dev/kvm").exists() {
            assert!(status.describe().contains("does not exist"), "{status:?}");
        } else if Path::new("/sys/module/kvm_pvm").exists() {
            assert!(!status.is_usable(), "{status:?}");
            assert!(status.describe().contains("PVM") || status.describe().contains("probe VM"));
        }
    }
}

//! Guest-side code of simctl: runs inside the simulated (gem5) or emulated (QEMU) machine.
//!
//! Architecture invariant: this crate does not depend on the host `simctl` crate.

//! Guest-side code of simctl: runs inside the simulated (gem5) or emulated (QEMU) machine.
//!
//! `m5` (the pseudo-ops), `plan` (what to run), `markers` (what the console says), `records`
//! (results.csv) and `transfer` (the QEMU transfer disk) are dependency-light so the host crate
//! shares them; the gRPC client sits behind the default
//! `client` feature.
//!
//! Architecture invariant: this crate does not depend on the host `simctl` crate.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod conformance;
pub mod load;
pub mod m5;
pub mod markers;
pub mod plan;
pub mod records;
#[cfg(feature = "client")]
pub mod shop;
pub mod sysbench;
pub mod transfer;

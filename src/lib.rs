//! simctl: gem5 full-system simulation of serverless functions.
//!
//! Data flows one way: spec (TOML) -> artifacts (kernel, image, checkpoint) -> run directory ->
//! stats -> report. See ARCHITECTURE.md for the map.

pub mod cache;
pub mod cli;
pub mod container;
pub mod fakeroot;
pub mod fsutil;
pub mod gem5build;
pub mod gitsrc;
pub mod guest;
pub mod image;
pub mod kernel;
pub mod process;
pub mod progress;
pub mod project;
pub mod report;
pub mod run;
pub mod stats;
pub mod study;
pub mod sweep;
pub mod workloads;

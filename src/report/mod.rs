//! `simctl report`: what a run measured (latency per invocation and its distribution, for QEMU
//! and gem5 runs alike) and the derived metrics a researcher reads first (IPC, MPKI, ...), per
//! run, dump and core, resolved across gem5 versions, CPU models and cache hierarchies through
//! a table of name aliases. A metric with no source stat is empty, never 0. `runs` reads run
//! directories and writes the text of report.md, which `simctl run` saves.

pub mod cli;
pub mod integrity;
pub mod metrics;
pub mod runs;

pub use cli::{Format, Row, render, rows_for};
pub use metrics::{CoreMetrics, core_metrics};

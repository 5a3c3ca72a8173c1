//! `simctl report`: the derived metrics a researcher reads first (IPC, MPKI, ...), per run,
//! dump and core, resolved across gem5 versions, CPU models and cache hierarchies through a
//! table of name aliases. A metric with no source stat is empty, never 0.

pub mod cli;
pub mod integrity;
pub mod metrics;

pub use cli::{Format, Row, render, rows_for};
pub use metrics::{CoreMetrics, core_metrics};

//! `simctl stats`.

pub mod cli;

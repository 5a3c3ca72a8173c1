//! `simctl report`.

pub mod cli;

//! gem5's text statistics (`stats.txt`): a streaming parser and `simctl stats`.
//!
//! A file is a sequence of dumps between `---------- Begin Simulation Statistics ----------`
//! and `---------- End Simulation Statistics   ----------`. Every stat line, whatever its kind
//! (scalar, vector entry `a::b`, distribution bucket `a::0-1`, formula), is
//! `name value [pdf% [cdf%]] [# description] [(Unit)]`, so one line grammar covers all kinds;
//! the one exception, a `oneline` histogram (`name | v pdf cdf | v pdf cdf ...`), is split into
//! one `name::low-high` stat per bucket like its multi-line form.
//! gem5 leaves zero/nan stats out of a dump: a name missing from a dump is *absent*, never 0.

pub mod cli;
mod parallel;
pub mod parse;

pub use parse::{Dump, DumpReader, NameFilter, Stat, Value, read_dumps};

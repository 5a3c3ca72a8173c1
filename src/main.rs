//! The `simctl` binary: parses arguments and hands them to the library; the one exit point.

use std::process::ExitCode;

fn main() -> ExitCode {
    simctl::cli::main()
}

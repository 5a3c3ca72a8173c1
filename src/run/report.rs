//! The end of every run: report.md, written from what the run directory holds (see
//! `report::runs`, which also serves `simctl report RUN`), and printed.

use anyhow::Result;

use super::rundir::RunDir;
use crate::fsutil::write_atomic;
use crate::report::runs::RunView;

/// Writes report.md of the run in `dir` and prints it on stderr.
pub fn write_run_report(dir: &RunDir) -> Result<()> {
    let text = RunView::load(dir.path())?.markdown()?;
    write_atomic(&dir.report_md(), text.as_bytes())?;
    eprint!("{text}");
    Ok(())
}

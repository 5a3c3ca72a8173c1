//! What a report may read. A dump without its End line (gem5 killed or still writing) and a run
//! whose status.json says `running` are not final: their numbers can be wrong (a cut dump can
//! miss the stats that pick the core that ran), so they are refused, or with
//! `--allow-incomplete` left out with a warning. A stats file without a dump is an error.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::run::rundir::{RunDir, RunState};
use crate::stats::Dump;
use crate::stats::parse::{incomplete_message, no_dump_error, open};

/// The run directory a stats file belongs to: where `simctl run` writes status.json, beside
/// `m5out/` or the file itself.
fn run_dir_of(stats_file: &Path) -> Option<PathBuf> {
    let parent = stats_file.parent()?;
    [Some(parent), parent.parent()]
        .into_iter()
        .flatten()
        .find(|dir| dir.join("status.json").is_file())
        .map(Path::to_path_buf)
}

/// Whether the run behind `stats_file` is still running (its status.json says `running` and the
/// simctl that wrote it is alive). Refused unless `allow_incomplete`, which only warns.
pub fn still_running(stats_file: &Path, allow_incomplete: bool) -> Result<bool> {
    match run_dir_of(stats_file) {
        Some(dir) => run_still_running(&dir, allow_incomplete),
        None => Ok(false),
    }
}

/// Whether the run in `dir` is still running; refused unless `allow_incomplete` (see
/// [`still_running`]). A `running` left behind by a simctl that died reads as interrupted
/// (`RunDir::status`): its complete dumps are final.
pub fn run_still_running(dir: &Path, allow_incomplete: bool) -> Result<bool> {
    let status = RunDir::open(dir).status().with_context(|| {
        format!(
            "{}: a damaged status.json says nothing about whether the run ended",
            dir.display()
        )
    })?;
    if status.is_none_or(|status| status.state != RunState::Running) {
        return Ok(false);
    }
    let message = format!(
        "{} is still running (status.json: state \"running\"): its stats are not final",
        dir.display()
    );
    if !allow_incomplete {
        bail!(
            "{message}; hint: wait for the run to end, or pass --allow-incomplete to report the \
             complete dumps written so far"
        );
    }
    eprintln!("warning: {message}; reporting the complete dumps written so far");
    Ok(true)
}

/// Calls `each` with every complete dump of `stats_file`, streaming. An incomplete dump is an
/// error, or with `allow_incomplete` a warning and left out; a file without a dump is an error.
pub fn each_complete_dump(
    stats_file: &Path,
    allow_incomplete: bool,
    mut each: impl FnMut(Dump),
) -> Result<()> {
    let mut dumps = 0;
    for dump in open(stats_file)? {
        let dump = dump?;
        dumps += 1;
        if dump.complete {
            each(dump);
            continue;
        }
        let message = incomplete_message(stats_file, &dump);
        if !allow_incomplete {
            bail!(
                "{message}; its numbers are not reported; hint: --allow-incomplete reports the \
                 complete dumps and leaves incomplete ones out"
            );
        }
        eprintln!("warning: {message}; left out of the report");
    }
    if dumps == 0 {
        return Err(no_dump_error(stats_file));
    }
    Ok(())
}

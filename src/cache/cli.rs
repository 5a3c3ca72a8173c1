//! `simctl cache ls` and `simctl cache gc`: what the artifact cache holds, and removing what no
//! recent run needs.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::human_bytes;
use super::inventory::{self, Inventory, State, age};
use crate::project::Project;

/// Show or clean the artifact cache.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  simctl cache ls\n  simctl cache gc --older-than 30d --dry-run\n  simctl cache gc --runs runs --runs sweeps/out"
)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// Size per artifact kind and per artifact, last use, state, and what references it.
    Ls(LsArgs),
    /// Remove artifacts unused for a while that no recent run references, old failed builds
    /// and the staging directories of killed builds.
    Gc(GcArgs),
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Directories holding run directories whose references to show (repeatable; default: the
    /// runs directory of simctl.toml or ./runs).
    #[arg(long = "runs")]
    runs: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct GcArgs {
    /// Keep everything used or referenced by a run within this time (e.g. 30d, 12h).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    older_than: Duration,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Directories holding run directories whose artifacts to keep (repeatable; default: the
    /// runs directory of simctl.toml or ./runs).
    #[arg(long = "runs")]
    runs: Vec<PathBuf>,
}

pub fn run_cli(args: CacheArgs) -> Result<()> {
    let project = Project::locate()?;
    let default_runs = |runs: Vec<PathBuf>| {
        if runs.is_empty() {
            vec![project.runs_dir()]
        } else {
            runs
        }
    };
    match args.command {
        CacheCommand::Ls(args) => ls(&project, &default_runs(args.runs)),
        CacheCommand::Gc(args) => gc(
            &project,
            &default_runs(args.runs),
            args.older_than,
            args.dry_run,
        ),
    }
}

fn ls(project: &Project, runs: &[PathBuf]) -> Result<()> {
    let root = project.cache_dir();
    let inventory = Inventory::scan(&root, runs)?;
    let now = SystemTime::now();
    let total: u64 = inventory.entries.iter().map(|e| e.bytes).sum();
    println!(
        "cache {}: {} in {} entries",
        root.display(),
        human_bytes(total),
        inventory.entries.len()
    );

    let mut kinds = Table::new();
    kinds.load_preset(UTF8_FULL_CONDENSED);
    kinds.set_header(["kind", "artifacts", "other entries", "size"]);
    let mut names: Vec<&str> = inventory.entries.iter().map(|e| e.kind.as_str()).collect();
    names.dedup();
    for kind in names {
        let of_kind = || inventory.entries.iter().filter(move |e| e.kind == kind);
        let artifacts = of_kind().filter(|e| e.state == State::Artifact).count();
        kinds.add_row([
            kind.to_string(),
            artifacts.to_string(),
            (of_kind().count() - artifacts).to_string(),
            human_bytes(of_kind().map(|e| e.bytes).sum()),
        ]);
    }
    for other in &inventory.others {
        kinds.add_row([
            format!("{} (not artifacts; gc leaves it)", other.name),
            "-".into(),
            "-".into(),
            human_bytes(other.bytes),
        ]);
    }
    println!("{kinds}");

    let mut entries = Table::new();
    entries.load_preset(UTF8_FULL_CONDENSED);
    entries.set_header([
        "kind",
        "entry",
        "state",
        "size",
        "last used",
        "referenced by",
    ]);
    for entry in &inventory.entries {
        let references = entry
            .key
            .as_deref()
            .filter(|_| entry.state == State::Artifact)
            .map(|key| inventory.referenced_by(key))
            .unwrap_or_default();
        entries.add_row([
            entry.kind.clone(),
            entry.name.clone(),
            entry.state.describe().to_string(),
            human_bytes(entry.bytes),
            format!("{} ago", age(now, entry.modified)),
            if references.is_empty() {
                "-".to_string()
            } else {
                references.join("\n")
            },
        ]);
    }
    println!("{entries}");
    Ok(())
}

fn gc(project: &Project, runs: &[PathBuf], older_than: Duration, dry_run: bool) -> Result<()> {
    let root = project.cache_dir();
    let inventory = Inventory::scan(&root, runs)?;
    let garbage = inventory.garbage(older_than, SystemTime::now());
    let mut freed = 0;
    let mut failures = 0;
    for (entry, reason) in &garbage {
        let what = format!(
            "{}/{} ({}): {reason}",
            entry.kind,
            entry.name,
            human_bytes(entry.bytes)
        );
        if dry_run {
            println!("would remove {what}");
            continue;
        }
        match inventory::remove(entry) {
            Ok(()) => {
                println!("removed {what}");
                freed += entry.bytes;
            }
            Err(err) => {
                eprintln!("kept {what}: {err:#}");
                failures += 1;
            }
        }
    }
    if !dry_run {
        inventory::remove_free_locks(&inventory.kind_dirs);
    }
    eprintln!(
        "{} {} of {} entries ({}) in {}; kept what was used or referenced by a run in {} \
         (runs looked for in {})",
        if dry_run { "would free" } else { "freed" },
        garbage.len() - failures,
        inventory.entries.len(),
        human_bytes(if dry_run {
            garbage.iter().map(|(e, _)| e.bytes).sum()
        } else {
            freed
        }),
        root.display(),
        humantime::format_duration(older_than),
        runs.iter()
            .map(|dir| dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

//! Sweep files: parsing, validation against `simctl run`'s own options, and expansion into
//! points (the cartesian product of `[matrix]` over `[base]`, times the `[[run]]` entries); also
//! the resolved sweep (`sweep.toml` in the sweep directory) that Slurm array tasks read.
//!
//! Architecture invariant: a point is valid when `simctl run` itself would accept its arguments:
//! every point is parsed with `RunArgs`' own clap definition before anything runs, so a typo
//! fails the sweep at once instead of in the 40th Slurm task.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args as _;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::fsutil::write_atomic;

/// `simctl run` options by key (the long option name with `_` for `-`), with where they were.
type Options = BTreeMap<Spanned<String>, toml::Value>;

/// The point name when nothing varies.
const BASE_POINT: &str = "base";
/// Longer point names are shortened and made unique with a hash (file names have limits).
const MAX_NAME: usize = 100;
/// Points one sweep may have (each is a simulation; 211 bytes of matrix can ask for 2 million).
const MAX_POINTS: usize = 10_000;

/// A sweep file as written by the user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Names the default sweep directory and the Slurm job.
    name: Spanned<String>,
    /// Options every point gets.
    #[serde(default)]
    base: Options,
    /// Options with a list of values each; every combination is a point.
    #[serde(default)]
    matrix: BTreeMap<Spanned<String>, Spanned<Vec<toml::Value>>>,
    /// Explicit sets of options, each combined with every matrix combination.
    #[serde(default, rename = "run")]
    runs: Vec<Options>,
    /// The file and its text, so that errors can name a line.
    #[serde(skip)]
    origin: Option<Origin>,
}

#[derive(Debug, Clone)]
struct Origin {
    path: PathBuf,
    text: String,
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Directory name inside the sweep directory, from the options that vary.
    pub name: String,
    /// `simctl run` arguments, without the program and without `--out`.
    pub args: Vec<String>,
}

impl SweepFile {
    /// Parses sweep text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<SweepFile> {
        let mut sweep: SweepFile = toml::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "{}: not a valid sweep file (keys: name, [base], [matrix], [[run]]): {err}",
                path.display()
            )
        })?;
        sweep.origin = Some(Origin {
            path: path.to_path_buf(),
            text: text.to_string(),
        });
        Ok(sweep)
    }

    pub fn load(path: &Path) -> Result<SweepFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep file {}", path.display()))?;
        SweepFile::parse(path, &text)
    }

    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// "FILE:LINE: " for a place in the file, or "" when the sweep was not read from a file.
    fn at(&self, span: Range<usize>) -> String {
        match &self.origin {
            Some(origin) => {
                let before = origin.text.get(..span.start).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                format!("{}:{line}: ", origin.path.display())
            }
            None => String::new(),
        }
    }

    fn file_prefix(&self) -> String {
        self.origin
            .as_ref()
            .map(|origin| format!("{}: ", origin.path.display()))
            .unwrap_or_default()
    }
}

/// The `simctl run` options a sweep may set: all but `--out`, which the sweep owns.
pub fn run_options() -> Vec<String> {
    crate::run::RunArgs::augment_args(clap::Command::new("run"))
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| !matches!(*long, "out" | "help"))
        .map(|long| long.replace('-', "_"))
        .collect()
}

/// The points of a sweep, in a stable order: `[[run]]` entries (outer) times the matrix
/// combinations (keys in alphabetical order, values in file order).
pub fn expand(sweep: &SweepFile) -> Result<Vec<Point>> {
    check_name(sweep)?;
    let valid = run_options();
    let all_keys = sweep
        .base
        .keys()
        .chain(sweep.matrix.keys())
        .chain(sweep.runs.iter().flat_map(|run| run.keys()));
    for key in all_keys {
        let underscored = key.get_ref().replace('-', "_");
        if key.get_ref().contains('-') && valid.contains(&underscored) {
            bail!(
                "{}write '{}' as '{underscored}'",
                sweep.at(key.span()),
                key.get_ref()
            );
        }
        if !valid.iter().any(|option| option == key.get_ref()) {
            bail!(
                "{}unknown option '{}'; a sweep sets `simctl run` options by their long name with \
                 `_` for `-`: {}",
                sweep.at(key.span()),
                key.get_ref(),
                valid.join(", ")
            );
        }
    }
    for (key, values) in &sweep.matrix {
        if values.get_ref().is_empty() {
            bail!(
                "{}[matrix] {} has no values; give a list such as {} = [\"a\", \"b\"]",
                sweep.at(values.span()),
                key.get_ref(),
                key.get_ref()
            );
        }
        let list = values.get_ref();
        if let Some((position, value)) = list
            .iter()
            .enumerate()
            .find(|(position, value)| list[..*position].contains(value))
        {
            bail!(
                "{}[matrix] {} lists {} twice (value {} of {}); remove one",
                sweep.at(values.span()),
                key.get_ref(),
                value,
                position + 1,
                list.len()
            );
        }
    }
    for run in &sweep.runs {
        if let Some(key) = run.keys().find(|key| sweep.matrix.contains_key(*key)) {
            bail!(
                "{}'{}' is both in [matrix] and in a [[run]] entry; keep it in one of them",
                sweep.at(key.span()),
                key.get_ref()
            );
        }
    }

    // Counted before anything is built: a short file can ask for millions of points.
    let count = sweep
        .matrix
        .values()
        .try_fold(sweep.runs.len().max(1), |n, values| {
            n.checked_mul(values.get_ref().len())
        });
    if count.is_none_or(|count| count > MAX_POINTS) {
        let count = count.map_or("more than 2^64".into(), |count| count.to_string());
        bail!(
            "{}the sweep has {count} points; at most {MAX_POINTS}; hint: split it into several \
             sweep files",
            sweep.file_prefix()
        );
    }
    let mut combinations: Vec<Vec<(&str, &toml::Value)>> = vec![Vec::new()];
    for (key, values) in &sweep.matrix {
        combinations = combinations
            .into_iter()
            .flat_map(|combination| {
                values.get_ref().iter().map(move |value| {
                    let mut next = combination.clone();
                    next.push((key.get_ref().as_str(), value));
                    next
                })
            })
            .collect();
    }
    let no_override = Options::new();
    let runs: Vec<&Options> = if sweep.runs.is_empty() {
        vec![&no_override]
    } else {
        sweep.runs.iter().collect()
    };

    let mut points = Vec::new();
    for run in runs {
        for combination in &combinations {
            let varying: BTreeMap<&str, &toml::Value> = run
                .iter()
                .map(|(key, value)| (key.get_ref().as_str(), value))
                .chain(combination.iter().copied())
                .collect();
            let mut options: BTreeMap<&str, &toml::Value> = sweep
                .base
                .iter()
                .map(|(key, value)| (key.get_ref().as_str(), value))
                .collect();
            options.extend(varying.iter().map(|(key, value)| (*key, *value)));
            let mut args = Vec::new();
            for (key, value) in &options {
                args.extend(
                    option_args(key, value)
                        .with_context(|| format!("{}option '{key}'", sweep.file_prefix()))?,
                );
            }
            points.push(Point {
                name: point_name(&varying),
                args,
            });
        }
    }

    let mut seen: BTreeMap<&str, &Point> = BTreeMap::new();
    for point in &points {
        if let Some(twin) = seen.insert(point.name.as_str(), point) {
            if twin.args == point.args {
                bail!(
                    "{}two points are the same run ('{}': the same options, from two equal \
                     [[run]] entries or one value written twice, e.g. 1 and \"1\"); remove one",
                    sweep.file_prefix(),
                    point.name
                );
            }
            bail!(
                "{}two points are both named '{}' (their values differ only in characters that \
                 cannot be in a directory name); change one of the values",
                sweep.file_prefix(),
                point.name
            );
        }
        check_point(point)
            .with_context(|| format!("{}point '{}'", sweep.file_prefix(), point.name))?;
    }
    Ok(points)
}

fn check_name(sweep: &SweepFile) -> Result<()> {
    let name = sweep.name.get_ref();
    let fine = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !fine {
        bail!(
            "{}name '{name}' must be letters, digits, '-', '_' or '.' (it names a directory and \
             a Slurm job)",
            sweep.at(sweep.name.span())
        );
    }
    Ok(())
}

/// The command-line form of one option: `--key value`, a bare `--key` for true, nothing for
/// false, and the option repeated for a list (`set = ["a=1", "b=2"]`).
fn option_args(key: &str, value: &toml::Value) -> Result<Vec<String>> {
    let flag = format!("--{}", key.replace('_', "-"));
    Ok(match value {
        toml::Value::Boolean(true) => vec![flag],
        toml::Value::Boolean(false) => Vec::new(),
        toml::Value::Array(items) => {
            let mut args = Vec::new();
            for item in items {
                args.push(flag.clone());
                args.push(scalar_text(item)?);
            }
            args
        }
        other => vec![flag, scalar_text(other)?],
    })
}

fn scalar_text(value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(number) => number.to_string(),
        toml::Value::Float(number) => number.to_string(),
        toml::Value::Boolean(flag) => flag.to_string(),
        toml::Value::Datetime(time) => time.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            bail!("a value must be a string, number or boolean (or a list of them)")
        }
    })
}

/// `cpu=o3, system=default` -> `cpu-o3_system-default`: readable, stable, one path component.
fn point_name(varying: &BTreeMap<&str, &toml::Value>) -> String {
    if varying.is_empty() {
        return BASE_POINT.to_string();
    }
    let name = varying
        .iter()
        .map(|(key, value)| format!("{key}-{}", name_text(value)))
        .collect::<Vec<_>>()
        .join("_")
        .replace(
            |c: char| !(c.is_ascii_alphanumeric() || "-_.+".contains(c)),
            "-",
        );
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    format!("{}-{}", &name[..MAX_NAME - 13], &hash[..12])
}

fn name_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Array(items) => items.iter().map(name_text).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// Parses the point's arguments with `simctl run`'s own definition and checks them as
/// `simctl run` does before it builds anything (what needs no file; [`check_points_in`] does
/// the rest).
fn check_point(point: &Point) -> Result<()> {
    let args = point_args(point)?;
    crate::run::spec::check_args(&args, args.platform).map(drop)
}

/// The point's arguments as `simctl run` reads them.
pub fn point_args(point: &Point) -> Result<crate::run::RunArgs> {
    use clap::FromArgMatches as _;
    crate::run::RunArgs::augment_args(clap::Command::new("simctl run").no_binary_name(true))
        .try_get_matches_from(&point.args)
        .and_then(|matches| crate::run::RunArgs::from_arg_matches(&matches))
        .map_err(|err| {
            let text = err.render().to_string();
            let message = text
                .lines()
                .map(str::trim)
                .filter(|line| {
                    !(line.is_empty()
                        || line.starts_with("Usage:")
                        || line.starts_with("For more information"))
                })
                .map(|line| line.trim_start_matches("error: "))
                .collect::<Vec<_>>()
                .join("; ");
            anyhow::anyhow!("`simctl run` would not accept it: {message}")
        })
}

/// Checks every point against the tree as `simctl run` would before its first build (platform,
/// options of that platform, system file and overrides), so that a bad point stops the sweep
/// before any point runs.
pub fn check_points_in(project: &crate::project::Project, points: &[Point]) -> Result<()> {
    for point in points {
        let args = point_args(point)?;
        crate::run::spec::check_inputs(project, &args)
            .with_context(|| format!("point '{}'", point.name))?;
    }
    Ok(())
}

/// The resolved points of a sweep, kept in its directory for the record and for Slurm tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolved {
    pub name: String,
    #[serde(rename = "point")]
    pub points: Vec<Point>,
}

/// File name of the resolved sweep inside the sweep directory.
pub const RESOLVED_FILE: &str = "sweep.toml";

impl Resolved {
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = format!(
            "# Written by `simctl sweep`: each [[point]] is one `simctl run ARGS --out <this dir>/NAME`.\n{}",
            toml::to_string(self).context("cannot serialize the resolved sweep")?
        );
        write_atomic(&dir.join(RESOLVED_FILE), text.as_bytes())
    }

    pub fn read(path: &Path) -> Result<Resolved> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read resolved sweep {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a resolved sweep (written by `simctl sweep`)",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SweepFile {
        SweepFile::parse(Path::new("test.toml"), text).unwrap()
    }

    fn expand_err(text: &str) -> String {
        format!("{:#}", expand(&parse(text)).unwrap_err())
    }

    #[test]
    fn a_matrix_of_millions_of_points_is_refused_before_it_is_built() {
        let values = "[0, 1, 2, 3, 4, 5, 6, 7]";
        let keys = [
            "workload",
            "system",
            "set",
            "invocations",
            "warmup",
            "rps",
            "request",
        ];
        let matrix: String = keys.iter().map(|k| format!("{k} = {values}\n")).collect();
        let message = expand_err(&format!("name = 's'\n[matrix]\n{matrix}"));
        assert!(message.contains("2097152 points"), "{message}");
    }

    #[test]
    fn matrix_expands_to_the_cartesian_product_with_readable_names() {
        let points = expand(&parse(
            "name = 's'\n[base]\nworkload = 'aes-go'\ninvocations = 5\nforce = true\n\
             set = ['llc_size=1MB', 'l1d_size=32kB']\n[matrix]\ncpu = ['atomic', 'o3']\nsystem = ['default', 'my/sys.toml']\n",
        ))
        .unwrap();
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu-atomic_system-default",
                "cpu-atomic_system-my-sys.toml",
                "cpu-o3_system-default",
                "cpu-o3_system-my-sys.toml"
            ]
        );
        assert_eq!(
            points[2].args,
            [
                "--cpu",
                "o3",
                "--force",
                "--invocations",
                "5",
                "--set",
                "llc_size=1MB",
                "--set",
                "l1d_size=32kB",
                "--system",
                "default",
                "--workload",
                "aes-go"
            ]
        );
    }

    #[test]
    fn run_entries_override_the_base_and_combine_with_the_matrix() {
        let points = expand(&parse(
            "name = 's'\n[base]\nworkload = 'aes-go'\nwarmup = 5\n[matrix]\ncpu = ['timing', 'o3']\n\
             [[run]]\nwarmup = 1\n[[run]]\nset = ['llc_size=256kB', 'l1d_size=32kB']\n",
        ))
        .unwrap();
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu-timing_warmup-1",
                "cpu-o3_warmup-1",
                "cpu-timing_set-llc_size-256kB+l1d_size-32kB",
                "cpu-o3_set-llc_size-256kB+l1d_size-32kB"
            ]
        );
        let first = points[0].args.join(" ");
        assert!(
            first.contains("--warmup 1") && !first.contains("--warmup 5"),
            "{first}"
        );
        let last = points[3].args.join(" ");
        assert!(last.contains("--warmup 5"), "{last}");
    }

    #[test]
    fn a_sweep_without_variation_is_one_base_point() {
        let points = expand(&parse("name = 's'\n[base]\nworkload = 'spin'\n")).unwrap();
        assert_eq!(
            points,
            [Point {
                name: "base".into(),
                args: vec!["--workload".into(), "spin".into()]
            }]
        );
    }

    #[test]
    fn unknown_options_name_the_line_and_the_valid_options() {
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\n[matrix]\ncolour = ['red']\n");
        assert!(
            err.starts_with("test.toml:5: unknown option 'colour'"),
            "{err}"
        );
        assert!(
            err.contains("kernel_config") && err.contains("workload"),
            "{err}"
        );
        assert!(!err.contains(", out,"), "--out belongs to the sweep: {err}");
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\nout = 'here'\n");
        assert!(
            err.starts_with("test.toml:4: unknown option 'out'"),
            "{err}"
        );
    }

    #[test]
    fn values_simctl_run_would_reject_fail_before_anything_runs() {
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\n[matrix]\ncpu = ['o3', 'o4']\n");
        assert!(
            err.contains("point 'cpu-o4'") && err.contains("'o4'") && err.contains("--cpu"),
            "{err}"
        );
        let err = expand_err("name = 's'\n[matrix]\ncpu = ['o3']\n");
        assert!(err.contains("--workload"), "{err}");
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\ninvocations = 'many'\n");
        assert!(err.contains("'many'"), "{err}");
        let err = expand_err("name = 's'\n[base]\nworkload = { a = 1 }\n");
        assert!(err.contains("option 'workload'"), "{err}");
    }

    #[test]
    fn points_are_checked_as_simctl_run_checks_its_options() {
        for (options, expected) in [
            ("invocations = 0", "--invocations 0"),
            ("pattern = 'rps'", "--pattern rps needs --rps"),
            ("cpu = 'minor'", "gem5 issue #1206"),
            ("set = ['=5']", "--set =5"),
            (
                "platform = 'qemu'\ncpu = 'o3'",
                "--cpu o3 applies to gem5 only",
            ),
        ] {
            let err = expand_err(&format!("name = 's'\n[base]\nworkload = 'x'\n{options}\n"));
            assert!(
                err.contains("point 'base'") && err.contains(expected),
                "{options}: {err}"
            );
        }
        let project = crate::project::Project::at(env!("CARGO_MANIFEST_DIR"));
        let points = expand(&parse(
            "name = 's'\n[base]\nworkload = 'x'\nplatform = 'qemu'\n\
             [matrix]\nsystem = ['default', '/nonexistent.toml']\n[[run]]\n[[run]]\n\
             set = ['memory_size=128']\n",
        ))
        .unwrap();
        let err = format!("{:#}", check_points_in(&project, &points).unwrap_err());
        assert!(
            err.contains("point 'system--nonexistent.toml'")
                && err.contains("/nonexistent.toml is not a file"),
            "{err}"
        );
        let err = format!("{:#}", check_points_in(&project, &points[2..]).unwrap_err());
        assert!(err.contains("'128' is not a size"), "{err}");
        check_points_in(&project, &points[..1]).unwrap();
    }

    #[test]
    fn the_same_point_twice_is_called_a_duplicate() {
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\n[matrix]\ncpu = ['o3', 'o3']\n");
        assert!(
            err.starts_with("test.toml:5: [matrix] cpu lists \"o3\" twice"),
            "{err}"
        );
        let err = expand_err(
            "name = 's'\n[base]\nworkload = 'x'\n[[run]]\nwarmup = 1\n[[run]]\nwarmup = 1\n",
        );
        assert!(
            err.contains("two points are the same run ('warmup-1'") && !err.contains("characters"),
            "{err}"
        );
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\n[matrix]\nwarmup = [1, '1']\n");
        assert!(
            err.contains("two points are the same run ('warmup-1'"),
            "{err}"
        );
    }

    #[test]
    fn structural_mistakes_are_explained() {
        let err = expand_err("name = 's'\n[base]\nworkload = 'x'\n[matrix]\ncpu = []\n");
        assert!(
            err.starts_with("test.toml:5: [matrix] cpu has no values"),
            "{err}"
        );
        let err = expand_err(
            "name = 's'\n[base]\nworkload = 'x'\n[matrix]\ncpu = ['o3']\n[[run]]\ncpu = 'timing'\n",
        );
        assert!(
            err.contains("test.toml:7: 'cpu' is both in [matrix]"),
            "{err}"
        );
        let err = expand_err("name = '../up'\n[base]\nworkload = 'x'\n");
        assert!(err.starts_with("test.toml:1: name '../up'"), "{err}");
        let err =
            expand_err("name = 's'\n[base]\nworkload = 'x'\n[matrix]\nsystem = ['a/b', 'a:b']\n");
        assert!(err.contains("both named 'system-a-b'"), "{err}");
        let err = format!(
            "{:#}",
            SweepFile::parse(Path::new("f.toml"), "name = 's'\n[bases]\n").unwrap_err()
        );
        assert!(err.contains("f.toml") && err.contains("bases"), "{err}");
    }

    #[test]
    fn long_names_stay_short_and_distinct() {
        let long = |tail: &str| {
            let value = format!("{}{tail}", "x".repeat(150));
            point_name(&BTreeMap::from([("system", &toml::Value::String(value))]))
        };
        let (a, b) = (long("a"), long("b"));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME, "{a}");
        assert_ne!(a, b);
        assert_eq!(a, long("a"), "names are stable");
    }

    #[test]
    fn the_resolved_sweep_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = Resolved {
            name: "s".into(),
            points: expand(&parse(
                "name = 's'\n[base]\nworkload = 'x'\n[matrix]\nwarmup = [1, 2]\n",
            ))
            .unwrap(),
        };
        resolved.write(dir.path()).unwrap();
        assert_eq!(
            Resolved::read(&dir.path().join(RESOLVED_FILE)).unwrap(),
            resolved
        );
    }

    #[test]
    fn the_example_sweeps_expand() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let points = expand(&SweepFile::load(&path).unwrap()).unwrap();
            assert!(points.len() >= 2, "{}", path.display());
            count += 1;
        }
        assert!(count >= 2);
    }
}

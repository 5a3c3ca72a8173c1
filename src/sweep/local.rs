//! Local execution of sweep points: at most `jobs` supervised children at once, each with its
//! output in `<sweep dir>/<point>/sweep.log`, one progress line per point, and a stop (Ctrl-C)
//! that ends every running child's whole process group and leaves the rest unstarted.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::file::Point;
use crate::process::{Command, Supervised};

/// The log of a point's child inside its directory.
pub const POINT_LOG: &str = "sweep.log";
/// How often the executor looks at its children and at the stop condition.
const POLL: Duration = Duration::from_millis(100);

/// How a point's child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The child exited; `None` when a signal killed it.
    Exited(Option<i32>),
    /// The sweep was stopped while the child ran; its process group was ended.
    Stopped,
    /// The sweep was stopped before the point's turn.
    NotStarted,
}

/// One point's end and how long its child ran.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub end: End,
    pub wall: Duration,
}

/// What [`run_points`] did: one outcome per point, in the points' order.
#[derive(Debug, Clone)]
pub struct Executed {
    pub outcomes: Vec<Outcome>,
    pub stopped: bool,
}

/// Runs `command(point)` for every point, at most `jobs` at once, in the points' order, each in
/// its own process group with output in `<dir>/<point>/sweep.log`. When `stop()` turns true
/// (simctl passes "Ctrl-C was pressed"), running children are ended and no new one starts.
pub fn run_points(
    points: &[Point],
    dir: &Path,
    jobs: usize,
    stop: impl Fn() -> bool,
    command: impl Fn(&Point) -> Command,
) -> Result<Executed> {
    let board = Board::new(points);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; points.len()];
    let mut queue = points.iter().enumerate();
    let mut running: Vec<(usize, Supervised, Instant)> = Vec::new();
    let mut stopped = false;
    loop {
        if stop() {
            stopped = true;
            end_all(&mut running, &mut outcomes, points, &board);
            break;
        }
        while running.len() < jobs.max(1) {
            let Some((index, point)) = queue.next() else {
                break;
            };
            let log = dir.join(&point.name).join(POINT_LOG);
            let child = command(point).spawn_logged(&log)?;
            board.started(index);
            running.push((index, child, Instant::now()));
        }
        if running.is_empty() {
            break;
        }
        let mut position = 0;
        while position < running.len() {
            let (index, child, started) = &mut running[position];
            match child.try_ended()? {
                None => position += 1,
                Some(ended) => {
                    let code = match ended {
                        crate::process::Ended::Exited { code, .. } => code,
                        _ => None,
                    };
                    let outcome = Outcome {
                        name: points[*index].name.clone(),
                        end: End::Exited(code),
                        wall: started.elapsed(),
                    };
                    board.finished(*index, &outcome);
                    outcomes[*index] = Some(outcome);
                    running.remove(position);
                }
            }
        }
        std::thread::sleep(POLL);
    }
    let outcomes = outcomes
        .into_iter()
        .zip(points)
        .map(|(outcome, point)| {
            outcome.unwrap_or_else(|| Outcome {
                name: point.name.clone(),
                end: End::NotStarted,
                wall: Duration::ZERO,
            })
        })
        .collect();
    board.clear();
    Ok(Executed { outcomes, stopped })
}

/// Ends every running child at the same time (each gets SIGTERM, then SIGKILL after a grace).
fn end_all(
    running: &mut Vec<(usize, Supervised, Instant)>,
    outcomes: &mut [Option<Outcome>],
    points: &[Point],
    board: &Board,
) {
    std::thread::scope(|scope| {
        for (_, child, _) in running.iter_mut() {
            scope.spawn(move || child.terminate());
        }
    });
    for (index, _, started) in running.drain(..) {
        let outcome = Outcome {
            name: points[index].name.clone(),
            end: End::Stopped,
            wall: started.elapsed(),
        };
        board.finished(index, &outcome);
        outcomes[index] = Some(outcome);
    }
}

/// One progress line per point on a terminal; plain lines on stderr otherwise (CI, Slurm).
struct Board {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    names: Vec<String>,
    running: ProgressStyle,
    done: ProgressStyle,
}

impl Board {
    fn new(points: &[Point]) -> Board {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = points.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let style = |template: String| {
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
        };
        let queued = style(format!("  {{prefix:{width}}} {{msg}}"));
        let running = style(format!(
            "{{spinner}} {{prefix:{width}}} {{msg}} {{elapsed}}"
        ));
        let done = queued.clone();
        let bars = points
            .iter()
            .map(|point| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(queued.clone());
                bar.set_prefix(point.name.clone());
                bar.set_message("queued");
                bar
            })
            .collect();
        Board {
            names: points.iter().map(|p| p.name.clone()).collect(),
            multi,
            bars,
            running,
            done,
        }
    }

    fn started(&self, index: usize) {
        let bar = &self.bars[index];
        bar.set_style(self.running.clone());
        bar.reset_elapsed();
        bar.set_message("running");
        bar.enable_steady_tick(Duration::from_millis(250));
        self.say(index, "running");
    }

    fn finished(&self, index: usize, outcome: &Outcome) {
        let text = match outcome.end {
            End::Exited(Some(0)) => "exited".to_string(),
            End::Exited(Some(code)) => format!("exited with code {code}"),
            End::Exited(None) => "killed by a signal".to_string(),
            End::Stopped => "stopped".to_string(),
            End::NotStarted => "not started".to_string(),
        };
        let text = format!("{text} after {:.1} s", outcome.wall.as_secs_f64());
        let bar = &self.bars[index];
        bar.set_style(self.done.clone());
        bar.finish_with_message(text.clone());
        self.say(index, &text);
    }

    fn say(&self, index: usize, text: &str) {
        if self.multi.is_hidden() {
            eprintln!("sweep: {}: {text}", self.names[index]);
        }
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}

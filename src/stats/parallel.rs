//! The parallel reader: the calling thread reads the input a unit at a time and cuts it before
//! a Begin line, workers parse the units apart (dumps are independent), and the calling thread
//! hands their dumps out in file order, shifted by the lines and dumps of the units before.
//!
//! Why this gives exactly the sequential result: a Begin line ends the dump in progress
//! (incomplete) and starts a fresh one whatever came before, so the only state that crosses
//! it is the count of lines and dumps (shifted here) and of skipped lines (summed); bucket
//! labels start afresh at each Begin line, a name filter's caches only remember its test's
//! answers, and a dump's size limit counts its content, not capacity left by earlier dumps.
//!
//! Memory stays bounded: at most two units per worker are in flight; when no Begin line comes
//! within MAX_PENDING_UNITS units' worth of bytes (16 MiB: a dump larger than real ones, or not
//! a stats file), the rest of the input goes to the sequential parser; a unit whose dumps take
//! more than RESULT_UNITS times its size is parsed again on the calling thread, one dump at a
//! time.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::parse::{BEGIN, Dump, Failure, Lines, MAX_LINE_BYTES, NameFilter, Recycler};

/// Bytes read without finding a Begin line to cut at, in units, before the sequential parser
/// takes the rest.
const MAX_PENDING_UNITS: usize = 16;
/// What a worker's dumps of one unit may take, in units, before the unit is parsed again on
/// the calling thread one dump at a time (real dumps take about half their text).
const RESULT_UNITS: usize = 16;

/// One unit's bytes, as a buffered reader; the buffer goes back to the reading thread.
struct Unit {
    buffer: Vec<u8>,
    len: usize,
    at: usize,
}

impl Read for Unit {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl BufRead for Unit {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.buffer[self.at..self.len])
    }

    fn consume(&mut self, count: usize) {
        self.at = (self.at + count).min(self.len);
    }
}

struct Job {
    unit: Unit,
    reply: SyncSender<Done>,
}

struct Done {
    unit: Unit,
    outcome: Outcome,
}

enum Outcome {
    Parsed {
        /// Each dump with the unit's skipped lines when it was finished.
        dumps: Vec<(Dump, usize)>,
        failure: Option<Failure>,
        lines: usize,
        begun: usize,
        skipped: usize,
    },
    /// Its dumps took more than the budget: to be parsed again one dump at a time.
    Oversized,
}

/// What the sequential parser needs to take over the rest of the input.
pub(super) struct Rest {
    /// Read and not parsed: the input goes on with this, then the reader.
    pub(super) pending: Vec<u8>,
    /// The read error that stopped reading, to be met after `pending`.
    pub(super) error: Option<io::Error>,
    pub(super) lines: usize,
    pub(super) dumps: usize,
    pub(super) skipped: usize,
}

pub(super) enum Next {
    Dump(Dump),
    Failed(Failure),
    End,
    /// The sequential parser goes on from here.
    Sequential(Rest),
}

enum Input {
    Open,
    Ended,
    /// No Begin line to cut at within MAX_PENDING_UNITS, or a read error.
    Stopped(Option<io::Error>),
}

pub(super) struct Units {
    unit_bytes: usize,
    lenient: bool,
    /// For a unit parsed on this thread.
    filter: Option<NameFilter>,
    jobs: Option<SyncSender<Job>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// Replies of the units handed to workers, in file order.
    in_flight: VecDeque<Receiver<Done>>,
    max_in_flight: usize,
    spare: Vec<Vec<u8>>,
    /// `pending[..filled]` is read and not yet handed out; no line starting in `1..scanned`
    /// of it is a Begin line.
    pending: Vec<u8>,
    filled: usize,
    scanned: usize,
    input: Input,
    /// The oldest unit's dumps, shifted into place, each with the skipped lines before it.
    ready: VecDeque<(Dump, usize)>,
    /// What stopped the oldest unit, after its dumps.
    failure: Option<Failure>,
    /// An oversized unit, parsed on this thread one dump at a time.
    local: Option<Lines<Unit>>,
    /// Lines, dumps and skipped lines of the units handed out (what the next is shifted by).
    lines_before: usize,
    dumps_before: usize,
    skipped_before: usize,
    /// Skipped lines up to the last dump handed out.
    skipped_seen: usize,
}

impl Units {
    /// Starts the workers; None when no thread could be started.
    pub(super) fn start(
        workers: usize,
        unit_bytes: usize,
        lenient: bool,
        filter: Option<NameFilter>,
    ) -> Option<Units> {
        let (jobs, queue) = sync_channel::<Job>(2 * workers);
        let queue = Arc::new(Mutex::new(queue));
        let stop = Arc::new(AtomicBool::new(false));
        let budget = unit_bytes.saturating_mul(RESULT_UNITS);
        let recycler = Arc::new(Recycler::default());
        let handles: Vec<JoinHandle<()>> = (0..workers)
            .filter_map(|number| {
                let queue = Arc::clone(&queue);
                let stop = Arc::clone(&stop);
                let filter = filter.as_ref().map(NameFilter::fresh);
                let recycler = Arc::clone(&recycler);
                std::thread::Builder::new()
                    .name(format!("stats-parse-{number}"))
                    .spawn(move || work(&queue, &stop, lenient, filter, &recycler, budget))
                    .ok()
            })
            .collect();
        if handles.is_empty() {
            return None;
        }
        Some(Units {
            unit_bytes,
            lenient,
            filter,
            jobs: Some(jobs),
            stop,
            max_in_flight: 2 * handles.len(),
            workers: handles,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            pending: Vec::new(),
            filled: 0,
            scanned: 0,
            input: Input::Open,
            ready: VecDeque::new(),
            failure: None,
            local: None,
            lines_before: 0,
            dumps_before: 0,
            skipped_before: 0,
            skipped_seen: 0,
        })
    }

    /// Malformed lines skipped up to the last dump handed out (all of them at the end).
    pub(super) fn skipped(&self) -> usize {
        self.skipped_seen
    }

    pub(super) fn next(&mut self, reader: &mut impl Read) -> Next {
        loop {
            if let Some((dump, skipped)) = self.ready.pop_front() {
                self.skipped_seen = skipped;
                return Next::Dump(dump);
            }
            if let Some(failure) = self.failure.take() {
                return Next::Failed(failure);
            }
            if let Some(local) = self.local.as_mut() {
                match local.read_dump() {
                    Ok(Some(mut dump)) => {
                        dump.shift(self.lines_before, self.dumps_before);
                        self.skipped_seen = self.skipped_before + local.skipped();
                        return Next::Dump(dump);
                    }
                    Ok(None) => {
                        self.lines_before += local.lines();
                        self.dumps_before += local.dumps();
                        self.skipped_before += local.skipped();
                        if let Some(local) = self.local.take() {
                            let (unit, filter) = local.into_parts();
                            self.filter = filter;
                            self.spare.push(unit.buffer);
                        }
                        continue;
                    }
                    Err(failure) => return Next::Failed(failure.shift(self.lines_before)),
                }
            }
            self.dispatch(reader);
            let Some(reply) = self.in_flight.pop_front() else {
                self.skipped_seen = self.skipped_before;
                return match std::mem::replace(&mut self.input, Input::Ended) {
                    Input::Stopped(error) => {
                        let mut pending = std::mem::take(&mut self.pending);
                        pending.truncate(self.filled);
                        Next::Sequential(Rest {
                            pending,
                            error,
                            lines: self.lines_before,
                            dumps: self.dumps_before,
                            skipped: self.skipped_before,
                        })
                    }
                    Input::Open | Input::Ended => Next::End,
                };
            };
            let Ok(Done { mut unit, outcome }) = reply.recv() else {
                let lost = io::Error::other("a stats parser thread stopped unexpectedly");
                return Next::Failed(Failure::Read(lost));
            };
            match outcome {
                Outcome::Parsed {
                    dumps,
                    failure,
                    lines,
                    begun,
                    skipped,
                } => {
                    for (mut dump, skipped_in_unit) in dumps {
                        dump.shift(self.lines_before, self.dumps_before);
                        self.ready
                            .push_back((dump, self.skipped_before + skipped_in_unit));
                    }
                    self.failure = failure.map(|failure| failure.shift(self.lines_before));
                    self.lines_before += lines;
                    self.dumps_before += begun;
                    self.skipped_before += skipped;
                    self.spare.push(unit.buffer);
                }
                Outcome::Oversized => {
                    unit.at = 0;
                    self.local = Some(Lines::new(unit, self.lenient, self.filter.take()));
                }
            }
        }
    }

    /// Reads and hands units to the workers until enough are in flight or the input stops.
    fn dispatch(&mut self, reader: &mut impl Read) {
        while self.in_flight.len() < self.max_in_flight {
            let Some(unit) = self.read_unit(reader) else {
                return;
            };
            let (reply, done) = sync_channel(1);
            if let Some(jobs) = &self.jobs {
                // Should every worker be gone, the reply is dropped with the job and the
                // receiving end says so.
                let _ = jobs.send(Job { unit, reply });
            }
            self.in_flight.push_back(done);
        }
    }

    /// The next unit: at least `unit_bytes` (unless the input ends), up to the start of its
    /// last Begin line.
    fn read_unit(&mut self, reader: &mut impl Read) -> Option<Unit> {
        while let Input::Open = self.input {
            if self.filled >= self.unit_bytes {
                let read = &self.pending[..self.filled];
                if let Some(cut) = last_begin(read, self.scanned) {
                    return Some(self.cut(cut));
                }
                self.scanned = memchr::memrchr(b'\n', read).map_or(self.scanned, |at| at + 1);
                if self.filled >= self.unit_bytes.saturating_mul(MAX_PENDING_UNITS) {
                    self.input = Input::Stopped(None);
                    return None;
                }
            }
            let want = self.filled + self.unit_bytes;
            if self.pending.len() < want {
                self.pending.resize(want, 0);
            }
            match reader.read(&mut self.pending[self.filled..want]) {
                Ok(0) => {
                    self.input = Input::Ended;
                    return (self.filled > 0).then(|| self.cut(self.filled));
                }
                Ok(count) => self.filled += count,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => self.input = Input::Stopped(Some(err)),
            }
        }
        None
    }

    /// Hands out `pending[..at]`; the rest starts the next unit.
    fn cut(&mut self, at: usize) -> Unit {
        let rest = self.filled - at;
        let mut next = self.spare.pop().unwrap_or_default();
        if next.len() < rest + self.unit_bytes {
            // Buffers keep their length: bytes are zeroed once, when first allocated.
            next.resize(rest + self.unit_bytes, 0);
        }
        next[..rest].copy_from_slice(&self.pending[at..self.filled]);
        let buffer = std::mem::replace(&mut self.pending, next);
        // The rest's whole lines were looked at: the cut is before the last Begin line.
        self.scanned = memchr::memrchr(b'\n', &self.pending[..rest]).map_or(0, |at| at + 1);
        self.filled = rest;
        Unit {
            buffer,
            len: at,
            at: 0,
        }
    }
}

impl Drop for Units {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        self.in_flight.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Where the last Begin line of `data` starts, among the lines with their newline starting
/// at `from` or later, never at 0 (a unit is never empty). A Begin line without its newline
/// is left alone: at the end of the input inside a dump it is a cut line, not a Begin.
fn last_begin(data: &[u8], from: usize) -> Option<usize> {
    let mut end = memchr::memrchr(b'\n', data)?;
    loop {
        let start = memchr::memrchr(b'\n', &data[..end]).map_or(0, |newline| newline + 1);
        if start < from.max(1) {
            return None;
        }
        let line = &data[start..end];
        if line.len() <= MAX_LINE_BYTES && line.trim_ascii() == BEGIN {
            return Some(start);
        }
        end = start - 1;
    }
}

/// A worker: parses the units it takes, keeping its filter's caches from one to the next.
fn work(
    queue: &Mutex<Receiver<Job>>,
    stop: &AtomicBool,
    lenient: bool,
    mut filter: Option<NameFilter>,
    recycler: &Arc<Recycler>,
    budget: usize,
) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Job { unit, reply }) = job else {
            return;
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut lines = Lines::new(unit, lenient, filter.take()).recycling(recycler);
        let mut dumps = Vec::new();
        let mut held = 0;
        let mut failure = None;
        let oversized = loop {
            match lines.read_dump() {
                Ok(Some(dump)) => {
                    held += dump.memory();
                    dumps.push((dump, lines.skipped()));
                    if held > budget {
                        break true;
                    }
                }
                Ok(None) => break false,
                Err(stopped) => {
                    failure = Some(stopped);
                    break false;
                }
            }
        };
        let outcome = if oversized {
            Outcome::Oversized
        } else {
            Outcome::Parsed {
                dumps,
                failure,
                lines: lines.lines(),
                begun: lines.dumps(),
                skipped: lines.skipped(),
            }
        };
        let (unit, kept) = lines.into_parts();
        filter = kept;
        // The reading thread may have stopped listening (its reader was dropped).
        let _ = reply.send(Done { unit, outcome });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "---------- Begin Simulation Statistics ----------";

    #[test]
    fn units_are_cut_before_the_last_terminated_begin_line() {
        let text = format!("{B}\na 1\n  {B} \nb 2\n{B}");
        let second = text.find("  ").unwrap();
        assert_eq!(last_begin(text.as_bytes(), 0), Some(second));
        assert_eq!(last_begin(text.as_bytes(), second + 1), None);
        assert_eq!(last_begin(format!("{B}\na 1\n").as_bytes(), 0), None);
    }
}

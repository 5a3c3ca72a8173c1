//! Supervised external processes: the only way simctl starts gem5, QEMU, make, mmdebstrap, go...
//!
//! Every child gets an argument vector (never a shell string), a null stdin (or a file), its own process
//! group, and its stdout+stderr in a log file. Waiting is a poll loop so that the caller can
//! watch the log (progress, watchdogs) and so that a deadline, Ctrl-C or SIGTERM ends the whole
//! process group: TERM, a grace period, then KILL. Dropping a [`Supervised`] that still runs kills
//! its group too, so an early return can never leave gem5 or QEMU behind.
//!
//! duct alone is not enough: `Handle::kill` signals only the direct child and dropping a handle
//! does not kill at all.
//!
//! When simctl itself dies without a chance to clean up (kill -9), two things end the children:
//! every direct child has `PR_SET_PDEATHSIG(SIGTERM)`, and the [`watchdog`] process ends every
//! registered process group (TERM, grace, KILL), which holds the grandchildren (make's
//! compilers, mmdebstrap's apt and dpkg). When a child exits, whatever it left in its group is
//! killed too: an orphan is never wanted.

mod watchdog;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// How often the wait loop checks the child, the deadline and the caller's watcher.
const POLL: Duration = Duration::from_millis(200);

/// A command to run: program, arguments, working directory and extra environment.
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<PathBuf>,
}

impl Command {
    pub fn new(program: impl Into<OsString>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Feeds the file to the child's standard input (instead of nothing).
    pub fn stdin_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.stdin = Some(path.into());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command as one line for logs and error messages (not for execution).
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|part| {
                let text = part.to_string_lossy();
                if text.is_empty() || text.contains(char::is_whitespace) {
                    format!("'{text}'")
                } else {
                    text.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn program(&self) -> &std::ffi::OsStr {
        &self.program
    }

    fn expression(&self) -> duct::Expression {
        let mut expr = duct::cmd(&self.program, &self.args).unchecked();
        expr = match &self.stdin {
            Some(path) => expr.stdin_path(path),
            None => expr.stdin_null(),
        };
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        for (key, value) in &self.env {
            expr = expr.env(key, value);
        }
        expr.before_spawn(|cmd| {
            // A group of its own: signals for the child reach its whole tree, and the
            // terminal's Ctrl-C reaches only simctl, which then ends the group itself.
            cmd.process_group(0);
            let simctl = rustix::process::getpid();
            // SAFETY: the hook runs between fork and exec and makes two raw system calls only.
            unsafe {
                cmd.pre_exec(move || {
                    // The signal comes when the *thread* that forked ends: simctl spawns from
                    // its main thread or threads that wait for the child (sweep, tests). TERM,
                    // not KILL: mmdebstrap unmounts /proc and /sys from its chroot on TERM and
                    // dies with them mounted on KILL; the watchdog sends KILL after a grace.
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::TERM,
                    ))?;
                    // simctl may have died before the line above: then nobody sends it.
                    if rustix::process::getppid() != Some(simctl) {
                        return Err(rustix::io::Errno::SRCH.into());
                    }
                    Ok(())
                })
            };
            Ok(())
        })
    }

    /// Starts the command with stdout and stderr appended to `log`.
    pub fn spawn_logged(&self, log: &Path) -> Result<Supervised> {
        install_signal_handlers();
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create log directory {}", parent.display()))?;
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open log file {}", log.display()))?;
        let handle = self
            .expression()
            .stderr_to_stdout()
            .stdout_file(log_file)
            .start()
            .map_err(|err| spawn_error(self, err))?;
        let pid = handle.pids().first().copied().context("child has no pid")?;
        watchdog::watch_group(pid);
        Ok(Supervised {
            handle,
            pid,
            what: self.display(),
            log: log.to_path_buf(),
            finished: false,
        })
    }

    /// Runs the command to completion with output in `log`; an error names the command, the
    /// exit status, the log file and the log's last lines.
    pub fn run_logged(&self, log: &Path, timeout: Option<Duration>) -> Result<()> {
        let mut child = self.spawn_logged(log)?;
        let deadline = timeout.map(|limit| Instant::now() + limit);
        let status = child.wait(deadline, |_| Ok(Watch::Continue))?;
        status.check()
    }

    /// Runs the command and returns its stdout (stderr goes to `log`); for short queries.
    pub fn read_stdout(&self) -> Result<String> {
        let handle = self
            .expression()
            .stdout_capture()
            .stderr_capture()
            .start()
            .map_err(|err| spawn_error(self, err))?;
        let pid = handle.pids().first().copied();
        if let Some(pid) = pid {
            watchdog::watch_group(pid);
        }
        let output = handle.into_output();
        if let Some(pid) = pid {
            end_leftovers(pid);
        }
        let output = output.with_context(|| format!("waiting for `{}`", self.display()))?;
        if !output.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8(output.stdout)
            .with_context(|| format!("`{}` printed output that is not UTF-8", self.display()))
    }
}

fn spawn_error(command: &Command, err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "cannot run `{}`: {} not found; hint: run `simctl doctor` to see what to install",
            command.display(),
            command.program.to_string_lossy()
        )
    } else {
        anyhow::Error::new(err).context(format!("cannot start `{}`", command.display()))
    }
}

/// What the caller's watcher tells the wait loop after each poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    Continue,
    /// Stop the child now (e.g. a watchdog fired); the reason ends up in [`Ended::Stopped`].
    Stop(String),
}

/// How a supervised child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Exited {
        code: Option<i32>,
        what: String,
        log: PathBuf,
    },
    TimedOut {
        what: String,
        log: PathBuf,
    },
    Interrupted {
        what: String,
    },
    Stopped {
        reason: String,
        what: String,
    },
}

impl Ended {
    pub fn success(&self) -> bool {
        matches!(self, Ended::Exited { code: Some(0), .. })
    }

    /// Turns anything but a clean exit into an error that says what happened and where the log is.
    pub fn check(&self) -> Result<()> {
        match self {
            Ended::Exited { code: Some(0), .. } => Ok(()),
            Ended::Exited { code, what, log } => {
                let status = code.map_or("killed by a signal".to_string(), |c| {
                    format!("exit code {c}")
                });
                bail!(
                    "`{what}` failed ({status}); full log: {}\n{}",
                    log.display(),
                    log_tail(log, 15)
                )
            }
            Ended::TimedOut { what, log } => {
                bail!(
                    "`{what}` timed out and was stopped; full log: {}",
                    log.display()
                )
            }
            Ended::Interrupted { what } => bail!("interrupted while running `{what}`"),
            Ended::Stopped { reason, what } => bail!("stopped `{what}`: {reason}"),
        }
    }
}

/// A running child in its own process group; dropping it ends the group.
#[derive(Debug)]
pub struct Supervised {
    handle: duct::Handle,
    pid: u32,
    what: String,
    log: PathBuf,
    finished: bool,
}

impl Supervised {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Waits until the child exits, the deadline passes, simctl is interrupted, or `watch`
    /// asks to stop. `watch` is called every poll with the child's log so far (see [`LogTail`]).
    pub fn wait(
        &mut self,
        deadline: Option<Instant>,
        mut watch: impl FnMut(&Path) -> Result<Watch>,
    ) -> Result<Ended> {
        loop {
            if let Some(ended) = self.try_ended()? {
                return Ok(ended);
            }
            if interrupted() {
                self.terminate();
                return Ok(Ended::Interrupted {
                    what: self.what.clone(),
                });
            }
            if deadline.is_some_and(|limit| Instant::now() >= limit) {
                self.terminate();
                return Ok(Ended::TimedOut {
                    what: self.what.clone(),
                    log: self.log.clone(),
                });
            }
            match watch(&self.log) {
                Ok(Watch::Continue) => {}
                Ok(Watch::Stop(reason)) => {
                    self.terminate();
                    return Ok(Ended::Stopped {
                        reason,
                        what: self.what.clone(),
                    });
                }
                Err(err) => {
                    self.terminate();
                    return Err(err);
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// The end of the child if it has ended, without waiting.
    pub fn try_ended(&mut self) -> Result<Option<Ended>> {
        let Some(code) = self
            .handle
            .try_wait()
            .context("waiting for child")?
            .map(|output| output.status.code())
        else {
            return Ok(None);
        };
        self.reaped();
        Ok(Some(Ended::Exited {
            code,
            what: self.what.clone(),
            log: self.log.clone(),
        }))
    }

    /// SIGTERM to the group, then SIGKILL after the grace period; reaps the child.
    pub fn terminate(&mut self) {
        if self.finished {
            return;
        }
        signal_group(self.pid, rustix::process::Signal::TERM);
        let give_up = Instant::now() + GRACE;
        while Instant::now() < give_up {
            if matches!(self.handle.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The leader may be gone while other members of its group still run: KILL them all.
        signal_group(self.pid, rustix::process::Signal::KILL);
        let _ = self.handle.wait();
        self.reaped();
    }

    /// The leader has been reaped: whatever it left running in its group is an orphan.
    fn reaped(&mut self) {
        if !self.finished {
            self.finished = true;
            end_leftovers(self.pid);
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Kills what is left of the group of a reaped leader (background jobs it did not wait for) and
/// tells the watchdog the group is gone. The group id cannot have been reused yet: a pid stays
/// reserved while any process has it as its group, and the leader was reaped just now.
fn end_leftovers(pid: u32) {
    signal_group(pid, rustix::process::Signal::KILL);
    watchdog::forget_group(pid);
}

fn signal_group(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // ESRCH (group already gone) is the expected outcome after a clean exit.
    let _ = rustix::process::kill_process_group(pid, signal);
}

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Routes SIGINT, SIGTERM and SIGHUP to a flag the wait loops check, so that simctl can stop its
/// children and keep their logs instead of dying with them half-written.
pub fn install_signal_handlers() {
    INTERRUPTED.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // A second signal while the first is handled ends simctl at once.
            let _ =
                signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag));
            let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
        }
        flag
    });
}

/// Whether simctl received SIGINT/SIGTERM/SIGHUP since it installed its handlers.
pub fn interrupted() -> bool {
    INTERRUPTED
        .get()
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read(log) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|line| format!("  | {line}\n"))
        .collect()
}

/// Reads what a growing log file gained since the last call, whole lines only.
#[derive(Debug, Default)]
pub struct LogTail {
    offset: u64,
    partial: String,
}

impl LogTail {
    pub fn new() -> Self {
        Self::default()
    }

    /// New complete lines appended to `path` since the previous call.
    pub fn new_lines(&mut self, path: &Path) -> Result<Vec<String>> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut lines: Vec<String> = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        Ok(lines)
    }
}

/// Finds `program` on PATH (also in /usr/sbin and /sbin, where Debian puts mkfs and sfdisk).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_logged_captures_output_and_reports_failure_with_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        Command::new("sh")
            .args(["-c", "echo hello; echo oops >&2"])
            .run_logged(&log, None)
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("hello") && text.contains("oops"), "{text}");

        let err = Command::new("sh")
            .args(["-c", "echo boom; exit 3"])
            .run_logged(&log, None)
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("exit code 3"), "{message}");
        assert!(message.contains("| boom"), "{message}");
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let pid_file = dir.path().join("grandchild.pid");
        // The shell starts a grandchild that would outlive a kill of the direct child only.
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let mut child = Command::new("sh")
            .args(["-c", script.as_str()])
            .spawn_logged(&log)
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(600);
        let ended = child.wait(Some(deadline), |_| Ok(Watch::Continue)).unwrap();
        assert!(matches!(ended, Ended::TimedOut { .. }), "{ended:?}");
        let grandchild = pid_in(&pid_file);
        assert!(
            dies_soon(grandchild),
            "grandchild {grandchild} survived the group kill"
        );
    }

    /// The pid a test script wrote into `file`.
    fn pid_in(file: &Path) -> i32 {
        std::fs::read_to_string(file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Whether process `pid` is gone (or only a zombie) within a second.
    fn dies_soon(pid: i32) -> bool {
        (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.contains(") Z "))
        })
    }

    #[test]
    fn what_a_child_leaves_running_in_its_group_dies_when_it_exits() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("orphan.pid");
        let script = format!("sleep 300 & echo $! > {}", pid_file.display());
        Command::new("sh")
            .args(["-c", script.as_str()])
            .run_logged(&dir.path().join("log"), None)
            .unwrap();
        let orphan = pid_in(&pid_file);
        assert!(
            dies_soon(orphan),
            "background job {orphan} outlived its shell"
        );
    }

    #[test]
    fn watcher_can_stop_a_child_and_sees_new_log_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let mut child = Command::new("sh")
            .args(["-c", "echo READY; sleep 300"])
            .spawn_logged(&log)
            .unwrap();
        let mut tail = LogTail::new();
        let mut seen = Vec::new();
        let ended = child
            .wait(Some(Instant::now() + Duration::from_secs(20)), |path| {
                seen.extend(tail.new_lines(path)?);
                Ok(if seen.iter().any(|l| l == "READY") {
                    Watch::Stop("saw READY".into())
                } else {
                    Watch::Continue
                })
            })
            .unwrap();
        assert_eq!(
            ended,
            Ended::Stopped {
                reason: "saw READY".into(),
                what: child.what.clone()
            }
        );
        assert!(ended.check().unwrap_err().to_string().contains("saw READY"));
    }

    #[test]
    fn missing_program_error_points_to_doctor() {
        let dir = tempfile::tempdir().unwrap();
        let err = Command::new("simctl-no-such-tool")
            .run_logged(&dir.path().join("log"), None)
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("not found") && message.contains("simctl doctor"),
            "{message}"
        );
    }

    #[test]
    fn display_quotes_arguments_with_spaces() {
        let command = Command::new("qemu").args(["-append", "console=ttyS0 root=/dev/sda1"]);
        assert_eq!(
            command.display(),
            "qemu -append 'console=ttyS0 root=/dev/sda1'"
        );
    }
}
#[cfg(test)]
mod stdin_tests {
    use super::*;

    #[test]
    fn stdin_file_reaches_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "hello stdin\n").unwrap();
        let log = dir.path().join("log");
        Command::new("cat")
            .stdin_file(&input)
            .run_logged(&log, None)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello stdin\n");
    }
}

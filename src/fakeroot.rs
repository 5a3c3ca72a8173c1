//! A fakeroot session whose daemon simctl runs and supervises itself.
//!
//! The `fakeroot` script starts `faked-sysv` as a daemon that calls setsid, and stops it from an
//! EXIT trap that a SIGTERM to the script skips: a killed simctl left the daemon running (it
//! holds a SysV message queue). Here `faked-sysv --foreground` is an ordinary supervised child of
//! simctl (its own process group, ended by the watchdog if simctl dies), and the programs run
//! under the session get the environment the script would give them (`FAKEROOTKEY`, the preload
//! library). One daemon serves the whole image build, so ownership recorded while unpacking is
//! what mke2fs reads back, with no state file in between.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{Command, Supervised, find_program};

/// Where Debian's fakeroot package puts its preload library.
const LIBRARY_DIRS: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/libfakeroot",
    "/usr/lib/libfakeroot",
];
const LIBRARY: &str = "libfakeroot-sysv.so";
/// How long the daemon may take to print its key.
const START_LIMIT: Duration = Duration::from_secs(20);

pub struct FakerootSession {
    daemon: Supervised,
    key: String,
    library_dir: PathBuf,
}

impl FakerootSession {
    /// Starts `faked-sysv` with its output in `log` and waits for its key.
    pub fn start(log: &Path) -> Result<FakerootSession> {
        let faked = find_program("faked-sysv")
            .context("faked-sysv not found; hint: apt-get install fakeroot")?;
        let library_dir = LIBRARY_DIRS
            .iter()
            .map(PathBuf::from)
            .find(|dir| dir.join(LIBRARY).is_file())
            .with_context(|| {
                format!(
                    "{LIBRARY} not found in {}; hint: apt-get install fakeroot",
                    LIBRARY_DIRS.join(" or ")
                )
            })?;
        let mut daemon = Command::new(faked).arg("--foreground").spawn_logged(log)?;
        let key = wait_for_key(&mut daemon, log)?;
        Ok(FakerootSession {
            daemon,
            key,
            library_dir,
        })
    }

    /// `program` under the session: what it does to owners, modes and device nodes is recorded
    /// by the daemon instead of done.
    pub fn command(&self, program: impl Into<OsString>) -> Command {
        Command::new(program)
            .env("FAKEROOTKEY", &self.key)
            .env("FAKED_MODE", "unknown-is-root")
            .env("LD_LIBRARY_PATH", self.library_dir.as_os_str())
            .env("LD_PRELOAD", LIBRARY)
    }

    /// Stops the daemon (SIGTERM, as the fakeroot script does).
    pub fn end(mut self) {
        self.daemon.terminate();
    }
}

/// The daemon prints `KEY:PID` as soon as it listens; its log starts with that line.
fn wait_for_key(daemon: &mut Supervised, log: &Path) -> Result<String> {
    let give_up = Instant::now() + START_LIMIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(key) = text
            .lines()
            .find_map(|line| line.trim().split_once(':').map(|(key, _)| key.to_string()))
            .filter(|key| !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(key);
        }
        if let Some(ended) = daemon.try_ended()? {
            bail!(
                "faked-sysv ended before it printed its key ({ended:?}); see {}",
                log.display()
            );
        }
        if Instant::now() >= give_up {
            bail!(
                "faked-sysv printed no key within {} s; see {}",
                START_LIMIT.as_secs(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_set_in_the_session_are_remembered_and_the_daemon_ends_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("faked.log");
        let session = FakerootSession::start(&log).unwrap();
        let file = dir.path().join("owned");
        std::fs::write(&file, "x").unwrap();
        session
            .command("chown")
            .arg("4321:8765")
            .arg(&file)
            .run_logged(&dir.path().join("chown.log"), None)
            .unwrap();
        let seen = session
            .command("stat")
            .args(["-c", "%u:%g"])
            .arg(&file)
            .read_stdout()
            .unwrap();
        assert_eq!(seen.trim(), "4321:8765", "the session remembers the owner");
        let pid = session.daemon.pid();
        session.end();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the daemon is gone after end()"
        );
    }
}

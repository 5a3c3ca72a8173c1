//! The watchdog: a small process that kills every child process group of simctl when simctl
//! dies, however it dies (kill -9, OOM killer, a panic that aborts).
//!
//! Why a process: after kill -9 nothing of simctl runs any more, so someone else has to end
//! the children. `PR_SET_PDEATHSIG` (set on every direct child, see `super::Command`) only
//! reaches the direct child, not make's compilers, mmdebstrap's apt and dpkg or a shell's
//! background jobs; a subreaper only adopts orphans, it does not end them. The watchdog is forked
//! from simctl once, on the first spawn, and reads a pipe whose write end only simctl holds
//! (close-on-exec, so no child inherits it). simctl writes "group P started" (+P) and "group P
//! ended" (-P) records; when the pipe reports end-of-file, simctl is gone and the watchdog ends
//! every group still registered like simctl would (SIGTERM, a grace period, SIGKILL), then exits. The groups hold the whole trees: every
//! supervised child leads its own process group and make, mmdebstrap, scons and shells keep
//! their descendants in it.
//!
//! The watchdog is a fork of a multi-threaded process without an exec, so it only makes raw
//! system calls (no allocation, no locks) and first closes every inherited descriptor: an
//! inherited cache lock (flock) would otherwise stay held for simctl's whole life.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// How many groups the watchdog tracks at once (a sweep runs a few, a build one at a time).
const CAPACITY: usize = 1024;

/// The write end of the pipe to the watchdog, once started; None if it could not be started.
static PIPE: OnceLock<Option<Mutex<File>>> = OnceLock::new();

/// Tells the watchdog that process group `pgid` exists now and must die with simctl.
pub fn watch_group(pgid: u32) {
    send(i32::try_from(pgid).unwrap_or(0));
}

/// Tells the watchdog that process group `pgid` has been ended and reaped by simctl.
pub fn forget_group(pgid: u32) {
    send(i32::try_from(pgid).map_or(0, |pgid| -pgid));
}

fn send(record: i32) {
    if record == 0 {
        return;
    }
    let Some(pipe) = PIPE.get_or_init(start).as_ref() else {
        return;
    };
    let mut pipe = pipe.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Four bytes are below PIPE_BUF, so a write is atomic. A failed write means the watchdog
    // died; nothing better can be done than what PDEATHSIG still does for direct children.
    let _ = pipe.write_all(&record.to_ne_bytes());
}

/// Forks the watchdog; returns the write end of its pipe.
fn start() -> Option<Mutex<File>> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child only calls async-signal-safe functions (see `watchdog_main`).
    match unsafe { libc::fork() } {
        -1 => {
            // SAFETY: both descriptors were just created and are owned here.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            None
        }
        0 => unsafe { watchdog_main(read_end) },
        _ => {
            // SAFETY: the read end belongs to the watchdog now; the write end is ours alone.
            unsafe { libc::close(read_end) };
            Some(Mutex::new(unsafe { File::from_raw_fd(write_end) }))
        }
    }
}

/// The watchdog's whole life. Raw system calls only: this is a fork of a threaded process.
///
/// # Safety
/// Must only be called in the child right after `fork`, with the read end of the pipe.
unsafe fn watchdog_main(read_end: RawFd) -> ! {
    unsafe {
        // A group of its own: Ctrl-C in the terminal and a kill of simctl's group do not reach
        // it, and it ignores the polite signals; only the pipe tells it what to do.
        libc::setpgid(0, 0);
        // Tells it apart from simctl in ps and top (same command line: it is a fork).
        libc::prctl(libc::PR_SET_NAME, c"simctl-watchdog".as_ptr());
        for signal in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::signal(signal, libc::SIG_IGN);
        }
        // Keep the pipe as descriptor 0 and close everything else (log files, cache locks, the
        // pipe's write end: holding it would hide simctl's death).
        if libc::dup2(read_end, 0) != 0 {
            libc::_exit(1);
        }
        if libc::syscall(
            libc::SYS_close_range,
            1 as libc::c_uint,
            libc::c_uint::MAX,
            0,
        ) != 0
        {
            for fd in 1..65536 {
                libc::close(fd);
            }
        }
        let mut groups = [0 as libc::pid_t; CAPACITY];
        loop {
            let mut record = [0u8; 4];
            let mut filled = 0;
            while filled < record.len() {
                let n = libc::read(
                    0,
                    record[filled..].as_mut_ptr().cast(),
                    record.len() - filled,
                );
                if n > 0 {
                    filled += n as usize;
                } else if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                } else {
                    // End of file (simctl is gone) or an error: end every group still here.
                    end_groups(&groups);
                    libc::_exit(0);
                }
            }
            let value = i32::from_ne_bytes(record);
            if value > 0 {
                if let Some(slot) = groups.iter_mut().find(|slot| **slot == 0) {
                    *slot = value;
                }
            } else if let Some(slot) = groups.iter_mut().find(|slot| **slot == -value) {
                *slot = 0;
            }
        }
    }
}

/// SIGTERM to every group, up to [`GRACE_STEPS`] x [`GRACE_STEP_NS`] for them to go (mmdebstrap
/// unmounts /proc and /sys from its chroot, gem5 and QEMU close their files), then SIGKILL to
/// whatever is left. Raw system calls only (see `watchdog_main`).
///
/// # Safety
/// Only async-signal-safe calls; meant for the watchdog process.
unsafe fn end_groups(groups: &[libc::pid_t]) {
    unsafe {
        let live = |group: &&libc::pid_t| **group > 0;
        for &group in groups.iter().filter(live) {
            libc::kill(-group, libc::SIGTERM);
        }
        for _ in 0..GRACE_STEPS {
            if groups
                .iter()
                .filter(live)
                .all(|&group| libc::kill(-group, 0) != 0)
            {
                break;
            }
            let step = libc::timespec {
                tv_sec: 0,
                tv_nsec: GRACE_STEP_NS,
            };
            libc::nanosleep(&step, std::ptr::null_mut());
        }
        for &group in groups.iter().filter(live) {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// The grace period of the watchdog: 50 x 100 ms, as long as simctl's own (`process::GRACE`).
const GRACE_STEPS: u32 = 50;
const GRACE_STEP_NS: libc::c_long = 100_000_000;

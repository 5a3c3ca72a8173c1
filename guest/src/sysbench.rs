//! The per-syscall cost microbenchmark (Kalium-style): batches of N calls of one system call,
//! each batch timed with the monotonic clock and, under gem5, wrapped in m5 workbegin/workend
//! so that gem5 dumps one stats block per batch (its work id is the batch's row).
//!
//! Variants, each in its own child process so that nothing (a filter, a tracer) leaks into the
//! next: `bare`; `seccomp`, an allow-list filter of about fifty rules installed by the child
//! before it measures; `ptrace`, every system call stopped and resumed by a tracer of our own
//! (the parent), which reads the registers at each stop as gVisor's ptrace platform and strace
//! do.

use std::io::Write;
use std::time::Instant;

use crate::m5::M5;

/// One system call (or a pair, for calls that need their counterpart) under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Getpid,
    Read1,
    Write1,
    OpenClose,
    MmapMunmap,
    /// clock_gettime through the vDSO: no kernel entry at all, the control.
    ClockGettime,
    FutexWake,
    /// send of one byte on a loopback TCP connection and its recv on the other end.
    LoopbackSendRecv,
}

pub const CALLS: [Call; 8] = [
    Call::Getpid,
    Call::Read1,
    Call::Write1,
    Call::OpenClose,
    Call::MmapMunmap,
    Call::ClockGettime,
    Call::FutexWake,
    Call::LoopbackSendRecv,
];

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Getpid => "getpid",
            Call::Read1 => "read-1B",
            Call::Write1 => "write-1B",
            Call::OpenClose => "open+close",
            Call::MmapMunmap => "mmap+munmap",
            Call::ClockGettime => "clock_gettime-vdso",
            Call::FutexWake => "futex-wake",
            Call::LoopbackSendRecv => "loopback-send+recv",
        }
    }
}

/// The mechanism between the program and the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Bare,
    Seccomp,
    Ptrace,
}

impl Variant {
    pub fn parse(text: &str) -> Option<Variant> {
        match text {
            "bare" => Some(Variant::Bare),
            "seccomp" => Some(Variant::Seccomp),
            "ptrace" => Some(Variant::Ptrace),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Seccomp => "seccomp",
            Variant::Ptrace => "ptrace",
        }
    }
}

/// Open files and sockets the calls use, set up before any measurement.
pub struct Fixtures {
    zero: libc::c_int,
    null: libc::c_int,
    sender: std::net::TcpStream,
    receiver: std::net::TcpStream,
    futex_word: Box<u32>,
}

fn check(result: libc::c_long, what: &str) -> std::io::Result<()> {
    if result < 0 {
        let err = std::io::Error::last_os_error();
        return Err(std::io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(())
}

impl Fixtures {
    pub fn open() -> std::io::Result<Fixtures> {
        // SAFETY: open(2) of fixed NUL-terminated paths.
        let zero = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY) };
        check(zero as libc::c_long, "open /dev/zero")?;
        // SAFETY: as above.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) };
        check(null as libc::c_long, "open /dev/null")?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let sender = std::net::TcpStream::connect(listener.local_addr()?)?;
        sender.set_nodelay(true)?;
        let (receiver, _) = listener.accept()?;
        Ok(Fixtures {
            zero,
            null,
            sender,
            receiver,
            futex_word: Box::new(0),
        })
    }

    /// One operation of `call`; returns false when the kernel refused it.
    #[inline(never)]
    pub fn once(&mut self, call: Call) -> bool {
        use std::os::fd::AsRawFd;
        let mut byte = [0u8; 1];
        // SAFETY: every call gets valid descriptors and buffers owned by self or the stack.
        unsafe {
            match call {
                Call::Getpid => libc::syscall(libc::SYS_getpid) > 0,
                Call::Read1 => libc::read(self.zero, byte.as_mut_ptr().cast(), 1) == 1,
                Call::Write1 => libc::write(self.null, byte.as_ptr().cast(), 1) == 1,
                Call::OpenClose => {
                    let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                    fd >= 0 && libc::close(fd) == 0
                }
                Call::MmapMunmap => {
                    let page = libc::mmap(
                        std::ptr::null_mut(),
                        4096,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    );
                    page != libc::MAP_FAILED && libc::munmap(page, 4096) == 0
                }
                Call::ClockGettime => {
                    let mut now: libc::timespec = std::mem::zeroed();
                    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) == 0
                }
                Call::FutexWake => {
                    let word: *mut u32 = &mut *self.futex_word;
                    libc::syscall(
                        libc::SYS_futex,
                        word,
                        libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                        1,
                    ) >= 0
                }
                Call::LoopbackSendRecv => {
                    libc::send(self.sender.as_raw_fd(), byte.as_ptr().cast(), 1, 0) == 1
                        && libc::recv(self.receiver.as_raw_fd(), byte.as_mut_ptr().cast(), 1, 0)
                            == 1
                }
            }
        }
    }
}

/// How a run of batches is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Operations per batch.
    pub calls: u64,
    /// Unmeasured batches per system call before the measured ones.
    pub warmup: u64,
    /// Measured batches per system call.
    pub batches: u64,
    /// Work id of this process's first measured batch (ids are unique across variants).
    pub first_work_id: u64,
}

pub const CSV_HEADER: &str = "variant,syscall,phase,batch,work_id,calls,elapsed_ns,ns_per_call,ok";

/// Runs every call's batches and writes one CSV row per batch to `out` (no header).
pub fn run_batches(
    variant: Variant,
    fixtures: &mut Fixtures,
    shape: Shape,
    m5: &M5,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut work_id = shape.first_work_id;
    for call in CALLS {
        for batch in 0..shape.warmup + shape.batches {
            let measured = batch >= shape.warmup;
            if measured {
                m5.work_begin(work_id, 0);
            }
            let started = Instant::now();
            let mut ok = true;
            for _ in 0..shape.calls {
                ok &= fixtures.once(call);
            }
            let elapsed = started.elapsed().as_nanos() as u64;
            if measured {
                m5.work_end(work_id, 0);
            }
            writeln!(
                out,
                "{},{},{},{batch},{},{},{elapsed},{:.3},{ok}",
                variant.name(),
                call.name(),
                if measured { "measured" } else { "warmup" },
                if measured {
                    work_id.to_string()
                } else {
                    String::new()
                },
                shape.calls,
                elapsed as f64 / shape.calls.max(1) as f64
            )?;
            if measured {
                work_id += 1;
            }
        }
    }
    Ok(())
}

/// Measured batches one process produces (for work ids).
pub fn measured_batches(shape: Shape) -> u64 {
    CALLS.len() as u64 * shape.batches
}

/// The allow-list: what a Go or Rust network function needs (as container runtimes' default
/// profiles allow), 50 system calls in syscall-number order; everything else fails with EPERM.
pub const ALLOWED: [libc::c_long; 50] = [
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_open,
    libc::SYS_close,
    libc::SYS_stat,
    libc::SYS_fstat,
    libc::SYS_lseek,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_munmap,
    libc::SYS_brk,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_ioctl,
    libc::SYS_pread64,
    libc::SYS_writev,
    libc::SYS_sched_yield,
    libc::SYS_madvise,
    libc::SYS_dup,
    libc::SYS_nanosleep,
    libc::SYS_getpid,
    libc::SYS_socket,
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_shutdown,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_getsockname,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_clone,
    libc::SYS_exit,
    libc::SYS_fcntl,
    libc::SYS_sigaltstack,
    libc::SYS_gettid,
    libc::SYS_futex,
    libc::SYS_sched_getaffinity,
    libc::SYS_epoll_ctl,
    libc::SYS_clock_gettime,
    libc::SYS_exit_group,
    libc::SYS_epoll_wait,
    libc::SYS_openat,
    libc::SYS_accept4,
    libc::SYS_epoll_create1,
    libc::SYS_prlimit64,
];

/// x86-64's audit architecture, checked first so a 32-bit system call cannot slip through.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// The BPF program of the allow-list: check the architecture, then compare the system call
/// number against each allowed one in turn (a linear chain, as libseccomp emits for small lists).
pub fn allow_list_program() -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW,
        SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS,
    };
    let op = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = |offset| op(BPF_LD | BPF_W | BPF_ABS, offset, 0, 0);
    let ret = |action| op(BPF_RET | BPF_K, action, 0, 0);
    let equal = BPF_JMP | BPF_JEQ | BPF_K;
    // Offsets in struct seccomp_data: nr at 0, arch at 4.
    let mut program = vec![
        load(4),
        op(equal, AUDIT_ARCH_X86_64, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
        load(0),
    ];
    for nr in ALLOWED {
        program.push(op(equal, nr as u32, 0, 1));
        program.push(ret(SECCOMP_RET_ALLOW));
    }
    program.push(ret(SECCOMP_RET_ERRNO | libc::EPERM as u32));
    program
}

/// Installs the allow-list on the calling process (irreversibly).
pub fn install_allow_list() -> std::io::Result<()> {
    let program = allow_list_program();
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl and seccomp with a program that outlives the calls.
    unsafe {
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long,
            "prctl(PR_SET_NO_NEW_PRIVS)",
        )?;
        check(
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            ),
            "seccomp(SECCOMP_SET_MODE_FILTER) (is the kernel built with CONFIG_SECCOMP_FILTER?)",
        )
    }
}

/// Traces `child` (stopped at its exec, having called PTRACE_TRACEME) until it exits: resumes
/// it to each system-call entry and exit, reading its registers at every stop. Returns the
/// child's exit status and the number of system-call stops.
pub fn trace(child: libc::pid_t) -> std::io::Result<(i32, u64)> {
    let mut status = 0;
    let mut stops = 0u64;
    // SAFETY: waitpid/ptrace on our own traced child with valid pointers.
    unsafe {
        check(
            libc::waitpid(child, &mut status, 0) as libc::c_long,
            "waitpid for the traced child",
        )?;
        check(
            libc::ptrace(
                libc::PTRACE_SETOPTIONS,
                child,
                0,
                libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL,
            ),
            "ptrace(PTRACE_SETOPTIONS)",
        )?;
        let mut signal = 0;
        loop {
            check(
                libc::ptrace(libc::PTRACE_SYSCALL, child, 0, signal),
                "ptrace(PTRACE_SYSCALL)",
            )?;
            check(
                libc::waitpid(child, &mut status, 0) as libc::c_long,
                "waitpid for the traced child",
            )?;
            if libc::WIFEXITED(status) {
                return Ok((libc::WEXITSTATUS(status), stops));
            }
            if libc::WIFSIGNALED(status) {
                return Ok((128 + libc::WTERMSIG(status), stops));
            }
            signal = 0;
            let stop = libc::WSTOPSIG(status);
            if stop == libc::SIGTRAP | 0x80 {
                stops += 1;
                let mut regs: libc::user_regs_struct = std::mem::zeroed();
                check(
                    libc::ptrace(libc::PTRACE_GETREGS, child, 0, &mut regs),
                    "ptrace(PTRACE_GETREGS)",
                )?;
                std::hint::black_box(regs.orig_rax);
            } else if stop != libc::SIGTRAP {
                // A real signal for the child: deliver it.
                signal = stop;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_is_fifty_rules_with_the_measured_calls_allowed() {
        assert_eq!(ALLOWED.len(), 50);
        let mut sorted = ALLOWED.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 50, "no duplicates");
        for nr in [
            libc::SYS_getpid,
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_open,
            libc::SYS_close,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_futex,
            libc::SYS_sendto,
            libc::SYS_recvfrom,
        ] {
            assert!(ALLOWED.contains(&nr), "{nr}");
        }
        assert_eq!(allow_list_program().len(), 4 + 2 * 50 + 1);
    }

    #[test]
    fn every_call_works_and_batches_write_one_row_each() {
        let mut fixtures = Fixtures::open().unwrap();
        for call in CALLS {
            assert!(fixtures.once(call), "{}", call.name());
        }
        let m5 = M5::new(crate::m5::Mode::Off).unwrap();
        let shape = Shape {
            calls: 10,
            warmup: 1,
            batches: 2,
            first_work_id: 100,
        };
        let mut out = Vec::new();
        run_batches(Variant::Bare, &mut fixtures, shape, &m5, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), CALLS.len() * 3);
        let measured: Vec<&str> = text.lines().filter(|l| l.contains(",measured,")).collect();
        assert_eq!(measured.len() as u64, measured_batches(shape));
        assert!(
            measured[0].starts_with("bare,getpid,measured,1,100,10,"),
            "{text}"
        );
        assert!(measured.last().unwrap().contains(",115,10,"), "{text}");
        assert!(text.lines().all(|l| l.ends_with(",true")), "{text}");
        assert_eq!(
            CSV_HEADER.split(',').count(),
            measured[0].split(',').count()
        );
    }
}

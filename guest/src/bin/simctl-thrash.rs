//! `simctl-thrash`: the interfering co-runner of the lukewarm study (Schall et al., ISCA 2022).
//! Started on the function's core at the lowest priority (SCHED_IDLE), it runs only while the
//! function waits between invocations, and walks a large code footprint (one `ret` per 64-byte
//! line of an executable mapping, called line after line), a large data footprint (one read
//! and write per 64-byte line) and data-dependent branches, so that the next invocation finds
//! the caches, TLBs and branch predictors holding the co-runner's state instead of its own, as
//! when many function instances share a core. It runs until it is stopped.

use std::hint::black_box;
use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "simctl-thrash",
    version,
    about = "Walk a large code and data footprint at idle priority until stopped",
    after_help = "It runs until a signal stops it. Exit status: 1 the code mapping could not be \
                  made; 2 bad command line."
)]
struct Options {
    /// Code footprint in KiB: one called `ret` per 64-byte line.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(4..=1 << 20))]
    code_kb: u64,
    /// Data footprint in KiB: one read-modify-write per 64-byte line.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(4..=1 << 22))]
    data_kb: u64,
    /// Data-dependent branches per pass.
    #[arg(long, default_value_t = 65536)]
    branches: u64,
    /// Keep the normal priority instead of SCHED_IDLE (for measuring the co-runner alone).
    #[arg(long)]
    normal_priority: bool,
}

const LINE: usize = 64;
const RET: u8 = 0xC3;
const NOP: u8 = 0x90;

/// An executable mapping of `bytes` with a `ret` at the start of every 64-byte line.
fn code_lines(bytes: usize) -> Result<&'static [u8], String> {
    // SAFETY: a fresh anonymous private mapping; written while writable, then made executable
    // and never written again, and never unmapped (the process runs until it is stopped).
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let code = std::slice::from_raw_parts_mut(base.cast::<u8>(), bytes);
        code.fill(NOP);
        for line in code.chunks_mut(LINE) {
            line[0] = RET;
        }
        if libc::mprotect(base, bytes, libc::PROT_READ | libc::PROT_EXEC) != 0 {
            return Err(format!("mprotect: {}", std::io::Error::last_os_error()));
        }
        Ok(std::slice::from_raw_parts(base.cast::<u8>(), bytes))
    }
}

fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets this process's own policy; failure leaves it at normal priority.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        eprintln!(
            "simctl-thrash: warning: SCHED_IDLE refused: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    if !options.normal_priority {
        idle_priority();
    }
    let code = match code_lines(options.code_kb as usize * 1024) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("simctl-thrash: {message}");
            return ExitCode::from(1);
        }
    };
    let mut data = vec![0u8; options.data_kb as usize * 1024];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut taken, mut not_taken) = (0u64, 0u64);
    loop {
        for line in code.chunks(LINE) {
            // SAFETY: every line starts with `ret` in an executable mapping (see code_lines).
            let function: extern "C" fn() = unsafe { std::mem::transmute(line.as_ptr()) };
            function();
        }
        for line in data.chunks_mut(LINE) {
            line[0] = black_box(line[0].wrapping_add(1));
        }
        for _ in 0..options.branches {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if black_box(state) & 1 == 1 {
                taken += 1;
            } else {
                not_taken += 1;
            }
        }
        black_box((taken, not_taken));
    }
}

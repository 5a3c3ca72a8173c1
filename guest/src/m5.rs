//! gem5's m5 pseudo-ops for x86-64, in Rust: the op numbers, the three trigger modes and the
//! mode selection (flag, `SIMCTL_M5`, kernel command line `simctl.m5=`, default `off`).
//!
//! * `inst`: the magic instruction `0F 04 <func:u16>`; only gem5's own CPU models decode it
//!   (anywhere else it is an invalid opcode and the process dies with SIGILL).
//! * `addr`: a load from `0xFFFF0000 + (func << 8)` through `/dev/mem`; works under gem5's KVM
//!   CPU as well.
//! * `off`: does nothing but say so on stderr, for QEMU and real machines.
//!
//! Arguments go in RDI, RSI, RDX, RCX, R8, R9 and the result comes back in RAX, as gem5's
//! `X86PseudoInstABI` expects.

use std::fmt;
use std::io;

/// Base of gem5's m5 op MMIO window on x86 (`X86Board.m5ops_base`).
pub const M5OP_ADDR: u64 = 0xFFFF_0000;
/// Size of the window.
pub const M5OP_RANGE: usize = 0x1_0000;

/// The ops simctl uses, with gem5's function numbers (`include/gem5/asm/generic/m5ops.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Exit = 0x21,
    Fail = 0x22,
    Sum = 0x23,
    ResetStats = 0x40,
    DumpStats = 0x41,
    DumpResetStats = 0x42,
    Checkpoint = 0x43,
    WriteFile = 0x4F,
    ReadFile = 0x50,
    SwitchCpu = 0x52,
    AddSymbol = 0x53,
    WorkBegin = 0x5a,
    WorkEnd = 0x5b,
}

/// How ops reach the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inst,
    Addr,
    Off,
}

impl Mode {
    /// [`Mode::parse`] with an error that names the choices (a command-line value parser).
    pub fn parse_arg(text: &str) -> Result<Mode, String> {
        Mode::parse(text).ok_or_else(|| format!("'{text}' is not one of inst, addr, off"))
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "inst" => Some(Mode::Inst),
            "addr" => Some(Mode::Addr),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }

    /// The mode from the environment: `SIMCTL_M5`, else `simctl.m5=` on the kernel command
    /// line, else `off`, so the same image serves gem5 and QEMU and nothing executes the magic
    /// instruction by accident.
    pub fn from_environment() -> Mode {
        if let Some(mode) = std::env::var("SIMCTL_M5")
            .ok()
            .as_deref()
            .and_then(Mode::parse)
        {
            return mode;
        }
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        cmdline_value(&cmdline, "simctl.m5")
            .and_then(Mode::parse)
            .unwrap_or(Mode::Off)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Inst => "inst",
            Mode::Addr => "addr",
            Mode::Off => "off",
        })
    }
}

/// The value of `key=value` on a kernel command line.
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|word| {
        word.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// Issues m5 ops in one mode.
#[derive(Debug)]
pub struct M5 {
    mode: Mode,
    window: Option<*mut u8>,
}

impl M5 {
    /// Opens the ops in `mode`; `addr` maps the MMIO window now so that a failure is reported
    /// here and not as a crash at the first op.
    pub fn new(mode: Mode) -> io::Result<M5> {
        let window = match mode {
            Mode::Addr => Some(map_window()?),
            Mode::Inst | Mode::Off => None,
        };
        Ok(M5 { mode, window })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Calls op `op` with up to six arguments; returns RAX (0 in `off` mode).
    pub fn call(&self, op: Op, args: [u64; 6]) -> u64 {
        match self.mode {
            Mode::Off => {
                // Once per process: a client issues thousands of ops.
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| eprintln!("m5: ops are off ({op:?} and later ops skipped)"));
                0
            }
            Mode::Inst => inst_call(op, args),
            Mode::Addr => {
                let window = self.window.expect("addr mode has a mapped window");
                // SAFETY: the window maps M5OP_RANGE bytes and (op << 8) + 8 stays inside it.
                unsafe { addr_call(window.add((op as usize) << 8), args) }
            }
        }
    }

    pub fn exit(&self, delay_ns: u64) {
        self.call(Op::Exit, [delay_ns, 0, 0, 0, 0, 0]);
    }

    pub fn fail(&self, delay_ns: u64, code: u64) {
        self.call(Op::Fail, [delay_ns, code, 0, 0, 0, 0]);
    }

    pub fn reset_stats(&self, delay_ns: u64, period_ns: u64) {
        self.call(Op::ResetStats, [delay_ns, period_ns, 0, 0, 0, 0]);
    }

    pub fn dump_stats(&self, delay_ns: u64, period_ns: u64) {
        self.call(Op::DumpStats, [delay_ns, period_ns, 0, 0, 0, 0]);
    }

    pub fn dump_reset_stats(&self, delay_ns: u64, period_ns: u64) {
        self.call(Op::DumpResetStats, [delay_ns, period_ns, 0, 0, 0, 0]);
    }

    pub fn checkpoint(&self, delay_ns: u64, period_ns: u64) {
        self.call(Op::Checkpoint, [delay_ns, period_ns, 0, 0, 0, 0]);
    }

    pub fn work_begin(&self, work_id: u64, thread_id: u64) {
        self.call(Op::WorkBegin, [work_id, thread_id, 0, 0, 0, 0]);
    }

    pub fn work_end(&self, work_id: u64, thread_id: u64) {
        self.call(Op::WorkEnd, [work_id, thread_id, 0, 0, 0, 0]);
    }

    pub fn switch_cpu(&self) {
        self.call(Op::SwitchCpu, [0; 6]);
    }

    pub fn sum(&self, values: [u64; 6]) -> u64 {
        self.call(Op::Sum, values)
    }

    pub fn add_symbol(&self, address: u64, name: &str) {
        let name = nul_terminated(name);
        self.call(Op::AddSymbol, [address, name.as_ptr() as u64, 0, 0, 0, 0]);
    }

    /// Reads the whole file gem5 hands over (`System.readfile`). Empty in `off` mode.
    pub fn read_file(&self) -> Vec<u8> {
        const CHUNK: usize = 256 * 1024;
        let mut contents = Vec::new();
        // Touch every page first: gem5 copies into guest virtual memory and must not hit
        // pages Linux has not faulted in yet.
        let mut buffer = vec![1u8; CHUNK];
        loop {
            let read = self.call(
                Op::ReadFile,
                [
                    buffer.as_mut_ptr() as u64,
                    CHUNK as u64,
                    contents.len() as u64,
                    0,
                    0,
                    0,
                ],
            ) as usize;
            if read == 0 || read > CHUNK {
                return contents;
            }
            contents.extend_from_slice(&buffer[..read]);
        }
    }

    /// Writes `data` into gem5's output directory as `host_name`; returns bytes written.
    pub fn write_file(&self, data: &[u8], host_name: &str) -> u64 {
        let name = nul_terminated(host_name);
        self.call(
            Op::WriteFile,
            [
                data.as_ptr() as u64,
                data.len() as u64,
                0,
                name.as_ptr() as u64,
                0,
                0,
            ],
        )
    }
}

fn nul_terminated(text: &str) -> Vec<u8> {
    let mut bytes: Vec<u8> = text.bytes().filter(|&b| b != 0).collect();
    bytes.push(0);
    bytes
}

fn map_window() -> io::Result<*mut u8> {
    use rustix::fs::{Mode as FileMode, OFlags, open};
    use rustix::mm::{MapFlags, ProtFlags, mmap};
    let fd = open("/dev/mem", OFlags::RDWR | OFlags::SYNC, FileMode::empty())
        .map_err(|err| io::Error::other(format!("cannot open /dev/mem for m5 addr mode: {err}")))?;
    // SAFETY: maps device memory that nothing else in this process refers to.
    let pointer = unsafe {
        mmap(
            std::ptr::null_mut(),
            M5OP_RANGE,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &fd,
            M5OP_ADDR,
        )
    }
    .map_err(|err| {
        io::Error::other(format!("cannot map the m5 window at {M5OP_ADDR:#x}: {err}"))
    })?;
    Ok(pointer.cast())
}

/// # Safety
/// `slot` must point into the mapped m5 window.
#[cfg(target_arch = "x86_64")]
unsafe fn addr_call(slot: *mut u8, args: [u64; 6]) -> u64 {
    let result: u64;
    // SAFETY: a 64-bit load from the op's slot; gem5 intercepts it and reads the argument
    // registers, which are set exactly as the ABI wants.
    unsafe {
        std::arch::asm!(
            "mov rax, qword ptr [{slot}]",
            slot = in(reg) slot,
            in("rdi") args[0], in("rsi") args[1], in("rdx") args[2],
            in("rcx") args[3], in("r8") args[4], in("r9") args[5],
            out("rax") result,
            options(nostack),
        );
    }
    result
}

/// Emits the magic instruction for one op; the function number must be an immediate, hence
/// one asm block per op.
#[cfg(target_arch = "x86_64")]
macro_rules! magic {
    ($func:literal, $args:expr) => {{
        let args: [u64; 6] = $args;
        let result: u64;
        // SAFETY: only reached in `inst` mode, which the user selects for gem5's CPU models;
        // the instruction reads the argument registers and writes RAX.
        unsafe {
            std::arch::asm!(
                ".byte 0x0f, 0x04",
                concat!(".word ", $func),
                in("rdi") args[0], in("rsi") args[1], in("rdx") args[2],
                in("rcx") args[3], in("r8") args[4], in("r9") args[5],
                lateout("rax") result,
                options(nostack),
            );
        }
        result
    }};
}

#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn inst_call(op: Op, args: [u64; 6]) -> u64 {
    match op {
        Op::Exit => magic!("0x21", args),
        Op::Fail => magic!("0x22", args),
        Op::Sum => magic!("0x23", args),
        Op::ResetStats => magic!("0x40", args),
        Op::DumpStats => magic!("0x41", args),
        Op::DumpResetStats => magic!("0x42", args),
        Op::Checkpoint => magic!("0x43", args),
        Op::WriteFile => magic!("0x4f", args),
        Op::ReadFile => magic!("0x50", args),
        Op::SwitchCpu => magic!("0x52", args),
        Op::AddSymbol => magic!("0x53", args),
        Op::WorkBegin => magic!("0x5a", args),
        Op::WorkEnd => magic!("0x5b", args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_comes_from_the_kernel_command_line() {
        let cmdline = "console=ttyS0 root=/dev/sda1 simctl.m5=inst simctl.platform=gem5\n";
        assert_eq!(cmdline_value(cmdline, "simctl.m5"), Some("inst"));
        assert_eq!(cmdline_value(cmdline, "simctl.platform"), Some("gem5"));
        assert_eq!(cmdline_value(cmdline, "simctl"), None);
        assert_eq!(Mode::parse("bogus"), None);
    }

    #[test]
    fn off_mode_does_nothing_and_returns_zero() {
        let m5 = M5::new(Mode::Off).unwrap();
        assert_eq!(m5.sum([1, 2, 3, 4, 5, 6]), 0);
        assert!(m5.read_file().is_empty());
        m5.work_begin(1, 0);
        m5.exit(0);
    }

    #[test]
    fn op_numbers_match_gem5() {
        assert_eq!(Op::Exit as u8, 0x21);
        assert_eq!(Op::Checkpoint as u8, 0x43);
        assert_eq!(Op::ReadFile as u8, 0x50);
        assert_eq!(Op::WorkBegin as u8, 0x5a);
        assert_eq!(Op::WorkEnd as u8, 0x5b);
    }
}

//! `simctl-init`: the boot agent. As PID 1 (`init=/sbin/simctl-init`) it mounts the basic
//! file systems, brings up loopback, under gem5 asks for the boot checkpoint (m5 checkpoint),
//! fetches the run plan (m5 readfile under gem5, the transfer disk under QEMU), runs it, hands
//! the results back and stops the machine. Under systemd
//! (`--service`) it does the same without mounting or powering off itself.
//!
//! It never hangs silently: every step has a timeout, failures print `SIMCTL-ERROR`, the end
//! prints `SIMCTL-DONE status=ok|failed`, and the machine stops either way.
//!
//! Host test mode: `simctl-init --plan FILE --no-mount --no-poweroff --results-out DIR`.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use simctl_guest::m5::{M5, Mode, cmdline_value};
use simctl_guest::markers::Marker;
use simctl_guest::plan::{DEFAULT_RESULTS_DIR, Plan, Step};
use simctl_guest::transfer;

const TRANSFER_DEVICE: &str = "/dev/sdb";
/// Where the pid of each background step goes (`<step name>.pid`).
const PID_DIR: &str = "/run/simctl";

struct Options {
    plan_file: Option<PathBuf>,
    mount: bool,
    poweroff: bool,
    results_out: Option<PathBuf>,
}

fn say(marker: Marker) {
    println!("{marker}");
    let _ = std::io::stdout().flush();
}

fn error(message: &str) {
    say(Marker::Error(message.to_string()));
}

fn mount_basics() {
    // cgroup v2 is for containers (runc puts the function in a cpuset cgroup); a kernel
    // built without cgroups just runs functions as processes.
    let mounts: [(&str, &str, &str); 6] = [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("tmpfs", "/tmp", "tmpfs"),
        ("tmpfs", "/run", "tmpfs"),
        ("cgroup2", "/sys/fs/cgroup", "cgroup2"),
    ];
    for (source, target, fstype) in mounts {
        let _ = std::fs::create_dir_all(target);
        let (source_c, target_c, fstype_c) = (cstr(source), cstr(target), cstr(fstype));
        // SAFETY: plain mount(2) with NUL-terminated strings that live across the call.
        let result = unsafe {
            libc::mount(
                source_c.as_ptr(),
                target_c.as_ptr(),
                fstype_c.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if result != 0 {
            let err = std::io::Error::last_os_error();
            // /dev may already be mounted by the kernel (DEVTMPFS_MOUNT); a kernel without
            // cgroups has neither /sys/fs/cgroup (ENOENT) nor cgroup2 (ENODEV).
            if !matches!(
                err.raw_os_error(),
                Some(libc::EBUSY) | Some(libc::ENODEV) | Some(libc::ENOENT)
            ) {
                error(&format!("mount {target}: {err}"));
            }
        }
    }
}

fn cstr(text: &str) -> std::ffi::CString {
    std::ffi::CString::new(text).unwrap_or_default()
}

/// `ip link set lo up`, without needing `ip` in the image.
fn loopback_up() {
    // SAFETY: a datagram socket used only for the interface-flags ioctls on "lo".
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if socket < 0 {
            error("loopback: cannot open a socket");
            return;
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        if libc::ioctl(socket, libc::SIOCGIFFLAGS, &mut request) == 0 {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(socket, libc::SIOCSIFFLAGS, &request) != 0 {
                error(&format!("loopback up: {}", std::io::Error::last_os_error()));
            }
        }
        libc::close(socket);
    }
}

fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn spawn(step: &Step) -> std::io::Result<Child> {
    let mut command = Command::new(&step.argv[0]);
    command
        .args(&step.argv[1..])
        .envs(&step.env)
        .stdin(Stdio::null())
        // Its own process group, so that stopping a step stops what it started too (a shell's
        // foreground child, a launcher's server).
        .process_group(0);
    if let Some(cpu) = step.cpu {
        // SAFETY: only sched_setaffinity runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let mut set = rustix::thread::CpuSet::new();
                set.set(cpu);
                rustix::thread::sched_setaffinity(None, &set).map_err(std::io::Error::from)
            });
        }
    }
    command.spawn()
}

fn allowed_cpus(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "?".into())
}

fn wait_for_port(port: u16, child: &mut Child, deadline: Instant) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited ({status}) before port {port} answered"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("port {port} did not answer in time"))
}

fn stop(child: &mut Child) {
    // A reaped child's pid may belong to another process by now.
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let group = -(child.id() as libc::pid_t);
    // SAFETY: signals the process group of our own, unreaped child (its pid is its group id).
    // CONT after TERM: a process held with SIGSTOP (the client holds a co-runner) acts on the
    // TERM only once it runs again.
    unsafe {
        libc::kill(group, libc::SIGTERM);
        libc::kill(group, libc::SIGCONT);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; the leader is still unreaped, so the group id is still ours.
    unsafe {
        libc::kill(group, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// How a foreground step's wait ended.
enum Ending {
    Exited(ExitStatus),
    TimedOut,
    WaitFailed(std::io::Error),
    /// A background step (the function, a co-runner) exited first; it is taken off the list.
    BackgroundExited(String, ExitStatus),
}

fn wait_foreground(
    child: &mut Child,
    deadline: Instant,
    background: &mut Vec<(String, Child)>,
) -> Ending {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ending::Exited(status),
            Ok(None) if Instant::now() >= deadline => return Ending::TimedOut,
            Ok(None) => {}
            Err(err) => return Ending::WaitFailed(err),
        }
        let exited = background
            .iter_mut()
            .enumerate()
            .find_map(|(index, (_, bg))| match bg.try_wait() {
                Ok(Some(status)) => Some((index, status)),
                _ => None,
            });
        if let Some((index, status)) = exited {
            let (name, _) = background.remove(index);
            return Ending::BackgroundExited(name, status);
        }
        sleep_until_a_child_exits(child, background, deadline);
    }
}

/// Sleeps until one of the children exits or the deadline passes, without waking up in
/// between: the client's core must stay quiet during the measured invocations (a 100 ms poll
/// woke this process ten times a second beside them, and noticed the client's exit up to
/// 100 ms late, which gem5 simulates). Falls back to that poll where pidfds are missing.
fn sleep_until_a_child_exits(child: &Child, background: &[(String, Child)], deadline: Instant) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    let pidfds: Option<Vec<_>> = std::iter::once(child)
        .chain(background.iter().map(|(_, bg)| bg))
        .map(|process| {
            let pid = Pid::from_raw(process.id() as i32)?;
            pidfd_open(pid, PidfdFlags::empty()).ok()
        })
        .collect();
    let Some(pidfds) = pidfds else {
        std::thread::sleep(Duration::from_millis(100));
        return;
    };
    let mut fds: Vec<PollFd<'_>> = pidfds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let left = deadline.saturating_duration_since(Instant::now());
    let timeout = Timespec {
        tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(left.subsec_nanos()),
    };
    // Interrupted (EINTR) or not: the caller looks at every child again either way.
    let _ = poll(&mut fds, Some(&timeout));
}

/// What becomes of the background steps (the function, its helpers, a co-runner) after the
/// last step.
#[derive(PartialEq, Eq)]
enum Leave {
    /// Stopped (SIGTERM, then SIGKILL), before the results go back and the guest powers off.
    Stopped,
    /// Left running: gem5 ends the simulation at m5 exit right after the results go back, and
    /// stopping them first only simulates their shutdown (a runc container's took 0.13
    /// simulated s, 4 host s on the timing CPU and 14 on O3, per design point).
    Running,
}

/// Runs the steps in order; returns whether all succeeded.
fn run_plan(plan: &Plan, ending: Leave) -> bool {
    let _ = std::fs::create_dir_all(&plan.results_dir);
    for (path, contents) in &plan.files {
        let path = Path::new(path);
        if let Err(err) = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, contents))
        {
            error(&format!("cannot write {}: {err}", path.display()));
            return false;
        }
    }
    let mut background: Vec<(String, Child)> = Vec::new();
    let mut ok = true;
    for step in &plan.steps {
        say(Marker::StepStart {
            name: step.name.clone(),
        });
        let deadline = Instant::now() + Duration::from_secs(step.timeout_s);
        let mut child = match spawn(step) {
            Ok(child) => child,
            Err(err) => {
                error(&format!(
                    "step {}: cannot start {}: {err}",
                    step.name, step.argv[0]
                ));
                ok = false;
                break;
            }
        };
        // Every pinned step says where it may run (the function's core and the client's), as
        // the kernel sees it once the step runs.
        if step.cpu.is_some() {
            say(Marker::Affinity {
                pid: Some(child.id()),
                name: Some(step.name.clone()),
                cpus: allowed_cpus(child.id()),
                details: String::new(),
            });
        }
        if step.background {
            if let Some(port) = step.wait_for_port {
                if let Err(message) = wait_for_port(port, &mut child, deadline) {
                    error(&format!("step {}: {message}", step.name));
                    stop(&mut child);
                    ok = false;
                    break;
                }
                say(Marker::FunctionUp);
            }
            // Other steps find a background step by name (the client holds a co-runner while it
            // invokes the function).
            let pid_file = Path::new(PID_DIR).join(format!("{}.pid", step.name));
            if let Err(err) = std::fs::create_dir_all(PID_DIR)
                .and_then(|()| std::fs::write(&pid_file, format!("{}\n", child.id())))
            {
                error(&format!("cannot write {}: {err}", pid_file.display()));
            }
            background.push((step.name.clone(), child));
            continue;
        }
        match wait_foreground(&mut child, deadline, &mut background) {
            Ending::Exited(status) if status.success() => say(Marker::StepDone {
                name: step.name.clone(),
            }),
            Ending::Exited(status) => {
                error(&format!("step {} failed: {status}", step.name));
                ok = false;
                break;
            }
            Ending::TimedOut => {
                error(&format!(
                    "step {} timed out after {} s",
                    step.name, step.timeout_s
                ));
                stop(&mut child);
                ok = false;
                break;
            }
            Ending::WaitFailed(err) => {
                error(&format!("step {}: wait failed: {err}", step.name));
                stop(&mut child);
                ok = false;
                break;
            }
            // The function crashed under its client: say so now, instead of letting the client
            // time out request after request and blame the network.
            Ending::BackgroundExited(name, status) => {
                error(&format!(
                    "background step {name} exited ({status}) while step {} ran; {} is stopped",
                    step.name, step.name
                ));
                stop(&mut child);
                ok = false;
                break;
            }
        }
    }
    // Last started, first stopped: a co-runner (started after the function) ends before the
    // function's shutdown, instead of running through it.
    for (name, mut child) in background.into_iter().rev() {
        if let Ok(Some(status)) = child.try_wait() {
            error(&format!(
                "background step {name} had exited early: {status}"
            ));
            ok = false;
        }
        if ending == Leave::Stopped {
            stop(&mut child);
        }
    }
    ok
}

fn run_script(bytes: &[u8], results_dir: &str) -> bool {
    let path = Path::new("/tmp/simctl-plan");
    let _ = std::fs::create_dir_all(results_dir);
    if let Err(err) = std::fs::write(path, bytes) {
        error(&format!("cannot write the script: {err}"));
        return false;
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
    match Command::new(path)
        .env("SIMCTL_RESULTS", results_dir)
        .status()
    {
        Ok(status) if status.success() => true,
        Ok(status) => {
            error(&format!("script failed: {status}"));
            false
        }
        Err(err) => {
            error(&format!("cannot run the script: {err}"));
            false
        }
    }
}

fn fetch_plan(options: &Options, m5: &M5) -> Result<Vec<u8>, String> {
    if let Some(file) = &options.plan_file {
        return std::fs::read(file).map_err(|err| format!("cannot read {}: {err}", file.display()));
    }
    if m5.mode() != Mode::Off {
        let bytes = m5.read_file();
        return if bytes.is_empty() {
            Err("m5 readfile returned nothing".into())
        } else {
            Ok(bytes)
        };
    }
    match transfer::read_input(Path::new(TRANSFER_DEVICE)) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("{TRANSFER_DEVICE} carries no run plan")),
        Err(err) => Err(format!(
            "cannot read the run plan from {TRANSFER_DEVICE}: {err}"
        )),
    }
}

fn hand_back(results_dir: &str, options: &Options, m5: &M5) {
    let dir = Path::new(results_dir);
    if let Some(out) = &options.results_out {
        let copied = std::fs::create_dir_all(out).and_then(|()| {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                std::fs::copy(entry.path(), out.join(entry.file_name()))?;
            }
            Ok(())
        });
        if let Err(err) = copied {
            error(&format!("cannot copy results to {}: {err}", out.display()));
        }
        return;
    }
    if m5.mode() != Mode::Off {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                m5.write_file(&data, &entry.file_name().to_string_lossy());
            }
        }
        return;
    }
    match transfer::pack_dir(dir)
        .and_then(|tar| transfer::write_output(Path::new(TRANSFER_DEVICE), &tar))
    {
        Ok(()) => say(Marker::ResultsWritten),
        Err(err) => error(&format!("cannot write results to {TRANSFER_DEVICE}: {err}")),
    }
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        plan_file: None,
        mount: true,
        poweroff: true,
        results_out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plan" => options.plan_file = Some(args.next().ok_or("--plan needs a file")?.into()),
            "--results-out" => {
                options.results_out = Some(args.next().ok_or("--results-out needs a dir")?.into())
            }
            "--no-mount" => options.mount = false,
            "--no-poweroff" => options.poweroff = false,
            "--service" => {
                options.mount = false;
                options.poweroff = false;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("simctl-init: {message}");
            return ExitCode::from(2);
        }
    };
    if options.mount {
        mount_basics();
    }
    loopback_up();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    say(Marker::Boot {
        uptime_s: uptime(),
        platform: cmdline_value(&cmdline, "simctl.platform").map(str::to_string),
    });
    let m5 = M5::new(if options.plan_file.is_some() {
        Mode::Off
    } else {
        Mode::from_environment()
    })
    .or_else(|err| {
        error(&format!("m5: {err}; falling back to off"));
        M5::new(Mode::Off)
    })
    .expect("off mode needs no resources");
    if m5.mode() != Mode::Off {
        // The boot checkpoint: gem5's boot phase saves it here and stops; every workload and
        // design point restores it with its own plan as the readfile, which is why the plan is
        // read only after this line.
        m5.checkpoint(0, 0);
        say(Marker::BootRestored { uptime_s: uptime() });
    }
    let ok = match fetch_plan(&options, &m5) {
        Err(message) => {
            error(&message);
            false
        }
        Ok(bytes) if bytes.starts_with(b"#!") => {
            let ok = run_script(&bytes, DEFAULT_RESULTS_DIR);
            hand_back(DEFAULT_RESULTS_DIR, &options, &m5);
            ok
        }
        Ok(bytes) => match Plan::parse(&String::from_utf8_lossy(&bytes)) {
            Err(message) => {
                error(&message);
                false
            }
            Ok(plan) => {
                let ending = if m5.mode() == Mode::Off {
                    Leave::Stopped
                } else {
                    Leave::Running
                };
                let ok = run_plan(&plan, ending);
                hand_back(&plan.results_dir, &options, &m5);
                ok
            }
        },
    };
    say(Marker::Done {
        ok,
        uptime_s: uptime(),
    });
    if m5.mode() != Mode::Off {
        if ok { m5.exit(0) } else { m5.fail(0, 1) }
    }
    if options.poweroff {
        // SAFETY: sync and power off; only reached as PID 1 when everything is done.
        unsafe {
            libc::sync();
            libc::reboot(libc::RB_POWER_OFF);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

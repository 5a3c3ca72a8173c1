//! The seccomp filter of the function's container: Docker applies its default profile to every
//! container (vSwarm-u's functions run under it), so each system call a function makes passes
//! that filter there; without it our containers' system calls would be cheaper than theirs.
//!
//! [`oci_section`] writes the OCI `linux.seccomp` section Docker derives from its default
//! profile (moby `profiles/seccomp/default.json`, Apache-2.0, at moby commit 0ec744f of May 2022;
//! later Docker releases allow a few newer system calls too) for an x86-64 container with Docker's default capabilities on a 6.1 kernel: default action `errno`
//! (EPERM), an allow list, `personality` allowed for five personas only, `clone` only without
//! namespace flags and `clone3` answered with ENOSYS (so that libc falls back to `clone`), and
//! the rules a capability unlocks only when the container has that capability. This is our own
//! table of the profile's rules and Docker's resolution of them (capabilities, architecture,
//! minimum kernel), not a copy of the JSON; the rules for other architectures (arm, s390,
//! ppc64le, riscv64) are left out because the guest is x86-64.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Which seccomp filter the function's container runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seccomp {
    /// Docker's default profile, as Docker (and so vSwarm-u) runs every container.
    DockerDefault,
    /// No filter (`docker run --security-opt seccomp=unconfined`).
    Unconfined,
}

impl Seccomp {
    pub fn name(self) -> &'static str {
        match self {
            Seccomp::DockerDefault => "docker-default",
            Seccomp::Unconfined => "unconfined",
        }
    }

    /// What `/proc/PID/status` says in its `Seccomp:` line for a process under this filter
    /// (0: none, 2: filter mode).
    pub fn status_mode(self) -> u8 {
        match self {
            Seccomp::DockerDefault => 2,
            Seccomp::Unconfined => 0,
        }
    }
}

/// EPERM: Docker's `defaultErrnoRet`.
const EPERM: u32 = 1;
/// ENOSYS: what `clone3` gets without CAP_SYS_ADMIN, so that glibc falls back to `clone`.
const ENOSYS: u32 = 38;
/// The namespace flags of `clone` (CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID
/// | NEWNET): without CAP_SYS_ADMIN, `clone` is allowed only with all of them clear.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// The system calls every container may make (the profile's unconditional allow list; names
/// of other ABIs such as `chown32` apply to the x86 and x32 sub-architectures).
const ALWAYS_ALLOWED: &str = "
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup
    dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
    epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
    faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown
    fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
    fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
    futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32
    geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
    getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
    get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
    getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
    io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
    ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
    landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr
    link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
    madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
    mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
    msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2
    pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64 preadv
    preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
    readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
    set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr
    shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
    socket socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
    sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
    ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice
    wait4 waitid waitpid write writev
    process_vm_readv process_vm_writev ptrace
    arch_prctl modify_ldt";
// The last two lines: allowed from kernel 4.8 on (the guest runs 6.1), and on x86-64.

/// The personas `personality` may select: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32
/// and the query 0xffffffff.
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The profile's rules that a capability unlocks (`includes.caps`).
const ALLOWED_WITH_CAPABILITY: [(&str, &str); 12] = [
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
         mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl \
         quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    ("CAP_SYS_TIME", "settimeofday stime clock_settime"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy"),
    ("CAP_SYSLOG", "syslog"),
];

/// The OCI `linux.seccomp` section for a container holding `capabilities`, or None for
/// [`Seccomp::Unconfined`].
pub fn oci_section(profile: Seccomp, capabilities: &[&str]) -> Option<Value> {
    if profile == Seccomp::Unconfined {
        return None;
    }
    let has = |capability: &str| capabilities.contains(&capability);
    let names = |list: &'static str| list.split_whitespace().collect::<Vec<_>>();
    let mut rules = vec![json!({"names": names(ALWAYS_ALLOWED), "action": "SCMP_ACT_ALLOW"})];
    rules.extend(PERSONAS.map(|persona| {
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": persona, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]})
    }));
    for (capability, list) in ALLOWED_WITH_CAPABILITY {
        if has(capability) {
            rules.push(json!({"names": names(list), "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}]}));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    Some(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(section: &Value) -> Vec<String> {
        section["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rule| rule["action"] == "SCMP_ACT_ALLOW" && rule.get("args").is_none())
            .flat_map(|rule| rule["names"].as_array().unwrap().clone())
            .map(|name| name.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn docker_default_denies_with_eperm_and_unlocks_rules_by_capability() {
        let section = oci_section(Seccomp::DockerDefault, &["CAP_SYS_CHROOT"]).unwrap();
        assert_eq!(section["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(section["defaultErrnoRet"], 1);
        let names = allowed(&section);
        for name in [
            "read",
            "epoll_pwait",
            "futex",
            "arch_prctl",
            "ptrace",
            "chroot",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} allowed");
        }
        for name in [
            "mount", "unshare", "setns", "reboot", "bpf", "clone", "clone3",
        ] {
            assert!(!names.iter().any(|n| n == name), "{name} not allowed");
        }
        let rules = section["syscalls"].as_array().unwrap();
        let clone = rules.iter().find(|r| r["names"][0] == "clone").unwrap();
        assert_eq!(clone["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        let clone3 = rules.iter().find(|r| r["names"][0] == "clone3").unwrap();
        assert_eq!(clone3["errnoRet"], 38);
        let personas = rules
            .iter()
            .filter(|r| r["names"][0] == "personality")
            .count();
        assert_eq!(personas, 5);

        let admin = oci_section(Seccomp::DockerDefault, &["CAP_SYS_ADMIN"]).unwrap();
        let names = allowed(&admin);
        assert!(names.iter().any(|n| n == "clone3") && names.iter().any(|n| n == "mount"));
        assert!(!names.iter().any(|n| n == "chroot"));
        assert!(oci_section(Seccomp::Unconfined, &["CAP_SYS_CHROOT"]).is_none());
    }

    #[test]
    fn every_name_is_listed_once_per_rule() {
        let names = allowed(&oci_section(Seccomp::DockerDefault, &[]).unwrap());
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        // The profile's unconditional list (346 names at moby 0ec744f) plus the rules for
        // kernels from 4.8 on (3) and for x86-64 (2).
        assert_eq!(names.len(), 346 + 3 + 2);
    }
}

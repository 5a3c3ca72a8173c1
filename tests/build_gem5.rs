//! `simctl build-gem5` end to end on a toy gem5 source: a git repository whose SConstruct
//! (a real scons run, in a second) compiles `build/X86/gem5.opt` from C, linked against the
//! system's libpython like gem5, printing its build information for a config script like gem5. Covers export, the scons command,
//! step counting, publication, the recorded build `simctl run`/`doctor` find, the instant
//! second call, and resuming after Ctrl-C and after kill -9.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SCONSTRUCT: &str = r#"
import os
AddOption('--ignore-style', action='store_true')
env = Environment(ENV=os.environ)
env['CCCOMSTR'] = ' [      CC] $SOURCE -> $TARGET'
env['LINKCOMSTR'] = ' [    LINK]  -> $TARGET'
flags = os.popen('python3-config --ldflags --embed --includes').read()
env.MergeFlags(flags)
slow = env.Command('build/X86/slow.stamp', [],
                   Action('if [ -e "%s" ]; then sleep 20; fi; touch $TARGET'
                          % os.environ['TOY_SLOW_FILE'], ' [    SLOW]  -> $TARGET'))
obj = env.Object('build/X86/main.o', 'main.c')
prog = env.Program('build/X86/gem5.opt', obj)
env.Depends(prog, slow)
"#;

const MAIN_C: &str = r#"
#include <Python.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        size_t length = strlen(argv[i]);
        /* A config script (simctl's build-info script prints what -B would). */
        if (length > 3 && strcmp(argv[i] + length - 3, ".py") == 0) {
            printf("Build information:\n\ngem5 version 24.0.0.1\nbuild options:\n"
                   "    USE_X86_ISA = True\n    PY = %s\n", Py_GetVersion());
            return 0;
        }
    }
    return 1;
}
"#;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A toy gem5 repository with a tag; `tests/` is there to prove it is left out.
fn toy_gem5() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = repo.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("SConstruct", SCONSTRUCT);
    write("main.c", MAIN_C);
    write("build_opts/X86", "RUBY=y\n");
    write(
        "src/base/version.cc",
        "const char *gem5Version = \"24.0.0.1\";\n",
    );
    write(
        "configs/example/se.py",
        "# gem5's configs travel with the binary\n",
    );
    write("tests/big-test-binary", "not needed to build\n");
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "toy gem5"]);
    git(repo.path(), &["tag", "v24.0.0.1"]);
    repo
}

struct Env {
    cache: tempfile::TempDir,
    slow_file: PathBuf,
    _slow_dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let slow_dir = tempfile::tempdir().unwrap();
        Env {
            cache: tempfile::tempdir().unwrap(),
            slow_file: slow_dir.path().join("slow"),
            _slow_dir: slow_dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simctl"));
        command
            .args(args)
            .env("SIMCTL_CACHE", self.cache.path())
            .env("TOY_SLOW_FILE", &self.slow_file)
            // doctor's table wraps to the terminal; the assertions read whole cells.
            .env("COLUMNS", "400")
            .env_remove("SIMCTL_GEM5");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn work_dir(env: &Env) -> PathBuf {
    let work_root = env.cache.path().join("gem5-work");
    std::fs::read_dir(&work_root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a work directory")
}

#[test]
fn builds_publishes_records_and_returns_at_once_the_second_time() {
    let repo = toy_gem5();
    let env = Env::new();
    let source = repo.path().to_str().unwrap();
    let first = env.run(&[
        "build-gem5",
        "--source",
        source,
        "--rev",
        "v24.0.0.1",
        "--jobs",
        "2",
    ]);
    let stderr = text(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let binary = PathBuf::from(text(&first.stdout).trim());
    assert!(
        binary.starts_with(env.cache.path().join("gem5")),
        "{}",
        binary.display()
    );
    assert!(binary.ends_with("gem5.opt"));
    assert!(
        binary
            .parent()
            .unwrap()
            .join("configs/example/se.py")
            .is_file()
    );
    assert!(stderr.contains("libpython"), "{stderr}");

    let commit = text(
        &Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["rev-parse", "v24.0.0.1"])
            .output()
            .unwrap()
            .stdout,
    );
    let work = env
        .cache
        .path()
        .join(format!("gem5-work/git-{}", commit.trim()));
    assert_eq!(work_dir(&env), work, "the work dir is named by the commit");
    assert!(!work.join("tests").exists(), "tests/ is not exported");
    let counts =
        std::fs::read_to_string(env.cache.path().join("gem5-work/step-counts.toml")).unwrap();
    assert!(counts.contains("\"24.0.0.1 X86 opt\" = 3"), "{counts}");

    let record = std::fs::read_to_string(env.cache.path().join("gem5/recorded.toml")).unwrap();
    assert!(
        record.contains(&format!("binary = \"{}\"", binary.display())),
        "{record}"
    );
    assert!(
        record.contains("libpython = \"/"),
        "linked to the system's libpython: {record}"
    );
    // Debian's, even though pyenv's python3-config may come first on the user's PATH.
    assert!(!record.contains(".pyenv"), "{record}");

    // The content hash computed at publication is on record for the binary as it is, so runs
    // find it by stat instead of reading the binary again.
    let ids: Vec<String> = std::fs::read_dir(env.cache.path().join("gem5-ids"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(
        record.contains(&format!("blake3 = \"{}\"", ids[0])),
        "{record}"
    );

    // Same source through the checkout (clean, at the tag): the same entry, no scons.
    let started = Instant::now();
    let second = env.run(&["build-gem5", "--source", source]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(PathBuf::from(text(&second.stdout).trim()), binary);
    assert!(
        text(&second.stderr).contains("was built before"),
        "{}",
        text(&second.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // doctor: which gem5, how it was found, version, ISA, libpython.
    let doctor = env.run(&["doctor", "--stage", "run-gem5"]);
    let table = text(&doctor.stdout);
    assert!(table.contains("gem5 24.0.0.1 (X86)"), "{table}");
    assert!(table.contains("the build `simctl build-gem5`"), "{table}");
    assert!(table.contains("libpython3"), "{table}");
    // SIMCTL_GEM5 comes before the recorded build.
    let doctor = env
        .command(&["doctor", "--stage", "run-gem5"])
        .env("SIMCTL_GEM5", "/bin/true")
        .output()
        .unwrap();
    let table = text(&doctor.stdout);
    assert!(table.contains("found by $SIMCTL_GEM5"), "{table}");
    assert!(table.contains("did not print its gem5 version"), "{table}");

    // An uncommitted edit is another source: another work dir and entry.
    std::fs::write(
        repo.path().join("main.c"),
        MAIN_C.replace("return 1;", "return 2;"),
    )
    .unwrap();
    let dirty = env.run(&["build-gem5", "--source", source]);
    assert!(dirty.status.success(), "{}", text(&dirty.stderr));
    assert_ne!(PathBuf::from(text(&dirty.stdout).trim()), binary);
    assert!(
        std::fs::read_dir(env.cache.path().join("gem5-work"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("-dirty-"))
    );
}

/// Starts `simctl build-gem5` with the toy's slow step switched on and returns once scons is
/// inside the build (the log shows the slow step).
fn start_slow_build(env: &Env, source: &str) -> std::process::Child {
    std::fs::write(&env.slow_file, "").unwrap();
    let child = env
        .command(&["build-gem5", "--source", source])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_slow_step(env);
    child
}

fn wait_for_slow_step(env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = env
            .cache
            .path()
            .join("gem5-work")
            .read_dir()
            .ok()
            .and_then(|mut entries| entries.find_map(|e| e.ok().filter(|e| e.path().is_dir())))
            .map(|e| e.path().join("build-X86-opt.log"));
        if log
            .and_then(|log| std::fs::read_to_string(log).ok())
            .is_some_and(|text| text.contains("[    SLOW]"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "scons never reached the slow step"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_stops_scons_and_the_same_command_resumes() {
    let repo = toy_gem5();
    let env = Env::new();
    let source = repo.path().to_str().unwrap();
    let child = start_slow_build(&env, source);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = child.wait_with_output().unwrap();
    let stderr = text(&stopped.stderr);
    assert!(!stopped.status.success());
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    assert!(
        !env.cache.path().join("gem5/recorded.toml").exists(),
        "nothing published"
    );

    std::fs::remove_file(&env.slow_file).unwrap();
    let resumed = env.run(&["build-gem5", "--source", source]);
    let stderr = text(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert!(env.cache.path().join("gem5/recorded.toml").is_file());
}

#[test]
fn after_kill_9_the_next_call_resumes_the_build() {
    let repo = toy_gem5();
    let env = Env::new();
    let source = repo.path().to_str().unwrap();
    let mut child = start_slow_build(&env, source);
    child.kill().unwrap(); // SIGKILL: simctl cannot stop its scons
    child.wait().unwrap();
    // simctl's watchdog ends its scons with it (no orphan keeps building in the background), so
    // the next call resumes the build itself and succeeds.
    let next = env.run(&["build-gem5", "--source", source]);
    let stderr = text(&next.stderr);
    assert!(next.status.success(), "{stderr}");
    assert!(stderr.contains("resuming in"), "{stderr}");
    assert!(env.cache.path().join("gem5/recorded.toml").is_file());
}

/// gem5 built against a Python whose libpython is not on the loader's path (what a pyenv or
/// conda python3-config gives): doctor names the library, the cause and the fix.
#[test]
fn doctor_explains_a_gem5_whose_libpython_the_loader_cannot_find() {
    let dir = tempfile::tempdir().unwrap();
    let cc = |args: &[&str]| {
        let status = Command::new("gcc")
            .current_dir(dir.path())
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "gcc {args:?}");
    };
    std::fs::write(
        dir.path().join("py.c"),
        "int Py_Initialize(void) { return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gem5.c"),
        "int Py_Initialize(void);\nint main(void) { return Py_Initialize(); }\n",
    )
    .unwrap();
    cc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libpython9.99.so.1.0",
        "-o",
        "libpython9.99.so.1.0",
        "py.c",
    ]);
    cc(&["-o", "gem5.opt", "gem5.c", "./libpython9.99.so.1.0"]);
    let env = Env::new();
    let doctor = env
        .command(&["doctor", "--stage", "run-gem5"])
        .env("SIMCTL_GEM5", dir.path().join("gem5.opt"))
        .output()
        .unwrap();
    let table = text(&doctor.stdout);
    assert!(table.contains("does not start"), "{table}");
    assert!(
        table.contains("cannot find libpython9.99.so.1.0"),
        "{table}"
    );
    assert!(table.contains("simctl build-gem5"), "{table}");
    assert!(table.contains("LD_LIBRARY_PATH"), "{table}");
}

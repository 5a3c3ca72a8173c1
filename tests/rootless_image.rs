//! `simctl build-image` as an ordinary user, from an empty cache of that user's own: mmdebstrap
//! in unshare mode, the image filled under fakeroot. The image is then read with debugfs: the
//! owners and modes inside must be the root file system's (root, setuid bits, the shadow
//! group), not the builder's. Runs when SIMCTL_TEST_E2E=1 (it downloads a Debian root file
//! system). Run as root (CI), it creates the user `simctl-test` and builds as that user; run
//! as an ordinary user, it builds as that user.

use std::os::unix::fs::chown;
use std::path::Path;
use std::process::Command;

mod common;

const USER: &str = "simctl-test";

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The ordinary user to build as: `simctl-test` with subordinate ids (made here when root), or
/// None when this process is an ordinary user already.
fn builder(repo: &Path) -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    if !Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success()
    {
        run(Command::new("useradd").args(["--create-home", USER]));
    }
    // setup-host gives the sudo user subordinate ids; the packages are there already.
    run(Command::new(repo.join("scripts/setup-host")).env("SUDO_USER", USER));
    let id = |flag: &str| {
        run(Command::new("id").args([flag, USER]))
            .trim()
            .parse()
            .unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// debugfs's `stat` of a path in the image's partition.
fn stat(partition: &str, path: &str) -> String {
    run(Command::new("debugfs").args(["-R", &format!("stat {path}"), partition]))
}

fn owner_and_mode(stat: &str) -> (String, String) {
    let field = |name: &str| {
        stat.split_once(name)
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    (
        format!("{}:{}", field("User:"), field("Group:")),
        field("Mode:"),
    )
}

#[test]
#[ignore = "e2e: builds a kernel and an image and boots QEMU (minutes); scripts/test runs it when SIMCTL_TEST_E2E=1"]
fn ordinary_user_builds_an_image_with_root_owners_and_modes() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    // Guest binaries come prebuilt: the test user has no Rust toolchain of its own.
    let guest = common::simctl_path(&["build-guest"]);
    let guest_copy = work.path().join("guest");
    std::fs::create_dir_all(&guest_copy).unwrap();
    for name in simctl::guest::BINARIES {
        std::fs::copy(Path::new(&guest).join(name), guest_copy.join(name)).unwrap();
    }
    let cache = work.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mut command = match builder(repo) {
        Some((uid, gid)) => {
            for path in [work.path(), &cache] {
                chown(path, Some(uid), Some(gid)).unwrap();
            }
            let mut command = Command::new("runuser");
            command.args(["-u", USER, "--", env!("CARGO_BIN_EXE_simctl")]);
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_simctl")),
    };
    let output = command
        .args(["build-image", "--guest-dir"])
        .arg(&guest_copy)
        .current_dir(repo)
        .env("SIMCTL_CACHE", &cache)
        .env_remove("SIMCTL_GEM5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "build-image failed:\n{stderr}");
    for stage in ["root file system: ", "image: "] {
        assert!(
            stderr.contains(stage),
            "no progress line {stage:?}:\n{stderr}"
        );
    }
    let image = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        image.starts_with(&cache.to_string_lossy().to_string()),
        "{image}"
    );
    let partition = format!("{image}?offset=1048576");

    let cases = [
        ("/sbin/simctl-init", "0:0", "0755"),
        ("/usr/local/bin/m5", "0:0", "0755"),
        ("/etc/hostname", "0:0", "0644"),
        ("/etc/shadow", "0:42", "0640"),
        ("/usr/bin/passwd", "0:0", "04755"),
        ("/usr/bin/chage", "0:42", "02755"),
        ("/root", "0:0", "0700"),
        ("/tmp", "0:0", "01777"),
    ];
    for (path, owner, mode) in cases {
        let text = stat(&partition, path);
        assert_eq!(
            owner_and_mode(&text),
            (owner.to_string(), mode.to_string()),
            "{path}:\n{text}"
        );
    }
    let null = stat(&partition, "/dev/null");
    assert!(
        null.contains("Type: character special")
            && null.contains("Device major/minor number: 01:03"),
        "/dev/null must stay a device node:\n{null}"
    );
    let fsck = Command::new("e2fsck")
        .args(["-fn", &partition])
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

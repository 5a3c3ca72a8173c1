//! The guest binaries on the host, for real: they are static, the m5 encodings are in the
//! machine code, and the client drives a real function (aes-go, built by simctl) in every load
//! pattern over loopback. Needs Go for the function (scripts/setup-host installs it).

mod common;

use common::simctl_path;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn guest_dir() -> PathBuf {
    PathBuf::from(simctl_path(&["build-guest"]))
}

#[test]
fn guest_binaries_are_static_and_carry_the_m5_encodings() {
    let dir = guest_dir();
    for name in ["m5", "simctl-client", "simctl-init"] {
        let path = dir.join(name);
        assert!(
            !simctl::guest::has_interpreter(&path).unwrap(),
            "{name} has an ELF interpreter"
        );
        let ldd = Command::new("ldd").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&ldd.stdout).to_string()
            + &String::from_utf8_lossy(&ldd.stderr);
        assert!(
            text.contains("not a dynamic executable") || text.contains("statically linked"),
            "{name}: {text}"
        );
    }
    let objdump = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(dir.join("m5"))
        .output()
        .expect("objdump (binutils, installed by scripts/setup-host through build-essential)");
    assert!(objdump.status.success());
    // The magic instruction is not an x86 opcode objdump knows, so check the raw bytes.
    let bytes = std::fs::read(dir.join("m5")).unwrap();
    for func in [0x21u8, 0x22, 0x40, 0x41, 0x42, 0x43, 0x4f, 0x50, 0x5a, 0x5b] {
        assert!(
            bytes.windows(4).any(|w| w == [0x0f, 0x04, func, 0x00]),
            "no `0f 04 {func:02x} 00` in m5"
        );
    }
    // addr mode: a load relative to the mapped window, and the window's address.
    assert!(
        bytes.windows(4).any(|w| w == 0xFFFF_0000u32.to_le_bytes()),
        "m5 does not know the m5 op address"
    );
}

#[test]
fn m5_command_in_off_mode_and_bad_arguments() {
    let m5 = guest_dir().join("m5");
    let ok = Command::new(&m5)
        .args(["--off", "workbegin", "3"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stderr).contains("ops are off"));
    let bad = Command::new(&m5).args(["--off", "fail"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("wrong number of arguments"));
    let unknown = Command::new(&m5)
        .args(["--off", "frobnicate"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown command 'frobnicate'"));
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_aes(port: u16) -> Server {
    Command::new("go")
        .arg("version")
        .output()
        .expect("go (golang-go, installed by scripts/setup-host)");
    let root = PathBuf::from(simctl_path(&["build-workload", "aes-go"]));
    let server = root.join("opt/simctl/workloads/aes-go/server");
    let child = Command::new(server)
        .arg(format!("-addr=127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aes-go did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_client(port: u16, out: &Path, extra: &[&str]) -> String {
    let client = guest_dir().join("simctl-client");
    let output = Command::new(client)
        .args([
            "--service",
            "aes",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--m5",
            "off",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "client {extra:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // AES-128-CTR of "A unique message" with vSwarm's key and zero IV, computed independently
    // with `openssl enc -aes-128-ctr -K 6368616e676520746869732070617373 -iv 0`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .contains("plaintext: A unique message | ciphertext: fd4b8dc72677cafa719c946be09d1bb8"),
        "wrong AES answer: {stdout}"
    );
    std::fs::read_to_string(out.join("results.csv")).unwrap()
}

#[test]
fn client_drives_aes_go_in_every_pattern() {
    let port = free_port();
    let _server = start_aes(port);
    let temp = tempfile::tempdir().unwrap();
    let patterns: [(&str, &[&str], usize); 4] = [
        (
            "closed",
            &[
                "--pattern",
                "closed",
                "--warmup",
                "10",
                "--invocations",
                "1000",
                "--cpu",
                "0",
            ],
            1000,
        ),
        (
            "rps",
            &[
                "--pattern",
                "rps",
                "--rps",
                "500",
                "--arrival",
                "poisson",
                "--invocations",
                "200",
            ],
            200,
        ),
        (
            "rounds",
            &[
                "--pattern",
                "rounds",
                "--parallel",
                "4",
                "--pause-ms",
                "5",
                "--invocations",
                "100",
            ],
            100,
        ),
        (
            "streams",
            &[
                "--pattern",
                "streams",
                "--parallel",
                "3",
                "--invocations",
                "90",
            ],
            90,
        ),
    ];
    for (name, args, expected) in patterns {
        let out = temp.path().join(name);
        let csv = run_client(port, &out, args);
        let measured: Vec<&str> = csv.lines().filter(|l| l.contains(",measured,")).collect();
        assert_eq!(measured.len(), expected, "{name}");
        assert!(
            measured.iter().all(|l| l.contains(",true,,102")),
            "{name}: every answer ok and 102 bytes long"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        assert!(json.as_array().unwrap().len() >= expected, "{name}");
    }
}

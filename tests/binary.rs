//! The `imageplane` binary itself: it announces its address, serves, and stops cleanly on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_announces_its_address_and_stops_on_sigterm() {
    let data_dir = std::env::temp_dir().join(imageplane::ids::new_id("tst"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "warn"])
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("imageplane listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    std::net::TcpStream::connect(address).expect("the announced address accepts connections");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--operation-delay", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--operation-delay"), "{stderr}");
}

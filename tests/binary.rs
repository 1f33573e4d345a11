//! The `imageplane` binary itself: it announces its address, serves, and stops cleanly on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `imageplane serve --listen 127.0.0.1:0` with more flags; returns the child and
/// the address it announced on stdout.
fn start_server(flags: &[&str], stderr: Stdio) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("imageplane listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, address)
}

#[test]
fn serve_announces_its_address_and_stops_on_sigterm() {
    let data_dir = std::env::temp_dir().join(imageplane::ids::new_id("tst"));
    let data_dir = data_dir.to_str().unwrap();
    let (mut child, address) = start_server(
        &["--log-level", "warn", "--data-dir", data_dir],
        Stdio::null(),
    );
    std::net::TcpStream::connect(&address).expect("the announced address accepts connections");

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

#[tokio::test]
async fn json_logs_carry_the_callers_request_id_and_the_response_echoes_it() {
    use imageplane::pb::compute::disk_service_client::DiskServiceClient;
    use imageplane::pb::compute::GetDiskRequest;
    use std::io::Read;

    let (mut child, address) = start_server(
        &[
            "--database-url",
            "memory:",
            "--log-format",
            "json",
            "--log-level",
            "info",
            // The client below keeps its connection open: the grace period ends the stop.
            "--shutdown-grace",
            "1s",
        ],
        Stdio::piped(),
    );
    let mut disks = DiskServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    let mut request = tonic::Request::new(GetDiskRequest {
        disk_id: "fhmnosuchdisk0000000".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-42".parse().unwrap());
    let status = disks.get(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap(),
        "trace-me-42"
    );
    // Without one, the server makes one up and still echoes it.
    let response = disks
        .get(GetDiskRequest {
            disk_id: "fhmnosuchdisk0000000".into(),
        })
        .await
        .unwrap_err();
    assert!(response.metadata().get("x-request-id").is_some());

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let line = logs
        .lines()
        .find(|line| line.contains("trace-me-42"))
        .unwrap_or_else(|| panic!("no log line carries the request id:\n{logs}"));
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"message\":\"rpc finished\""), "{line}");
    assert!(line.contains("\"grpc_status\":\"5\""), "{line}");
}

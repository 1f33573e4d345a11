//! The regression suite of the bad-input probe (issue [harden]): hostile clients and
//! hostile image sources against a real server. Each test is one finding of the probe,
//! and fails without its fix.

mod common;

use common::process::{temp_dir, ServerProcess};
use common::{folder, TestServer};
use imageplane::listener::ConnectionLimits;
use imageplane::server::Settings;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A gRPC call from a fresh client, as a normal user would make it while an attack runs;
/// it must be answered (here: NOT_FOUND for an unknown operation) within `within`.
async fn a_normal_call_is_answered(url: String, within: Duration) {
    use imageplane::pb::operation::operation_service_client::OperationServiceClient;
    use imageplane::pb::operation::GetOperationRequest;
    let call = async {
        let mut operations = OperationServiceClient::connect(url).await.unwrap();
        operations
            .get(GetOperationRequest {
                operation_id: "oprnosuchoperation00".into(),
            })
            .await
            .unwrap_err()
    };
    let status = tokio::time::timeout(within, call)
        .await
        .unwrap_or_else(|_| panic!("a normal call was not answered within {within:?}"));
    assert_eq!(status.code(), tonic::Code::NotFound);
}

/// Sends `bytes` bytes of a gRPC message that declares `declared` bytes on an open HTTP/2
/// stream, as flow control allows, and never ends the stream.
async fn send_part_of_a_message(
    mut stream: h2::SendStream<bytes::Bytes>,
    declared: u32,
    bytes: usize,
) {
    let mut header = vec![0u8];
    header.extend_from_slice(&declared.to_be_bytes());
    let mut remaining = bytes;
    let mut pending = bytes::Bytes::from(header);
    loop {
        while !pending.is_empty() {
            stream.reserve_capacity(pending.len());
            let granted = match std::future::poll_fn(|context| stream.poll_capacity(context)).await
            {
                Some(Ok(granted)) => granted,
                _ => return,
            };
            let chunk = pending.split_to(granted.min(pending.len()));
            if stream.send_data(chunk, false).is_err() {
                return;
            }
        }
        if remaining == 0 {
            break;
        }
        let size = remaining.min(64 * 1024);
        remaining -= size;
        pending = bytes::Bytes::from(vec![b'x'; size]);
    }
    // Hold the stream open: never send its end.
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn unfinished_requests_hold_bounded_memory_for_a_bounded_time() {
    let data_dir = temp_dir("unfinished");
    let server = ServerProcess::start(
        &[
            "--database-url",
            "memory:",
            "--log-level",
            "warn",
            "--connection-buffer-limit",
            "8MiB",
            "--total-buffer-limit",
            "24MiB",
            "--request-receive-timeout",
            "4s",
        ],
        data_dir.join("server.log"),
    );
    let idle_rss = server.rss_bytes();
    let address: std::net::SocketAddr = server.address.parse().unwrap();
    // 4 connections x 64 streams, each sending 2 MiB of a declared 4 MiB - 1 message and
    // never finishing it: 512 MiB that would be held without the budgets.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        for _ in 0..64 {
            let request = http::Request::builder()
                .method("POST")
                .uri(format!(
                    "http://{address}/yandex.cloud.compute.v1.DiskService/Create"
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap();
            client = client.ready().await.unwrap();
            let (response, stream) = client.send_request(request, false).unwrap();
            tokio::spawn(send_part_of_a_message(stream, (4 << 20) - 1, 2 << 20));
            statuses.push(tokio::spawn(async move {
                let response = response.await.ok()?;
                response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
            }));
        }
    }
    // While it goes on, the peak memory stays near the budgets, and others are served.
    let mut peak = idle_rss;
    let sampling = async {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            peak = peak.max(server.rss_bytes());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::join!(
        sampling,
        a_normal_call_is_answered(server.url(), Duration::from_secs(5))
    );
    let grown = peak.saturating_sub(idle_rss);
    assert!(
        grown < 100 << 20,
        "the server grew by {} MiB (budgets: 24 MiB in all)",
        grown >> 20
    );
    // Every stream ends: refused over a budget, or failed when it did not arrive in time.
    let mut exhausted = 0;
    let mut late = 0;
    for status in statuses {
        match tokio::time::timeout(Duration::from_secs(20), status).await {
            Ok(Ok(Some(8))) => exhausted += 1,
            Ok(Ok(Some(4))) => late += 1,
            other => panic!("a stream ended otherwise: {other:?}"),
        }
    }
    assert!(
        exhausted > 0 && late > 0,
        "{exhausted} exhausted, {late} late"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

async fn server_with(connections: ConnectionLimits) -> TestServer {
    TestServer::start_with(Settings {
        connections,
        ..Settings::default()
    })
    .await
}

/// Reads until the peer closes the connection; how long that took.
async fn closed_after(stream: &mut tokio::net::TcpStream, at_most: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(at_most, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after {at_most:?}"),
        }
    }
}

#[tokio::test]
async fn a_connection_without_a_request_is_closed_and_an_idle_one_shut_down() {
    let server = server_with(ConnectionLimits {
        first_request_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ..ConnectionLimits::default()
    })
    .await;
    // Half an HTTP/2 preface, then nothing.
    let mut silent = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    silent.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    closed_after(&mut silent, Duration::from_secs(10)).await;
    // A kept-alive HTTP/1.1 connection, idle after one call.
    let mut idle = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    idle.write_all(b"GET /operations/oprnosuchoperation00 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_after(&mut idle, Duration::from_secs(10)).await;
    // The gRPC channel of the test server reconnects by itself.
    let status = server
        .operations()
        .get(imageplane::pb::operation::GetOperationRequest {
            operation_id: "oprnosuchoperation00".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}

#[test]
fn held_half_handshakes_neither_exhaust_descriptors_nor_starve_other_clients() {
    let data_dir = temp_dir("half-handshakes");
    let server = ServerProcess::start_with_fd_limit(
        128,
        &[
            "--database-url",
            "memory:",
            "--log-level",
            "warn",
            "--max-connections",
            "60",
            "--first-request-timeout",
            "1s",
        ],
        data_dir.join("server.log"),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut held = Vec::new();
        for _ in 0..200 {
            let mut stream = tokio::net::TcpStream::connect(&server.address)
                .await
                .unwrap();
            let _ = stream.write_all(b"PRI * HTTP/2.0\r\n").await;
            held.push(stream);
        }
        let before = server.cpu_time();
        // Behind 200 held connections, 60 at a time closed after 1 s, a normal call gets in.
        a_normal_call_is_answered(server.url(), Duration::from_secs(15)).await;
        let used = server.cpu_time() - before;
        assert!(
            used < Duration::from_secs(2),
            "the server used {used:?} of CPU"
        );
        drop(held);
    });
    let logged = server.logged();
    assert!(
        !logged.contains("accepting a connection failed"),
        "the connection cap should keep the server below its descriptor limit:\n{logged}"
    );
    assert!(logged.contains("at the connection limit"), "{logged}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_rest_body_that_does_not_arrive_in_time_is_refused_with_408() {
    let server = server_with(ConnectionLimits {
        receive_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "POST /compute/v1/disks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"folderId\": \"{}\"",
                folder()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("\"code\"") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(read > 0, "closed without an answer");
        response.extend_from_slice(&buffer[..read]);
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"code\":4"), "{response}");
}

//! The one port: gRPC and HTTP/1.1 side by side, and the connection limits that tonic's
//! transport server used to set and imageplane's own listener sets now.

mod common;

use common::TestServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn http2_connections_allow_256_calls_in_flight() {
    let server = TestServer::start(Duration::ZERO).await;
    let tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let (mut client, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let request = http::Request::builder()
        .uri(format!(
            "http://{}/operations/oprnosuchoperation00",
            server.address
        ))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    // The server's SETTINGS arrive before its first response.
    let response = tokio::select! {
        response = response => response.unwrap(),
        ended = &mut connection => panic!("the connection ended first: {ended:?}"),
    };
    assert_eq!(response.status(), 404);
    assert_eq!(connection.max_concurrent_send_streams(), 256);
}

/// Reads one HTTP/1.1 response with a Content-Length body from `stream`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection closed: {received:?}");
        received.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a Content-Length");
            if received.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn http1_connections_are_kept_alive_beside_grpc_on_the_same_port() {
    let server = TestServer::start(Duration::ZERO).await;
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /operations/oprnosuchoperation00 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    }
    // gRPC on the same port, meanwhile.
    let status = server
        .operations()
        .get(imageplane::pb::operation::GetOperationRequest {
            operation_id: "oprnosuchoperation00".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}

//! The one port: gRPC and HTTP/1.1 side by side, the connection limits that tonic's
//! transport server used to set and imageplane's own listener sets now, and the health
//! probes (`/healthz`, `/readyz`, gRPC health) that follow the store.

mod common;

use common::{postgres, until, TestServer};
use imageplane::domain::identity::TokenFile;
use imageplane::server::health::{Health, Probe};
use imageplane::server::Settings;
use imageplane::store::{DatabaseUrl, Replica};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

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

/// The gRPC health of the compute ImageService.
async fn grpc_health(server: &TestServer) -> ServingStatus {
    let answer = HealthClient::new(server.channel.clone())
        .check(HealthCheckRequest {
            service: "yandex.cloud.compute.v1.ImageService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// The status and body of `GET path` over HTTP/1.1.
async fn get(server: &TestServer, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{}{path}", server.address))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn probes_answer_without_a_token_and_only_to_get_and_head() {
    // Authentication on: the probes still need no token.
    let server = TestServer::start_with(Settings {
        auth_tokens: Some(TokenFile::parse("tok-admin admin\n", "tokens").unwrap()),
        ..Settings::default()
    })
    .await;
    assert_eq!(
        get(&server, "/healthz").await,
        (200, r#"{"status":"alive"}"#.into())
    );
    assert_eq!(
        get(&server, "/readyz").await,
        (200, r#"{"status":"ready"}"#.into())
    );
    // The API itself does want one.
    assert_eq!(get(&server, "/compute/v1/images?folderId=f").await.0, 401);
    assert_eq!(grpc_health(&server).await, ServingStatus::Serving);

    let client = reqwest::Client::new();
    let head = client
        .head(format!("http://{}/readyz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.bytes().await.unwrap().len(), 0);
    let post = client
        .post(format!("http://{}/healthz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn a_stopping_server_is_alive_but_not_ready() {
    let store =
        imageplane::store::open(&DatabaseUrl::Memory, Replica::new(Duration::from_secs(30)))
            .await
            .unwrap();
    let reporter = tonic_health::server::HealthReporter::new();
    let health = Health::new(store, reporter).await;
    assert_eq!(health.answer(Probe::Ready).await.0, 200);
    health.stop().await;
    let (status, body) = health.answer(Probe::Ready).await;
    assert_eq!(status, 503);
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"reason":"shutting down","status":"not ready"}"#
    );
    assert_eq!(health.answer(Probe::Live).await.0, 200);
}

/// A TCP proxy to `target` that can be cut (every connection dropped, new ones refused)
/// and restored on the same port.
struct Proxy {
    address: std::net::SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Connections wait for `true` before they reach the target.
    gate: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            address: listener.local_addr().unwrap(),
            target,
            tasks: Arc::default(),
            gate: tokio::sync::watch::channel(true).0,
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&self, listener: TcpListener) {
        let (target, tasks) = (self.target.clone(), Arc::clone(&self.tasks));
        let gate = self.gate.subscribe();
        let accepting = tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let target = target.clone();
                let mut gate = gate.clone();
                let piping = tokio::spawn(async move {
                    let _ = gate.wait_for(|open| *open).await;
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(piping);
            }
        });
        self.tasks.lock().unwrap().push(accepting);
    }

    /// Holds new connections (`false`) or lets them through.
    fn hold(&self, held: bool) {
        self.gate.send_replace(!held);
    }

    /// Drops every connection and stops listening.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port.
    async fn restore(&self) {
        self.accept(TcpListener::bind(self.address).await.unwrap());
    }
}

#[tokio::test]
async fn readiness_follows_a_postgresql_that_goes_away_and_comes_back() {
    let Some(base_url) = postgres::base_url("the readiness test") else {
        return;
    };
    let (schema, url) = postgres::fresh_schema(&base_url, "health").await;
    let target = host_and_port(&url);
    let proxy = Proxy::start(target).await;
    let proxied = through(&url, &proxy);
    let server = TestServer::start_with(Settings {
        database: DatabaseUrl::Postgres(proxied),
        ..Settings::default()
    })
    .await;
    assert_eq!(get(&server, "/readyz").await.0, 200);
    assert_eq!(grpc_health(&server).await, ServingStatus::Serving);

    proxy.cut();
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the store does not answer"), "{body}");
    // The process is still alive, and gRPC health has followed /readyz.
    assert_eq!(get(&server, "/healthz").await.0, 200);
    assert_eq!(grpc_health(&server).await, ServingStatus::NotServing);

    proxy.restore().await;
    until(
        "/readyz did not answer 200 once PostgreSQL was back",
        || async { get(&server, "/readyz").await.0 == 200 },
    )
    .await;
    assert_eq!(grpc_health(&server).await, ServingStatus::Serving);
    drop(server);
    postgres::drop_schema(&base_url, &schema).await;
}

/// The host:port a PostgreSQL URL names.
fn host_and_port(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    match (config.get_hosts(), config.get_ports()) {
        ([tokio_postgres::config::Host::Tcp(host)], [port]) => format!("{host}:{port}"),
        other => panic!("a single TCP host is expected: {other:?}"),
    }
}

/// A PostgreSQL URL from the test database's, its host and port replaced by `proxy`'s.
fn through(url: &str, proxy: &Proxy) -> String {
    let authority = host_and_port(url);
    assert!(url.contains(&authority), "{url} names {authority}");
    url.replacen(&authority, &proxy.address.to_string(), 1)
}

#[tokio::test]
async fn while_it_starts_the_port_answers_that_it_is_starting() {
    let Some(base_url) = postgres::base_url("the starting test") else {
        return;
    };
    let (schema, url) = postgres::fresh_schema(&base_url, "starting").await;
    let target = host_and_port(&url);
    // The store cannot open until the proxy lets its connection through.
    let proxy = Proxy::start(target).await;
    proxy.hold(true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (announce, announced) = tokio::sync::oneshot::channel::<()>();
    let settings = Settings {
        database: DatabaseUrl::Postgres(through(&url, &proxy)),
        ..Settings::default()
    };
    let serving = tokio::spawn(imageplane::server::serve(
        listener,
        settings,
        async {
            let _ = stopped.await;
        },
        move || {
            let _ = announce.send(());
        },
    ));
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("http://{address}{path}"));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, r#"{"status":"alive"}"#.into()));
    assert_eq!(
        get("/readyz").await,
        (503, r#"{"reason":"starting","status":"not ready"}"#.into())
    );
    let (status, body) = get("/compute/v1/disks?folderId=f1").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("starting"), "{body}");
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let early =
        imageplane::pb::compute::image_service_client::ImageServiceClient::new(channel.clone())
            .get(imageplane::pb::compute::GetImageRequest {
                image_id: "fd8nosuchimage000001".into(),
            })
            .await
            .unwrap_err();
    assert_eq!(early.code(), tonic::Code::Unavailable);

    proxy.hold(false);
    announced.await.expect("the server started");
    assert_eq!(get("/readyz").await.0, 200);
    // The connection made while starting now reaches the server.
    let late = imageplane::pb::compute::image_service_client::ImageServiceClient::new(channel)
        .get(imageplane::pb::compute::GetImageRequest {
            image_id: "fd8nosuchimage000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), tonic::Code::NotFound);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    postgres::drop_schema(&base_url, &schema).await;
}

#[tokio::test]
async fn told_to_stop_while_starting_it_stops_without_announcing() {
    let Some(base_url) = postgres::base_url("the stop-while-starting test") else {
        return;
    };
    let (schema, url) = postgres::fresh_schema(&base_url, "stopstart").await;
    let proxy = Proxy::start(host_and_port(&url)).await;
    proxy.hold(true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let announced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let announcing = Arc::clone(&announced);
    let serving = tokio::spawn(imageplane::server::serve(
        listener,
        Settings {
            database: DatabaseUrl::Postgres(through(&url, &proxy)),
            ..Settings::default()
        },
        async {
            let _ = stopped.await;
        },
        move || announcing.store(true, std::sync::atomic::Ordering::SeqCst),
    ));
    let readyz = format!("http://{address}/readyz");
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 503);
    stop.send(()).unwrap();
    // The port closes while the store is still opening.
    until("the port did not close", || async {
        TcpStream::connect(address).await.is_err()
    })
    .await;
    proxy.hold(false);
    serving.await.unwrap().unwrap();
    assert!(!announced.load(std::sync::atomic::Ordering::SeqCst));
    postgres::drop_schema(&base_url, &schema).await;
}

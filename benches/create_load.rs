//! Load benchmark: compute ImageService.Create (an image from a disk) over concurrent
//! connections, against imageplane on each storage backend (memory, the embedded SQLite
//! default, and PostgreSQL when a URL is given) and against a bare tonic server that
//! answers the same RPC with a fixed Operation and keeps nothing (the ceiling of this
//! stack). All run in this process on loopback, measured in alternating rounds of the
//! same run; the result is printed as throughput, p50/p99 latency, and the ratios: memory
//! to the ceiling, each durable backend to memory. The same Create is also sent as REST
//! (JSON over HTTP/1.1, `POST /compute/v1/images`) to the memory server, and compared to
//! gRPC on that server.
//!
//! With `--dropin`, three more loads of the memory server's kind, each compared to it: with
//! `--auth-tokens` and a bearer token on every call ("auth"), with a new `idempotency-key`
//! on every call ("keyed": the key is looked up, fingerprinted and stored), and over TLS
//! ("tls", a self-signed certificate).
//!
//! Run: `cargo bench --bench create_load` (options after `--`, see `--help`); with
//! `--postgres-url postgres://postgres@127.0.0.1:5432/test` (or IMAGEPLANE_BENCH_DATABASE_URL)
//! PostgreSQL is measured too, in a schema of its own.

use clap::Parser;
use imageplane::model::resource::pack;
use imageplane::pb::compute::disk_service_client::DiskServiceClient;
use imageplane::pb::compute::image_service_client::ImageServiceClient;
use imageplane::pb::compute::image_service_server::{ImageService, ImageServiceServer};
use imageplane::pb::compute::{
    create_image_request, CreateDiskRequest, CreateImageMetadata, CreateImageRequest,
};
use imageplane::pb::operation::operation_service_client::OperationServiceClient;
use imageplane::pb::operation::{GetOperationRequest, Operation};
use imageplane::server::{serve, Settings};
use imageplane::store::DatabaseUrl;

mod common;
use common::load::{self, connect, report, Call, Measurement};

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
use std::net::SocketAddr;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The same allocator as the `imageplane` binary (see src/main.rs), for both servers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "ImageService.Create load: imageplane against a bare tonic ceiling")]
struct Options {
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per round and server.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds; each round measures the ceiling, then imageplane.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Warm-up seconds before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// PostgreSQL to measure too (a fresh schema is made in it).
    #[arg(long, env = "IMAGEPLANE_BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Measure only these imageplane backends (comma-separated: memory,sqlite,postgres);
    /// the ceiling and memory always run, as the baselines of the ratios.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also measure authentication, idempotency keys and TLS (see the module doc).
    #[arg(long)]
    dropin: bool,
    /// Accepted for `cargo bench` compatibility.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The ceiling: answers Create with a prebuilt Operation and keeps nothing.
struct BareImageService {
    operation: Operation,
}

#[tonic::async_trait]
impl ImageService for BareImageService {
    async fn create(
        &self,
        _request: Request<CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        Ok(Response::new(self.operation.clone()))
    }
}

async fn start_ceiling() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let operation = imageplane::model::operations::start(
        "Create image",
        "anonymous",
        pack(&CreateImageMetadata {
            image_id: "fd8aaaaaaaaaaaaaaaaa".into(),
        }),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ImageServiceServer::new(BareImageService { operation }))
            .serve_with_incoming(nodelay(listener)),
    );
    address
}

/// The accepted connections with TCP_NODELAY, as imageplane's own listener sets it
/// (tonic's `serve_with_incoming` ignores its `tcp_nodelay` setting).
fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

async fn start_imageplane(settings: Settings) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (announce, started) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let announce = move || {
            let _ = announce.send(());
        };
        serve(listener, settings, std::future::pending(), announce)
            .await
            .expect("the server runs")
    });
    started.await.expect("the server started");
    address
}

/// How the load reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    /// JSON over HTTP/1.1 through the REST gateway.
    Rest,
}

/// What gRPC callers add to each call: a bearer token, a new idempotency key, TLS.
#[derive(Debug, Clone, Default)]
struct Extras {
    bearer: Option<&'static str>,
    fresh_keys: bool,
    /// The server's certificate, to trust.
    tls_cert: Option<Vec<u8>>,
}

/// The token of the "auth" server's `--auth-tokens`.
const BENCH_TOKEN: &str = "bench-token-0123456789";

/// One server under load and its totals over the rounds.
struct Target {
    label: &'static str,
    protocol: Protocol,
    address: SocketAddr,
    disk_id: String,
    extras: Extras,
    throughput: f64,
    cpu_us: f64,
}

impl Target {
    async fn imageplane(label: &'static str, database: DatabaseUrl) -> Target {
        let settings = Settings {
            database,
            ..Settings::default()
        };
        Target::with(label, settings, Extras::default()).await
    }

    async fn with(label: &'static str, settings: Settings, extras: Extras) -> Target {
        let address = start_imageplane(settings).await;
        Target {
            label,
            protocol: Protocol::Grpc,
            address,
            disk_id: ready_disk(address, &extras).await,
            extras,
            throughput: 0.0,
            cpu_us: 0.0,
        }
    }

    /// The same server, loaded through the REST gateway.
    fn over_rest(&self, label: &'static str) -> Target {
        Target {
            label,
            protocol: Protocol::Rest,
            address: self.address,
            disk_id: self.disk_id.clone(),
            extras: Extras::default(),
            throughput: 0.0,
            cpu_us: 0.0,
        }
    }
}

/// A channel to `address`, over TLS when `extras` has a certificate.
async fn channel(address: SocketAddr, extras: &Extras) -> Channel {
    let Some(cert) = &extras.tls_cert else {
        return connect(address).await;
    };
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert))
        .domain_name("localhost");
    Channel::from_shared(format!("https://localhost:{}", address.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A request with what `extras` adds.
fn with_extras<T>(message: T, extras: &Extras) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = extras.bearer {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if extras.fresh_keys {
        let key = imageplane::ids::new_id("key");
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
    }
    request
}

/// One client connection making the same Create again and again.
enum Caller {
    Grpc(Box<(ImageServiceClient<Channel>, CreateImageRequest, Extras)>),
    Rest(reqwest::Client, String, bytes::Bytes),
}

impl Caller {
    async fn new(
        protocol: Protocol,
        address: SocketAddr,
        request: &CreateImageRequest,
        extras: &Extras,
    ) -> Caller {
        match protocol {
            Protocol::Grpc => Caller::Grpc(Box::new((
                ImageServiceClient::new(channel(address, extras).await),
                request.clone(),
                extras.clone(),
            ))),
            Protocol::Rest => {
                let Some(create_image_request::Source::DiskId(disk_id)) = &request.source else {
                    unreachable!("the load takes images from a disk")
                };
                let body = serde_json::json!({
                    "folderId": request.folder_id,
                    "description": request.description,
                    "diskId": disk_id,
                });
                let client = reqwest::Client::builder()
                    .http1_only()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .build()
                    .unwrap();
                Caller::Rest(
                    client,
                    format!("http://{address}/compute/v1/images"),
                    body.to_string().into(),
                )
            }
        }
    }
}

impl Call for Caller {
    /// One Create; whether it succeeded.
    async fn call(&mut self) -> bool {
        match self {
            Caller::Grpc(grpc) => {
                let (client, request, extras) = &mut **grpc;
                client
                    .create(with_extras(request.clone(), extras))
                    .await
                    .is_ok()
            }
            Caller::Rest(client, url, body) => {
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(response) => {
                        let ok = response.status() == 200;
                        // The whole answer is read, as a client would.
                        response.bytes().await.is_ok() && ok
                    }
                    Err(_) => false,
                }
            }
        }
    }
}

/// Makes a READY disk on imageplane to take images from.
async fn ready_disk(address: SocketAddr, extras: &Extras) -> String {
    let channel = channel(address, extras).await;
    let operation = DiskServiceClient::new(channel.clone())
        .create(with_extras(
            CreateDiskRequest {
                folder_id: "bench".into(),
                zone_id: "ru-central1-a".into(),
                size: 10 << 30,
                ..Default::default()
            },
            extras,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut operations = OperationServiceClient::new(channel);
    loop {
        let current = operations
            .get(with_extras(
                GetOperationRequest {
                    operation_id: operation.id.clone(),
                },
                &Extras {
                    fresh_keys: false,
                    ..extras.clone()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        if current.done {
            let metadata = operation.metadata.unwrap();
            return prost::Message::decode(metadata.value.as_slice())
                .map(|meta: imageplane::pb::compute::CreateDiskMetadata| meta.disk_id)
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drives Create on `connections` connections for `warmup` then `duration`.
async fn drive(
    target: &Target,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Measurement {
    let request = CreateImageRequest {
        folder_id: "bench".into(),
        description: "load".into(),
        source: Some(create_image_request::Source::DiskId(target.disk_id.clone())),
        ..Default::default()
    };
    let mut callers = Vec::new();
    for _ in 0..connections {
        callers.push(Caller::new(target.protocol, target.address, &request, &target.extras).await);
    }
    load::drive(callers, warmup, duration).await
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let data_dir = std::env::temp_dir().join(format!("imageplane-bench-{}", std::process::id()));
        let mut targets = vec![
            Target {
                label: "ceiling",
                protocol: Protocol::Grpc,
                address: start_ceiling().await,
                disk_id: "fhmceiling0000000000".into(),
                extras: Extras::default(),
                throughput: 0.0,
                cpu_us: 0.0,
            },
            Target::imageplane("memory", DatabaseUrl::Memory).await,
        ];
        targets.push(targets[1].over_rest("memory rest"));
        if options.dropin {
            let tokens = imageplane::domain::identity::TokenFile::parse(
                &format!("{BENCH_TOKEN} bench-subject bench\n"),
                "the benchmark's tokens",
            )
            .unwrap();
            let auth = Settings {
                auth_tokens: Some(tokens),
                ..Settings::default()
            };
            let bearer = Extras {
                bearer: Some(BENCH_TOKEN),
                ..Extras::default()
            };
            targets.push(Target::with("auth", auth, bearer).await);
            let keyed = Extras {
                fresh_keys: true,
                ..Extras::default()
            };
            targets.push(Target::with("keyed", Settings::default(), keyed).await);
            let tls = imageplane::server::tls::Tls::load(&imageplane::server::tls::TlsSource::SelfSigned {
                dir: data_dir.join("tls"),
            })
            .unwrap();
            let cert = std::fs::read(&tls.cert).unwrap();
            let settings = Settings {
                tls: Some(tls),
                ..Settings::default()
            };
            let extras = Extras {
                tls_cert: Some(cert),
                ..Extras::default()
            };
            targets.push(Target::with("tls", settings, extras).await);
        }
        let wanted = |label: &str| options.only.is_empty() || options.only.iter().any(|o| o == label);
        if wanted("sqlite") {
            targets.push(Target::imageplane("sqlite", DatabaseUrl::default_in(&data_dir)).await);
        }
        let mut made_schema = None;
        match &options.postgres_url {
            Some(_) if !wanted("postgres") => {}
            Some(url) => {
                let (schema, schema_url) = postgres::fresh_schema(url, "bench").await;
                targets.push(Target::imageplane("postgres", DatabaseUrl::Postgres(schema_url)).await);
                made_schema = Some((url.clone(), schema));
            }
            None => println!("(PostgreSQL not measured: pass --postgres-url or set IMAGEPLANE_BENCH_DATABASE_URL)"),
        }
        let warmup = Duration::from_secs(options.warmup);
        let duration = Duration::from_secs(options.seconds);
        println!(
            "ImageService.Create (image from a disk), {} connections, {} s x {} rounds, {} cores",
            options.connections,
            options.seconds,
            options.rounds,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        for round in 1..=options.rounds {
            for target in &mut targets {
                let measured = drive(
                    target,
                    options.connections,
                    warmup,
                    duration,
                )
                .await;
                report(&format!("{} #{round}", target.label), &measured);
                target.throughput += measured.throughput();
                target.cpu_us += measured.cpu_us_per_request();
            }
        }
        let ratio = |of: &Target, to: &Target| {
            println!(
                "{:>8} / {:<8} throughput {:.2}   CPU per request (inverse) {:.2}",
                of.label,
                to.label,
                of.throughput / to.throughput,
                to.cpu_us / of.cpu_us
            );
        };
        ratio(&targets[1], &targets[0]);
        println!("(REST: the same Create as JSON over HTTP/1.1, on the memory server)");
        ratio(&targets[2], &targets[1]);
        println!("(the others to memory: durable backends; with --dropin auth, keyed and tls)");
        for other in &targets[3..] {
            ratio(other, &targets[1]);
        }
        let _ = std::fs::remove_dir_all(&data_dir);
        if let Some((base_url, schema)) = made_schema {
            // The servers still hold connections: drop what they made, then the schema.
            if let Err(error) = postgres::client(&base_url)
                .await
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
            {
                println!("(could not drop schema {schema}: {error})");
            }
        }
    });
}

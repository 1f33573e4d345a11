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
//! Run: `cargo bench --bench create_load` (options after `--`, see `--help`); with
//! `--postgres-url postgres://postgres@127.0.0.1:5432/test` (or IMAGEPLANE_BENCH_DATABASE_URL)
//! PostgreSQL is measured too, in a schema of its own.

use clap::Parser;
use imageplane::pb::compute::disk_service_client::DiskServiceClient;
use imageplane::pb::compute::image_service_client::ImageServiceClient;
use imageplane::pb::compute::image_service_server::{ImageService, ImageServiceServer};
use imageplane::pb::compute::{
    create_image_request, CreateDiskRequest, CreateImageMetadata, CreateImageRequest,
};
use imageplane::pb::operation::operation_service_client::OperationServiceClient;
use imageplane::pb::operation::{GetOperationRequest, Operation};
use imageplane::resource::pack;
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
    let operation = imageplane::operations::start(
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

async fn start_imageplane(database: DatabaseUrl) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let settings = Settings {
        database,
        ..Settings::default()
    };
    tokio::spawn(async move {
        serve(listener, settings, std::future::pending())
            .await
            .expect("the server runs")
    });
    address
}

/// How the load reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    /// JSON over HTTP/1.1 through the REST gateway.
    Rest,
}

/// One server under load and its totals over the rounds.
struct Target {
    label: &'static str,
    protocol: Protocol,
    address: SocketAddr,
    disk_id: String,
    throughput: f64,
    cpu_us: f64,
}

impl Target {
    async fn imageplane(label: &'static str, database: DatabaseUrl) -> Target {
        let address = start_imageplane(database).await;
        Target {
            label,
            protocol: Protocol::Grpc,
            address,
            disk_id: ready_disk(address).await,
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
            throughput: 0.0,
            cpu_us: 0.0,
        }
    }
}

/// One client connection making the same Create again and again.
enum Caller {
    Grpc(Box<(ImageServiceClient<Channel>, CreateImageRequest)>),
    Rest(reqwest::Client, String, bytes::Bytes),
}

impl Caller {
    async fn new(protocol: Protocol, address: SocketAddr, request: &CreateImageRequest) -> Caller {
        match protocol {
            Protocol::Grpc => Caller::Grpc(Box::new((
                ImageServiceClient::new(connect(address).await),
                request.clone(),
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
                let (client, request) = &mut **grpc;
                client.create(request.clone()).await.is_ok()
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
async fn ready_disk(address: SocketAddr) -> String {
    let channel = connect(address).await;
    let operation = DiskServiceClient::new(channel.clone())
        .create(CreateDiskRequest {
            folder_id: "bench".into(),
            zone_id: "ru-central1-a".into(),
            size: 10 << 30,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut operations = OperationServiceClient::new(channel);
    loop {
        let current = operations
            .get(GetOperationRequest {
                operation_id: operation.id.clone(),
            })
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
    protocol: Protocol,
    address: SocketAddr,
    disk_id: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Measurement {
    let request = CreateImageRequest {
        folder_id: "bench".into(),
        description: "load".into(),
        source: Some(create_image_request::Source::DiskId(disk_id.to_string())),
        ..Default::default()
    };
    let mut callers = Vec::new();
    for _ in 0..connections {
        callers.push(Caller::new(protocol, address, &request).await);
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
                throughput: 0.0,
                cpu_us: 0.0,
            },
            Target::imageplane("memory", DatabaseUrl::Memory).await,
        ];
        targets.push(targets[1].over_rest("memory rest"));
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
                    target.protocol,
                    target.address,
                    &target.disk_id,
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
        for durable in &targets[3..] {
            ratio(durable, &targets[1]);
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

//! Load benchmark of what users run: compute ImageService.Create (an image from a disk)
//! sent to the shipped `imageplane` binary, in a process of its own with its default flags
//! and its default logging (an access-log line per call, to a file as `2>server.log` would
//! write it), and to a bare tonic server in another process that decodes the same request
//! and answers a prebuilt Operation, keeping nothing: the ceiling of this stack. This
//! process is the third: it only generates the load.
//!
//! Each round measures every server at each shape, in turn, so all see the same noise:
//! - `8x16`: 8 HTTP/2 connections with 16 calls in flight on each, as an SDK's shared
//!   channel loads a server;
//! - `32x1`: 32 connections with one call in flight on each;
//! - `rest`: the same Create as JSON (`POST /compute/v1/images`) over 32 HTTP/1.1
//!   connections, one call in flight on each, compared with gRPC's `32x1`.
//!
//! The stores: `memory:`, the embedded SQLite default (a fresh `--data-dir`), and
//! PostgreSQL when a URL is given (a fresh schema). Every line has the throughput, p50 and
//! p99 latency, and the server process's own CPU time per create (from /proc/PID/stat):
//! the steadier figure on a shared machine. PostgreSQL's lines add the CPU time of every
//! `postgres` process on this machine per create ("database"), when it runs here: the
//! database's work for a create is not in the server's figure. The summary prints the
//! ratios that docs/benchmarks.md tracks, averaged over the rounds.
//!
//! Run: `cargo bench --bench create_load` (options after `--`, see `--help`); with
//! `--postgres-url postgres://postgres@127.0.0.1:5432/test` (or IMAGEPLANE_BENCH_DATABASE_URL)
//! PostgreSQL is measured too. `--server-flag=--log-level=warn` passes a flag to every
//! imageplane server (here: no access log). With `--dropin`, three more servers on
//! `memory:`: with `--auth-tokens` and a bearer token on every call ("auth"), with a new
//! `idempotency-key` on every call ("keyed"), and over TLS ("tls", `--tls-self-signed`).

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

mod common;
use common::load::{self, Call, Measurement};

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "../tests/common/process.rs"]
#[allow(dead_code)]
mod process;
use process::ServerProcess;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The same allocator as the `imageplane` binary (see src/main.rs), for the bare server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "ImageService.Create load: the imageplane binary against a bare tonic server")]
struct Options {
    /// Measured seconds per round, server and shape.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Rounds; each measures every server at every shape once.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Warm-up seconds before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// PostgreSQL to measure too (a fresh schema is made in it).
    #[arg(long, env = "IMAGEPLANE_BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Measure only these stores (comma-separated: memory,sqlite,postgres); the bare
    /// server always runs, as the baseline of the ratios.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// gRPC shapes, CONNECTIONSxSTREAMS (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "8x16,32x1")]
    shapes: Vec<String>,
    /// HTTP/1.1 connections of the REST load (0: no REST load).
    #[arg(long, default_value_t = 32)]
    rest_connections: usize,
    /// A flag for every imageplane server, e.g. `--server-flag=--log-level=warn`.
    #[arg(long = "server-flag", allow_hyphen_values = true)]
    server_flags: Vec<String>,
    /// The imageplane binary to run (default: the one cargo built with this benchmark).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Also measure authentication, idempotency keys and TLS (see the module doc).
    #[arg(long)]
    dropin: bool,
    /// Send exactly `--calls` creates to an imageplane already running at this address, at
    /// the first of `--shapes`, and exit (for scripts/profile-create.sh).
    #[arg(long)]
    drive: Option<SocketAddr>,
    /// With `--drive`: how many creates.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// With `--drive`: the disk to take images from (made first when not given).
    #[arg(long)]
    disk_id: Option<String>,
    /// Internal: be the bare server (the benchmark starts itself with this).
    #[arg(long, hide = true)]
    bare_server: bool,
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
        request: Request<CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        std::hint::black_box(request);
        Ok(Response::new(self.operation.clone()))
    }
}

/// The bare server's process: tonic's own server on the default runtime, with TCP_NODELAY
/// as imageplane sets it; prints its address as imageplane does.
fn run_bare_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("imageplane listening on {}", listener.local_addr().unwrap());
        let operation = imageplane::model::operations::start(
            "Create image",
            "anonymous",
            pack(&CreateImageMetadata {
                image_id: "fd8aaaaaaaaaaaaaaaaa".into(),
            }),
        );
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(ImageServiceServer::new(BareImageService { operation }))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
}

/// What gRPC callers add to each call: a bearer token, a new idempotency key, TLS.
#[derive(Debug, Clone, Default)]
struct Extras {
    bearer: Option<&'static str>,
    fresh_keys: bool,
    /// The server's certificate, to trust (read once it has made it).
    tls_cert: Option<Vec<u8>>,
}

/// The token of the "auth" server's `--auth-tokens`.
const BENCH_TOKEN: &str = "bench-token-0123456789";

/// One server under load.
struct Target {
    label: String,
    server: ServerProcess,
    disk_id: String,
    extras: Extras,
}

/// A channel to `address`, over TLS when `extras` has a certificate.
async fn channel(address: SocketAddr, extras: &Extras) -> Channel {
    let Some(cert) = &extras.tls_cert else {
        return load::connect(address).await;
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
        let key = imageplane::ids::new_random_id("key");
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
    }
    request
}

/// One caller making the same Create again and again, one at a time.
enum Caller {
    Grpc(Box<(ImageServiceClient<Channel>, CreateImageRequest, Extras)>),
    Rest(reqwest::Client, String, bytes::Bytes),
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
    let metadata = operation.metadata.clone().unwrap();
    let disk_id = prost::Message::decode(metadata.value.as_slice())
        .map(|meta: imageplane::pb::compute::CreateDiskMetadata| meta.disk_id)
        .unwrap();
    let mut operations = OperationServiceClient::new(channel);
    let lookup = Extras {
        fresh_keys: false,
        ..extras.clone()
    };
    loop {
        let current = operations
            .get(with_extras(
                GetOperationRequest {
                    operation_id: operation.id.clone(),
                },
                &lookup,
            ))
            .await
            .unwrap()
            .into_inner();
        if current.done {
            return disk_id;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How a measurement loads its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    /// gRPC: connections, calls in flight on each.
    Grpc(usize, usize),
    /// REST over HTTP/1.1: connections, one call in flight on each.
    Rest(usize),
}

impl std::fmt::Display for Shape {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Grpc(connections, streams) => write!(formatter, "{connections}x{streams}"),
            Shape::Rest(connections) => write!(formatter, "rest{connections}"),
        }
    }
}

fn parse_shape(text: &str) -> Shape {
    let (connections, streams) = text
        .split_once('x')
        .unwrap_or_else(|| panic!("--shapes: {text:?} is not CONNECTIONSxSTREAMS"));
    Shape::Grpc(connections.parse().unwrap(), streams.parse().unwrap())
}

/// Drives Create at `shape` for `warmup` then `duration`.
async fn drive(target: &Target, shape: Shape, warmup: Duration, duration: Duration) -> Measurement {
    let request = CreateImageRequest {
        folder_id: "bench".into(),
        description: "load".into(),
        source: Some(create_image_request::Source::DiskId(target.disk_id.clone())),
        ..Default::default()
    };
    let address: SocketAddr = target.server.address.parse().unwrap();
    let mut callers = Vec::new();
    match shape {
        Shape::Grpc(connections, streams) => {
            for _ in 0..connections {
                let client = ImageServiceClient::new(channel(address, &target.extras).await);
                for _ in 0..streams {
                    callers.push(Caller::Grpc(Box::new((
                        client.clone(),
                        request.clone(),
                        target.extras.clone(),
                    ))));
                }
            }
        }
        Shape::Rest(connections) => {
            let body = serde_json::json!({
                "folderId": request.folder_id,
                "description": request.description,
                "diskId": target.disk_id,
            });
            for _ in 0..connections {
                let client = reqwest::Client::builder()
                    .http1_only()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .build()
                    .unwrap();
                callers.push(Caller::Rest(
                    client,
                    format!("http://{address}/compute/v1/images"),
                    body.to_string().into(),
                ));
            }
        }
    }
    // A local PostgreSQL's own processes work for imageplane's creates too.
    let database = target.label == "postgres";
    load::drive_measuring(
        callers,
        warmup,
        duration,
        || target.server.cpu_time(),
        || {
            database
                .then(|| load::processes_cpu_time("postgres"))
                .flatten()
        },
    )
    .await
}

/// `--drive`: exactly `--calls` creates at the first shape; prints the disk used and the
/// creates that failed.
fn drive_fixed(address: SocketAddr, options: &Options) {
    let Shape::Grpc(connections, streams) = parse_shape(&options.shapes[0]) else {
        unreachable!("shapes are gRPC")
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let disk_id = match &options.disk_id {
            Some(disk_id) => disk_id.clone(),
            None => ready_disk(address, &Extras::default()).await,
        };
        let request = CreateImageRequest {
            folder_id: "bench".into(),
            description: "load".into(),
            source: Some(create_image_request::Source::DiskId(disk_id.clone())),
            ..Default::default()
        };
        let callers = connections * streams;
        let mut workers = Vec::new();
        for connection in 0..connections {
            let client = ImageServiceClient::new(load::connect(address).await);
            for stream in 0..streams {
                let index = connection * streams + stream;
                // The calls shared out: the first callers take one more when they do not divide.
                let calls = options.calls / callers + usize::from(index < options.calls % callers);
                let (mut client, request) = (client.clone(), request.clone());
                workers.push(tokio::spawn(async move {
                    let mut failed = 0;
                    for _ in 0..calls {
                        failed += usize::from(client.create(request.clone()).await.is_err());
                    }
                    failed
                }));
            }
        }
        let mut failed = 0;
        for worker in workers {
            failed += worker.await.unwrap();
        }
        println!("disk {disk_id}: {} creates, {failed} failed", options.calls);
    });
}

/// Figures summed over the rounds, to average.
#[derive(Default)]
struct Totals {
    rounds: usize,
    throughput: f64,
    cpu_us: f64,
    /// The database's CPU per create summed over the rounds that measured it, and their
    /// number.
    database_cpu_us: Option<(f64, usize)>,
    worst_tail: f64,
}

impl Totals {
    fn add(&mut self, measured: &Measurement) {
        self.rounds += 1;
        self.throughput += measured.throughput();
        self.cpu_us += measured.cpu_us_per_request();
        if let Some(us) = measured.database_cpu_us_per_request() {
            let (sum, rounds) = self.database_cpu_us.get_or_insert((0.0, 0));
            *sum += us;
            *rounds += 1;
        }
        let p50 = f64::from(measured.percentile_us(0.50).max(1));
        self.worst_tail = self
            .worst_tail
            .max(f64::from(measured.percentile_us(0.99)) / p50);
    }

    fn throughput(&self) -> f64 {
        self.throughput / self.rounds.max(1) as f64
    }

    fn cpu_us(&self) -> f64 {
        self.cpu_us / self.rounds.max(1) as f64
    }

    /// "database N us/req" (its mean over the rounds that measured it), when the
    /// database's CPU was measured; else nothing.
    fn database_cpu(&self) -> String {
        self.database_cpu_us.map_or(String::new(), |(sum, rounds)| {
            format!("   database {:>6.1} us/req", sum / rounds as f64)
        })
    }
}

fn imageplane_command(binary: &Path, data_dir: &Path, flags: &[String]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(flags);
    command
}

async fn start_imageplane(
    label: &str,
    binary: &Path,
    work_dir: &Path,
    flags: &[String],
    extras: Extras,
) -> Target {
    let data_dir = work_dir.join(label);
    std::fs::create_dir_all(&data_dir).unwrap();
    let server = ServerProcess::start_command(
        imageplane_command(binary, &data_dir, flags),
        work_dir.join(format!("{label}.log")),
    );
    let extras = match flags.iter().any(|flag| flag == "--tls-self-signed") {
        true => Extras {
            tls_cert: Some(std::fs::read(data_dir.join("tls/cert.pem")).unwrap()),
            ..extras
        },
        false => extras,
    };
    Target {
        label: label.to_string(),
        disk_id: ready_disk(server.address.parse().unwrap(), &extras).await,
        server,
        extras,
    }
}

fn main() {
    let options = Options::parse();
    if options.bare_server {
        return run_bare_server();
    }
    if let Some(address) = options.drive {
        return drive_fixed(address, &options);
    }
    let binary = options
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_imageplane")));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let work_dir = std::env::temp_dir().join(format!("imageplane-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work_dir).unwrap();
        let mut bare_command = Command::new(std::env::current_exe().unwrap());
        bare_command.arg("--bare-server");
        let mut targets = vec![Target {
            label: "bare".into(),
            server: ServerProcess::start_command(bare_command, work_dir.join("bare.log")),
            disk_id: "fhmbare0000000000000".into(),
            extras: Extras::default(),
        }];
        let wanted = |label: &str| options.only.is_empty() || options.only.iter().any(|o| o == label);
        let flags = |more: &[&str]| -> Vec<String> {
            more.iter().map(|flag| flag.to_string()).chain(options.server_flags.iter().cloned()).collect()
        };
        if wanted("memory") {
            targets.push(start_imageplane("memory", &binary, &work_dir, &flags(&["--database-url", "memory:"]), Extras::default()).await);
        }
        if wanted("sqlite") {
            targets.push(start_imageplane("sqlite", &binary, &work_dir, &flags(&[]), Extras::default()).await);
        }
        let mut made_schema = None;
        match &options.postgres_url {
            Some(_) if !wanted("postgres") => {}
            Some(url) => {
                let (schema, schema_url) = postgres::fresh_schema(url, "bench").await;
                targets.push(start_imageplane("postgres", &binary, &work_dir, &flags(&["--database-url", &schema_url]), Extras::default()).await);
                made_schema = Some((url.clone(), schema));
            }
            None => println!("(PostgreSQL not measured: pass --postgres-url or set IMAGEPLANE_BENCH_DATABASE_URL)"),
        }
        if options.dropin {
            let tokens = work_dir.join("tokens.txt");
            std::fs::write(&tokens, format!("{BENCH_TOKEN} bench-subject bench\n")).unwrap();
            let memory = ["--database-url", "memory:"];
            let auth = [&memory[..], &["--auth-tokens", tokens.to_str().unwrap()]].concat();
            targets.push(start_imageplane("auth", &binary, &work_dir, &flags(&auth), Extras { bearer: Some(BENCH_TOKEN), ..Extras::default() }).await);
            targets.push(start_imageplane("keyed", &binary, &work_dir, &flags(&memory), Extras { fresh_keys: true, ..Extras::default() }).await);
            let tls = [&memory[..], &["--tls-self-signed"]].concat();
            targets.push(start_imageplane("tls", &binary, &work_dir, &flags(&tls), Extras::default()).await);
        }
        let mut shapes: Vec<Shape> = options.shapes.iter().map(|text| parse_shape(text)).collect();
        if options.rest_connections > 0 {
            shapes.push(Shape::Rest(options.rest_connections));
        }
        let warmup = Duration::from_secs(options.warmup);
        let duration = Duration::from_secs(options.seconds);
        println!(
            "ImageService.Create (an image from a disk): {} (extra flags {:?}), {} s x {} rounds, {} cores",
            binary.display(),
            options.server_flags,
            options.seconds,
            options.rounds,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        let mut totals: BTreeMap<(String, Shape), Totals> = BTreeMap::new();
        for round in 1..=options.rounds {
            for &shape in &shapes {
                for target in &targets {
                    let is_bare = target.label == "bare";
                    let dropin = ["auth", "keyed", "tls"].contains(&target.label.as_str());
                    if (is_bare || dropin) && matches!(shape, Shape::Rest(_)) {
                        continue;
                    }
                    let measured = drive(target, shape, warmup, duration).await;
                    load::report(&format!("{} {shape} #{round}", target.label), &measured);
                    totals.entry((target.label.clone(), shape)).or_default().add(&measured);
                }
            }
        }
        println!("\nmeans over {} rounds (throughput ratio; CPU per create in us, server process only, and a local PostgreSQL's processes; worst p99/p50)", options.rounds);
        for ((label, shape), total) in &totals {
            println!("{:<24} {:>7.0} req/s   cpu {:>6.1} us/req   p99/p50 {:.1}{}", format!("{label} {shape}"), total.throughput(), total.cpu_us(), total.worst_tail, total.database_cpu());
        }
        let ratio = |name: &str, of: (&str, Shape), to: (&str, Shape)| {
            let key = |(label, shape): (&str, Shape)| (label.to_string(), shape);
            if let (Some(of), Some(to)) = (totals.get(&key(of)), totals.get(&key(to))) {
                println!(
                    "{name:<32} throughput {:.2}   CPU per create (inverse) {:.2}",
                    of.throughput() / to.throughput(),
                    to.cpu_us() / of.cpu_us(),
                );
            }
        };
        println!();
        for &shape in &shapes {
            let Shape::Grpc(..) = shape else { continue };
            ratio(&format!("memory / bare {shape}"), ("memory", shape), ("bare", shape));
            ratio(&format!("sqlite / bare {shape}"), ("sqlite", shape), ("bare", shape));
            ratio(&format!("sqlite / memory {shape}"), ("sqlite", shape), ("memory", shape));
            ratio(&format!("postgres / memory {shape}"), ("postgres", shape), ("memory", shape));
            for dropin in ["auth", "keyed", "tls"] {
                ratio(&format!("{dropin} / memory {shape}"), (dropin, shape), ("memory", shape));
            }
        }
        if let Some(&rest) = shapes.iter().find(|shape| matches!(shape, Shape::Rest(_))) {
            let grpc = Shape::Grpc(options.rest_connections, 1);
            for store in ["memory", "sqlite", "postgres"] {
                ratio(&format!("{store} REST / gRPC {grpc}"), (store, rest), (store, grpc));
            }
        }
        drop(targets);
        let _ = std::fs::remove_dir_all(&work_dir);
        if let Some((base_url, schema)) = made_schema {
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

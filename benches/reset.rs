//! Reset and state snapshot benchmark: how long `AdminService.Reset`, `ExportState` and
//! `ImportState` take on a store holding many resources (default 10,000 disks, each with
//! its finished create operation), against a reset of a store that holds only the seeds
//! (the public catalogue), measured in the same run.
//!
//! For each store (`memory:`, SQLite, and PostgreSQL with `--postgres-url`) it starts a
//! server in this process, then per round fills it through the API (64 creates in
//! flight), times an export of the whole state and an import of that snapshot over gRPC,
//! then one Reset; then times a Reset of the emptied store.
//!
//! Run: `cargo bench --bench reset` (options after `--`, see `--help`).

use clap::Parser;
use imageplane::pb::compute::disk_service_client::DiskServiceClient;
use imageplane::pb::compute::CreateDiskRequest;
use imageplane::pb::google::api::HttpBody;
use imageplane::pb::imageplane::v1::admin_service_client::AdminServiceClient;
use imageplane::pb::imageplane::v1::{ExportStateRequest, ResetRequest};
use imageplane::server::{serve, Settings};
use imageplane::store::DatabaseUrl;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

#[derive(Parser, Debug)]
#[command(about = "imageplane Reset on a store of many resources")]
struct Options {
    /// Resources (disks, each with its operation) in the store before each reset.
    #[arg(long, default_value_t = 10_000)]
    resources: usize,
    /// Measurements per store; the median and the best are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// A PostgreSQL database to measure too (a fresh schema is made in it and dropped).
    #[arg(long)]
    postgres_url: Option<String>,
    /// cargo bench passes --bench; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Starts a server on `database` with the admin API on; returns its channel.
async fn start(database: DatabaseUrl) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let settings = Settings {
        database,
        enable_admin: true,
        ..Settings::default()
    };
    let (announce, started) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let announce = move || {
            let _ = announce.send(());
        };
        serve(listener, settings, std::future::pending(), announce)
            .await
            .expect("server runs")
    });
    started.await.expect("the server started");
    Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Creates `count` disks, 64 in flight.
async fn fill(channel: &Channel, count: usize) {
    let mut pending = tokio::task::JoinSet::new();
    for index in 0..count {
        if pending.len() >= 64 {
            pending.join_next().await.unwrap().unwrap();
        }
        let mut disks = DiskServiceClient::new(channel.clone());
        pending.spawn(async move {
            disks
                .create(CreateDiskRequest {
                    folder_id: "bench-folder".into(),
                    name: format!("disk-{index}"),
                    zone_id: "ru-central1-a".into(),
                    size: 1 << 30,
                    ..Default::default()
                })
                .await
                .expect("a create");
        });
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap();
    }
}

/// Times one Reset.
async fn reset(channel: &Channel) -> Duration {
    let started = Instant::now();
    AdminServiceClient::new(channel.clone())
        .reset(ResetRequest {})
        .await
        .expect("a reset");
    started.elapsed()
}

/// Times an export of the whole state; answers the snapshot too.
async fn export(channel: &Channel) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut parts = AdminServiceClient::new(channel.clone())
        .export_state(ExportStateRequest {})
        .await
        .expect("an export")
        .into_inner();
    let mut file = Vec::new();
    while let Some(part) = parts.message().await.expect("a part") {
        file.extend_from_slice(&part.data);
    }
    (started.elapsed(), file)
}

/// Times an import of `file`, sent in parts of 1 MiB.
async fn import(channel: &Channel, file: &[u8]) -> Duration {
    let parts: Vec<HttpBody> = file
        .chunks(1 << 20)
        .map(|chunk| HttpBody {
            content_type: "application/x-ndjson".into(),
            data: chunk.to_vec(),
            extensions: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    AdminServiceClient::new(channel.clone())
        .import_state(tokio_stream::iter(parts))
        .await
        .expect("an import");
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

async fn measure(name: &str, database: DatabaseUrl, options: &Options) {
    let channel = start(database).await;
    let (mut full, mut empty) = (Vec::new(), Vec::new());
    let (mut exports, mut imports, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..options.rounds {
        fill(&channel, options.resources).await;
        let (took, file) = export(&channel).await;
        exports.push(took);
        bytes = file.len();
        imports.push(import(&channel, &file).await);
        full.push(reset(&channel).await);
        empty.push(reset(&channel).await);
    }
    let (full_median, empty_median) = (median(full.clone()), median(empty.clone()));
    println!(
        "{name:<10} reset of {} resources: median {} (best {}); of the seeds only: median {} \
         (best {}); ratio {:.1}; {:.1} us per resource",
        options.resources,
        ms(full_median),
        ms(*full.iter().min().unwrap()),
        ms(empty_median),
        ms(*empty.iter().min().unwrap()),
        full_median.as_secs_f64() / empty_median.as_secs_f64(),
        (full_median.saturating_sub(empty_median)).as_secs_f64() * 1e6 / options.resources as f64,
    );
    let (export_median, import_median) = (median(exports.clone()), median(imports.clone()));
    println!(
        "{name:<10} snapshot of {} resources ({:.1} MiB): export median {} (best {}), \
         {:.1} x the reset; import median {} (best {}), {:.1} x the reset",
        options.resources,
        bytes as f64 / (1 << 20) as f64,
        ms(export_median),
        ms(*exports.iter().min().unwrap()),
        export_median.as_secs_f64() / full_median.as_secs_f64(),
        ms(import_median),
        ms(*imports.iter().min().unwrap()),
        import_median.as_secs_f64() / full_median.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let directory = std::env::temp_dir().join(format!("imageplane-reset-{}", std::process::id()));
    measure("memory", DatabaseUrl::Memory, &options).await;
    measure(
        "sqlite",
        DatabaseUrl::Sqlite(directory.join("imageplane.sqlite3")),
        &options,
    )
    .await;
    if let Some(base_url) = &options.postgres_url {
        let (schema, url) = postgres::fresh_schema(base_url, "reset_bench").await;
        measure("postgres", DatabaseUrl::Postgres(url), &options).await;
        postgres::drop_schema(base_url, &schema).await;
    }
    let _ = std::fs::remove_dir_all(&directory);
}

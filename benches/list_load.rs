//! Load benchmark of reads from a large folder: compute ImageService.List with pages of
//! 1000 from a folder of 100,000 images (the first page; a page from the middle, reached
//! by its page token; a page filtered by family) and ImageService.Get of images spread
//! over the folder, each from concurrent connections, on the embedded SQLite default and
//! on PostgreSQL when a URL is given. Create on the same server is measured too, so the
//! write path is seen beside the reads on a large table.
//!
//! The folder is a seed file made here (the `--seed` path: the server loads it at start),
//! so the server holds exactly what a user's seeded catalogue would.
//!
//! Run: `cargo bench --bench list_load` (options after `--`, see `--help`); with
//! `--postgres-url postgres://postgres@127.0.0.1:5432/test` (or IMAGEPLANE_BENCH_DATABASE_URL)
//! PostgreSQL is measured too, in a schema of its own.

use clap::Parser;
use imageplane::pb::compute::image_service_client::ImageServiceClient;
use imageplane::pb::compute::{
    create_image_request, CreateImageRequest, GetImageRequest, ListImagesRequest,
};
use imageplane::server::{serve, Settings};
use imageplane::store::DatabaseUrl;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

mod common;
use common::load::{self, connect, report, Call};

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

/// The same allocator as the `imageplane` binary (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "ImageService.List and Get from a folder of 100,000 images")]
struct Options {
    /// Images in the folder.
    #[arg(long, default_value_t = 100_000)]
    images: usize,
    /// Families the images are spread over (a filtered page reads one family).
    #[arg(long, default_value_t = 50)]
    families: usize,
    /// Items per page.
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Measured seconds per round and kind of call.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Warm-up seconds before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// PostgreSQL to measure too (a fresh schema is made in it).
    #[arg(long, env = "IMAGEPLANE_BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Accepted for `cargo bench` compatibility.
    #[arg(long, hide = true)]
    bench: bool,
}

const FOLDER: &str = "bench";

fn image_id(index: usize) -> String {
    format!("fd8{index:017}")
}

fn family(index: usize, families: usize) -> String {
    format!("family-{:03}", index % families)
}

/// The seed file: `images` READY images in folder `bench`, a second apart in creation
/// time, with the fields a real image has.
fn seed_text(images: usize, families: usize) -> String {
    let mut text = String::with_capacity(images * 420);
    let epoch = 1_767_225_600; // 2026-01-01T00:00:00Z
    for index in 0..images {
        let created = prost_types::Timestamp {
            seconds: epoch + index as i64,
            nanos: 0,
        };
        let line = serde_json::json!({"image": {
            "id": image_id(index),
            "folderId": FOLDER,
            "name": format!("image-{index:06}"),
            "description": "a benchmark image with a description of ordinary length",
            "labels": {"team": "bench", "build": format!("{}", index % 997)},
            "family": family(index, families),
            "createdAt": created.to_string(),
            "storageSize": "2147483648",
            "minDiskSize": "8589934592",
            "productIds": ["f2e1vtt8f5f1ab5nb1ds"],
            "os": {"type": "LINUX"},
        }});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// Starts imageplane on `database` with the folder as its seed; returns its address and
/// how long the start took until it answered (loading the seed included).
async fn start(database: DatabaseUrl, seed: String) -> (SocketAddr, Duration) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let settings = Settings {
        database,
        seeds: vec![("the benchmark's folder".into(), seed)],
        ..Settings::default()
    };
    let started = Instant::now();
    let (announce, ready) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let announce = move || {
            let _ = announce.send(());
        };
        serve(listener, settings, std::future::pending(), announce)
            .await
            .expect("the server runs")
    });
    ready.await.expect("the server started");
    let mut client = ImageServiceClient::new(connect(address).await);
    client
        .get(GetImageRequest {
            image_id: image_id(0),
        })
        .await
        .expect("the seeded image is there");
    (address, started.elapsed())
}

/// One connection repeating one List; it succeeds when the page is full.
struct ListCaller {
    client: ImageServiceClient<Channel>,
    request: ListImagesRequest,
    expected: usize,
}

impl Call for ListCaller {
    async fn call(&mut self) -> bool {
        match self.client.list(self.request.clone()).await {
            Ok(response) => response.into_inner().images.len() == self.expected,
            Err(_) => false,
        }
    }
}

/// One connection getting images spread over the folder, a different one each call.
struct GetCaller {
    client: ImageServiceClient<Channel>,
    next: usize,
    step: usize,
    images: usize,
}

impl Call for GetCaller {
    async fn call(&mut self) -> bool {
        self.next = (self.next + self.step) % self.images;
        let request = GetImageRequest {
            image_id: image_id(self.next),
        };
        self.client.get(request).await.is_ok()
    }
}

/// One connection creating images (from the first seeded image) in the same folder.
struct CreateCaller {
    client: ImageServiceClient<Channel>,
}

impl Call for CreateCaller {
    async fn call(&mut self) -> bool {
        let request = CreateImageRequest {
            folder_id: FOLDER.into(),
            description: "load".into(),
            source: Some(create_image_request::Source::ImageId(image_id(0))),
            ..Default::default()
        };
        self.client.create(request).await.is_ok()
    }
}

/// The page token of the page in the middle of the folder, by paging to it.
async fn middle_token(address: SocketAddr, options: &Options) -> String {
    let mut client = ImageServiceClient::new(connect(address).await);
    let mut token = String::new();
    for _ in 0..options.images / options.page_size / 2 {
        token = client
            .list(ListImagesRequest {
                folder_id: FOLDER.into(),
                page_size: options.page_size as i64,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .next_page_token;
    }
    token
}

/// The kinds of call measured, in order.
const SCENARIOS: [&str; 5] = ["list first", "list middle", "list family", "get", "create"];

async fn measure(
    scenario: &str,
    address: SocketAddr,
    middle: &str,
    options: &Options,
) -> load::Measurement {
    let warmup = Duration::from_secs(options.warmup);
    let duration = Duration::from_secs(options.seconds);
    let list = |page_token: &str, filter: &str| ListImagesRequest {
        folder_id: FOLDER.into(),
        page_size: options.page_size as i64,
        page_token: page_token.into(),
        filter: filter.into(),
        order_by: String::new(),
    };
    // A List and the items its page must hold (a family has fewer than a folder).
    let family_size = options.images / options.families.max(1);
    let list_and_size = match scenario {
        "list first" => Some((list("", ""), options.page_size)),
        "list middle" => Some((list(middle, ""), options.page_size)),
        "list family" => Some((
            list("", &format!("family = \"{}\"", family(7, options.families))),
            options.page_size.min(family_size),
        )),
        _ => None,
    };
    let mut channels = Vec::new();
    for _ in 0..options.connections {
        channels.push(ImageServiceClient::new(connect(address).await));
    }
    match (scenario, list_and_size) {
        (_, Some((request, expected))) => {
            let callers = channels
                .into_iter()
                .map(|client| ListCaller {
                    client,
                    request: request.clone(),
                    expected,
                })
                .collect();
            load::drive(callers, warmup, duration).await
        }
        ("get", None) => {
            // Steps that are prime to the folder's size visit every image.
            let callers = channels
                .into_iter()
                .enumerate()
                .map(|(index, client)| GetCaller {
                    client,
                    next: index * options.images / options.connections,
                    step: 7919,
                    images: options.images,
                })
                .collect();
            load::drive(callers, warmup, duration).await
        }
        _ => {
            let callers = channels
                .into_iter()
                .map(|client| CreateCaller { client })
                .collect();
            load::drive(callers, warmup, duration).await
        }
    }
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let data_dir = std::env::temp_dir().join(format!("imageplane-list-bench-{}", std::process::id()));
        let seed = seed_text(options.images, options.families);
        println!(
            "ImageService.List (pages of {}) and Get from a folder of {} images ({} families), {} connections, {} s x {} rounds, {} cores",
            options.page_size,
            options.images,
            options.families,
            options.connections,
            options.seconds,
            options.rounds,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        let mut backends = vec![("sqlite", DatabaseUrl::default_in(&data_dir))];
        let mut made_schema = None;
        match &options.postgres_url {
            Some(url) => {
                let (schema, schema_url) = postgres::fresh_schema(url, "listbench").await;
                backends.push(("postgres", DatabaseUrl::Postgres(schema_url)));
                made_schema = Some((url.clone(), schema));
            }
            None => println!("(PostgreSQL not measured: pass --postgres-url or set IMAGEPLANE_BENCH_DATABASE_URL)"),
        }
        let mut servers = Vec::new();
        for (label, database) in backends {
            let (address, took) = start(database, seed.clone()).await;
            println!("({label}: started with the folder seeded in {:.1} s)", took.as_secs_f64());
            let middle = middle_token(address, &options).await;
            servers.push((label, address, middle));
        }
        for round in 1..=options.rounds {
            for (label, address, middle) in &servers {
                for scenario in SCENARIOS {
                    let measured = measure(scenario, *address, middle, &options).await;
                    report(&format!("{label} {scenario} #{round}"), &measured);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&data_dir);
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

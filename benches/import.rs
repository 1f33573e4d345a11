//! Import benchmark: ImageService.Create from a URI of a 1 GiB image on a loopback HTTP
//! server, against a plain download of the same file to /dev/null by curl, in alternating
//! rounds of one run. Prints the throughput of each, their ratio, and the peak memory of
//! the imageplane process during the import above its memory before it.
//!
//! The HTTP server runs in this process (plain Tokio, 1 MiB writes from a file in the page
//! cache); imageplane runs as its own process (`imageplane serve --database-url memory:`),
//! so that its memory can be read from /proc.
//!
//! Run: `cargo bench --bench import` (options after `--`, see `--help`). Needs curl and
//! about 1 GiB free in the temporary directory.

use clap::Parser;
use imageplane::pb::compute::image_service_client::ImageServiceClient;
use imageplane::pb::compute::{create_image_request, CreateImageRequest, Image};
use imageplane::pb::operation::operation_service_client::OperationServiceClient;
use imageplane::pb::operation::{operation, GetOperationRequest};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser, Debug)]
#[command(about = "Import of a large image from a loopback HTTP server, against curl")]
struct Options {
    /// Image size in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Rounds; each runs curl, then the import.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Accepted for `cargo bench` compatibility.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Serves the file at any path, whole, with Content-Length.
async fn serve_file(listener: tokio::net::TcpListener, path: PathBuf) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let path = path.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut request).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&request[..n]),
                }
            }
            let mut file = tokio::fs::File::open(&path).await.unwrap();
            let length = file.metadata().await.unwrap().len();
            let header =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n");
            if stream.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let read = file.read(&mut buffer).await.unwrap();
                if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let directory = std::env::temp_dir().join(format!("imageplane-import-bench-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let image = directory.join("disk.raw");
        {
            // Written (not sparse), then read once so that both contestants read from the
            // page cache.
            let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
            let mut file = std::fs::File::create(&image).unwrap();
            for _ in 0..options.mib {
                std::io::Write::write_all(&mut file, &chunk).unwrap();
            }
        }
        let _ = std::fs::read(&image).map(drop);
        let bytes = options.mib << 20;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let source = format!("http://{}/disk.raw", listener.local_addr().unwrap());
        tokio::spawn(serve_file(listener, image.clone()));

        let mut server = Command::new(env!("CARGO_BIN_EXE_imageplane"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", "memory:", "--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.trim().strip_prefix("imageplane listening on ").unwrap().to_string();
        let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let pid = server.id();

        println!(
            "import of a {} MiB raw image from loopback HTTP, against curl to /dev/null, {} rounds, {} cores",
            options.mib,
            options.rounds,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let (mut curl_total, mut import_total, mut peak_above_idle) = (0.0, 0.0, 0u64);
        for round in 1..=options.rounds {
            let started = Instant::now();
            let status = Command::new("curl")
                .args(["-s", "-o", "/dev/null", &source])
                .status()
                .expect("curl runs");
            assert!(status.success());
            let curl = bytes as f64 / started.elapsed().as_secs_f64() / 1e6;

            let idle = rss_kib(pid);
            let peak = Arc::new(AtomicU64::new(idle));
            let sampling = Arc::new(AtomicBool::new(true));
            let sampler = {
                let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
                std::thread::spawn(move || {
                    while sampling.load(Ordering::Relaxed) {
                        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            };
            let started = Instant::now();
            let operation = ImageServiceClient::new(channel.clone())
                .create(CreateImageRequest {
                    folder_id: "bench".into(),
                    source: Some(create_image_request::Source::Uri(source.clone())),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let mut operations = OperationServiceClient::new(channel.clone());
            let finished = loop {
                let current = operations
                    .get(GetOperationRequest { operation_id: operation.id.clone() })
                    .await
                    .unwrap()
                    .into_inner();
                if current.done {
                    break current;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let took = started.elapsed();
            sampling.store(false, Ordering::Relaxed);
            sampler.join().unwrap();
            let Some(operation::Result::Response(any)) = finished.result else {
                panic!("the import failed: {:?}", finished.result)
            };
            let imported: Image = prost::Message::decode(any.value.as_slice()).unwrap();
            assert_eq!(imported.storage_size as u64, bytes);
            let import = bytes as f64 / took.as_secs_f64() / 1e6;
            let above = peak.load(Ordering::Relaxed).saturating_sub(idle);
            peak_above_idle = peak_above_idle.max(above);
            println!(
                "round {round}: curl {curl:>7.0} MB/s   import {import:>7.0} MB/s   ratio {:.2}   imageplane peak RSS +{:.1} MiB over idle {:.1} MiB",
                import / curl,
                above as f64 / 1024.0,
                idle as f64 / 1024.0
            );
            curl_total += curl;
            import_total += import;
        }
        println!(
            "import / curl throughput: {:.2}   peak memory above idle: {:.1} MiB",
            import_total / curl_total,
            peak_above_idle as f64 / 1024.0
        );
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&directory);
    });
}

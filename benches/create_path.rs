//! Micro benchmark of the create path without the network: validation alone (what
//! `api::accept` does first), and ImageService.Create's domain part (source lookup, store,
//! executor) called directly on the Catalog, on one thread and on two. Prints microseconds per call. Complements create_load,
//! which measures the whole server over gRPC.
//!
//! Run: `cargo bench --bench create_path`.

use imageplane::domain::call::CallContext;
use imageplane::domain::validation::Validator;
use imageplane::domain::Catalog;
use imageplane::pb::compute::{create_image_request, CreateDiskRequest, CreateImageRequest};
use imageplane::store::{self, DatabaseUrl, Replica, Store};
use imageplane::work::executor::{Executor, ExecutorSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same allocator as the `imageplane` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn setup() -> (Arc<Catalog>, CreateImageRequest) {
    let store: Arc<dyn Store> =
        store::open(&DatabaseUrl::Memory, Replica::new(Duration::from_secs(10)))
            .await
            .unwrap();
    let executor = Executor::new(
        Arc::clone(&store),
        ExecutorSettings {
            timing: imageplane::work::timing::Timing::default(),
            lease: imageplane::server::DEFAULT_LEASE,
            retention: imageplane::server::DEFAULT_RETENTION,
            import: Default::default(),
            transition: imageplane::domain::transitions::conclude,
            key_retention: imageplane::domain::idempotency::KEY_RETENTION,
            faults: Default::default(),
        },
    )
    .unwrap();
    let catalog = Arc::new(
        Catalog::new(store, executor, Validator::for_api(), Default::default())
            .await
            .unwrap(),
    );
    let op = catalog
        .create_disk(
            &CallContext::anonymous(),
            CreateDiskRequest {
                folder_id: "b".into(),
                zone_id: "ru-central1-a".into(),
                size: 1 << 30,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let meta: imageplane::pb::compute::CreateDiskMetadata =
        prost::Message::decode(op.metadata.unwrap().value.as_slice()).unwrap();
    let request = CreateImageRequest {
        folder_id: "bench".into(),
        description: "load".into(),
        source: Some(create_image_request::Source::DiskId(meta.disk_id)),
        ..Default::default()
    };
    (catalog, request)
}

/// Calls create_image `calls` times on each of `tasks` tasks; returns the wall time.
async fn create_images(
    catalog: &Arc<Catalog>,
    request: &CreateImageRequest,
    tasks: usize,
    calls: usize,
) -> Duration {
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let catalog = Arc::clone(catalog);
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..calls {
                catalog
                    .create_image(&CallContext::anonymous(), request.clone())
                    .await
                    .unwrap();
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    started.elapsed()
}

fn main() {
    let calls = 100_000;
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    single.block_on(async {
        let (catalog, request) = setup().await;
        let started = Instant::now();
        for _ in 0..calls {
            catalog.validate(&request).unwrap();
        }
        println!(
            "validate CreateImageRequest:             {:.2} us per call",
            started.elapsed().as_secs_f64() * 1e6 / calls as f64
        );
        let elapsed = create_images(&catalog, &request, 1, calls).await;
        println!(
            "create_image, 1 thread:                  {:.2} us per call",
            elapsed.as_secs_f64() * 1e6 / calls as f64
        );
    });
    let threads = 2;
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    multi.block_on(async {
        let (catalog, request) = setup().await;
        let elapsed = create_images(&catalog, &request, threads * 4, calls / 4).await;
        println!(
            "create_image, {threads} threads (CPU time):     {:.2} us per call",
            elapsed.as_secs_f64() * 1e6 * threads as f64 / (threads * calls) as f64
        );
    });
}

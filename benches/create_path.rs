//! Micro benchmark of the create path without the network: validation alone, and
//! ImageService.Create (validation, source lookup, store, executor) called directly on
//! the Catalog in one thread. Prints microseconds per call. Complements create_load,
//! which measures the whole server over gRPC.
//!
//! Run: `cargo bench --bench create_path`.

use imageplane::domain::Catalog;
use imageplane::executor::Executor;
use imageplane::pb::compute::{create_image_request, CreateDiskRequest, CreateImageRequest};
use imageplane::store::{memory::MemoryStore, Store};
use imageplane::validation::Validator;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same allocator as the `imageplane` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let executor = Executor::new(Arc::clone(&store), Duration::ZERO);
    let catalog = Catalog::new(store, executor, Validator::for_api());
    let op = catalog
        .create_disk(CreateDiskRequest {
            folder_id: "b".into(),
            zone_id: "z".into(),
            size: 1 << 30,
            ..Default::default()
        })
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
    let calls = 100_000;
    let t = Instant::now();
    for _ in 0..calls {
        catalog.validate(&request).unwrap();
    }
    println!(
        "validate: {:.2} us",
        t.elapsed().as_secs_f64() * 1e6 / calls as f64
    );
    let t = Instant::now();
    for i in 0..calls {
        catalog.create_image(request.clone()).await.unwrap();
        if i % 512 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let created = t.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "create_image (incl. queueing): {:.2} us",
        created.as_secs_f64() * 1e6 / calls as f64
    );
}

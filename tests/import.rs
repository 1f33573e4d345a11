//! Imports from URIs, end to end: a real server fetches from a loopback HTTP fixture
//! server (tests/common/http_fixture.rs) images made by `qemu-img` or written here, and
//! the tests check what a client sees: the READY image with its measured sizes, the MD5
//! of a bare-metal ISO, the error of every refusal (with nothing left behind), redirects,
//! resumed transfers, limits, queueing, progress, and a cancel that closes the connection.

mod common;

use common::http_fixture::HttpFixture;
use common::images::{iso, qemu_img};
use common::{error_of, metadata, until, TestServer, PATIENCE};
use imageplane::pb::baremetal;
use imageplane::pb::compute::{
    create_image_request::Source, image, CreateImageMetadata, CreateImageRequest, GetImageRequest,
    Image,
};
use imageplane::pb::operation::{CancelOperationRequest, GetOperationRequest, Operation};
use imageplane::server::Settings;
use imageplane::work::import::ImportSettings;
use md5::Digest;
use std::time::{Duration, Instant};
use tonic::Code;

fn image_request(folder_id: &str, uri: String) -> CreateImageRequest {
    CreateImageRequest {
        folder_id: folder_id.into(),
        source: Some(Source::Uri(uri)),
        ..Default::default()
    }
}

async fn import(server: &TestServer, request: CreateImageRequest) -> (Operation, String) {
    let operation = server.images().create(request).await.unwrap().into_inner();
    let image_id = metadata::<CreateImageMetadata>(&operation).image_id;
    (operation, image_id)
}

async fn assert_image_gone(server: &TestServer, image_id: String) {
    let status = server
        .images()
        .get(GetImageRequest { image_id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn images_of_every_compute_format_become_ready_with_their_measured_sizes() {
    let fixture = HttpFixture::start().await;
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = common::folder();
    let cases = [
        (
            "disk.qcow2",
            qemu_img("qcow2", "compat=1.1", "1G"),
            1i64 << 30,
        ),
        (
            "disk.vmdk",
            qemu_img("vmdk", "subformat=streamOptimized", "2G"),
            2 << 30,
        ),
        (
            "disk.vhd",
            qemu_img("vpc", "subformat=fixed,force_size=on", "8M"),
            8 << 20,
        ),
        ("disk.raw", vec![42u8; 100_000], 100_000),
    ];
    for (name, bytes, virtual_size) in cases {
        let length = bytes.len() as i64;
        fixture.add(name, bytes);
        let (operation, _) = import(
            &server,
            image_request(&folder_id, fixture.url(&format!("/files/{name}"))),
        )
        .await;
        let image: Image = server.wait_for(&operation).await;
        assert_eq!(image.status, image::Status::Ready as i32, "{name}");
        assert_eq!(image.storage_size, length, "{name}: the size of the file");
        assert_eq!(image.size, virtual_size, "{name}: the virtual size");
        assert_eq!(
            image.min_disk_size,
            virtual_size.max(4 << 20),
            "{name}: at least the virtual size and 4 MiB"
        );
        let finished = server.wait(&operation).await;
        assert_eq!(finished.description, "Create image", "{name}");
    }
}

#[tokio::test]
async fn bare_metal_takes_an_iso_and_records_its_md5() {
    let fixture = HttpFixture::start().await;
    let server = TestServer::start(Duration::ZERO).await;
    let bytes = iso(600);
    let expected: String = md5::Md5::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    fixture.add("boot.iso", bytes);
    let operation = server
        .baremetal()
        .create(baremetal::CreateImageRequest {
            folder_id: common::folder(),
            name: "boot".into(),
            uri: fixture.url("/files/boot.iso"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let image: baremetal::Image = server.wait_for(&operation).await;
    assert_eq!(image.status, baremetal::image::Status::Ready as i32);
    assert_eq!(image.checksum, expected);
}

#[tokio::test]
async fn refusals_end_the_operation_with_a_fitting_error_and_leave_nothing() {
    let fixture = HttpFixture::start().await;
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = common::folder();
    let qcow2 = qemu_img("qcow2", "", "1G");
    fixture.add("disk.qcow2", qcow2.clone());
    fixture.add("boot.iso", iso(100));
    let mut huge = qcow2[..512].to_vec();
    huge[24..32].copy_from_slice(&(1u64 << 60).to_be_bytes());
    fixture.add("huge.qcow2", huge);

    let too_small = CreateImageRequest {
        min_disk_size: 512 << 20,
        ..image_request(&folder_id, fixture.url("/files/disk.qcow2"))
    };
    let cases: Vec<(&str, CreateImageRequest, Code, &str)> = vec![
        (
            "404",
            image_request(&folder_id, fixture.url("/status/404")),
            Code::NotFound,
            "404",
        ),
        (
            "500",
            image_request(&folder_id, fixture.url("/status/500")),
            Code::Unavailable,
            "500",
        ),
        (
            "short body",
            image_request(&folder_id, fixture.url("/truncate/disk.qcow2")),
            Code::Unavailable,
            "ended after",
        ),
        (
            "refused",
            image_request(&folder_id, "http://127.0.0.1:1/disk.qcow2".into()),
            Code::Unavailable,
            "127.0.0.1:1",
        ),
        (
            "dns",
            image_request(&folder_id, "http://no-such-host.invalid/disk.qcow2".into()),
            Code::Unavailable,
            "no-such-host.invalid",
        ),
        (
            "iso for compute",
            image_request(&folder_id, fixture.url("/files/boot.iso")),
            Code::InvalidArgument,
            "ISO 9660",
        ),
        (
            "impossible header",
            image_request(&folder_id, fixture.url("/files/huge.qcow2")),
            Code::InvalidArgument,
            "virtual size",
        ),
        (
            "min_disk_size below the virtual size",
            too_small,
            Code::InvalidArgument,
            "1073741824",
        ),
        (
            "redirect loop",
            image_request(&folder_id, fixture.url("/redirect/9/files/disk.qcow2")),
            Code::FailedPrecondition,
            "redirect",
        ),
    ];
    let mut started = Vec::new();
    for (label, request, code, fragment) in cases {
        let (operation, image_id) = import(&server, request).await;
        started.push((label, operation, image_id, code, fragment));
    }
    for (label, operation, image_id, code, fragment) in started {
        let (got, message) = error_of(&server.wait(&operation).await);
        assert_eq!(got, code as i32, "{label}: {message}");
        assert!(message.contains(fragment), "{label}: {message}");
        assert_image_gone(&server, image_id).await;
    }
    let (got, message) = {
        let operation = server
            .baremetal()
            .create(baremetal::CreateImageRequest {
                folder_id: folder_id.clone(),
                name: "not-an-iso".into(),
                uri: fixture.url("/files/disk.qcow2"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        error_of(&server.wait(&operation).await)
    };
    assert_eq!(got, Code::InvalidArgument as i32, "{message}");
    assert!(
        message.contains("ISO 9660") && message.contains("qcow2"),
        "{message}"
    );
}

#[tokio::test]
async fn redirects_are_followed_and_broken_transfers_resume_with_range() {
    let fixture = HttpFixture::start().await;
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = common::folder();
    let qcow2 = qemu_img("qcow2", "", "1G");
    let length = qcow2.len() as i64;
    fixture.add("disk.qcow2", qcow2);
    let (operation, _) = import(
        &server,
        image_request(&folder_id, fixture.url("/redirect/3/files/disk.qcow2")),
    )
    .await;
    let image: Image = server.wait_for(&operation).await;
    assert_eq!(image.storage_size, length);

    let before = fixture.requests();
    let (operation, _) = import(
        &server,
        image_request(&folder_id, fixture.url("/flaky/disk.qcow2")),
    )
    .await;
    let image: Image = server.wait_for(&operation).await;
    assert_eq!(image.storage_size, length, "resumed to the full length");
    assert_eq!(image.size, 1 << 30);
    assert_eq!(
        fixture.requests() - before,
        2,
        "one broken transfer, one resumed"
    );
}

#[tokio::test]
async fn limits_refuse_large_images_and_hosts_outside_the_list() {
    let fixture = HttpFixture::start().await;
    fixture.add("big.raw", vec![1u8; 200_000]);
    let server = TestServer::start_with(Settings {
        import: ImportSettings {
            max_bytes: 100_000,
            allow_hosts: vec!["localhost".into()],
            ..ImportSettings::default()
        },
        ..Settings::default()
    })
    .await;
    let folder_id = common::folder();
    let port = fixture.address.port();

    let (operation, image_id) = import(
        &server,
        image_request(&folder_id, format!("http://localhost:{port}/files/big.raw")),
    )
    .await;
    let (code, message) = error_of(&server.wait(&operation).await);
    assert_eq!(code, Code::ResourceExhausted as i32, "{message}");
    assert!(message.contains("100000"), "{message}");
    assert_image_gone(&server, image_id).await;

    // A host outside the list is refused at once, before any operation exists.
    let status = server
        .images()
        .create(image_request(&folder_id, fixture.url("/files/big.raw")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("127.0.0.1"),
        "{}",
        status.message()
    );
    // ... and so is a redirect to one.
    let (operation, _) = import(
        &server,
        image_request(
            &folder_id,
            format!("http://localhost:{port}/redirect-to/127.0.0.1:{port}/files/big.raw"),
        ),
    )
    .await;
    let (code, message) = error_of(&server.wait(&operation).await);
    assert_eq!(code, Code::PermissionDenied as i32, "{message}");
}

async fn description_of(server: &TestServer, id: &str) -> Operation {
    server
        .operations()
        .get(GetOperationRequest {
            operation_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn imports_queue_show_progress_and_stop_at_once_when_cancelled() {
    let fixture = HttpFixture::start().await;
    // 64 MiB at 64 KiB per 50 ms: about 50 s, far longer than the test.
    fixture.add("big.raw", vec![0u8; 64 << 20]);
    let server = TestServer::start_with(Settings {
        import: ImportSettings {
            max_concurrent: 1,
            ..ImportSettings::default()
        },
        // Renewed every 200 s: a cancel that only took effect at a renewal could not pass
        // for one that stops the import at once.
        lease: Duration::from_secs(600),
        ..Settings::default()
    })
    .await;
    let folder_id = common::folder();
    let (first, first_image) = import(
        &server,
        image_request(&folder_id, fixture.url("/slow/big.raw")),
    )
    .await;
    let (second, _) = import(
        &server,
        image_request(&folder_id, fixture.url("/slow/big.raw")),
    )
    .await;

    // One slot: only the first reaches the source; its progress shows in its description.
    let started = Instant::now();
    loop {
        let current = description_of(&server, &first.id).await;
        if current.description.contains("fetched") {
            assert!(
                current.description.starts_with("Create image (fetched "),
                "{}",
                current.description
            );
            break;
        }
        assert!(started.elapsed() < PATIENCE, "no progress shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The first has run for a progress interval (2 s): had the second not waited for
    // the slot, it would have asked the source by now.
    assert_eq!(fixture.requests(), 1, "the second import waits for a slot");

    let cancelled_at = Instant::now();
    let cancelled = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: first.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_of(&cancelled).0, Code::Cancelled as i32);
    until("the connection to the source was never closed", || async {
        fixture.slow_client_gone().is_some()
    })
    .await;
    // At once: well before the transfer could end by itself (about 50 s) or a lease
    // renewal could stop it (200 s), with wide slack for a slow machine.
    let took = fixture
        .slow_client_gone()
        .unwrap()
        .duration_since(cancelled_at);
    assert!(
        took < Duration::from_secs(20),
        "the connection closed {took:?} after the cancel"
    );
    assert_image_gone(&server, first_image).await;

    // The slot is free: the second import starts.
    until("the queued import never started", || async {
        fixture.requests() >= 2
    })
    .await;
    server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: second.id.clone(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn https_sources_are_fetched_when_their_ca_is_trusted() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let fixture = HttpFixture::start_tls(
        certified.cert.der().to_vec(),
        certified.signing_key.serialize_der(),
    )
    .await;
    let qcow2 = qemu_img("qcow2", "", "1G");
    let length = qcow2.len() as i64;
    fixture.add("disk.qcow2", qcow2);
    let folder_id = common::folder();

    let trusting = TestServer::start_with(Settings {
        import: ImportSettings {
            extra_roots_pem: certified.cert.pem().into_bytes(),
            ..ImportSettings::default()
        },
        ..Settings::default()
    })
    .await;
    let (operation, _) = import(
        &trusting,
        image_request(&folder_id, fixture.https_url("/files/disk.qcow2")),
    )
    .await;
    let image: Image = trusting.wait_for(&operation).await;
    assert_eq!(image.storage_size, length);

    // Without the CA the certificate is refused, and the error says so.
    let default = TestServer::start(Duration::ZERO).await;
    let (operation, image_id) = import(
        &default,
        image_request(&folder_id, fixture.https_url("/files/disk.qcow2")),
    )
    .await;
    let (code, message) = error_of(&default.wait(&operation).await);
    assert_eq!(code, Code::Unavailable as i32, "{message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert!(!message.contains("gave up after"), "not retried: {message}");
    assert_image_gone(&default, image_id).await;
}

#[tokio::test]
async fn a_resume_at_the_wrong_offset_starts_over_and_a_silent_source_times_out() {
    let fixture = HttpFixture::start().await;
    let server = TestServer::start_with(Settings {
        import: ImportSettings {
            idle_timeout: Duration::from_millis(300),
            ..ImportSettings::default()
        },
        ..Settings::default()
    })
    .await;
    let folder_id = common::folder();
    let raw: Vec<u8> = (0..300_000u32).map(|n| (n % 253) as u8).collect();
    fixture.add("disk.raw", raw.clone());

    // Broken after half; the resume answers 206 from byte 0: the import must not append
    // it, but start over and fetch the whole file.
    let before = fixture.requests();
    let (operation, _) = import(
        &server,
        image_request(&folder_id, fixture.url("/badrange/disk.raw")),
    )
    .await;
    let image: Image = server.wait_for(&operation).await;
    assert_eq!(image.storage_size, raw.len() as i64);
    assert_eq!(
        fixture.requests() - before,
        3,
        "broken, wrong offset, whole again"
    );

    // Accepts and never answers: each attempt times out instead of hanging.
    let started = Instant::now();
    let (operation, image_id) = import(
        &server,
        image_request(&folder_id, fixture.url("/silent/disk.raw")),
    )
    .await;
    let (code, message) = error_of(&server.wait(&operation).await);
    assert_eq!(code, Code::Unavailable as i32, "{message}");
    // Four attempts of 300 ms and their pauses: seconds; with the default silence of
    // 30 s, minutes.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "it took {took:?}");
    assert_image_gone(&server, image_id).await;
}

#[tokio::test]
async fn starting_a_running_import_again_does_not_fetch_it_twice() {
    use imageplane::model::resource::{OperationRecord, Resource, Work};
    use imageplane::store::{self, DatabaseUrl, Replica, Store};
    use imageplane::work::executor::{Executor, ExecutorSettings};
    use std::sync::Arc;

    let fixture = HttpFixture::start().await;
    fixture.add("big.raw", vec![0u8; 64 << 20]);
    let store: Arc<dyn Store> =
        store::open(&DatabaseUrl::Memory, Replica::new(Duration::from_secs(10)))
            .await
            .unwrap();
    let executor = Executor::new(
        Arc::clone(&store),
        ExecutorSettings {
            timing: imageplane::work::timing::Timing::default(),
            lease: Duration::from_secs(10),
            retention: Duration::from_secs(3600),
            import: ImportSettings::default(),
            transition: imageplane::domain::transitions::conclude,
            key_retention: imageplane::domain::idempotency::KEY_RETENTION,
            faults: Default::default(),
        },
    )
    .unwrap();
    let image = Resource::ComputeImage(Image {
        id: imageplane::ids::new_id(imageplane::ids::prefix::COMPUTE_IMAGE),
        folder_id: common::folder(),
        status: image::Status::Creating as i32,
        ..Default::default()
    });
    let record = OperationRecord {
        operation: imageplane::model::operations::start(
            "Create image",
            "tester",
            Default::default(),
        ),
        target: image.reference(),
        work: Work::ImportUri {
            uri: fixture.url("/slow/big.raw"),
        },
    };
    store.create(image, record.clone(), None).await.unwrap();
    // As when a claim returns an operation this replica already runs.
    executor.start(record.clone());
    executor.start(record.clone());
    // Until the transfer has reported progress (it does every 2 s): by then a second
    // import, started at the same moment, would have asked the source too.
    until("the import never reported progress", || async {
        store
            .operation(&record.operation.id)
            .await
            .unwrap()
            .is_some_and(|stored| stored.operation.description.contains("fetched"))
    })
    .await;
    assert_eq!(fixture.requests(), 1, "one transfer, not two");
    executor.cancel(record.operation.clone()).await.unwrap();
    executor.shutdown().await;
}

//! The create paths, inheritance, errors, Get and Cancel, through a real server.

mod common;

use common::{error_of, folder, metadata, TestServer, GIB};
use imageplane::pb::baremetal;
use imageplane::pb::compute::{
    self, create_disk_request, create_image_request, disk, hardware_generation, image, os,
    snapshot, CreateDiskMetadata, CreateDiskRequest, CreateImageMetadata, CreateImageRequest,
    CreateSnapshotMetadata, CreateSnapshotRequest, Disk, GetDiskRequest, GetImageRequest,
    GetSnapshotRequest, HardwareGeneration, Image, Os, Snapshot,
};
use imageplane::pb::operation::{CancelOperationRequest, GetOperationRequest};
use std::time::Duration;
use tonic::Code;

async fn fast() -> TestServer {
    TestServer::start(Duration::ZERO).await
}

async fn slow() -> TestServer {
    TestServer::start(Duration::from_secs(60)).await
}

fn disk_request(folder_id: &str, size: i64) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        zone_id: "ru-central1-a".into(),
        size,
        ..Default::default()
    }
}

fn image_request(folder_id: &str, source: create_image_request::Source) -> CreateImageRequest {
    CreateImageRequest {
        folder_id: folder_id.into(),
        source: Some(source),
        ..Default::default()
    }
}

async fn ready_disk(server: &TestServer, request: CreateDiskRequest) -> Disk {
    let operation = server.disks().create(request).await.unwrap().into_inner();
    server.wait_for::<Disk>(&operation).await
}

async fn ready_image(server: &TestServer, request: CreateImageRequest) -> Image {
    let operation = server.images().create(request).await.unwrap().into_inner();
    server.wait_for::<Image>(&operation).await
}

#[tokio::test]
async fn a_disk_is_created_in_the_background_and_becomes_ready() {
    let server = fast().await;
    let folder_id = folder();
    let operation = server
        .disks()
        .create(CreateDiskRequest {
            name: "data".into(),
            ..disk_request(&folder_id, 10 * GIB)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!operation.done);
    assert_eq!(operation.description, "Create disk");
    assert!(operation.created_at.is_some() && operation.modified_at.is_some());
    assert!(!operation.created_by.is_empty());
    let disk_id = metadata::<CreateDiskMetadata>(&operation).disk_id;
    let id_shape = regex::Regex::new("^[a-z][a-z0-9]{19}$").unwrap();
    assert!(id_shape.is_match(&disk_id) && id_shape.is_match(&operation.id));

    let disk = server.wait_for::<Disk>(&operation).await;
    assert_eq!(disk.id, disk_id);
    assert_eq!(disk.status, disk::Status::Ready as i32);
    assert_eq!((disk.size, disk.block_size), (10 * GIB, 4096));
    assert_eq!(disk.type_id, "network-hdd");
    let fetched = server
        .disks()
        .get(GetDiskRequest { disk_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, disk);
}

/// With no operation delay a copy has no background part: the create answers with the
/// operation as started, as every create does, and it is already done when read back.
#[tokio::test]
async fn a_copy_without_delay_is_done_at_the_first_read() {
    let server = fast().await;
    let folder_id = folder();
    let disk = ready_disk(&server, disk_request(&folder_id, GIB)).await;
    let operation = server
        .images()
        .create(image_request(
            &folder_id,
            create_image_request::Source::DiskId(disk.id.clone()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!operation.done && operation.result.is_none());
    let image_id = metadata::<CreateImageMetadata>(&operation).image_id;
    let image = server
        .images()
        .get(GetImageRequest { image_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(image.status, image::Status::Ready as i32);
    let stored = server
        .operations()
        .get(GetOperationRequest {
            operation_id: operation.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stored.done, "{stored:?}");
    assert_eq!(
        (&stored.description, &stored.metadata),
        (&operation.description, &operation.metadata)
    );
    let Some(imageplane::pb::operation::operation::Result::Response(response)) = stored.result
    else {
        panic!("a done copy has the image as its response: {stored:?}");
    };
    let answered: Image = prost::Message::decode(response.value.as_slice()).unwrap();
    assert_eq!(answered, image);
}

#[tokio::test]
async fn an_image_from_a_disk_inherits_sizes_products_and_hardware() {
    let server = fast().await;
    let folder_id = folder();
    let generation2 = HardwareGeneration {
        features: Some(hardware_generation::Features::Generation2Features(
            compute::Generation2HardwareFeatures::default(),
        )),
    };
    let disk = ready_disk(
        &server,
        CreateDiskRequest {
            hardware_generation: Some(generation2.clone()),
            ..disk_request(&folder_id, 20 * GIB)
        },
    )
    .await;
    let operation = server
        .images()
        .create(CreateImageRequest {
            name: "from-disk".into(),
            family: "ubuntu".into(),
            ..image_request(
                &folder_id,
                create_image_request::Source::DiskId(disk.id.clone()),
            )
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operation.description, "Create image");
    let image_id = metadata::<CreateImageMetadata>(&operation).image_id;
    let image = server.wait_for::<Image>(&operation).await;
    assert_eq!(image.id, image_id);
    assert_eq!(image.status, image::Status::Ready as i32);
    assert_eq!(
        (image.min_disk_size, image.storage_size),
        (20 * GIB, 20 * GIB)
    );
    assert_eq!(image.hardware_generation, Some(generation2));
    assert_eq!(
        image.os.unwrap().r#type,
        os::Type::Linux as i32,
        "os defaults to LINUX"
    );
    assert_eq!(image.family, "ubuntu");
}

#[tokio::test]
async fn os_and_products_flow_from_image_to_disk_to_snapshot_to_image() {
    let server = fast().await;
    let folder_id = folder();
    let disk = ready_disk(&server, disk_request(&folder_id, 8 * GIB)).await;
    let windows = Some(Os {
        r#type: os::Type::Windows as i32,
        nvidia: None,
    });
    let base = ready_image(
        &server,
        CreateImageRequest {
            os: windows.clone(),
            product_ids: vec!["license-1".into()],
            min_disk_size: 10 * GIB,
            ..image_request(&folder_id, create_image_request::Source::DiskId(disk.id))
        },
    )
    .await;
    assert_eq!(base.min_disk_size, 10 * GIB);

    let copy = ready_image(
        &server,
        image_request(
            &folder_id,
            create_image_request::Source::ImageId(base.id.clone()),
        ),
    )
    .await;
    assert_eq!(
        (copy.os.clone(), copy.product_ids.clone()),
        (windows.clone(), base.product_ids.clone())
    );
    assert_eq!(copy.min_disk_size, 10 * GIB);

    let boot = ready_disk(
        &server,
        CreateDiskRequest {
            source: Some(create_disk_request::Source::ImageId(base.id.clone())),
            ..disk_request(&folder_id, 12 * GIB)
        },
    )
    .await;
    assert_eq!(
        boot.source,
        Some(disk::Source::SourceImageId(base.id.clone()))
    );
    assert_eq!(boot.product_ids, vec!["license-1".to_string()]);

    let operation = server
        .snapshots()
        .create(CreateSnapshotRequest {
            folder_id: folder_id.clone(),
            disk_id: boot.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let meta = metadata::<CreateSnapshotMetadata>(&operation);
    assert_eq!(meta.disk_id, boot.id);
    let snap = server.wait_for::<Snapshot>(&operation).await;
    assert_eq!(snap.id, meta.snapshot_id);
    assert_eq!(snap.status, snapshot::Status::Ready as i32);
    assert_eq!(
        (snap.source_disk_id.as_str(), snap.disk_size),
        (boot.id.as_str(), 12 * GIB)
    );
    assert_eq!(snap.product_ids, vec!["license-1".to_string()]);

    let from_snapshot = ready_image(
        &server,
        image_request(
            &folder_id,
            create_image_request::Source::SnapshotId(snap.id.clone()),
        ),
    )
    .await;
    assert_eq!(
        from_snapshot.os, windows,
        "os travels through disk and snapshot"
    );
    assert_eq!(from_snapshot.min_disk_size, 12 * GIB);

    let restored = ready_disk(
        &server,
        CreateDiskRequest {
            source: Some(create_disk_request::Source::SnapshotId(snap.id.clone())),
            ..disk_request(&folder_id, 12 * GIB)
        },
    )
    .await;
    assert_eq!(
        restored.source,
        Some(disk::Source::SourceSnapshotId(snap.id))
    );
}

#[tokio::test]
async fn sizes_below_the_source_are_refused() {
    let server = fast().await;
    let folder_id = folder();
    let disk = ready_disk(&server, disk_request(&folder_id, 10 * GIB)).await;
    let status = server
        .images()
        .create(CreateImageRequest {
            min_disk_size: 5 * GIB,
            ..image_request(
                &folder_id,
                create_image_request::Source::DiskId(disk.id.clone()),
            )
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("min_disk_size:"),
        "{}",
        status.message()
    );

    let image = ready_image(
        &server,
        image_request(&folder_id, create_image_request::Source::DiskId(disk.id)),
    )
    .await;
    let status = server
        .disks()
        .create(CreateDiskRequest {
            source: Some(create_disk_request::Source::ImageId(image.id)),
            ..disk_request(&folder_id, 9 * GIB)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("size:"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn validation_names_the_field_and_the_rule() {
    let server = fast().await;
    let folder_id = folder();
    let disk = ready_disk(&server, disk_request(&folder_id, GIB)).await;
    let from_disk = |request: CreateImageRequest| CreateImageRequest {
        source: Some(create_image_request::Source::DiskId(disk.id.clone())),
        ..request
    };
    let cases = [
        (
            CreateImageRequest {
                folder_id: String::new(),
                ..Default::default()
            },
            "folder_id: is required",
        ),
        (
            CreateImageRequest {
                folder_id: "f".repeat(51),
                ..Default::default()
            },
            "folder_id: length must be <=50 characters, got 51",
        ),
        (
            CreateImageRequest {
                folder_id: folder_id.clone(),
                name: "Bad".into(),
                ..Default::default()
            },
            "name: value \"Bad\" does not match the pattern |[a-z]([-a-z0-9]{0,61}[a-z0-9])?",
        ),
        (
            CreateImageRequest {
                folder_id: folder_id.clone(),
                min_disk_size: 4194303,
                ..Default::default()
            },
            "min_disk_size: value must be in range 4194304-4398046511104, got 4194303",
        ),
    ];
    for (request, expected) in cases {
        let status = server
            .images()
            .create(from_disk(request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), expected);
        // The field is also machine-readable: a google.rpc.BadRequest in the details.
        let (field, description) = bad_request_of(&status);
        assert_eq!(format!("{field}: {description}"), expected);
    }
    let status = server
        .images()
        .create(CreateImageRequest {
            folder_id: folder_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.message(),
        "source: exactly one of image_id, disk_id, snapshot_id, uri is required"
    );
    let mut labels = std::collections::HashMap::new();
    labels.insert("Key".to_string(), "v".to_string());
    let status = server
        .images()
        .create(from_disk(CreateImageRequest {
            folder_id: folder_id.clone(),
            labels,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("labels: key \"Key\""),
        "{}",
        status.message()
    );
    // The edge that passes beside the ones that fail.
    let image = ready_image(
        &server,
        from_disk(CreateImageRequest {
            folder_id: "f".repeat(50),
            name: format!("a{}", "b".repeat(62)),
            min_disk_size: 4194304.max(GIB),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(image.name.len(), 63);
}

/// The one field violation of a status's `google.rpc.BadRequest` details.
fn bad_request_of(status: &tonic::Status) -> (String, String) {
    use prost::Message;
    let details =
        imageplane::pb::google::rpc::Status::decode(status.details()).unwrap_or_else(|error| {
            panic!("no google.rpc.Status in the details of {status:?}: {error}")
        });
    assert_eq!(details.code, status.code() as i32);
    let bad_request = details.details[0]
        .to_msg::<imageplane::pb::google::rpc::BadRequest>()
        .unwrap();
    let violation = &bad_request.field_violations[0];
    (violation.field.clone(), violation.description.clone())
}

#[tokio::test]
async fn missing_sources_are_not_found_and_busy_ones_are_not_ready() {
    let server = slow().await;
    let folder_id = folder();
    let status = server
        .images()
        .create(image_request(
            &folder_id,
            create_image_request::Source::DiskId("fhmnosuchdisk0000000".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("fhmnosuchdisk0000000"));

    let creating = server
        .disks()
        .create(disk_request(&folder_id, GIB))
        .await
        .unwrap()
        .into_inner();
    let disk_id = metadata::<CreateDiskMetadata>(&creating).disk_id;
    let disk = server
        .disks()
        .get(GetDiskRequest {
            disk_id: disk_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disk.status, disk::Status::Creating as i32);
    let status = server
        .snapshots()
        .create(CreateSnapshotRequest {
            folder_id,
            disk_id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn names_are_unique_per_kind_and_folder() {
    let server = fast().await;
    let folder_id = folder();
    let named = |folder_id: &str| CreateDiskRequest {
        name: "shared-name".into(),
        ..disk_request(folder_id, GIB)
    };
    let disk = ready_disk(&server, named(&folder_id)).await;
    let status = server.disks().create(named(&folder_id)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains("shared-name"));
    // Another folder, or another kind, may use the name.
    ready_disk(&server, named(&folder())).await;
    ready_image(
        &server,
        CreateImageRequest {
            name: "shared-name".into(),
            ..image_request(&folder_id, create_image_request::Source::DiskId(disk.id))
        },
    )
    .await;
    // Empty names never conflict.
    ready_disk(&server, disk_request(&folder_id, GIB)).await;
    ready_disk(&server, disk_request(&folder_id, GIB)).await;
}

#[tokio::test]
async fn failed_uri_imports_leave_nothing() {
    let server = fast().await;
    let folder_id = folder();
    let source = common::http_fixture::HttpFixture::start().await;
    let operation = server
        .images()
        .create(image_request(
            &folder_id,
            create_image_request::Source::Uri(source.url("/status/404")),
        ))
        .await
        .unwrap()
        .into_inner();
    let image_id = metadata::<CreateImageMetadata>(&operation).image_id;
    let (code, message) = error_of(&server.wait(&operation).await);
    assert_eq!(code, Code::NotFound as i32);
    assert!(message.contains("404"), "{message}");
    let status = server
        .images()
        .get(GetImageRequest { image_id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let operation = server
        .baremetal()
        .create(baremetal::CreateImageRequest {
            folder_id: folder_id.clone(),
            name: "iso".into(),
            uri: source.url("/status/410"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let image_id = metadata::<baremetal::CreateImageMetadata>(&operation).image_id;
    assert_eq!(
        error_of(&server.wait(&operation).await).0,
        Code::NotFound as i32
    );
    let status = server
        .baremetal()
        .get(baremetal::GetImageRequest { image_id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = server
        .images()
        .create(image_request(
            &folder_id,
            create_image_request::Source::Uri("file:///etc/passwd".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("uri:"));
}

#[tokio::test]
async fn cancel_stops_a_running_operation_and_undoes_it() {
    let server = slow().await;
    let folder_id = folder();
    let operation = server
        .disks()
        .create(CreateDiskRequest {
            name: "cancel-me".into(),
            ..disk_request(&folder_id, GIB)
        })
        .await
        .unwrap()
        .into_inner();
    let disk_id = metadata::<CreateDiskMetadata>(&operation).disk_id;
    let cancelled = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: operation.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cancelled.done);
    assert_eq!(error_of(&cancelled).0, Code::Cancelled as i32);
    let fetched = server
        .operations()
        .get(GetOperationRequest {
            operation_id: operation.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, cancelled);
    let status = server
        .disks()
        .get(GetDiskRequest { disk_id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // The name is free again.
    server
        .disks()
        .create(CreateDiskRequest {
            name: "cancel-me".into(),
            ..disk_request(&folder_id, GIB)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn cancelling_a_finished_operation_returns_it_unchanged() {
    let server = fast().await;
    let operation = server
        .disks()
        .create(disk_request(&folder(), GIB))
        .await
        .unwrap()
        .into_inner();
    let finished = server.wait(&operation).await;
    let after_cancel = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: operation.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after_cancel, finished);
    let disk_id = metadata::<CreateDiskMetadata>(&operation).disk_id;
    let disk = server
        .disks()
        .get(GetDiskRequest { disk_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disk.status, disk::Status::Ready as i32);
}

#[tokio::test]
async fn operations_and_resources_that_do_not_exist() {
    let server = fast().await;
    let status = server
        .operations()
        .get(GetOperationRequest {
            operation_id: "oprnosuchoperation00".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = server
        .operations()
        .get(GetOperationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: "oprnosuchoperation00".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    for status in [
        server
            .images()
            .get(GetImageRequest {
                image_id: "fd8nosuchimage000000".into(),
            })
            .await
            .unwrap_err(),
        server
            .snapshots()
            .get(GetSnapshotRequest {
                snapshot_id: "fd9nosuchsnapshot000".into(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound);
    }
    let status = server
        .images()
        .list(compute::ListImagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "a list needs its folder"
    );
}

#[tokio::test]
async fn health_reports_every_service() {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let server = fast().await;
    let mut health = HealthClient::new(server.channel.clone());
    for service in [
        "",
        "yandex.cloud.compute.v1.ImageService",
        "yandex.cloud.operation.OperationService",
    ] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service}");
    }
}

/// The largest gRPC request message: 4 MiB (docs/configuration.md, Limits: "a gRPC
/// request message").
const GRPC_MESSAGE_LIMIT: usize = 4 << 20;

/// A CreateDiskRequest whose encoding is exactly `size` bytes long.
fn disk_request_of_size(size: usize) -> CreateDiskRequest {
    use prost::Message;
    let mut request = disk_request(&folder(), GIB);
    // The description adds its tag (1 byte), its length (4 bytes for millions) and itself.
    request.description = "x".repeat(size - request.encoded_len() - 1 - 4);
    assert_eq!(request.encoded_len(), size);
    request
}

#[tokio::test]
async fn requests_over_the_size_limit_are_refused() {
    let server = fast().await;
    // A message at the limit is read (and refused for its description, which is too
    // long); one byte more is not read at all.
    for (size, code) in [
        (GRPC_MESSAGE_LIMIT, Code::InvalidArgument),
        (GRPC_MESSAGE_LIMIT + 1, Code::OutOfRange),
    ] {
        let status = server
            .disks()
            .create(disk_request_of_size(size))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{size} bytes: {}", status.message());
    }
    // The connection stays usable.
    ready_disk(&server, disk_request(&folder(), GIB)).await;
}

#[tokio::test]
async fn a_request_that_is_not_valid_protobuf_is_invalid_argument() {
    /// CreateDiskRequest's folder_id (field 1) as raw bytes, so it can be invalid UTF-8.
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawFolder {
        #[prost(bytes = "vec", tag = "1")]
        folder_id: Vec<u8>,
    }
    let server = fast().await;
    let mut grpc = tonic::client::Grpc::new(server.channel.clone());
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(RawFolder {
                folder_id: vec![0xff, 0xfe, 0x00],
            }),
            http::uri::PathAndQuery::from_static("/yandex.cloud.compute.v1.DiskService/Create"),
            tonic_prost::ProstCodec::<RawFolder, imageplane::pb::operation::Operation>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("folder_id") && status.message().contains("UTF-8"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_disk_has_no_snapshot_schedules() {
    use imageplane::pb::compute::ListDiskSnapshotSchedulesRequest;
    let server = fast().await;
    let disk = ready_disk(&server, disk_request(&folder(), GIB)).await;
    let schedules = server
        .disks()
        .list_snapshot_schedules(ListDiskSnapshotSchedulesRequest {
            disk_id: disk.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(schedules.snapshot_schedules.is_empty());
    let status = server
        .disks()
        .list_snapshot_schedules(ListDiskSnapshotSchedulesRequest {
            disk_id: "fhmnosuchdisk0000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn an_unknown_method_is_unimplemented_saying_so() {
    let server = fast().await;
    for path in [
        "/yandex.cloud.compute.v1.ImageService/Frobnicate",
        "/no.such.Service/Get",
    ] {
        let mut grpc = tonic::client::Grpc::new(server.channel.clone());
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                tonic::Request::new(()),
                http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
        assert_eq!(
            status.message(),
            format!("{path}: this server has no such service or method")
        );
    }
}

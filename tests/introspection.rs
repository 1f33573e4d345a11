//! The introspection API (`imageplane.v1.IntrospectionService`), which the console reads:
//! it answers only about the caller's folders, as the cloud's lists do; it lists running
//! and ended operations; and it shows how far a running import has come, from the
//! transfer itself.

mod common;

use common::http_fixture::HttpFixture;
use common::{folder, with_token, TestServer, GIB};
use imageplane::domain::identity::TokenFile;
use imageplane::pb::compute::{create_image_request, CreateDiskRequest, CreateImageRequest};
use imageplane::pb::imageplane::v1::introspection_service_client::IntrospectionServiceClient;
use imageplane::pb::imageplane::v1::{GetServerRequest, ListFoldersRequest, ListOperationsRequest};
use imageplane::server::Settings;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

fn introspection(server: &TestServer) -> IntrospectionServiceClient<Channel> {
    IntrospectionServiceClient::new(server.channel.clone())
}

fn disk(folder_id: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        zone_id: "ru-central1-a".into(),
        size: GIB,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_caller_sees_only_its_own_folders_and_the_public_catalogue() {
    let (mine, theirs) = (folder(), folder());
    let server = TestServer::start_with(Settings {
        operation_timing: imageplane::work::timing::Timing::uniform(Duration::from_secs(600)),
        auth_tokens: Some(
            TokenFile::parse(
                &format!("tok-ops ops @admin\ntok-alice alice {mine}\n"),
                "tokens",
            )
            .unwrap(),
        ),
        enable_admin: true,
        ..Settings::default()
    })
    .await;
    for folder_id in [&mine, &mine, &theirs] {
        server
            .disks()
            .create(with_token(disk(folder_id), "tok-ops"))
            .await
            .unwrap();
    }

    let refused = introspection(&server)
        .list_folders(ListFoldersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let folders = introspection(&server)
        .list_folders(with_token(ListFoldersRequest::default(), "tok-alice"))
        .await
        .unwrap()
        .into_inner()
        .folders;
    let seen: Vec<(&str, i64, i64, i64)> = folders
        .iter()
        .map(|folder| {
            (
                folder.folder_id.as_str(),
                folder.disks,
                folder.images,
                folder.running_operations,
            )
        })
        .collect();
    let public_images = folders
        .iter()
        .find(|folder| folder.folder_id == "standard-images")
        .map_or(0, |folder| folder.images);
    assert!(public_images > 0, "{folders:?}");
    let mut expected = vec![
        (mine.as_str(), 2, 0, 2),
        ("standard-images", 0, public_images, 0),
    ];
    expected.sort();
    assert_eq!(
        seen, expected,
        "alice sees neither the other folder nor its operation"
    );

    let all = introspection(&server)
        .list_folders(with_token(ListFoldersRequest::default(), "tok-ops"))
        .await
        .unwrap()
        .into_inner()
        .folders;
    assert!(
        all.iter().any(|folder| folder.folder_id == theirs),
        "{all:?}"
    );

    let operations = introspection(&server)
        .list_operations(with_token(ListOperationsRequest::default(), "tok-alice"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operations.running.len(), 2, "{operations:?}");
    assert!(operations
        .running
        .iter()
        .all(|summary| summary.folder_id == mine && summary.resource_kind == "compute.disk"));
    assert!(operations.ended.is_empty());
    let other = introspection(&server)
        .list_operations(with_token(
            ListOperationsRequest {
                folder_id: theirs.clone(),
                ..Default::default()
            },
            "tok-alice",
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");

    let alice = introspection(&server)
        .get_server(with_token(GetServerRequest {}, "tok-alice"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.subject, "alice");
    assert_eq!(
        alice.folders,
        vec![mine.clone(), "standard-images".to_string()]
    );
    assert!(alice.authentication && alice.admin_enabled && !alice.admin);
    assert_eq!(alice.store, "memory");
    assert!(alice.work_kinds.iter().any(|kind| kind == "import-image"));
    let ops = introspection(&server)
        .get_server(with_token(GetServerRequest {}, "tok-ops"))
        .await
        .unwrap()
        .into_inner();
    assert!(ops.admin && ops.folders.is_empty(), "{ops:?}");
}

#[tokio::test]
async fn a_running_import_shows_the_bytes_it_fetched_of_the_total() {
    let fixture = HttpFixture::start().await;
    let bytes = common::images::qemu_img("qcow2", "", "1G");
    let padded = [bytes.clone(), vec![0; (4 << 20) - bytes.len()]].concat();
    fixture.add("big.qcow2", padded.clone());
    // Disks take a minute, so that a running copy is there to compare with.
    let server = TestServer::start_with(Settings {
        operation_timing: imageplane::work::timing::Timing::parse("0s,create-disk=60s").unwrap(),
        ..Settings::default()
    })
    .await;
    let folder_id = folder();
    let started = server
        .images()
        .create(CreateImageRequest {
            folder_id: folder_id.clone(),
            name: "stalls-halfway".into(),
            source: Some(create_image_request::Source::Uri(
                fixture.url("/stalling/big.qcow2"),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The source sends half and then nothing: the progress stops there.
    let half = (padded.len() / 2) as i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        let listed = introspection(&server)
            .list_operations(ListOperationsRequest {
                folder_id: folder_id.clone(),
                page_size: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let reached = listed
            .running
            .first()
            .and_then(|summary| summary.import_progress.as_ref())
            .is_some_and(|progress| progress.bytes_fetched == half);
        if reached {
            break listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import's progress never reached half the file: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let summary = &last.running[0];
    assert_eq!(summary.operation.as_ref().unwrap().id, started.id);
    assert_eq!(summary.resource_kind, "compute.image");
    let progress = summary.import_progress.as_ref().unwrap();
    assert_eq!(progress.bytes_total, padded.len() as i64);
    assert!(progress.bytes_per_second > 0.0, "{progress:?}");
    assert!(progress.seconds_left > 0, "{progress:?}");
    assert!(progress.started_at.is_some());

    // A copy has no transfer, so no progress; one resource's operations are its own.
    let disk = server
        .disks()
        .create(disk(&folder_id))
        .await
        .unwrap()
        .into_inner();
    let of_disk = introspection(&server)
        .list_operations(ListOperationsRequest {
            resource_id: common::metadata::<imageplane::pb::compute::CreateDiskMetadata>(&disk)
                .disk_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(of_disk.running.len(), 1, "{of_disk:?}");
    let copy = &of_disk.running[0];
    assert_eq!(copy.operation.as_ref().unwrap().id, disk.id);
    assert!(copy.import_progress.is_none(), "{copy:?}");
}

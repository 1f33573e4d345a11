//! The whole life of every resource through a real server: List (filter, order, paging),
//! Update, Delete, GetLatestByFamily, ListOperations, access bindings, disk Move and
//! Relocate, and the public catalogue.

mod common;

use common::{error_of, folder, TestServer, GIB};
use imageplane::pb::baremetal;
use imageplane::pb::compute::{
    create_image_request, disk, CreateDiskRequest, CreateImageRequest, CreateSnapshotRequest,
    DeleteDiskRequest, DeleteImageRequest, Disk, DiskPlacementPolicy, GetDiskRequest,
    GetImageLatestByFamilyRequest, GetImageRequest, Image, ListDiskOperationsRequest,
    ListDisksRequest, ListImageOperationsRequest, ListImagesRequest, MoveDiskRequest,
    RelocateDiskRequest, Snapshot, UpdateDiskRequest, UpdateImageMetadata, UpdateImageRequest,
    UpdateSnapshotRequest,
};
use imageplane::pb::operation::{operation, CancelOperationRequest};
use imageplane::pb::yandex::cloud::access::{
    AccessBinding, AccessBindingAction, AccessBindingDelta, AccessBindingsOperationResult,
    ListAccessBindingsRequest, SetAccessBindingsRequest, Subject, UpdateAccessBindingsRequest,
};
use imageplane::server::Settings;
use imageplane::work::timing::Timing;
use std::collections::HashSet;
use std::time::Duration;
use tonic::Code;

fn disk_request(folder_id: &str, name: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        zone_id: "ru-central1-a".into(),
        size: GIB,
        name: name.into(),
        ..Default::default()
    }
}

async fn ready_disk(server: &TestServer, folder_id: &str, name: &str) -> Disk {
    let operation = server
        .disks()
        .create(disk_request(folder_id, name))
        .await
        .unwrap()
        .into_inner();
    server.wait_for::<Disk>(&operation).await
}

async fn ready_image(server: &TestServer, request: CreateImageRequest) -> Image {
    let operation = server.images().create(request).await.unwrap().into_inner();
    server.wait_for::<Image>(&operation).await
}

fn image_from(folder_id: &str, disk_id: &str, name: &str, family: &str) -> CreateImageRequest {
    CreateImageRequest {
        folder_id: folder_id.into(),
        name: name.into(),
        family: family.into(),
        source: Some(create_image_request::Source::DiskId(disk_id.into())),
        ..Default::default()
    }
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| path.to_string()).collect(),
    })
}

async fn list_disks(
    server: &TestServer,
    folder_id: &str,
    filter: &str,
    order_by: &str,
    page_size: i64,
) -> Vec<Disk> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .disks()
            .list(ListDisksRequest {
                folder_id: folder_id.into(),
                page_size,
                page_token: page_token.clone(),
                filter: filter.into(),
                order_by: order_by.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.disks.len() as i64 <= page_size.max(1) || page_size == 0);
        all.extend(page.disks);
        if page.next_page_token.is_empty() {
            return all;
        }
        assert!(page.next_page_token.len() <= 100);
        page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn lists_filter_order_and_page() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let mut names = Vec::new();
    for index in 0..25 {
        let name = format!("disk-{:02}", 24 - index);
        ready_disk(&server, &folder_id, &name).await;
        names.push(name);
    }
    // Default order: id (ids grow with time, so creation order).
    let by_id = list_disks(&server, &folder_id, "", "", 7).await;
    assert_eq!(by_id.len(), 25);
    let ids: Vec<&str> = by_id.iter().map(|disk| disk.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    // By name, both ways; snake_case and camelCase fields.
    let by_name = list_disks(&server, &folder_id, "", "name asc", 4).await;
    let listed: Vec<&str> = by_name.iter().map(|disk| disk.name.as_str()).collect();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let newest_first = list_disks(&server, &folder_id, "", "createdAt desc", 10).await;
    assert_eq!(newest_first[0].name, "disk-00");
    assert_eq!(
        list_disks(&server, &folder_id, "", "created_at desc", 10).await,
        newest_first
    );
    // Filters.
    let one = list_disks(&server, &folder_id, r#"name = "disk-03""#, "", 0).await;
    assert_eq!(one.len(), 1);
    let some = list_disks(
        &server,
        &folder_id,
        r#"name IN ("disk-01", 'disk-02') AND status = "READY""#,
        "",
        0,
    )
    .await;
    assert_eq!(some.len(), 2);
    let rest = list_disks(&server, &folder_id, r#"name NOT IN ("disk-01")"#, "", 0).await;
    assert_eq!(rest.len(), 24);
    let none = list_disks(&server, &folder_id, r#"status != "READY""#, "", 0).await;
    assert!(none.is_empty());
    // Another folder's disks never show.
    assert!(list_disks(&server, &folder(), "", "", 0).await.is_empty());
}

#[tokio::test]
async fn bad_lists_are_invalid_argument_saying_where() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    for index in 0..3 {
        ready_disk(&server, &folder_id, &format!("d{index}")).await;
    }
    let list = |filter: &str, order_by: &str, page_size: i64, page_token: &str| {
        let request = ListDisksRequest {
            folder_id: folder_id.clone(),
            page_size,
            page_token: page_token.into(),
            filter: filter.into(),
            order_by: order_by.into(),
        };
        let mut disks = server.disks();
        async move { disks.list(request).await }
    };
    for (filter, order_by, page_size, expected) in [
        ("name = ", "", 0, "filter: at position 8"),
        (
            "size = \"1\"",
            "",
            0,
            "filter: at position 1: unknown field",
        ),
        ("name = \"x\" OR", "", 0, "filter: at position 12"),
        ("", "size", 0, "order_by: at position 1"),
        ("", "name up", 0, "order_by: at position 6"),
        ("", "", 1001, "page_size"),
        ("", "", -1, "page_size"),
    ] {
        let status = list(filter, order_by, page_size, "").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{filter} {order_by}");
        assert!(
            status.message().starts_with(expected),
            "{}",
            status.message()
        );
    }
    // A page token is signed and bound to its query.
    let first = list("", "", 1, "").await.unwrap().into_inner();
    assert!(!first.next_page_token.is_empty());
    let mut tampered = first.next_page_token.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let status = list("", "", 1, std::str::from_utf8(&tampered).unwrap())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("page_token"),
        "{}",
        status.message()
    );
    let status = list("", "name", 1, &first.next_page_token)
        .await
        .unwrap_err();
    assert!(
        status.message().contains("another query"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn paging_stays_correct_while_rows_come_and_go() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let mut stable = HashSet::new();
    let mut doomed = Vec::new();
    for index in 0..40 {
        let disk = ready_disk(&server, &folder_id, &format!("d{index:02}")).await;
        if index % 4 == 0 {
            doomed.push(disk.id);
        } else {
            stable.insert(disk.id);
        }
    }
    for order_by in ["", "name desc", "createdAt"] {
        let mut seen = Vec::new();
        let mut page_token = String::new();
        let mut round = 0;
        loop {
            let page = server
                .disks()
                .list(ListDisksRequest {
                    folder_id: folder_id.clone(),
                    page_size: 5,
                    page_token: page_token.clone(),
                    order_by: order_by.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.disks.into_iter().map(|disk| disk.id));
            // Between pages: new disks arrive, doomed ones go.
            ready_disk(
                &server,
                &folder_id,
                &format!("new-{order_by:.4}-{round}").replace(' ', ""),
            )
            .await;
            if let Some(id) = doomed.pop() {
                let operation = server
                    .disks()
                    .delete(DeleteDiskRequest { disk_id: id })
                    .await
                    .unwrap()
                    .into_inner();
                server.wait(&operation).await;
            }
            round += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{order_by}: a disk was listed twice"
        );
        for id in &stable {
            assert!(seen.contains(id), "{order_by}: disk {id} was skipped");
        }
    }
}

#[tokio::test]
async fn updates_change_only_the_masked_fields() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let disk = ready_disk(&server, &folder_id, "source").await;
    let image = ready_image(&server, image_from(&folder_id, &disk.id, "golden", "base")).await;
    let mut labels = std::collections::HashMap::new();
    labels.insert("env".to_string(), "prod".to_string());
    let operation = server
        .images()
        .update(UpdateImageRequest {
            image_id: image.id.clone(),
            update_mask: mask(&["labels", "description"]),
            name: "ignored".into(),
            description: "the golden image".into(),
            labels: labels.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(operation.done, "an update is done when stored");
    assert_eq!(operation.description, "Update image");
    assert_eq!(
        common::metadata::<UpdateImageMetadata>(&operation).image_id,
        image.id
    );
    let updated: Image = server.wait_for(&operation).await;
    assert_eq!(
        (updated.name.as_str(), updated.labels.clone()),
        ("golden", labels)
    );
    assert_eq!(updated.description, "the golden image");
    assert_eq!(updated.family, "base");
    let fetched = server
        .images()
        .get(GetImageRequest {
            image_id: image.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, updated);

    let refused = |request: UpdateImageRequest| {
        let mut images = server.images();
        async move { images.update(request).await.unwrap_err() }
    };
    let status = refused(UpdateImageRequest {
        image_id: image.id.clone(),
        ..Default::default()
    })
    .await;
    assert!(
        status.message().starts_with("update_mask: is empty"),
        "{}",
        status.message()
    );
    let status = refused(UpdateImageRequest {
        image_id: image.id.clone(),
        update_mask: mask(&["family"]),
        ..Default::default()
    })
    .await;
    assert!(
        status.message().contains("cannot be changed"),
        "{}",
        status.message()
    );
    let status = refused(UpdateImageRequest {
        image_id: image.id.clone(),
        update_mask: mask(&["name"]),
        name: "Bad_Name".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("name: "));
    // A name taken in the folder.
    ready_image(&server, image_from(&folder_id, &disk.id, "other", "")).await;
    let status = refused(UpdateImageRequest {
        image_id: image.id.clone(),
        update_mask: mask(&["name"]),
        name: "other".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = refused(UpdateImageRequest {
        image_id: "fd8nosuchimage000000".into(),
        update_mask: mask(&["name"]),
        ..Default::default()
    })
    .await;
    assert_eq!(status.code(), Code::NotFound);
    // Disks only grow.
    let status = server
        .disks()
        .update(UpdateDiskRequest {
            disk_id: disk.id.clone(),
            update_mask: mask(&["size"]),
            size: GIB / 2,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("size: a disk can only grow"),
        "{}",
        status.message()
    );
    let grown = server
        .disks()
        .update(UpdateDiskRequest {
            disk_id: disk.id.clone(),
            update_mask: mask(&["size", "name"]),
            size: 2 * GIB,
            name: "renamed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let grown: Disk = server.wait_for(&grown).await;
    assert_eq!((grown.size, grown.name.as_str()), (2 * GIB, "renamed"));
    // The old name is free again.
    ready_disk(&server, &folder_id, "source").await;
}

#[tokio::test]
async fn a_resource_still_being_created_cannot_change_or_go() {
    let server = TestServer::start(Duration::from_secs(60)).await;
    let folder_id = folder();
    let creating = server
        .disks()
        .create(disk_request(&folder_id, "busy"))
        .await
        .unwrap()
        .into_inner();
    let disk_id =
        common::metadata::<imageplane::pb::compute::CreateDiskMetadata>(&creating).disk_id;
    let status = server
        .disks()
        .update(UpdateDiskRequest {
            disk_id: disk_id.clone(),
            update_mask: mask(&["name"]),
            name: "other".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = server
        .disks()
        .delete(DeleteDiskRequest { disk_id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains(&creating.id),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_deleted_resource_is_gone_its_name_free_and_its_operations_kept() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let disk = ready_disk(&server, &folder_id, "doomed").await;
    let deleting = server
        .disks()
        .delete(DeleteDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleting.description, "Delete disk");
    let done = server.wait(&deleting).await;
    match done.result {
        Some(operation::Result::Response(any)) => {
            assert_eq!(any.type_url, "type.googleapis.com/google.protobuf.Empty")
        }
        other => panic!("{other:?}"),
    }
    let gone = server
        .disks()
        .get(GetDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    ready_disk(&server, &folder_id, "doomed").await;

    // Its operations stay, newest first.
    let operations = server
        .disks()
        .list_operations(ListDiskOperationsRequest {
            disk_id: disk.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    let descriptions: Vec<&str> = operations
        .iter()
        .map(|op| op.description.as_str())
        .collect();
    assert_eq!(descriptions, ["Delete disk", "Create disk"]);
}

/// The id of the READY disk that [`slow_server_with_a_ready_disk`] seeds.
const SEEDED_DISK_ID: &str = "fhmseededready000001";

/// A server whose copies and deletes take a minute, so that a test can act while one
/// runs however slow the machine is, and end it by cancelling. It holds a READY disk
/// named `name` in `folder_id`, from a seed file: a disk created through the API would
/// itself take the minute.
async fn slow_server_with_a_ready_disk(folder_id: &str, name: &str) -> (TestServer, Disk) {
    let seed = format!(
        r#"{{"disk": {{"id": "{SEEDED_DISK_ID}", "folderId": "{folder_id}", "name": "{name}", "zoneId": "ru-central1-a", "size": "{GIB}"}}}}"#
    );
    let server = TestServer::start_with(Settings {
        operation_timing: Timing::uniform(Duration::from_secs(60)),
        seeds: vec![("the test's seed".into(), seed)],
        ..Settings::default()
    })
    .await;
    let disk = server
        .disks()
        .get(GetDiskRequest {
            disk_id: SEEDED_DISK_ID.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disk.status, disk::Status::Ready as i32);
    (server, disk)
}

#[tokio::test]
async fn a_resource_shows_deleting_while_its_delete_runs_and_a_cancel_leaves_it_ready() {
    let folder_id = folder();
    let (server, disk) = slow_server_with_a_ready_disk(&folder_id, "kept").await;
    let deleting = server
        .disks()
        .delete(DeleteDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!deleting.done);
    assert_eq!(deleting.description, "Delete disk");
    let during = server
        .disks()
        .get(GetDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(during.status, disk::Status::Deleting as i32);

    let cancelled = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: deleting.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_of(&cancelled).0, Code::Cancelled as i32);
    let kept = server
        .disks()
        .get(GetDiskRequest { disk_id: disk.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.status, disk::Status::Ready as i32);
}

#[tokio::test]
async fn a_disk_that_a_running_copy_reads_cannot_be_deleted() {
    let folder_id = folder();
    let (server, disk) = slow_server_with_a_ready_disk(&folder_id, "source").await;
    // An image being made from the disk: a copy that reads it for a minute.
    let copying = server
        .images()
        .create(image_from(&folder_id, &disk.id, "", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!copying.done);
    let still_ready = server
        .disks()
        .get(GetDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still_ready.status, disk::Status::Ready as i32);
    let status = server
        .disks()
        .delete(DeleteDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains(&copying.id),
        "{}",
        status.message()
    );

    // The copy is what held it: once it is cancelled, the delete starts.
    server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: copying.id,
        })
        .await
        .unwrap();
    let deleting = server
        .disks()
        .delete(DeleteDiskRequest { disk_id: disk.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleting.description, "Delete disk");
}

#[tokio::test]
async fn list_operations_pages_newest_first() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let disk = ready_disk(&server, &folder_id, "often").await;
    let image = ready_image(&server, image_from(&folder_id, &disk.id, "changed", "")).await;
    for index in 0..6 {
        server
            .images()
            .update(UpdateImageRequest {
                image_id: image.id.clone(),
                update_mask: mask(&["description"]),
                description: format!("take {index}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .images()
            .list_operations(ListImageOperationsRequest {
                image_id: image.id.clone(),
                page_size: 4,
                page_token: page_token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.operations);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(all.len(), 7);
    assert_eq!(all.last().unwrap().description, "Create image");
    let times: Vec<_> = all
        .iter()
        .map(|op| op.created_at.unwrap().seconds)
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]));
    let status = server
        .images()
        .list_operations(ListImageOperationsRequest {
            image_id: "fd8nosuchimage000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn the_latest_of_a_family_and_the_public_catalogue() {
    let server = TestServer::start(Duration::ZERO).await;
    let latest = server
        .images()
        .get_latest_by_family(GetImageLatestByFamilyRequest {
            folder_id: "standard-images".into(),
            family: "ubuntu-2204-lts".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest.name, "ubuntu-22-04-lts-v20261101");
    let folder_id = folder();
    let disk = ready_disk(&server, &folder_id, "base").await;
    let first = ready_image(&server, image_from(&folder_id, &disk.id, "v1", "app")).await;
    let second = ready_image(&server, image_from(&folder_id, &disk.id, "v2", "app")).await;
    let seconds = |image: &Image| image.created_at.map(|at| (at.seconds, at.nanos));
    assert!(seconds(&second) >= seconds(&first));
    let found = server
        .images()
        .get_latest_by_family(GetImageLatestByFamilyRequest {
            folder_id: folder_id.clone(),
            family: "app".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, second.id);
    let status = server
        .images()
        .get_latest_by_family(GetImageLatestByFamilyRequest {
            folder_id,
            family: "nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // The catalogue is listed, filtered by family, and read-only.
    let listed = server
        .images()
        .list(ListImagesRequest {
            folder_id: "standard-images".into(),
            filter: r#"family = "windows-2022-dc""#.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].os.as_ref().unwrap().r#type, 2);
    let status = server
        .images()
        .delete(DeleteImageRequest {
            image_id: latest.id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn access_bindings_are_kept_with_the_resource() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let disk = ready_disk(&server, &folder_id, "shared").await;
    let binding = |role: &str, subject: &str| AccessBinding {
        role_id: role.into(),
        subject: Some(Subject {
            id: subject.into(),
            r#type: "userAccount".into(),
        }),
    };
    let set = server
        .disks()
        .set_access_bindings(SetAccessBindingsRequest {
            resource_id: disk.id.clone(),
            access_bindings: vec![binding("viewer", "aje1"), binding("editor", "aje2")],
        })
        .await
        .unwrap()
        .into_inner();
    let result: AccessBindingsOperationResult = server.wait_for(&set).await;
    assert_eq!(result.effective_deltas.len(), 2);
    let update = server
        .disks()
        .update_access_bindings(UpdateAccessBindingsRequest {
            resource_id: disk.id.clone(),
            access_binding_deltas: vec![
                AccessBindingDelta {
                    action: AccessBindingAction::Remove as i32,
                    access_binding: Some(binding("editor", "aje2")),
                },
                AccessBindingDelta {
                    action: AccessBindingAction::Add as i32,
                    access_binding: Some(binding("viewer", "aje1")),
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let result: AccessBindingsOperationResult = server.wait_for(&update).await;
    assert_eq!(
        result.effective_deltas.len(),
        1,
        "adding what is there changes nothing"
    );
    let listed = server
        .disks()
        .list_access_bindings(ListAccessBindingsRequest {
            resource_id: disk.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.access_bindings, vec![binding("viewer", "aje1")]);
    let status = server
        .disks()
        .set_access_bindings(SetAccessBindingsRequest {
            resource_id: disk.id.clone(),
            access_bindings: vec![AccessBinding {
                role_id: "viewer".into(),
                subject: Some(Subject {
                    id: "aje1".into(),
                    r#type: "martian".into(),
                }),
            }],
        })
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .starts_with("access_bindings[0].subject.type"),
        "{}",
        status.message()
    );
    // Deltas cannot grow a resource's bindings past what one Set may carry.
    let full: Vec<AccessBinding> = (0..1000)
        .map(|n| binding("viewer", &format!("aje{n}")))
        .collect();
    let set = server
        .disks()
        .set_access_bindings(SetAccessBindingsRequest {
            resource_id: disk.id.clone(),
            access_bindings: full,
        })
        .await
        .unwrap()
        .into_inner();
    server.wait_for::<AccessBindingsOperationResult>(&set).await;
    let status = server
        .disks()
        .update_access_bindings(UpdateAccessBindingsRequest {
            resource_id: disk.id.clone(),
            access_binding_deltas: vec![AccessBindingDelta {
                action: AccessBindingAction::Add as i32,
                access_binding: Some(binding("editor", "aje1")),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(
        status.message().contains("at most 1000"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn disks_move_between_folders_and_zones() {
    let server = TestServer::start(Duration::ZERO).await;
    let (from, to) = (folder(), folder());
    let disk = ready_disk(&server, &from, "traveller").await;
    let moved = server
        .disks()
        .r#move(MoveDiskRequest {
            disk_id: disk.id.clone(),
            destination_folder_id: to.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let moved: Disk = server.wait_for(&moved).await;
    assert_eq!(moved.folder_id, to);
    assert_eq!(list_disks(&server, &to, "", "", 0).await.len(), 1);
    assert!(list_disks(&server, &from, "", "", 0).await.is_empty());
    // A taken name in the destination refuses the move.
    let other = ready_disk(&server, &from, "traveller").await;
    let status = server
        .disks()
        .r#move(MoveDiskRequest {
            disk_id: other.id,
            destination_folder_id: to,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let relocated = server
        .disks()
        .relocate(RelocateDiskRequest {
            disk_id: disk.id.clone(),
            destination_zone_id: "ru-central1-d".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let relocated: Disk = server.wait_for(&relocated).await;
    assert_eq!(relocated.zone_id, "ru-central1-d");
    let status = server
        .disks()
        .relocate(RelocateDiskRequest {
            disk_id: disk.id,
            destination_zone_id: "mars-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("destination_zone_id"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn bare_metal_images_list_with_contains() {
    let server = TestServer::start(Duration::ZERO).await;
    let status = server
        .baremetal()
        .list(baremetal::ListImagesRequest {
            folder_id: folder(),
            filter: r#"name : "ubu""#.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(status.into_inner().images.is_empty());
    let refused = server
        .images()
        .list(ListImagesRequest {
            folder_id: folder(),
            filter: r#"name : "ubu""#.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("position 6"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn masks_over_grpc_take_either_spelling_nested_paths_and_validate_only_what_they_name() {
    let server = TestServer::start(Duration::ZERO).await;
    let folder_id = folder();
    let disk = ready_disk(&server, &folder_id, "placed").await;
    let image = ready_image(&server, image_from(&folder_id, &disk.id, "golden", "")).await;
    let snapshot = server
        .snapshots()
        .create(CreateSnapshotRequest {
            folder_id: folder_id.clone(),
            disk_id: disk.id.clone(),
            name: "snap".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let snapshot: Snapshot = server.wait_for(&snapshot).await;
    let bad_labels: std::collections::HashMap<String, String> =
        [("BAD KEY".to_string(), "v".to_string())].into();

    // A description changes; the invalid name and labels beside it are neither checked
    // nor applied, on every kind.
    let updated = server
        .disks()
        .update(UpdateDiskRequest {
            disk_id: disk.id.clone(),
            update_mask: mask(&["description"]),
            description: "d".into(),
            name: "Not A Name".into(),
            labels: bad_labels.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let updated: Disk = server.wait_for(&updated).await;
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str()),
        ("placed", "d")
    );
    let updated = server
        .images()
        .update(UpdateImageRequest {
            image_id: image.id.clone(),
            update_mask: mask(&["description"]),
            description: "d".into(),
            name: "Not A Name".into(),
            labels: bad_labels.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let updated: Image = server.wait_for(&updated).await;
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str()),
        ("golden", "d")
    );
    let updated = server
        .snapshots()
        .update(UpdateSnapshotRequest {
            snapshot_id: snapshot.id.clone(),
            update_mask: mask(&["description"]),
            description: "d".into(),
            name: "Not A Name".into(),
            labels: bad_labels.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let updated: Snapshot = server.wait_for(&updated).await;
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str()),
        ("snap", "d")
    );

    // lowerCamelCase as well as snake_case; a masked field is validated.
    for path in ["min_disk_size", "minDiskSize"] {
        let operation = server
            .images()
            .update(UpdateImageRequest {
                image_id: image.id.clone(),
                update_mask: mask(&[path]),
                min_disk_size: 8 * GIB,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let updated: Image = server.wait_for(&operation).await;
        assert_eq!(updated.min_disk_size, 8 * GIB, "{path}");
    }
    let status = server
        .images()
        .update(UpdateImageRequest {
            image_id: image.id.clone(),
            update_mask: mask(&["labels"]),
            labels: bad_labels,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("labels: "),
        "{}",
        status.message()
    );

    // A nested path changes just that subfield.
    let operation = server
        .disks()
        .update(UpdateDiskRequest {
            disk_id: disk.id.clone(),
            update_mask: mask(&["disk_placement_policy.placement_group_id"]),
            disk_placement_policy: Some(DiskPlacementPolicy {
                placement_group_id: "group-1".into(),
                placement_group_partition: 4,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let placed: Disk = server.wait_for(&operation).await;
    assert_eq!(
        placed.disk_placement_policy,
        Some(DiskPlacementPolicy {
            placement_group_id: "group-1".into(),
            placement_group_partition: 0,
        })
    );
    let status = server
        .disks()
        .update(UpdateDiskRequest {
            disk_id: disk.id.clone(),
            update_mask: mask(&["Name"]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .starts_with("update_mask: \"Name\" cannot be changed"),
        "{}",
        status.message()
    );
}

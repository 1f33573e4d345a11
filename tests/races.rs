//! Calls that race for one resource, sent at the same moment many times over, on every
//! store: memory, SQLite, and PostgreSQL with each racer on a replica of its own (when
//! `IMAGEPLANE_TEST_DATABASE_URL` names a database). Every round must end in an outcome
//! the rules allow, whichever call the store decides first: a copy and the delete of its
//! source are never both accepted; of two deletes one wins; an operation ends once.

mod common;

use common::{error_of, folder, postgres, TestServer, GIB};
use imageplane::pb::compute::{
    create_disk_request, create_image_request, disk, CreateDiskRequest, CreateImageRequest,
    CreateSnapshotRequest, DeleteDiskRequest, DeleteImageRequest, Disk, GetDiskRequest,
    GetImageRequest, Image, UpdateDiskRequest, UpdateImageRequest,
};
use imageplane::pb::operation::{operation, CancelOperationRequest, Operation};
use imageplane::server::Settings;
use imageplane::store::DatabaseUrl;
use imageplane::work::timing::Timing;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::{Code, Status};

/// How many times each pair races on each store.
const ROUNDS: usize = 16;

/// How long every operation runs: long enough that a copy is still running when the
/// delete of its source arrives.
const DELAY: Duration = Duration::from_millis(1500);

/// Makes every disk's name unique.
static NAMES: AtomicUsize = AtomicUsize::new(0);

/// The servers of one store: the first racer calls `a`, the second `b` (another replica
/// of the same PostgreSQL database, or the same server).
struct Racers {
    name: &'static str,
    a: TestServer,
    b: Option<TestServer>,
    schema: Option<(String, String)>,
}

impl Racers {
    fn b(&self) -> &TestServer {
        self.b.as_ref().unwrap_or(&self.a)
    }
}

async fn server(database: DatabaseUrl, timing: &Timing) -> TestServer {
    TestServer::start_with(Settings {
        database,
        operation_timing: timing.clone(),
        ..Settings::default()
    })
    .await
}

/// Every store, each operation taking [`DELAY`].
async fn stores() -> Vec<Racers> {
    stores_timed(Timing::uniform(DELAY)).await
}

async fn stores_timed(timing: Timing) -> Vec<Racers> {
    let directory = common::process::temp_dir("races");
    let mut stores = vec![
        Racers {
            name: "memory",
            a: server(DatabaseUrl::Memory, &timing).await,
            b: None,
            schema: None,
        },
        Racers {
            name: "sqlite",
            a: server(
                DatabaseUrl::Sqlite(directory.join("imageplane.sqlite3")),
                &timing,
            )
            .await,
            b: None,
            schema: None,
        },
    ];
    if let Some(base_url) = postgres::base_url("the race tests") {
        let (schema, url) = postgres::fresh_schema(&base_url, "races").await;
        stores.push(Racers {
            name: "postgres, two replicas",
            a: server(DatabaseUrl::Postgres(url.clone()), &timing).await,
            b: Some(server(DatabaseUrl::Postgres(url), &timing).await),
            schema: Some((base_url, schema)),
        });
    }
    stores
}

async fn clean_up(racers: Racers) {
    if let Some((base_url, schema)) = &racers.schema {
        drop(racers.a);
        drop(racers.b);
        postgres::drop_schema(base_url, schema).await;
    }
}

async fn ready_disks(server: &TestServer, folder_id: &str, count: usize) -> Vec<Disk> {
    let mut started = Vec::new();
    for index in 0..count {
        let request = CreateDiskRequest {
            folder_id: folder_id.into(),
            zone_id: "ru-central1-a".into(),
            size: GIB,
            name: format!("disk-{index}-{}", NAMES.fetch_add(1, Ordering::Relaxed)),
            ..Default::default()
        };
        started.push(server.disks().create(request).await.unwrap().into_inner());
    }
    let mut disks = Vec::new();
    for operation in &started {
        disks.push(server.wait_for::<Disk>(operation).await);
    }
    disks
}

async fn ready_images(server: &TestServer, folder_id: &str, count: usize) -> Vec<Image> {
    let mut started = Vec::new();
    for disk in ready_disks(server, folder_id, count).await {
        let request = CreateImageRequest {
            folder_id: folder_id.into(),
            name: format!("image-of-{}", disk.name),
            source: Some(create_image_request::Source::DiskId(disk.id)),
            ..Default::default()
        };
        started.push(server.images().create(request).await.unwrap().into_inner());
    }
    let mut images = Vec::new();
    for operation in &started {
        images.push(server.wait_for::<Image>(operation).await);
    }
    images
}

/// Sends both calls, the second `lag` after the first, and returns both answers.
async fn race<A, B>(
    first: impl Future<Output = Result<tonic::Response<A>, Status>> + Send + 'static,
    second: impl Future<Output = Result<tonic::Response<B>, Status>> + Send + 'static,
    lag: Duration,
) -> (Result<A, Status>, Result<B, Status>)
where
    A: Send + 'static,
    B: Send + 'static,
{
    let first = tokio::spawn(first);
    if !lag.is_zero() {
        tokio::time::sleep(lag).await;
    }
    let second = tokio::spawn(second);
    (
        first.await.unwrap().map(tonic::Response::into_inner),
        second.await.unwrap().map(tonic::Response::into_inner),
    )
}

/// A refusal the rules allow for a call that lost its race.
fn assert_refused_by_rule(name: &str, what: &str, status: &Status) {
    assert!(
        matches!(status.code(), Code::FailedPrecondition | Code::NotFound),
        "{name}: {what} was refused with {:?}: {}",
        status.code(),
        status.message()
    );
}

/// A copy from a source and the delete of that source: exactly one is accepted; an
/// accepted copy ends READY with its source still there, an accepted delete removes the
/// source and leaves no copy.
async fn copy_against_delete<C, D>(
    racers: &Racers,
    what: &str,
    sources: Vec<String>,
    copy: impl Fn(&TestServer, String) -> C,
    delete: impl Fn(&TestServer, String) -> D,
) where
    C: Future<Output = Result<tonic::Response<Operation>, Status>> + Send + 'static,
    D: Future<Output = Result<tonic::Response<Operation>, Status>> + Send + 'static,
{
    let name = racers.name;
    let mut rounds = Vec::new();
    for (round, source) in sources.into_iter().enumerate() {
        let copy = copy(&racers.a, source.clone());
        let delete = delete(racers.b(), source);
        // Every other round sends the delete first, and the second call follows the first
        // by a little more each time: the copy may read its source while the delete is
        // being committed, or the delete arrive while the copy is.
        let lag = Duration::from_micros(250 * (round as u64 / 2 % 8));
        rounds.push(tokio::spawn(async move {
            if round % 2 == 0 {
                race(copy, delete, lag).await
            } else {
                let (delete, copy) = race(delete, copy, lag).await;
                (copy, delete)
            }
        }));
    }
    let (mut copies, mut deletes) = (0, 0);
    for round in rounds {
        match round.await.unwrap() {
            (Ok(copy), Err(refused)) => {
                assert_refused_by_rule(name, &format!("the delete racing {what}"), &refused);
                let done = racers.a.wait(&copy).await;
                assert!(
                    matches!(done.result, Some(operation::Result::Response(_))),
                    "{name}: {what} accepted alone must succeed: {done:?}"
                );
                copies += 1;
            }
            (Err(refused), Ok(delete)) => {
                assert_refused_by_rule(name, what, &refused);
                let done = racers.b().wait(&delete).await;
                assert!(
                    matches!(done.result, Some(operation::Result::Response(_))),
                    "{name}: the delete accepted alone must succeed: {done:?}"
                );
                deletes += 1;
            }
            (Ok(copy), Ok(delete)) => panic!(
                "{name}: {what} ({}) and the delete of its source ({}) were both accepted",
                copy.id, delete.id
            ),
            (Err(copy), Err(delete)) => {
                panic!("{name}: {what} and the delete were both refused: {copy:?}; {delete:?}")
            }
        }
    }
    eprintln!("{name}: {what}: {copies} copies won, {deletes} deletes won");
}

#[tokio::test]
async fn a_copy_and_the_delete_of_its_source_are_never_both_accepted() {
    for racers in stores().await {
        let folder_id = folder();
        let images = ready_images(&racers.a, &folder_id, ROUNDS).await;
        let disks = ready_disks(&racers.a, &folder_id, ROUNDS).await;
        let more_images = ready_images(&racers.a, &folder_id, ROUNDS).await;

        let copy_folder = folder_id.clone();
        copy_against_delete(
            &racers,
            "an image copied from the image",
            images.into_iter().map(|image| image.id).collect(),
            |server, source| {
                let mut client = server.images();
                let request = CreateImageRequest {
                    folder_id: copy_folder.clone(),
                    source: Some(create_image_request::Source::ImageId(source)),
                    ..Default::default()
                };
                async move { client.create(request).await }
            },
            |server, image_id| {
                let mut client = server.images();
                async move { client.delete(DeleteImageRequest { image_id }).await }
            },
        )
        .await;

        let snapshot_folder = folder_id.clone();
        copy_against_delete(
            &racers,
            "a snapshot of the disk",
            disks.into_iter().map(|disk| disk.id).collect(),
            |server, disk_id| {
                let mut client = server.snapshots();
                let request = CreateSnapshotRequest {
                    folder_id: snapshot_folder.clone(),
                    disk_id,
                    ..Default::default()
                };
                async move { client.create(request).await }
            },
            |server, disk_id| {
                let mut client = server.disks();
                async move { client.delete(DeleteDiskRequest { disk_id }).await }
            },
        )
        .await;

        let disk_folder = folder_id.clone();
        copy_against_delete(
            &racers,
            "a disk made from the image",
            more_images.into_iter().map(|image| image.id).collect(),
            |server, image_id| {
                let mut client = server.disks();
                let request = CreateDiskRequest {
                    folder_id: disk_folder.clone(),
                    zone_id: "ru-central1-a".into(),
                    size: GIB,
                    source: Some(create_disk_request::Source::ImageId(image_id)),
                    ..Default::default()
                };
                async move { client.create(request).await }
            },
            |server, image_id| {
                let mut client = server.images();
                async move { client.delete(DeleteImageRequest { image_id }).await }
            },
        )
        .await;
        clean_up(racers).await;
    }
}

#[tokio::test]
async fn two_deletes_of_one_resource_have_one_winner_and_an_update_never_follows_a_delete() {
    for racers in stores().await {
        let name = racers.name;
        let folder_id = folder();
        let disks = ready_disks(&racers.a, &folder_id, 2 * ROUNDS).await;
        let (twice, updated) = disks.split_at(ROUNDS);

        let mut rounds = Vec::new();
        for disk in twice {
            let (mut a, mut b) = (racers.a.disks(), racers.b().disks());
            let (first, second) = (disk.id.clone(), disk.id.clone());
            rounds.push(tokio::spawn(race(
                async move { a.delete(DeleteDiskRequest { disk_id: first }).await },
                async move { b.delete(DeleteDiskRequest { disk_id: second }).await },
                Duration::ZERO,
            )));
        }
        for round in rounds {
            match round.await.unwrap() {
                (Ok(_), Err(refused)) | (Err(refused), Ok(_)) => {
                    assert_refused_by_rule(name, "the second delete", &refused)
                }
                other => panic!("{name}: two deletes of one disk answered {other:?}"),
            }
        }

        // An update and a delete: the delete always goes ahead (an update leaves nothing
        // running); the update either came first (and answered READY) or found the disk
        // being deleted.
        let mut rounds = Vec::new();
        for disk in updated {
            let (mut a, mut b) = (racers.a.disks(), racers.b().disks());
            let (first, second) = (disk.id.clone(), disk.id.clone());
            rounds.push(tokio::spawn(race(
                async move {
                    a.update(UpdateDiskRequest {
                        disk_id: first,
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["description".into()],
                        }),
                        description: "changed".into(),
                        ..Default::default()
                    })
                    .await
                },
                async move { b.delete(DeleteDiskRequest { disk_id: second }).await },
                Duration::ZERO,
            )));
        }
        for (round, disk) in rounds.into_iter().zip(updated) {
            let (update, delete) = round.await.unwrap();
            let delete = delete.unwrap_or_else(|status| {
                panic!("{name}: a delete racing an update was refused: {status:?}")
            });
            match update {
                Ok(done) => {
                    let Some(operation::Result::Response(any)) = done.result else {
                        panic!("{name}: an accepted update did not answer the disk: {done:?}")
                    };
                    let changed: Disk = prost::Message::decode(any.value.as_slice()).unwrap();
                    assert_eq!(changed.description, "changed", "{name}");
                    assert_eq!(changed.status, disk::Status::Ready as i32, "{name}");
                }
                Err(refused) => assert_eq!(
                    refused.code(),
                    Code::FailedPrecondition,
                    "{name}: {refused:?}"
                ),
            }
            racers.b().wait(&delete).await;
            let gone = racers
                .a
                .disks()
                .get(GetDiskRequest {
                    disk_id: disk.id.clone(),
                })
                .await
                .unwrap_err();
            assert_eq!(gone.code(), Code::NotFound, "{name}");
        }
        clean_up(racers).await;
    }
}

#[tokio::test]
async fn a_cancel_racing_the_ending_of_an_operation_ends_it_once() {
    for racers in stores().await {
        let name = racers.name;
        let folder_id = folder();
        let mut rounds = Vec::new();
        for round in 0..ROUNDS {
            let mut disks = racers.a.disks();
            let mut operations = racers.b().operations();
            let request = CreateDiskRequest {
                folder_id: folder_id.clone(),
                zone_id: "ru-central1-a".into(),
                size: GIB,
                name: format!("cancelled-{round}"),
                ..Default::default()
            };
            // Cancels spread around the moment the operation ends by itself.
            let offset =
                DELAY - Duration::from_millis(100) + Duration::from_millis(12) * round as u32;
            rounds.push(tokio::spawn(async move {
                let started = disks.create(request).await.unwrap().into_inner();
                tokio::time::sleep(offset).await;
                let cancel = operations
                    .cancel(CancelOperationRequest {
                        operation_id: started.id.clone(),
                    })
                    .await;
                (started, cancel)
            }));
        }
        let (mut cancelled, mut finished) = (0, 0);
        for round in rounds {
            let (started, cancel) = round.await.unwrap();
            let ended = racers.a.wait(&started).await;
            let disk_id =
                common::metadata::<imageplane::pb::compute::CreateDiskMetadata>(&started).disk_id;
            let disk = racers
                .a
                .disks()
                .get(GetDiskRequest {
                    disk_id: disk_id.clone(),
                })
                .await;
            match &ended.result {
                Some(operation::Result::Response(_)) => {
                    finished += 1;
                    let disk = disk.unwrap_or_else(|status| {
                        panic!(
                            "{name}: {} ended done but its disk is gone: {status:?}",
                            started.id
                        )
                    });
                    assert_eq!(
                        disk.into_inner().status,
                        disk::Status::Ready as i32,
                        "{name}"
                    );
                    if let Ok(answer) = &cancel {
                        assert!(
                            answer.get_ref().done,
                            "{name}: a cancel accepted after the ending answers it done"
                        );
                    }
                }
                Some(operation::Result::Error(_)) => {
                    cancelled += 1;
                    assert_eq!(error_of(&ended).0, Code::Cancelled as i32, "{name}");
                    assert!(
                        cancel.is_ok(),
                        "{name}: a cancelled operation's cancel failed"
                    );
                    assert_eq!(
                        disk.unwrap_err().code(),
                        Code::NotFound,
                        "{name}: a cancelled create leaves no disk"
                    );
                }
                None => panic!("{name}: {} is done with no result", started.id),
            }
            // Ended once: it reads the same from both replicas, and stays so.
            let again = racers.b().wait(&started).await;
            assert_eq!(
                again, ended,
                "{name}: the operation ended differently on replica b"
            );
        }
        eprintln!("{name}: {cancelled} cancelled, {finished} finished");
        clean_up(racers).await;
    }
}

#[tokio::test]
async fn a_copy_of_a_source_being_deleted_is_refused_naming_it() {
    let server = server(DatabaseUrl::Memory, &Timing::uniform(DELAY)).await;
    let folder_id = folder();
    let image = ready_images(&server, &folder_id, 1).await.remove(0);
    server
        .images()
        .delete(DeleteImageRequest {
            image_id: image.id.clone(),
        })
        .await
        .unwrap();
    let refused = server
        .images()
        .create(CreateImageRequest {
            folder_id: folder_id.clone(),
            source: Some(create_image_request::Source::ImageId(image.id.clone())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains(&image.id), "{refused:?}");
    // The image is still there while its delete runs, DELETING.
    let deleting = server
        .images()
        .get(GetImageRequest { image_id: image.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleting.status,
        imageplane::pb::compute::image::Status::Deleting as i32
    );
}

#[tokio::test]
async fn a_copy_inherits_its_source_as_stored_when_the_copy_is_written() {
    // Copies take no time here: each create is one write. On PostgreSQL replica `a`
    // keeps the disk it copied from, and replica `b` grows the disk in between: `a`'s
    // next copies must inherit the new size, not the size it read before.
    for racers in stores_timed(Timing::default()).await {
        let name = racers.name;
        let folder_id = folder();
        let disk = ready_disks(&racers.a, &folder_id, 1).await.remove(0);
        let mut size = disk.size;
        for round in 0..4 {
            let copy = CreateImageRequest {
                folder_id: folder_id.clone(),
                source: Some(create_image_request::Source::DiskId(disk.id.clone())),
                ..Default::default()
            };
            let started = racers.a.images().create(copy).await.unwrap().into_inner();
            let image = racers.a.wait_for::<Image>(&started).await;
            assert_eq!(
                image.min_disk_size, size,
                "{name}, round {round}: the image"
            );
            let snapshot = CreateSnapshotRequest {
                folder_id: folder_id.clone(),
                disk_id: disk.id.clone(),
                ..Default::default()
            };
            let started = racers.a.snapshots().create(snapshot).await.unwrap();
            let snapshot = racers
                .a
                .wait_for::<imageplane::pb::compute::Snapshot>(&started.into_inner())
                .await;
            assert_eq!(
                snapshot.disk_size, size,
                "{name}, round {round}: the snapshot"
            );
            size += GIB;
            let grow = UpdateDiskRequest {
                disk_id: disk.id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["size".into()],
                }),
                size,
                ..Default::default()
            };
            let started = racers.b().disks().update(grow).await.unwrap().into_inner();
            racers.b().wait_for::<Disk>(&started).await;
        }
        clean_up(racers).await;
    }
}

#[tokio::test]
async fn a_copy_refused_from_a_kept_source_is_decided_again_from_the_stored_one() {
    // Replica `a` reads an image whose min_disk_size replica `b` then lowers: a disk too
    // small for the size `a` read, but not for the stored one, must be made. On
    // PostgreSQL `a` kept the image, refuses from its copy, and must read it again.
    for racers in stores_timed(Timing::default()).await {
        let name = racers.name;
        let folder_id = folder();
        let image = ready_images(&racers.a, &folder_id, 1).await.remove(0);
        let set_min_disk_size = |min_disk_size| UpdateImageRequest {
            image_id: image.id.clone(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["min_disk_size".into()],
            }),
            min_disk_size,
            ..Default::default()
        };
        let disk_of = |size| CreateDiskRequest {
            folder_id: folder_id.clone(),
            zone_id: "ru-central1-a".into(),
            size,
            source: Some(create_disk_request::Source::ImageId(image.id.clone())),
            ..Default::default()
        };
        let raised = racers.b().images().update(set_min_disk_size(3 * GIB)).await;
        racers
            .b()
            .wait_for::<Image>(&raised.unwrap().into_inner())
            .await;
        let refused = racers.a.disks().create(disk_of(2 * GIB)).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{name}: {refused:?}");
        let lowered = racers
            .b()
            .images()
            .update(set_min_disk_size(image.size))
            .await;
        racers
            .b()
            .wait_for::<Image>(&lowered.unwrap().into_inner())
            .await;
        let started = racers.a.disks().create(disk_of(2 * GIB)).await;
        let started = started.unwrap_or_else(|status| panic!("{name}: {status:?}"));
        let disk = racers.a.wait_for::<Disk>(&started.into_inner()).await;
        assert_eq!(disk.size, 2 * GIB, "{name}");
        clean_up(racers).await;
    }
}

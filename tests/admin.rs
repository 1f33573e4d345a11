//! The admin API (`imageplane.v1.AdminService`): who may call it; what a reset leaves
//! (the public catalogue and the seed files' resources as they were at start, nothing
//! else), on every store and across two PostgreSQL replicas, over gRPC and REST, and
//! while creates race it; operation delays, held (`manual`) operations and finishing
//! them, across a restart and across replicas.

mod common;

use common::http_fixture::HttpFixture;
use common::process::ServerProcess;
use common::{error_of, folder, postgres, with_token, TestServer, GIB};
use imageplane::domain::identity::TokenFile;
use imageplane::pb::compute::{
    create_image_request, disk, CreateDiskMetadata, CreateDiskRequest, CreateImageRequest,
    CreateSnapshotRequest, DeleteDiskRequest, Disk, GetDiskRequest, GetImageRequest,
    ListImagesRequest, UpdateImageRequest,
};
use imageplane::pb::imageplane::v1::{
    FinishOperationRequest, OperationError, ResetRequest, ResetResponse,
};
use imageplane::pb::operation::{CancelOperationRequest, GetOperationRequest, Operation};
use imageplane::pb::yandex::cloud::iam::v1::iam_token_service_client::IamTokenServiceClient;
use imageplane::pb::yandex::cloud::iam::v1::{create_iam_token_request, CreateIamTokenRequest};
use imageplane::server::Settings;
use imageplane::store::DatabaseUrl;
use imageplane::work::timing::Timing;
use std::time::Duration;
use tonic::{Code, Request};

/// The id of the image the seed file holds.
const SEEDED_IMAGE: &str = "fd8seededadmin000001";

fn seed_file(folder_id: &str) -> (String, String) {
    (
        "the test's seed".into(),
        format!(
            r#"{{"image": {{"id": "{SEEDED_IMAGE}", "folderId": "{folder_id}", "name": "seeded", "description": "as at start"}}}}"#
        ),
    )
}

#[tokio::test]
async fn the_admin_api_is_refused_unless_the_server_enables_it() {
    let server = TestServer::start(Duration::ZERO).await;
    let refused = server.admin().reset(ResetRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("--enable-admin"),
        "{}",
        refused.message()
    );
    let response = reqwest::Client::new()
        .post(format!("http://{}/imageplane/v1/reset", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("--enable-admin"));
}

#[tokio::test]
async fn with_authentication_only_a_token_marked_admin_may_reset() {
    let server = TestServer::start_with(Settings {
        enable_admin: true,
        auth_tokens: Some(
            TokenFile::parse("tok-ops ops @admin\ntok-alice alice\n", "tokens").unwrap(),
        ),
        ..Settings::default()
    })
    .await;
    let without = server.admin().reset(ResetRequest {}).await.unwrap_err();
    assert_eq!(without.code(), Code::Unauthenticated);
    let alice = server
        .admin()
        .reset(with_token(ResetRequest {}, "tok-alice"))
        .await
        .unwrap_err();
    assert_eq!(alice.code(), Code::PermissionDenied);
    assert!(alice.message().contains("@admin"), "{}", alice.message());
    // An IAM token issued for the admin's subject is not marked: only the file's token is.
    let issued = IamTokenServiceClient::new(server.channel.clone())
        .create(CreateIamTokenRequest {
            identity: Some(
                create_iam_token_request::Identity::YandexPassportOauthToken("tok-ops".into()),
            ),
        })
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    let exchanged = server
        .admin()
        .reset(with_token(ResetRequest {}, &issued))
        .await
        .unwrap_err();
    assert_eq!(exchanged.code(), Code::PermissionDenied);
    server
        .admin()
        .reset(with_token(ResetRequest {}, "tok-ops"))
        .await
        .unwrap();
}

/// One server, or two replicas of one PostgreSQL database (`b` calls the second).
struct Servers {
    name: &'static str,
    a: TestServer,
    b: Option<TestServer>,
    schema: Option<(String, String)>,
}

async fn server(database: DatabaseUrl, seeded_folder: &str, delay: Duration) -> TestServer {
    TestServer::start_with(Settings {
        database,
        enable_admin: true,
        operation_timing: Timing::uniform(delay),
        seeds: vec![seed_file(seeded_folder)],
        ..Settings::default()
    })
    .await
}

/// Servers on every store whose copies take `delay`, seeded with one image in
/// `seeded_folder`.
async fn every_store(seeded_folder: &str, delay: Duration) -> Vec<Servers> {
    let directory = common::process::temp_dir("admin");
    let mut servers = vec![
        Servers {
            name: "memory",
            a: server(DatabaseUrl::Memory, seeded_folder, delay).await,
            b: None,
            schema: None,
        },
        Servers {
            name: "sqlite",
            a: server(
                DatabaseUrl::Sqlite(directory.join("imageplane.sqlite3")),
                seeded_folder,
                delay,
            )
            .await,
            b: None,
            schema: None,
        },
    ];
    if let Some(base_url) = postgres::base_url("the reset tests") {
        let (schema, url) = postgres::fresh_schema(&base_url, "admin").await;
        servers.push(Servers {
            name: "postgres, two replicas",
            a: server(DatabaseUrl::Postgres(url.clone()), seeded_folder, delay).await,
            b: Some(server(DatabaseUrl::Postgres(url), seeded_folder, delay).await),
            schema: Some((base_url, schema)),
        });
    }
    servers
}

impl Servers {
    fn b(&self) -> &TestServer {
        self.b.as_ref().unwrap_or(&self.a)
    }

    async fn clean_up(self) {
        if let Some((base_url, schema)) = &self.schema {
            drop(self.a);
            drop(self.b);
            postgres::drop_schema(base_url, schema).await;
        }
    }
}

fn disk_in(folder_id: &str, name: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        name: name.into(),
        zone_id: "ru-central1-a".into(),
        size: GIB,
        ..Default::default()
    }
}

async fn public_image_count(server: &TestServer) -> usize {
    server
        .images()
        .list(ListImagesRequest {
            folder_id: "standard-images".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .images
        .len()
}

#[tokio::test]
async fn a_reset_leaves_the_catalogue_and_the_seeds_as_at_start_and_nothing_else() {
    let seeded_folder = folder();
    // Copies take an hour: the created disk's operation is still running at the reset.
    for servers in every_store(&seeded_folder, Duration::from_secs(3600)).await {
        let name = servers.name;
        let public_images = public_image_count(&servers.a).await;
        assert!(public_images > 0, "{name}");
        let folder_id = folder();
        let running = servers
            .a
            .disks()
            .create(disk_in(&folder_id, "running"))
            .await
            .unwrap()
            .into_inner();
        let mut keyed = Request::new(disk_in(&folder_id, "keyed"));
        keyed
            .metadata_mut()
            .insert("idempotency-key", "key-before-reset".parse().unwrap());
        let keyed = servers.a.disks().create(keyed).await.unwrap().into_inner();
        servers
            .a
            .images()
            .update(UpdateImageRequest {
                image_id: SEEDED_IMAGE.into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
                description: "changed".into(),
                ..Default::default()
            })
            .await
            .unwrap();

        // Through the other replica, where there is one.
        let counts: ResetResponse = servers
            .b()
            .admin()
            .reset(ResetRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(counts.operations_removed, 3, "{name}: {counts:?}");
        assert_eq!(
            counts.resources_seeded as usize,
            public_images + 1,
            "{name}: {counts:?}"
        );
        assert_eq!(
            counts.resources_removed as usize,
            public_images + 1 + 2,
            "{name}: {counts:?}"
        );

        // Every replica sees the state after the reset.
        for server in [&servers.a, servers.b()] {
            for operation in [&running, &keyed] {
                let gone = server
                    .operations()
                    .get(GetOperationRequest {
                        operation_id: operation.id.clone(),
                    })
                    .await
                    .unwrap_err();
                assert_eq!(gone.code(), Code::NotFound, "{name}");
            }
            let disk_id = common::metadata::<CreateDiskMetadata>(&running).disk_id;
            let gone = server
                .disks()
                .get(GetDiskRequest { disk_id })
                .await
                .unwrap_err();
            assert_eq!(gone.code(), Code::NotFound, "{name}");
            let seeded = server
                .images()
                .get(GetImageRequest {
                    image_id: SEEDED_IMAGE.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(seeded.description, "as at start", "{name}");
            assert_eq!(public_image_count(server).await, public_images, "{name}");
        }

        // The key is forgotten: the same key and request start a new operation.
        let mut again = Request::new(disk_in(&folder_id, "keyed"));
        again
            .metadata_mut()
            .insert("idempotency-key", "key-before-reset".parse().unwrap());
        let again = servers.a.disks().create(again).await.unwrap().into_inner();
        assert_ne!(again.id, keyed.id, "{name}");
        // And a name freed by the reset can be taken again.
        servers
            .a
            .disks()
            .create(disk_in(&folder_id, "running"))
            .await
            .unwrap();
        servers.clean_up().await;
    }
}

/// Sends `CREATES` disk creates to `a`, eight at a time four milliseconds apart (a reset
/// on PostgreSQL first waits for the writes under way, and the creates must outlast
/// that), and a reset to `b` among them; checks that each create was kept whole or removed whole, and
/// returns how many of each.
async fn race_creates_with_a_reset(servers: &Servers, round: usize) -> (usize, usize) {
    const CREATES: usize = 64;
    let name = servers.name;
    let folder_id = folder();
    let creates = (0..CREATES).map(|index| {
        let mut disks = servers.a.disks();
        let request = disk_in(&folder_id, &format!("racer-{index}"));
        let wave = Duration::from_millis(index as u64 / 8 * 4);
        async move {
            tokio::time::sleep(wave).await;
            disks.create(request).await
        }
    });
    let reset = async {
        // A later moment each round, so that some round lands among the creates.
        tokio::time::sleep(Duration::from_millis(round as u64 % 8 * 4)).await;
        servers.b().admin().reset(ResetRequest {}).await
    };
    let (created, reset) = tokio::join!(futures_util::future::join_all(creates), reset);
    reset.unwrap();
    let (mut kept, mut removed) = (0, 0);
    for created in created {
        let operation = created.unwrap().into_inner();
        let disk_id = common::metadata::<CreateDiskMetadata>(&operation).disk_id;
        let found_operation = servers
            .a
            .operations()
            .get(GetOperationRequest {
                operation_id: operation.id.clone(),
            })
            .await;
        let found_disk = servers.a.disks().get(GetDiskRequest { disk_id }).await;
        match (found_operation, found_disk) {
            (Ok(_), Ok(_)) => kept += 1,
            (Err(a), Err(b)) if a.code() == Code::NotFound && b.code() == Code::NotFound => {
                removed += 1
            }
            (operation, disk) => {
                panic!("{name}: half of a create survived: {operation:?} {disk:?}")
            }
        }
    }
    (kept, removed)
}

#[tokio::test]
async fn a_create_racing_a_reset_is_kept_whole_or_removed_whole() {
    // Copies take an hour: each create stores a CREATING disk with a running operation.
    for servers in every_store(&folder(), Duration::from_secs(3600)).await {
        let mut seen = (false, false);
        for round in 0..24 {
            let (kept, removed) = race_creates_with_a_reset(&servers, round).await;
            seen = (seen.0 || kept > 0, seen.1 || removed > 0);
            if seen == (true, true) {
                break;
            }
        }
        // Otherwise the reset never landed among the creates, and nothing was tested.
        assert_eq!(
            seen,
            (true, true),
            "{}: (some kept, some removed)",
            servers.name
        );
        servers.clean_up().await;
    }
}

#[tokio::test]
async fn a_reset_over_rest_takes_no_body_or_an_empty_one() {
    let server = server(DatabaseUrl::Memory, &folder(), Duration::ZERO).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/imageplane/v1/reset", server.address);
    for body in [None, Some("{}")] {
        let mut request = client.post(&url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let counts: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(counts["resourcesSeeded"].as_str().is_some(), "{counts}");
        assert_eq!(counts["operationsRemoved"], "0", "{counts}");
    }
}

/// A server on `database` whose work takes the delays of `timing` (its text form).
async fn timed_server(database: DatabaseUrl, timing: &str) -> TestServer {
    TestServer::start_with(Settings {
        database,
        enable_admin: true,
        operation_timing: Timing::parse(timing).unwrap(),
        ..Settings::default()
    })
    .await
}

fn finish(operation_id: &str, error: Option<(i32, &str)>) -> FinishOperationRequest {
    FinishOperationRequest {
        operation_id: operation_id.into(),
        error: error.map(|(code, message)| OperationError {
            code,
            message: message.into(),
        }),
    }
}

async fn operation(server: &TestServer, id: &str) -> Operation {
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
async fn a_held_operation_runs_until_finished_and_ends_as_asked() {
    let server = timed_server(DatabaseUrl::Memory, "create-disk=manual,delete-disk=manual").await;
    let folder_id = folder();
    let held = server
        .disks()
        .create(disk_in(&folder_id, "held"))
        .await
        .unwrap()
        .into_inner();
    let disk_id = common::metadata::<CreateDiskMetadata>(&held).disk_id;
    // Held: still running well after any delay would have passed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!operation(&server, &held.id).await.done);
    let disk = server
        .disks()
        .get(GetDiskRequest {
            disk_id: disk_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disk.status, disk::Status::Creating as i32);

    // Finished without an error: done, its disk READY.
    let done = server
        .admin()
        .finish_operation(finish(&held.id, None))
        .await
        .unwrap()
        .into_inner();
    assert!(done.done);
    let disk: Disk = server.wait_for(&done).await;
    assert_eq!(disk.status, disk::Status::Ready as i32);
    let again = server
        .admin()
        .finish_operation(finish(&held.id, None))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    // Finished with an error: failed with it, the create undone.
    let failing = server
        .disks()
        .create(disk_in(&folder_id, "failing"))
        .await
        .unwrap()
        .into_inner();
    let failed = server
        .admin()
        .finish_operation(finish(&failing.id, Some((9, "no quota left"))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_of(&failed), (9, "no quota left".to_string()));
    let gone = server
        .disks()
        .get(GetDiskRequest {
            disk_id: common::metadata::<CreateDiskMetadata>(&failing).disk_id,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // A held delete: the disk is DELETING until the finish.
    let deleting = server
        .disks()
        .delete(DeleteDiskRequest {
            disk_id: disk_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!operation(&server, &deleting.id).await.done);
    server
        .admin()
        .finish_operation(finish(&deleting.id, None))
        .await
        .unwrap();
    let gone = server
        .disks()
        .get(GetDiskRequest { disk_id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // What cannot be finished.
    for (request, code) in [
        (finish("oprnosuchoperation00", None), Code::NotFound),
        (finish(&deleting.id, None), Code::FailedPrecondition),
        (finish("", None), Code::InvalidArgument),
    ] {
        let refused = server.admin().finish_operation(request).await.unwrap_err();
        assert_eq!(refused.code(), code, "{refused:?}");
    }
    let running = server
        .disks()
        .create(disk_in(&folder_id, "running"))
        .await
        .unwrap()
        .into_inner();
    let refused = server
        .admin()
        .finish_operation(finish(&running.id, Some((0, "not a failure"))))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("error.code"), "{refused:?}");
}

#[tokio::test]
async fn a_finish_over_rest_takes_no_body_or_an_error() {
    let server = timed_server(DatabaseUrl::Memory, "create-disk=manual").await;
    let folder_id = folder();
    let client = reqwest::Client::new();
    let finish_url = |id: &str| {
        format!(
            "http://{}/imageplane/v1/operations/{id}:finish",
            server.address
        )
    };
    let first = server
        .disks()
        .create(disk_in(&folder_id, "first"))
        .await
        .unwrap()
        .into_inner();
    let response = client.post(finish_url(&first.id)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let ended: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(ended["done"], true, "{ended}");
    assert!(ended["response"]["id"].is_string(), "{ended}");

    let second = server
        .disks()
        .create(disk_in(&folder_id, "second"))
        .await
        .unwrap()
        .into_inner();
    let response = client
        .post(finish_url(&second.id))
        .header("content-type", "application/json")
        .body(r#"{"error": {"code": 9, "message": "no quota left"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ended: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(ended["error"]["code"], 9, "{ended}");
    assert_eq!(ended["error"]["message"], "no quota left", "{ended}");
}

#[tokio::test]
async fn delays_set_at_run_time_apply_to_work_started_after() {
    let server = timed_server(DatabaseUrl::Memory, "0s").await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/imageplane/v1/operationTiming", server.address);
    let timing: serde_json::Value =
        serde_json::from_str(&client.get(&url).send().await.unwrap().text().await.unwrap())
            .unwrap();
    assert_eq!(timing["defaultDelay"], "0s", "{timing}");

    let folder_id = folder();
    let before = server
        .disks()
        .create(disk_in(&folder_id, "before"))
        .await
        .unwrap()
        .into_inner();
    let response = client
        .put(&url)
        .header("content-type", "application/json")
        .body(r#"{"defaultDelay": "0s", "kinds": {"create-disk": "manual"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let timing: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(timing["kinds"]["create-disk"], "manual", "{timing}");

    // Started before: not held. Started after: held; other kinds are not.
    server.wait(&before).await;
    let after = server
        .disks()
        .create(disk_in(&folder_id, "after"))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!operation(&server, &after.id).await.done);
    let snapshot = server
        .snapshots()
        .create(CreateSnapshotRequest {
            folder_id: folder_id.clone(),
            disk_id: common::metadata::<CreateDiskMetadata>(&before).disk_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    server.wait(&snapshot).await;

    let refused = client
        .put(&url)
        .header("content-type", "application/json")
        .body(r#"{"kinds": {"create-vm": "1s"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("create-vm"));
}

#[tokio::test]
async fn a_held_operation_stays_held_across_a_restart_and_a_replica_finishes_it() {
    // The binary on SQLite: held, stopped, started again on the same file: still held.
    let directory = common::process::temp_dir("held");
    let database = format!("sqlite:{}", directory.join("imageplane.sqlite3").display());
    let flags = [
        "--database-url",
        &database,
        "--enable-admin",
        "--operation-delay",
        "create-disk=manual",
    ];
    let client = reqwest::Client::new();
    let mut server = ServerProcess::start(&flags, directory.join("first.log"));
    let created: serde_json::Value = serde_json::from_str(
        &client
            .post(format!("{}/compute/v1/disks", server.url()))
            .header("content-type", "application/json")
            .body(
                r#"{"folderId": "f1", "name": "held", "zoneId": "ru-central1-a", "size": "4194304"}"#,
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let id = created["id"].as_str().expect("an operation").to_string();
    server.terminate();
    let server = ServerProcess::start(&flags, directory.join("second.log"));
    let get_operation = || async {
        let text = client
            .get(format!("{}/operations/{id}", server.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_operation().await["done"], false);
    let finished = client
        .post(format!(
            "{}/imageplane/v1/operations/{id}:finish",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 200);
    assert_eq!(get_operation().await["done"], true);
    drop(server);
    let _ = std::fs::remove_dir_all(&directory);

    // PostgreSQL: held on one replica, finished through the other.
    let Some(base_url) = postgres::base_url("the held-operation replica test") else {
        return;
    };
    let (schema, url) = postgres::fresh_schema(&base_url, "held").await;
    let a = timed_server(DatabaseUrl::Postgres(url.clone()), "create-disk=manual").await;
    let b = timed_server(DatabaseUrl::Postgres(url), "create-disk=manual").await;
    let held = a
        .disks()
        .create(disk_in(&folder(), "held"))
        .await
        .unwrap()
        .into_inner();
    let ended = b
        .admin()
        .finish_operation(finish(&held.id, Some((14, "try again"))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_of(&ended), (14, "try again".to_string()));
    assert!(operation(&a, &held.id).await.done);
    drop((a, b));
    postgres::drop_schema(&base_url, &schema).await;
}

#[tokio::test]
async fn an_import_ends_no_sooner_than_its_delay() {
    let fixture = HttpFixture::start().await;
    fixture.add("disk.raw", vec![42u8; 100_000]);
    let server = timed_server(DatabaseUrl::Memory, "import-image=1h").await;
    let importing = server
        .images()
        .create(CreateImageRequest {
            folder_id: folder(),
            source: Some(create_image_request::Source::Uri(
                fixture.url("/files/disk.raw"),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    common::until("the import did not fetch its file", || async {
        fixture.requests() > 0
    })
    .await;
    // 100 KB from loopback: fetched long before this, and still running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!operation(&server, &importing.id).await.done);
    let cancelled = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: importing.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_of(&cancelled).0, Code::Cancelled as i32);
}

#[tokio::test]
async fn a_change_with_a_delay_is_stored_at_once_and_its_operation_ends_done_after_it() {
    let server = timed_server(
        DatabaseUrl::Memory,
        "0s,update-disk=manual,move-disk=300ms,update-image=200ms",
    )
    .await;
    let folder_id = folder();
    let created = server
        .disks()
        .create(disk_in(&folder_id, "changed"))
        .await
        .unwrap()
        .into_inner();
    let disk: Disk = server.wait_for(&created).await;

    // Held: the change is there at once, its operation runs until finished.
    let update = server
        .disks()
        .update(imageplane::pb::compute::UpdateDiskRequest {
            disk_id: disk.id.clone(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
            description: "changed at once".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!update.done);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!operation(&server, &update.id).await.done);
    let stored = server
        .disks()
        .get(GetDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.description, "changed at once");
    // While it runs the disk is in use: a delete waits for it.
    let refused = server
        .disks()
        .delete(DeleteDiskRequest {
            disk_id: disk.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    // It cannot fail or be cancelled: it was stored.
    let refused = server
        .admin()
        .finish_operation(finish(&update.id, Some((9, "no"))))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let refused = server
        .operations()
        .cancel(CancelOperationRequest {
            operation_id: update.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("cannot be cancelled"),
        "{refused:?}"
    );
    let done = server
        .admin()
        .finish_operation(finish(&update.id, None))
        .await
        .unwrap()
        .into_inner();
    let answered: Disk = server.wait_for(&done).await;
    assert_eq!(answered.description, "changed at once");

    // Timed: a move ends done by itself, with the moved disk.
    let destination = folder();
    let moving = server
        .disks()
        .r#move(imageplane::pb::compute::MoveDiskRequest {
            disk_id: disk.id.clone(),
            destination_folder_id: destination.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!moving.done);
    let moved: Disk = server.wait_for(&moving).await;
    assert_eq!(moved.folder_id, destination);

    // A change's kind takes no operation fault: its method does.
    let refused = server
        .admin()
        .add_fault(imageplane::pb::imageplane::v1::Fault {
            target: Some(imageplane::pb::imageplane::v1::fault::Target::Operation(
                "update-image".into(),
            )),
            code: "INTERNAL".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("ImageService/Update"),
        "{refused:?}"
    );
}

//! State snapshots (`AdminService.ExportState`/`ImportState`, `GET`/`PUT
//! /imageplane/v1/state`): a snapshot carries the whole state exactly from any store to
//! any other (memory, SQLite, PostgreSQL and back), running operations and idempotency
//! keys included; an export racing creates reads one state; older schemas are migrated,
//! newer ones refused naming both versions; a bad snapshot is refused by its line and
//! changes nothing. The command line (`state export|import`, `serve --restore`) is tested
//! in tests/binary.rs.

mod common;

use common::{folder, postgres, TestServer, GIB};
use imageplane::pb::compute::{
    CreateDiskRequest, CreateImageRequest, GetDiskRequest, ListImagesRequest, UpdateImageRequest,
};
use imageplane::pb::google::api::HttpBody;
use imageplane::pb::imageplane::v1::{
    ExportStateRequest, FinishOperationRequest, ImportStateResponse,
};
use imageplane::server::Settings;
use imageplane::store::DatabaseUrl;
use imageplane::work::timing::Timing;
use serde_json::Value as Json;
use std::time::Duration;
use tonic::{Code, Request};

/// The schema this imageplane writes.
const LATEST: i64 = 4;

/// A server whose disks' creates are held until finished (`create-disk=manual`) and
/// whose other work ends at once.
async fn server(database: DatabaseUrl) -> TestServer {
    TestServer::start_with(Settings {
        database,
        enable_admin: true,
        operation_timing: Timing::parse("0s,create-disk=manual").unwrap(),
        ..Settings::default()
    })
    .await
}

/// The snapshot file, over gRPC (joined from its parts).
async fn export(server: &TestServer) -> Vec<u8> {
    let mut parts = server
        .admin()
        .export_state(ExportStateRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut file = Vec::new();
    let mut first = true;
    while let Some(part) = parts.message().await.unwrap() {
        if first {
            assert_eq!(part.content_type, "application/x-ndjson");
            first = false;
        }
        file.extend_from_slice(&part.data);
    }
    file
}

/// Sends a snapshot file over gRPC in parts of 64 KiB.
async fn import(server: &TestServer, file: &[u8]) -> Result<ImportStateResponse, tonic::Status> {
    let parts: Vec<HttpBody> = file
        .chunks(64 << 10)
        .map(|chunk| HttpBody {
            content_type: "application/x-ndjson".into(),
            data: chunk.to_vec(),
            extensions: Vec::new(),
        })
        .collect();
    server
        .admin()
        .import_state(tokio_stream::iter(parts))
        .await
        .map(tonic::Response::into_inner)
}

/// The header and the rows of a snapshot file.
fn lines(file: &[u8]) -> (Json, Vec<Json>) {
    let text = std::str::from_utf8(file).unwrap();
    let mut lines = text.lines().map(|line| serde_json::from_str(line).unwrap());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// The rows, without what belongs to the replica that holds a running operation (its id
/// and lease), sorted: what must be equal after a round trip.
fn state_of(file: &[u8]) -> Vec<String> {
    let (_, rows) = lines(file);
    let mut rows: Vec<String> = rows
        .into_iter()
        .map(|mut line| {
            if line["table"] == "operations" {
                let row = line["row"].as_object_mut().unwrap();
                row.remove("owner");
                row.remove("lease_until_ms");
            }
            line.to_string()
        })
        .collect();
    rows.sort();
    rows
}

fn rows_of<'a>(rows: &'a [Json], table: &str) -> Vec<&'a Json> {
    rows.iter()
        .filter(|line| line["table"] == table)
        .map(|line| &line["row"])
        .collect()
}

fn image(folder_id: &str, name: &str) -> CreateImageRequest {
    CreateImageRequest {
        folder_id: folder_id.into(),
        name: name.into(),
        source: Some(
            imageplane::pb::compute::create_image_request::Source::ImageId(
                "fd8ubuntu2204v202611".into(),
            ),
        ),
        ..Default::default()
    }
}

fn disk(folder_id: &str, name: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        name: name.into(),
        zone_id: "ru-central1-a".into(),
        size: GIB,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_snapshot_carries_the_whole_state_from_any_store_to_any_other() {
    let folder_id = folder();
    // A created disk is still CREATING, its operation running.
    let source = server(DatabaseUrl::Memory).await;
    let ready = source
        .wait(
            &source
                .images()
                .create(image(&folder_id, "ready"))
                .await
                .unwrap()
                .into_inner(),
        )
        .await;
    assert!(ready.done);
    let mut keyed = Request::new(disk(&folder_id, "held"));
    keyed
        .metadata_mut()
        .insert("idempotency-key", "key-in-the-snapshot".parse().unwrap());
    let running = source.disks().create(keyed).await.unwrap().into_inner();
    assert!(!running.done);
    let held: imageplane::pb::compute::CreateDiskMetadata = common::metadata(&running);
    let file = export(&source).await;
    let (header, rows) = lines(&file);
    assert_eq!(header["imageplaneState"], 1, "{header}");
    assert_eq!(header["schema"], LATEST, "{header}");
    assert_eq!(LATEST, imageplane::store::snapshot::latest_schema());
    assert!(rows_of(&rows, "resources").len() > 2);
    assert_eq!(rows_of(&rows, "idempotency_keys").len(), 1);
    // "table" first, then the columns in the table's order: a person can read it.
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with(r#"{"table":"resources","row":{"id":"#),
        "{text}"
    );

    let directory = common::process::temp_dir("state");
    let mut stores = vec![(
        "sqlite",
        DatabaseUrl::Sqlite(directory.join("imageplane.sqlite3")),
        None,
    )];
    if let Some(base_url) = postgres::base_url("the snapshot round trip") {
        let (schema, url) = postgres::fresh_schema(&base_url, "state").await;
        stores.push((
            "postgres",
            DatabaseUrl::Postgres(url),
            Some((base_url, schema)),
        ));
    }
    // memory → sqlite → postgres → a second sqlite: each holds what the first held.
    stores.push((
        "sqlite again",
        DatabaseUrl::Sqlite(directory.join("again").join("imageplane.sqlite3")),
        None,
    ));
    let mut previous = file.clone();
    for (name, database, schema) in stores {
        let target = server(database).await;
        // Something to be replaced.
        target
            .disks()
            .create(disk(&folder_id, "replaced"))
            .await
            .unwrap();
        let counts = import(&target, &previous).await.unwrap();
        assert_eq!(counts.snapshot_schema, LATEST, "{name}");
        assert_eq!(counts.idempotency_keys_imported, 1, "{name}: {counts:?}");
        assert!(counts.resources_removed > 0, "{name}: {counts:?}");
        let again = export(&target).await;
        assert_eq!(state_of(&again), state_of(&file), "{name}");

        // The API answers from it: the same resources, the key replays its operation,
        // and the running operation runs here now.
        let names: Vec<String> = target
            .images()
            .list(ListImagesRequest {
                folder_id: folder_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .images
            .into_iter()
            .map(|image| image.name)
            .collect();
        assert_eq!(names, ["ready"], "{name}");
        let mut replay = Request::new(disk(&folder_id, "held"));
        replay
            .metadata_mut()
            .insert("idempotency-key", "key-in-the-snapshot".parse().unwrap());
        let replayed = target.disks().create(replay).await.unwrap().into_inner();
        assert_eq!(replayed.id, running.id, "{name}");
        previous = again;
        if name == "sqlite again" {
            let finished = target
                .admin()
                .finish_operation(FinishOperationRequest {
                    operation_id: running.id.clone(),
                    error: None,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(finished.done, "{name}");
            let stored = target
                .disks()
                .get(GetDiskRequest {
                    disk_id: held.disk_id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(stored.status, 2, "{name}: READY");
        }
        drop(target);
        if let Some((base_url, schema)) = schema {
            postgres::drop_schema(&base_url, &schema).await;
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn an_export_reads_one_state_while_creates_race_it() {
    let mut stores = vec![(
        "sqlite",
        DatabaseUrl::Sqlite(common::process::temp_dir("state-race").join("db.sqlite3")),
        None,
    )];
    if let Some(base_url) = postgres::base_url("the export race") {
        let (schema, url) = postgres::fresh_schema(&base_url, "state_race").await;
        stores.push((
            "postgres",
            DatabaseUrl::Postgres(url),
            Some((base_url, schema)),
        ));
    }
    for (name, database, schema) in stores {
        let target = server(database).await;
        let folder_id = folder();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for writer in 0..4 {
            let mut disks = target.disks();
            let folder_id = folder_id.clone();
            let stop = std::sync::Arc::clone(&stop);
            writers.push(tokio::spawn(async move {
                let mut created = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    disks
                        .create(disk(&folder_id, &format!("d{writer}-{created}")))
                        .await
                        .unwrap();
                    created += 1;
                }
                created
            }));
        }
        let mut exports = 0;
        let mut largest = 0;
        while exports < 20 {
            let (_, rows) = lines(&export(&target).await);
            // Each create stores its disk and its operation in one transaction: a
            // consistent read sees both or neither of every create.
            let disks = rows_of(&rows, "resources")
                .iter()
                .filter(|row| row["folder_id"] == folder_id.as_str())
                .count();
            let operations = rows_of(&rows, "operations")
                .iter()
                .filter(|row| row["folder_id"] == folder_id.as_str())
                .count();
            assert_eq!(disks, operations, "{name}: export {exports}");
            largest = largest.max(disks);
            exports += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut created = 0;
        for writer in writers {
            created += writer.await.unwrap();
        }
        assert!(
            created > 0 && largest > 0,
            "{name}: the creates raced the exports"
        );
        drop(target);
        if let Some((base_url, schema)) = schema {
            postgres::drop_schema(&base_url, &schema).await;
        }
    }
}

/// `file` as it would be at an older schema: the tables and columns later migrations
/// added (`snapshot::ADDED`, which the migrations below then check) are left out.
fn at_schema(file: &[u8], schema: i64) -> Vec<u8> {
    let added = |name: &str| {
        imageplane::store::snapshot::ADDED
            .iter()
            .any(|(added, since)| *added == name && *since > schema)
    };
    let (mut header, rows) = lines(file);
    header["schema"] = schema.into();
    let mut out = format!("{header}\n");
    for mut line in rows {
        let table = line["table"].as_str().unwrap().to_string();
        if added(&table) {
            continue;
        }
        let row = line["row"].as_object_mut().unwrap();
        row.retain(|column, _| !added(&format!("{table}.{column}")));
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

#[tokio::test]
async fn an_older_snapshot_is_migrated_and_a_newer_one_refused_naming_both_versions() {
    let folder_id = folder();
    let source = server(DatabaseUrl::Memory).await;
    let created = source
        .images()
        .create(CreateImageRequest {
            family: "fam".into(),
            ..image(&folder_id, "old")
        })
        .await
        .unwrap()
        .into_inner();
    source.wait(&created).await;
    source
        .images()
        .update(UpdateImageRequest {
            image_id: common::metadata::<imageplane::pb::compute::CreateImageMetadata>(&created)
                .image_id,
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
            description: "updated".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let current = export(&source).await;
    let (_, current_rows) = lines(&current);

    for schema in 1..LATEST {
        let target = server(DatabaseUrl::Memory).await;
        let counts = import(&target, &at_schema(&current, schema)).await.unwrap();
        assert_eq!(counts.snapshot_schema, schema);
        // The migrations filled what the old rows lack from their bodies and resources.
        let (header, rows) = lines(&export(&target).await);
        assert_eq!(header["schema"], LATEST);
        let mine = |rows: &[Json], table: &str| -> Vec<Json> {
            let mut mine: Vec<Json> = rows_of(rows, table)
                .into_iter()
                .filter(|row| row["folder_id"] == folder_id.as_str())
                .cloned()
                .collect();
            mine.sort_by_key(|row| row["id"].to_string());
            mine
        };
        assert_eq!(mine(&rows, "resources").len(), 1, "schema {schema}");
        let (old, new) = (mine(&current_rows, "resources"), mine(&rows, "resources"));
        for column in ["status", "family", "created_at_ms", "body"] {
            assert_eq!(new[0][column], old[0][column], "schema {schema}: {column}");
        }
        let (old, new) = (mine(&current_rows, "operations"), mine(&rows, "operations"));
        assert_eq!(new.len(), 2, "schema {schema}: the create and the update");
        for (new, old) in new.iter().zip(&old) {
            assert_eq!(new["folder_id"], old["folder_id"], "schema {schema}");
            assert_eq!(
                new["created_at_ms"], old["created_at_ms"],
                "schema {schema}"
            );
        }
        // Lists order and filter on the filled columns.
        let listed = target
            .images()
            .list(ListImagesRequest {
                folder_id: folder_id.clone(),
                filter: "family = \"fam\"".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .images;
        assert_eq!(listed.len(), 1, "schema {schema}");
    }

    let newer = String::from_utf8(current.clone()).unwrap().replacen(
        &format!("\"schema\":{LATEST}"),
        &format!("\"schema\":{}", LATEST + 1),
        1,
    );
    let refused = import(&source, newer.as_bytes()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let expected = format!("schema version {}", LATEST + 1);
    assert!(
        refused.message().contains(&expected) && refused.message().contains(&format!("({LATEST}")),
        "{}",
        refused.message()
    );
    let newer = String::from_utf8(current.clone()).unwrap().replacen(
        "\"imageplaneState\":1",
        "\"imageplaneState\":2",
        1,
    );
    let refused = import(&source, newer.as_bytes()).await.unwrap_err();
    assert!(
        refused.message().contains("format version 2") && refused.message().contains("(1)"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_bad_snapshot_is_refused_naming_its_line_and_changes_nothing() {
    let folder_id = folder();
    let target = server(DatabaseUrl::Memory).await;
    // Held running: its operation line, without its disk's, is a bad snapshot.
    target
        .disks()
        .create(disk(&folder_id, "held"))
        .await
        .unwrap();
    target
        .wait(
            &target
                .images()
                .create(image(&folder_id, "kept"))
                .await
                .unwrap()
                .into_inner(),
        )
        .await;
    let before = export(&target).await;
    let text = String::from_utf8(before.clone()).unwrap();
    let header = text.lines().next().unwrap();
    let resource = text
        .lines()
        .find(|line| line.contains(&folder_id) && line.contains("\"table\":\"resources\""))
        .unwrap();
    let running = text
        .lines()
        .find(|line| line.contains("\"table\":\"operations\"") && line.contains("\"done\":false"))
        .unwrap();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("not json\n".into(), "line 1"),
        (r#"{"imageplaneState":1}"#.into(), "\"schema\""),
        (format!("{header}\nnot json\n"), "line 2: not a JSON object"),
        (
            format!("{header}\n{{\"table\":\"users\",\"row\":{{}}}}\n"),
            "unknown table \"users\"",
        ),
        (
            format!(
                "{header}\n{}\n",
                resource.replace("\"kind\":", "\"colour\":1,\"kind\":")
            ),
            "no column \"colour\"",
        ),
        (
            format!(
                "{header}\n{}\n",
                resource.replace("\"kind\":1", "\"kind\":\"one\"")
            ),
            "resources.kind must be a 32-bit integer",
        ),
        (
            format!(
                "{header}\n{}\n",
                resource.replace("\"body\":\"", "\"body\":\"!!")
            ),
            "base64",
        ),
        (
            format!(
                "{header}\n{}\n",
                resource.replace("{\"id\":", "{\"id\":\"x\",\"id\":")
            ),
            "line 2: not a JSON object: the key \"id\" is given twice",
        ),
        (
            format!(
                "{header}\n{}\n",
                resource.replace("\"family\":\"\"", "\"family\":null")
            ),
            "column resources.family must not be null",
        ),
        (
            format!("{header}\n{running}\n"),
            "it is running, and its Disk",
        ),
        (
            format!("{header}\n\n{resource}\n{resource}\n"),
            "line 4, the resources row: its id \"fd8",
        ),
        (
            format!(
                "{header}\n{}\n",
                resource.replace("\"id\":\"fd8", "\"id\":\"fd9")
            ),
            "line 2, the resources row: its columns differ from its body's: id",
        ),
    ];
    for (file, expected) in cases {
        let refused = import(&target, file.as_bytes()).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{expected}");
        assert!(
            refused.message().contains(expected),
            "{expected}: {}",
            refused.message()
        );
        assert_eq!(
            state_of(&export(&target).await),
            state_of(&before),
            "{expected}"
        );
    }
}

#[tokio::test]
async fn over_rest_the_state_is_a_file_of_json_lines_and_the_admin_api_guards_it() {
    let target = server(DatabaseUrl::Memory).await;
    let url = format!("http://{}/imageplane/v1/state", target.address);
    let client = reqwest::Client::new();
    let got = client.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/x-ndjson");
    let file = got.bytes().await.unwrap();
    assert_eq!(state_of(&file), state_of(&export(&target).await));
    let put = client
        .put(&url)
        .header("content-type", "application/x-ndjson")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let counts: Json = serde_json::from_slice(&put.bytes().await.unwrap()).unwrap();
    assert_eq!(counts["snapshotSchema"], LATEST.to_string(), "{counts}");
    let bad = client.put(&url).body("{}\n").send().await.unwrap();
    assert_eq!(bad.status(), 400);

    let closed = TestServer::start(Duration::ZERO).await;
    let url = format!("http://{}/imageplane/v1/state", closed.address);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 403);
    assert_eq!(
        client.put(&url).body(file).send().await.unwrap().status(),
        403
    );
}

#[tokio::test]
async fn a_refused_snapshot_stops_no_work_running_here() {
    let fixture = common::http_fixture::HttpFixture::start().await;
    // 64 MiB at 64 KiB per 50 ms: about 50 s, far longer than the test.
    fixture.add("big.raw", vec![0u8; 64 << 20]);
    let target = server(DatabaseUrl::Memory).await;
    let importing = target
        .images()
        .create(CreateImageRequest {
            folder_id: folder(),
            name: "importing".into(),
            source: Some(imageplane::pb::compute::create_image_request::Source::Uri(
                fixture.url("/slow/big.raw"),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    common::until("the import reached its source", || async {
        fixture.requests() > 0
    })
    .await;
    // A snapshot refused only when checked whole: a body that does not decode.
    let file = String::from_utf8(export(&target).await).unwrap();
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    let line = lines
        .iter()
        .position(|line| line.contains("\"table\":\"resources\""))
        .unwrap();
    let mut row: Json = serde_json::from_str(&lines[line]).unwrap();
    row["row"]["body"] = "AAAA".into();
    lines[line] = row.to_string();
    let refused = import(&target, lines.join("\n").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains(&format!("line {}", line + 1)),
        "{refused:?}"
    );
    // A stop of the work here would have closed the transfer at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fixture.slow_client_gone(), None, "the import was stopped");
    assert!(
        !target
            .operations()
            .get(imageplane::pb::operation::GetOperationRequest {
                operation_id: importing.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .done
    );
    target
        .operations()
        .cancel(imageplane::pb::operation::CancelOperationRequest {
            operation_id: importing.id,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn an_import_on_postgresql_is_whole_against_the_writes_of_another_replica() {
    let Some(base_url) = postgres::base_url("the import race across replicas") else {
        return;
    };
    let (schema, url) = postgres::fresh_schema(&base_url, "state_import_race").await;
    let a = server(DatabaseUrl::Postgres(url.clone())).await;
    let b = server(DatabaseUrl::Postgres(url)).await;
    let folder_id = folder();
    // The snapshot holds none of the sources below.
    let snapshot = export(&a).await;
    for round in 0..8 {
        // A source, then copies of it from the other replica (held running) while the
        // import replaces everything.
        let source = a
            .wait_for::<imageplane::pb::compute::Image>(
                &a.images()
                    .create(image(&folder_id, &format!("source-{round}")))
                    .await
                    .unwrap()
                    .into_inner(),
            )
            .await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut copiers = Vec::new();
        for copier in 0..4 {
            let mut disks = b.disks();
            let (folder_id, source_id) = (folder_id.clone(), source.id.clone());
            let stop = std::sync::Arc::clone(&stop);
            copiers.push(tokio::spawn(async move {
                let (mut index, mut copied) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let request = CreateDiskRequest {
                        source: Some(
                            imageplane::pb::compute::create_disk_request::Source::ImageId(
                                source_id.clone(),
                            ),
                        ),
                        size: 16 * GIB,
                        ..disk(&folder_id, &format!("copy-{round}-{copier}-{index}"))
                    };
                    // Refused once the import removed the source.
                    match disks.create(request).await {
                        Ok(_) => copied += 1,
                        Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
                    }
                    index += 1;
                }
                copied
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        import(&a, &snapshot).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut copied = 0;
        for copier in copiers {
            copied += copier.await.unwrap();
        }
        assert!(copied > 0, "round {round}: no copy raced the import");
        // Every running copy's source is there: a copy either came before the import
        // (and went with it) or after it (and was refused, its source gone).
        let (_, rows) = lines(&export(&a).await);
        let resources: std::collections::HashSet<&str> = rows_of(&rows, "resources")
            .iter()
            .map(|row| row["id"].as_str().unwrap())
            .collect();
        for operation in rows_of(&rows, "operations") {
            if let Some(source_id) = operation["source_id"].as_str() {
                assert!(
                    operation["done"] == true || resources.contains(source_id),
                    "round {round}: a copy runs from a source the import removed: {operation}"
                );
            }
        }
    }
    drop((a, b));
    postgres::drop_schema(&base_url, &schema).await;
}

//! Durability and hand-over of the real binary: kill -9 while creates are under way loses
//! nothing acknowledged; SIGTERM hands running work back and exits within 10 s; two
//! replicas on one PostgreSQL split the work, take over from a killed one, pass cancels
//! through the database and let exactly one of many same-name creates win.
//!
//! The PostgreSQL tests need `IMAGEPLANE_TEST_DATABASE_URL` (see tests/storage.rs);
//! without it they say on stderr that they did not run.

mod common;

use common::process::{temp_dir, ServerProcess};
use common::{until, PATIENCE};
use imageplane::pb::compute::disk_service_client::DiskServiceClient;
use imageplane::pb::compute::{disk, CreateDiskMetadata, CreateDiskRequest, GetDiskRequest};
use imageplane::pb::operation::operation_service_client::OperationServiceClient;
use imageplane::pb::operation::{
    operation, CancelOperationRequest, GetOperationRequest, Operation,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

async fn connect(server: &ServerProcess) -> Channel {
    Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn disk_request(folder_id: &str, name: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        name: name.into(),
        zone_id: "ru-central1-a".into(),
        size: 1 << 30,
        ..Default::default()
    }
}

fn disk_id_of(operation: &Operation) -> String {
    common::metadata::<CreateDiskMetadata>(operation).disk_id
}

/// Polls until the operation is done (at most `limit`).
async fn wait_done(channel: &Channel, id: &str, limit: Duration) -> Operation {
    let mut operations = OperationServiceClient::new(channel.clone());
    let started = Instant::now();
    loop {
        let operation = operations
            .get(GetOperationRequest {
                operation_id: id.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("operation {id}: {status}"))
            .into_inner();
        if operation.done {
            return operation;
        }
        assert!(
            started.elapsed() < limit,
            "operation {id} still running after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn disk_status(channel: &Channel, id: &str) -> Result<i32, tonic::Status> {
    let disk = DiskServiceClient::new(channel.clone())
        .get(GetDiskRequest { disk_id: id.into() })
        .await?
        .into_inner();
    Ok(disk.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_creating_loses_nothing_that_was_acknowledged() {
    let data_dir = temp_dir("kill9");
    let dir = data_dir.to_str().unwrap().to_string();
    kill_9_while_creating(&data_dir, &["--data-dir", &dir], 16).await;
}

/// The same on PostgreSQL, where concurrent creates go in batches of many in one
/// statement: a create is acknowledged only once its batch has committed.
#[tokio::test]
async fn kill_9_while_creating_on_postgres_loses_nothing_that_was_acknowledged() {
    let Some(base_url) = common::postgres::base_url("kill_9_while_creating_on_postgres") else {
        return;
    };
    let (schema, url) = common::postgres::fresh_schema(&base_url, "kill9").await;
    let data_dir = temp_dir("kill9-postgres");
    // More clients than statements run at once, so that batches form.
    kill_9_while_creating(&data_dir, &["--database-url", &url], 64).await;
    common::postgres::drop_schema(&base_url, &schema).await;
}

/// `clients` clients create disks until 300 are acknowledged; the server is killed with
/// SIGKILL and started again with `store` (its flags); every acknowledged create is there
/// and ends READY. Removes `data_dir` (the log's directory) at the end.
async fn kill_9_while_creating(data_dir: &std::path::Path, store: &[&str], clients: usize) {
    let log = data_dir.join("server.log");
    // Copies take 2 s: the creates acknowledged in the 2 s before the kill are still
    // running at it (only a pause of the test as long as that could change it); any older
    // ones are finished.
    let flags = [store, &["--operation-delay", "2s"]].concat();
    let mut server = ServerProcess::start(&flags, log.clone());
    let channel = connect(&server).await;

    // The clients create disks as fast as they can; every acknowledged operation is
    // written down.
    let acknowledged = Arc::new(Mutex::new(Vec::<Operation>::new()));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let channel = channel.clone();
        let acknowledged = Arc::clone(&acknowledged);
        tasks.push(tokio::spawn(async move {
            let mut disks = DiskServiceClient::new(channel);
            for n in 0.. {
                match disks
                    .create(disk_request("crash", &format!("c{client}-{n}")))
                    .await
                {
                    Ok(response) => acknowledged.lock().unwrap().push(response.into_inner()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 300 {
        assert!(
            started.elapsed() < PATIENCE,
            "only {} creates acknowledged in {PATIENCE:?}",
            acknowledged.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if store.contains(&"--database-url") {
        // The creates went in batches: some statement wrote more than one.
        let page = reqwest::get(format!("{}/metrics", server.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let figure = |name: &str| -> f64 {
            let line = page.lines().find(|line| line.starts_with(name));
            line.and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in:\n{page}"))
        };
        let (rows, statements) = (
            figure("imageplane_store_create_batch_rows_sum"),
            figure("imageplane_store_create_batch_rows_count"),
        );
        assert!(
            rows > statements,
            "{rows} creates in {statements} statements"
        );
    }
    server.kill_9();
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let restarted = ServerProcess::start(&flags, log);
    let channel = connect(&restarted).await;
    for operation in &acknowledged {
        // Unfinished ones are resumed: each ends READY, none stays running.
        let finished = wait_done(&channel, &operation.id, PATIENCE).await;
        assert!(
            matches!(finished.result, Some(operation::Result::Response(_))),
            "{finished:?}"
        );
        let status = disk_status(&channel, &disk_id_of(operation)).await.unwrap();
        assert_eq!(status, disk::Status::Ready as i32);
    }
    let (resumed, logged) = restarted.logs_soon(&["resuming operation"], PATIENCE).await;
    assert!(resumed, "nothing was resumed:\n{logged}");
    drop(restarted);
    let _ = std::fs::remove_dir_all(data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_running_work_back_and_exits_within_ten_seconds() {
    let data_dir = temp_dir("sigterm");
    let dir = data_dir.to_str().unwrap();
    let log = data_dir.join("server.log");
    // Copies take an hour: they are all still running at the SIGTERM.
    let mut server =
        ServerProcess::start(&["--data-dir", dir, "--operation-delay", "1h"], log.clone());
    let channel = connect(&server).await;
    let mut disks = DiskServiceClient::new(channel.clone());
    let mut running = Vec::new();
    for n in 0..5 {
        let operation = disks
            .create(disk_request("term", &format!("d{n}")))
            .await
            .unwrap()
            .into_inner();
        running.push(operation);
    }
    drop((disks, channel)); // an idle client would only make the stop wait for the grace
    let took = server.terminate();
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
    assert!(
        server.logged().contains("handed running operations back"),
        "{}",
        server.logged()
    );

    // The next start takes them over; with no delay now, they finish at once.
    let restarted = ServerProcess::start(&["--data-dir", dir, "--operation-delay", "0s"], log);
    let channel = connect(&restarted).await;
    for operation in &running {
        let finished = wait_done(&channel, &operation.id, PATIENCE).await;
        assert!(matches!(
            finished.result,
            Some(operation::Result::Response(_))
        ));
    }
    drop(restarted);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_postgres_and_take_over_from_a_killed_one() {
    let Some(base_url) = common::postgres::base_url("two_replicas_share_one_postgres") else {
        return;
    };
    let (schema, url) = common::postgres::fresh_schema(&base_url, "replicas").await;
    let logs = temp_dir("replicas");
    let flags: Vec<&str> = vec![
        "--database-url",
        &url,
        "--lease-duration",
        "1s",
        "--operation-delay",
        "3s",
    ];
    let mut a = ServerProcess::start(&flags, logs.join("a.log"));
    let b = ServerProcess::start(&flags, logs.join("b.log"));
    let (a_channel, b_channel) = (connect(&a).await, connect(&b).await);

    // Any replica serves any request: a create through A is visible through B.
    let operation = DiskServiceClient::new(a_channel.clone())
        .create(disk_request("replicas", "handed-over"))
        .await
        .unwrap()
        .into_inner();
    let disk_id = disk_id_of(&operation);
    assert_eq!(
        disk_status(&b_channel, &disk_id).await.unwrap(),
        disk::Status::Creating as i32
    );

    // A dies holding the operation; B takes it over when A's lease runs out and finishes it.
    a.kill_9();
    let finished = wait_done(&b_channel, &operation.id, PATIENCE).await;
    assert!(matches!(
        finished.result,
        Some(operation::Result::Response(_))
    ));
    assert_eq!(
        disk_status(&b_channel, &disk_id).await.unwrap(),
        disk::Status::Ready as i32
    );
    let (resumed, logged) = b
        .logs_soon(&[&operation.id, "resuming operation"], PATIENCE)
        .await;
    assert!(resumed, "{logged}");

    // A second A; a copy running in B is cancelled through A: the cancel is in the
    // database at once, and B stops its work at its next renewal.
    let a = ServerProcess::start(&flags, logs.join("a2.log"));
    let a_channel = connect(&a).await;
    let slow = DiskServiceClient::new(b_channel.clone())
        .create(disk_request("replicas", "to-cancel"))
        .await
        .unwrap()
        .into_inner();
    let cancelled = OperationServiceClient::new(a_channel.clone())
        .cancel(CancelOperationRequest {
            operation_id: slow.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cancelled.done);
    assert!(matches!(cancelled.result, Some(operation::Result::Error(ref e)) if e.code == 1));
    let status = disk_status(&b_channel, &disk_id_of(&slow))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let (stopped, logged) = b
        .logs_soon(&["finished or taken over elsewhere"], PATIENCE)
        .await;
    assert!(stopped, "B did not stop the cancelled operation:\n{logged}");

    // Many creates of one name through both replicas at once: exactly one wins.
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..24 {
        let channel = if n % 2 == 0 {
            a_channel.clone()
        } else {
            b_channel.clone()
        };
        attempts.spawn(async move {
            DiskServiceClient::new(channel)
                .create(disk_request("replicas", "contended"))
                .await
        });
    }
    let mut winners = 0;
    while let Some(outcome) = attempts.join_next().await {
        match outcome.unwrap() {
            Ok(_) => winners += 1,
            Err(status) => assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status}"),
        }
    }
    assert_eq!(winners, 1);
    drop((a, b));
    common::postgres::drop_schema(&base_url, &schema).await;
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_operations_are_purged_after_the_retention_and_resources_stay() {
    let data_dir = temp_dir("retention");
    let dir = data_dir.to_str().unwrap();
    let server = ServerProcess::start(
        &["--data-dir", dir, "--operation-retention", "1s"],
        data_dir.join("server.log"),
    );
    let channel = connect(&server).await;
    let operation = DiskServiceClient::new(channel.clone())
        .create(disk_request("retention", "kept"))
        .await
        .unwrap()
        .into_inner();
    let finished = wait_done(&channel, &operation.id, PATIENCE).await;
    let retention_ends = std::time::SystemTime::try_from(finished.modified_at.unwrap()).unwrap()
        + Duration::from_secs(1);
    let mut operations = OperationServiceClient::new(channel.clone());
    let started = Instant::now();
    loop {
        let outcome = operations
            .get(GetOperationRequest {
                operation_id: operation.id.clone(),
            })
            .await;
        // The server read the operation before this moment: a NOT_FOUND answered before
        // the retention ran out is a purge too early (a slow machine only answers later).
        let answered = std::time::SystemTime::now();
        match outcome {
            Err(status) if status.code() == tonic::Code::NotFound => {
                assert!(
                    answered >= retention_ends,
                    "purged before its retention ran out"
                );
                break;
            }
            Ok(_) => {}
            Err(status) => panic!("{status}"),
        }
        assert!(started.elapsed() < PATIENCE, "the operation was not purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        disk_status(&channel, &disk_id_of(&operation))
            .await
            .unwrap(),
        disk::Status::Ready as i32
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_importing_hands_the_import_to_another() {
    use imageplane::pb::compute::image_service_client::ImageServiceClient;
    use imageplane::pb::compute::{create_image_request, CreateImageRequest, Image};
    let Some(base_url) = common::postgres::base_url("a_replica_killed_while_importing") else {
        return;
    };
    let (schema, url) = common::postgres::fresh_schema(&base_url, "import_handover").await;
    // A's transfer stalls halfway for as long as A lives; B's is served whole.
    let source = common::http_fixture::HttpFixture::start().await;
    source.add("disk.raw", vec![7u8; 2 << 20]);
    let logs = temp_dir("import-handover");
    let flags = ["--database-url", &url, "--lease-duration", "1s"];
    let mut a = ServerProcess::start(&flags, logs.join("a.log"));
    let b = ServerProcess::start(&flags, logs.join("b.log"));
    let operation = ImageServiceClient::new(connect(&a).await)
        .create(CreateImageRequest {
            folder_id: "handover".into(),
            source: Some(create_image_request::Source::Uri(
                source.url("/stalling/disk.raw"),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // A is fetching; kill it in the middle of the transfer.
    until("A never started the import", || async {
        source.requests() >= 1
    })
    .await;
    a.kill_9();

    let b_channel = connect(&b).await;
    let finished = wait_done(&b_channel, &operation.id, PATIENCE).await;
    let Some(operation::Result::Response(any)) = &finished.result else {
        panic!("the import failed: {finished:?}")
    };
    let image: Image = prost::Message::decode(any.value.as_slice()).unwrap();
    assert_eq!(
        image.storage_size,
        2 << 20,
        "B fetched the whole image again"
    );
    assert!(source.requests() >= 2, "B fetched it itself");
    let (resumed, logged) = b.logs_soon(&["resuming operation"], PATIENCE).await;
    assert!(resumed, "{logged}");
    drop(b);
    common::postgres::drop_schema(&base_url, &schema).await;
    let _ = std::fs::remove_dir_all(&logs);
}

//! One storage test suite for every backend: memory (SQLite without fsync in a temporary
//! directory), the embedded SQLite default, and
//! PostgreSQL when `IMAGEPLANE_TEST_DATABASE_URL` names a database (each test then works
//! in a schema of its own, dropped when it passes). Without that variable the PostgreSQL
//! part does not run, and every test says so on stderr; scripts/test.sh says it louder.
//!
//! Each test runs the same checks against each backend, named in the failure message.

mod common;

use common::postgres;
use imageplane::domain::transitions;
use imageplane::model::resource::{Kind, OperationRecord, Resource, ResourceKind, Work};
use imageplane::pb::compute::{disk, Disk};
use imageplane::pb::operation::{operation, Operation};
use imageplane::store::{
    self, DatabaseUrl, Ending, Finished, KeyClaim, Outcome, Replica, Source, Store, StoreError,
};
use std::sync::Arc;
use std::time::Duration;

/// A place for one backend's state, fresh for each test.
struct Backend {
    name: &'static str,
    url: DatabaseUrl,
    /// The PostgreSQL schema to drop after the test.
    schema: Option<(String, String)>,
    _directory: Option<TempDir>,
}

impl Backend {
    fn durable(&self) -> bool {
        self.url != DatabaseUrl::Memory
    }

    async fn open(&self, lease: Duration) -> Arc<dyn Store> {
        store::open(&self.url, Replica::new(lease))
            .await
            .unwrap_or_else(|error| panic!("{}: open failed: {error}", self.name))
    }

    /// Drops the PostgreSQL schema of a test that passed.
    async fn clean_up(self) {
        if let Some((base_url, schema)) = &self.schema {
            postgres::drop_schema(base_url, schema).await;
        }
    }
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every backend, each with fresh state.
async fn backends() -> Vec<Backend> {
    let directory =
        std::env::temp_dir().join(format!("imageplane-storage-{:016x}", rand::random::<u64>()));
    let mut backends = vec![
        Backend {
            name: "memory",
            url: DatabaseUrl::Memory,
            schema: None,
            _directory: None,
        },
        Backend {
            name: "sqlite",
            url: DatabaseUrl::Sqlite(directory.join("imageplane.sqlite3")),
            schema: None,
            _directory: Some(TempDir(directory)),
        },
    ];
    if let Some(base_url) = postgres::base_url("the storage suite") {
        let (schema, url) = postgres::fresh_schema(&base_url, "storage").await;
        backends.push(Backend {
            name: "postgres",
            url: DatabaseUrl::Postgres(url),
            schema: Some((base_url, schema)),
            _directory: None,
        });
    }
    backends
}

fn creating_disk(folder_id: &str, name: &str) -> Resource {
    Resource::Disk {
        disk: Disk {
            id: imageplane::ids::new_id(imageplane::ids::prefix::DISK),
            folder_id: folder_id.into(),
            name: name.into(),
            zone_id: "ru-central1-a".into(),
            size: 1 << 30,
            status: disk::Status::Creating as i32,
            created_at: Some(imageplane::model::operations::now()),
            ..Default::default()
        },
        os: None,
    }
}

fn record_for(resource: &Resource, work: Work) -> OperationRecord {
    OperationRecord {
        operation: imageplane::model::operations::start(
            "Create disk",
            "tester",
            prost_types::Any::default(),
        ),
        target: resource.reference(),
        work,
    }
}

/// Stores a new CREATING disk with its running copy operation.
async fn create(store: &dyn Store, folder_id: &str, name: &str) -> (Resource, OperationRecord) {
    let resource = creating_disk(folder_id, name);
    let record = record_for(&resource, Work::Copy { source: None });
    store
        .create(resource.clone(), record.clone(), None)
        .await
        .unwrap();
    (resource, record)
}

/// The ending of a copy whose time came.
fn due(record: &OperationRecord) -> Ending {
    Ending {
        operation_id: record.operation.id.clone(),
        outcome: Outcome::Done,
    }
}

/// The ending of a cancelled operation.
fn cancel(record: &OperationRecord) -> Ending {
    Ending {
        operation_id: record.operation.id.clone(),
        outcome: Outcome::Failed(
            imageplane::error::Error::Cancelled("stop".into()).to_rpc_status(),
        ),
    }
}

/// Ends operations as the domain's transitions say.
async fn conclude(store: &dyn Store, endings: Vec<Ending>) -> Vec<Result<Finished, StoreError>> {
    store.conclude(endings, transitions::conclude).await
}

/// Whether an ending was applied.
fn applied(outcome: &Result<Finished, StoreError>) -> bool {
    matches!(outcome, Ok(Finished::Applied(_)))
}

#[tokio::test]
async fn created_records_read_back_as_they_were_stored() {
    for backend in backends().await {
        let store = backend.open(Duration::from_secs(10)).await;
        let Resource::Disk { disk, .. } = creating_disk("folder", "") else {
            unreachable!()
        };
        let resource = Resource::Disk {
            disk,
            os: Some(imageplane::pb::compute::Os {
                r#type: 2,
                ..Default::default()
            }),
        };
        let record = record_for(
            &resource,
            Work::ImportUri {
                uri: "https://example.com/a.qcow2".into(),
            },
        );
        store
            .create(resource.clone(), record.clone(), None)
            .await
            .unwrap();
        let name = backend.name;
        assert_eq!(
            store
                .resource(ResourceKind::Disk, resource.id())
                .await
                .unwrap(),
            Some(resource.clone()),
            "{name}"
        );
        assert_eq!(
            store
                .resource(ResourceKind::Snapshot, resource.id())
                .await
                .unwrap(),
            None,
            "{name}: another kind with the same id"
        );
        assert_eq!(
            store.operation(&record.operation.id).await.unwrap(),
            Some(record),
            "{name}"
        );
        assert_eq!(store.operation("oprmissing").await.unwrap(), None, "{name}");
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn names_are_unique_per_kind_and_folder_and_freed_on_removal() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (first, _) = create(store.as_ref(), "f1", "web").await;

        let taken = creating_disk("f1", "web");
        let refused = record_for(&taken, Work::Copy { source: None });
        let error = store
            .create(taken.clone(), refused.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            StoreError::NameTaken {
                kind: ResourceKind::Disk,
                folder_id: "f1".into(),
                name: "web".into()
            },
            "{name}"
        );
        assert_eq!(
            store.operation(&refused.operation.id).await.unwrap(),
            None,
            "{name}: a refused create leaves no operation"
        );
        assert_eq!(
            store
                .resource(ResourceKind::Disk, taken.id())
                .await
                .unwrap(),
            None,
            "{name}: a refused create leaves no resource"
        );

        create(store.as_ref(), "f2", "web").await; // another folder
        create(store.as_ref(), "f1", "").await; // empty names never clash
        create(store.as_ref(), "f1", "").await;

        assert!(
            store
                .resource(ResourceKind::Disk, first.id())
                .await
                .unwrap()
                .is_some(),
            "{name}: the holder is untouched"
        );
        // Removing the holder frees the name.
        let (_, holder_op) = create(store.as_ref(), "f3", "db").await;
        let ended = conclude(store.as_ref(), vec![cancel(&holder_op)]).await;
        assert!(applied(&ended[0]), "{name}: {ended:?}");
        create(store.as_ref(), "f3", "db").await;
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_name_have_exactly_one_winner() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let store = Arc::clone(&store);
            attempts.spawn(async move {
                let resource = creating_disk("contended", "same-name");
                let record = record_for(&resource, Work::Copy { source: None });
                (store.create(resource, record.clone(), None).await, record)
            });
        }
        let mut winners = 0;
        while let Some(joined) = attempts.join_next().await {
            let (outcome, record) = joined.unwrap();
            let stored = store.operation(&record.operation.id).await.unwrap();
            match outcome {
                Ok(()) => {
                    winners += 1;
                    assert!(stored.is_some(), "{name}: the winner's operation is stored");
                }
                Err(StoreError::NameTaken { .. }) => {
                    assert!(
                        stored.is_none(),
                        "{name}: a loser's operation is not stored"
                    );
                }
                Err(other) => panic!("{name}: unexpected {other:?}"),
            }
        }
        assert_eq!(winners, 1, "{name}");
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn a_copy_finishes_once_with_its_resource_ready() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (resource, first) = create(store.as_ref(), "f", "a").await;
        let (_, second) = create(store.as_ref(), "f", "b").await;
        let outcomes = conclude(
            store.as_ref(),
            vec![
                due(&first),
                due(&second),
                Ending {
                    operation_id: "oprunknown".into(),
                    outcome: Outcome::Done,
                },
            ],
        )
        .await;
        assert!(
            applied(&outcomes[0]) && applied(&outcomes[1]),
            "{name}: {outcomes:?}"
        );
        assert_eq!(outcomes[2], Ok(Finished::Unknown), "{name}");
        let Some(Resource::Disk { disk, .. }) = store
            .resource(ResourceKind::Disk, resource.id())
            .await
            .unwrap()
        else {
            panic!("{name}: the disk is gone")
        };
        assert_eq!(disk.status, disk::Status::Ready as i32, "{name}");
        let operation = store
            .operation(&first.operation.id)
            .await
            .unwrap()
            .unwrap()
            .operation;
        assert!(operation.done, "{name}");
        match &operation.result {
            Some(operation::Result::Response(any)) => {
                let answered: Disk = prost::Message::decode(any.value.as_slice()).unwrap();
                let shown = Disk::from_resource(Resource::Disk {
                    disk: disk.clone(),
                    os: None,
                });
                assert_eq!(
                    Some(answered),
                    shown,
                    "{name}: the response is the READY disk, as the API shows it"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        // Again: nothing changes.
        let again = conclude(store.as_ref(), vec![due(&first)]).await;
        assert_eq!(
            again,
            vec![Ok(Finished::AlreadyDone(Box::new(operation)))],
            "{name}"
        );
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn finish_applies_once_and_a_cancel_removes_the_resource() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (resource, record) = create(store.as_ref(), "f", "x").await;
        let ended = conclude(store.as_ref(), vec![cancel(&record)]).await;
        let Ok(Finished::Applied(cancelled)) = ended[0].clone() else {
            panic!("{name}: {ended:?}")
        };
        let cancelled: Operation = *cancelled;
        assert_eq!(common::error_of(&cancelled).0, 1, "{name}");
        assert_eq!(
            store
                .resource(ResourceKind::Disk, resource.id())
                .await
                .unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            store
                .operation(&record.operation.id)
                .await
                .unwrap()
                .unwrap()
                .operation,
            cancelled,
            "{name}"
        );
        // A later ending (say, the copy completing) loses the race.
        assert_eq!(
            conclude(store.as_ref(), vec![due(&record)]).await,
            vec![Ok(Finished::AlreadyDone(Box::new(cancelled.clone())))],
            "{name}"
        );
        assert_eq!(
            conclude(store.as_ref(), vec![cancel(&record)]).await,
            vec![Ok(Finished::AlreadyDone(Box::new(cancelled)))],
            "{name}"
        );
        let stranger = Ending {
            operation_id: "oprnobody".into(),
            outcome: Outcome::Done,
        };
        assert_eq!(
            conclude(store.as_ref(), vec![stranger]).await,
            vec![Ok(Finished::Unknown)],
            "{name}"
        );
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn renewal_returns_only_the_operations_still_running() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (_, running) = create(store.as_ref(), "f", "").await;
        let (_, finished) = create(store.as_ref(), "f", "").await;
        conclude(store.as_ref(), vec![due(&finished)]).await;
        let held = store
            .renew_leases(&[
                running.operation.id.clone(),
                finished.operation.id.clone(),
                "oprunknown".into(),
            ])
            .await
            .unwrap();
        assert_eq!(held, vec![running.operation.id.clone()], "{name}");
        assert_eq!(store.renew_leases(&[]).await.unwrap(), Vec::<String>::new());
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn durable_backends_keep_everything_across_a_reopen_and_hand_over_running_work() {
    for backend in backends().await {
        if !backend.durable() {
            continue;
        }
        let name = backend.name;
        let store = backend.open(Duration::from_secs(60)).await;
        let (resource, running) = create(store.as_ref(), "f", "kept").await;
        let (_, finished) = create(store.as_ref(), "f", "done").await;
        conclude(store.as_ref(), vec![due(&finished)]).await;
        // What this replica holds is not an orphan while its lease runs.
        assert!(store.claim_orphans(10).await.unwrap().is_empty(), "{name}");
        drop(store);

        let reopened = backend.open(Duration::from_secs(60)).await;
        assert_eq!(
            reopened
                .resource(ResourceKind::Disk, resource.id())
                .await
                .unwrap(),
            Some(resource.clone()),
            "{name}"
        );
        assert!(
            reopened
                .operation(&finished.operation.id)
                .await
                .unwrap()
                .unwrap()
                .operation
                .done,
            "{name}"
        );
        if backend.name == "sqlite" {
            // One process per file: whatever the last run held is an orphan now.
            let claimed = reopened.claim_orphans(10).await.unwrap();
            assert_eq!(claimed, vec![running.clone()], "{name}");
            // Claimed once: now it is held.
            assert!(
                reopened.claim_orphans(10).await.unwrap().is_empty(),
                "{name}"
            );
        } else {
            // A shared database: the old holder's lease still runs, so another replica
            // must wait (see the replica test for take-over and hand-back).
            assert!(
                reopened.claim_orphans(10).await.unwrap().is_empty(),
                "{name}"
            );
        }
        drop(reopened);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn the_sqlite_file_is_used_by_one_process_at_a_time() {
    let backends = backends().await;
    let sqlite = backends
        .iter()
        .find(|backend| backend.name == "sqlite")
        .unwrap();
    let store = sqlite.open(Duration::from_secs(10)).await;
    let error = store::open(&sqlite.url, Replica::new(Duration::from_secs(10)))
        .await
        .err()
        .expect("a second open of the same file is refused");
    assert!(
        error.to_string().contains("in use by another imageplane"),
        "{error}"
    );
    drop(store);
    sqlite.open(Duration::from_secs(10)).await;
    for backend in backends {
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn replicas_of_one_postgres_split_orphans_and_take_over_expired_leases() {
    for backend in backends().await {
        if backend.name != "postgres" {
            continue;
        }
        // Leases long enough that nothing runs out by itself while the test works, however
        // slow the machine: they run out only when the holder's last renewal says so.
        let holder = Replica::new(Duration::from_secs(60));
        let first = store::open(&backend.url, holder.clone()).await.unwrap();
        let mut records = Vec::new();
        for _ in 0..20 {
            records.push(create(first.as_ref(), "f", "").await.1);
        }
        let ids: Vec<String> = records.iter().map(|r| r.operation.id.clone()).collect();
        let second = backend.open(Duration::from_secs(60)).await;
        let third = backend.open(Duration::from_secs(60)).await;
        // Held by `first`: not orphans.
        assert!(second.claim_orphans(100).await.unwrap().is_empty());
        // The holder renews them for no time at all, as if its last renewal were long ago:
        // its leases run out (on the database's clock) once a millisecond has passed.
        let lapsing = store::open(
            &backend.url,
            Replica {
                lease: Duration::ZERO,
                ..holder
            },
        )
        .await
        .unwrap();
        assert_eq!(lapsing.renew_leases(&ids).await.unwrap().len(), ids.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Two replicas claim at once: every orphan goes to exactly one of them.
        let (a, b) = tokio::join!(second.claim_orphans(100), third.claim_orphans(100));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len() + b.len(), records.len());
        let mut claimed: Vec<String> = a.iter().chain(&b).map(|r| r.operation.id.clone()).collect();
        claimed.sort();
        claimed.dedup();
        assert_eq!(
            claimed.len(),
            records.len(),
            "an operation was claimed twice"
        );
        // The old holder has lost them: its renewal says so.
        assert!(first.renew_leases(&ids).await.unwrap().is_empty());

        // A handed-back lease can be claimed at once.
        let long = backend.open(Duration::from_secs(60)).await;
        let (_, kept) = create(long.as_ref(), "f", "").await;
        assert!(second.claim_orphans(100).await.unwrap().is_empty());
        long.release_leases(std::slice::from_ref(&kept.operation.id))
            .await
            .unwrap();
        let taken = second.claim_orphans(100).await.unwrap();
        assert_eq!(taken, vec![kept]);
        drop((first, lapsing, second, third, long));
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn purging_removes_only_finished_operations_older_than_the_cutoff() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (_, running) = create(store.as_ref(), "f", "").await;
        let (_, old) = create(store.as_ref(), "f", "").await;
        conclude(store.as_ref(), vec![due(&old)]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let cutoff = imageplane::store::codec::now_ms();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_, recent) = create(store.as_ref(), "f", "").await;
        conclude(store.as_ref(), vec![due(&recent)]).await;

        assert_eq!(
            store.purge_finished(cutoff, 100).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            store.operation(&old.operation.id).await.unwrap(),
            None,
            "{name}"
        );
        assert!(
            store
                .operation(&recent.operation.id)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        assert!(
            store
                .operation(&running.operation.id)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        // A running operation is never purged, however old.
        assert_eq!(
            store.purge_finished(i64::MAX, 100).await.unwrap(),
            1,
            "{name}"
        );
        assert!(
            store
                .operation(&running.operation.id)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn an_unreadable_orphan_is_ended_with_an_error_not_left_running() {
    for backend in backends().await {
        let name = backend.name;
        let DatabaseUrl::Sqlite(path) = backend.url.clone() else {
            // Corrupting a row by hand is done here through SQLite.
            backend.clean_up().await;
            continue;
        };
        let store = backend.open(Duration::from_secs(60)).await;
        let (_, good) = create(store.as_ref(), "f", "good").await;
        let (_, bad) = create(store.as_ref(), "f", "bad").await;
        drop(store);
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute(
                "UPDATE operations SET body = x'ffffffff' WHERE id = ?1",
                [&bad.operation.id],
            )
            .unwrap();
        drop(connection);

        let reopened = backend.open(Duration::from_secs(60)).await;
        let claimed = reopened.claim_orphans(10).await.unwrap();
        assert_eq!(claimed, vec![good], "{name}: the readable one is resumed");
        let ended = reopened
            .operation(&bad.operation.id)
            .await
            .unwrap()
            .unwrap()
            .operation;
        assert!(ended.done, "{name}");
        match ended.result {
            Some(operation::Result::Error(status)) => {
                assert_eq!(status.code, 13, "{name}: INTERNAL");
                assert!(
                    status.message.contains("cannot be read"),
                    "{}",
                    status.message
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        drop(reopened);
        backend.clean_up().await;
    }
}

/// An executor of `store` with the default delays and the domain's transitions.
fn executor_on(
    store: &Arc<dyn Store>,
    lease: Duration,
    faults: Arc<imageplane::faults::Faults>,
) -> Arc<imageplane::work::executor::Executor> {
    imageplane::work::executor::Executor::new(
        Arc::clone(store),
        imageplane::work::executor::ExecutorSettings {
            timing: imageplane::work::timing::Timing::default(),
            lease,
            retention: Duration::from_secs(3600),
            import: Default::default(),
            transition: imageplane::domain::transitions::conclude,
            key_retention: imageplane::domain::idempotency::KEY_RETENTION,
            faults,
        },
    )
    .unwrap()
}

/// The operation `id` once the store holds it done; after [`common::PATIENCE`], panics
/// saying `failure`.
async fn ended(store: &dyn Store, id: &str, failure: &str) -> Operation {
    let started = std::time::Instant::now();
    loop {
        let current = store.operation(id).await.unwrap().unwrap();
        if current.operation.done {
            return current.operation;
        }
        assert!(started.elapsed() < common::PATIENCE, "{failure}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store that meddles with the first `conclude` asked of it.
struct Meddling {
    inner: Arc<dyn Store>,
    how: Meddle,
    meddled: std::sync::atomic::AtomicBool,
}

/// What [`Meddling`] does to the first `conclude`.
#[derive(Clone, Copy)]
enum Meddle {
    /// Fails it as a database would (nothing written).
    Fail,
    /// Cancels its operations first, as a cancel that wins the race would.
    CancelFirst,
}

#[async_trait::async_trait]
impl store::Resources for Meddling {
    async fn create_copy(
        &self,
        resource: Resource,
        record: OperationRecord,
        claim: Option<&KeyClaim>,
        seen: Option<store::SourceSeen>,
    ) -> Result<(), StoreError> {
        self.inner.create_copy(resource, record, claim, seen).await
    }
    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError> {
        self.inner.resource(kind, id).await
    }
    async fn source(
        &self,
        kind: ResourceKind,
        id: &str,
        reading: store::Reading,
    ) -> Result<Option<store::Source>, StoreError> {
        self.inner.source(kind, id, reading).await
    }
    fn keeps_sources(&self) -> bool {
        self.inner.keeps_sources()
    }
    async fn change(
        &self,
        kind: ResourceKind,
        id: &str,
        change: imageplane::store::Change,
        claim: Option<&KeyClaim>,
    ) -> Result<OperationRecord, StoreError> {
        self.inner.change(kind, id, change, claim).await
    }
    async fn list(
        &self,
        query: &imageplane::store::query::ListQuery,
    ) -> Result<Vec<Resource>, StoreError> {
        self.inner.list(query).await
    }
    async fn access_bindings(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Vec<imageplane::pb::yandex::cloud::access::AccessBinding>>, StoreError> {
        self.inner.access_bindings(kind, id).await
    }
    async fn seed(&self, resources: Vec<Resource>) -> Result<usize, StoreError> {
        self.inner.seed(resources).await
    }
}

#[async_trait::async_trait]
impl store::Operations for Meddling {
    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        self.inner.operation(id).await
    }
    async fn conclude(
        &self,
        endings: Vec<Ending>,
        transition: imageplane::store::Transition,
    ) -> Vec<Result<Finished, StoreError>> {
        if !self.meddled.swap(true, std::sync::atomic::Ordering::SeqCst) {
            match self.how {
                Meddle::Fail => {
                    let error = StoreError::Backend("disk I/O error (injected)".into());
                    return vec![Err(error); endings.len()];
                }
                Meddle::CancelFirst => {
                    let cancels: Vec<Ending> = endings
                        .iter()
                        .map(|ending| Ending {
                            operation_id: ending.operation_id.clone(),
                            outcome: Outcome::Failed(
                                imageplane::error::Error::Cancelled("cancelled first".into())
                                    .to_rpc_status(),
                            ),
                        })
                        .collect();
                    self.inner.conclude(cancels, transition).await;
                }
            }
        }
        self.inner.conclude(endings, transition).await
    }
    async fn describe_running(&self, id: &str, description: &str) -> Result<(), StoreError> {
        self.inner.describe_running(id, description).await
    }
    async fn operations_of(
        &self,
        target_id: &str,
        folders: Option<&[String]>,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        self.inner
            .operations_of(target_id, folders, after, limit)
            .await
    }
    async fn purge_finished(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        self.inner.purge_finished(before_ms, limit).await
    }
}

#[async_trait::async_trait]
impl store::Leases for Meddling {
    async fn renew_leases(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.inner.renew_leases(ids).await
    }
    async fn claim_orphans(&self, limit: usize) -> Result<Vec<OperationRecord>, StoreError> {
        self.inner.claim_orphans(limit).await
    }
    async fn release_leases(&self, ids: &[String]) -> Result<(), StoreError> {
        self.inner.release_leases(ids).await
    }
}

#[async_trait::async_trait]
impl store::Keys for Meddling {
    async fn idempotency_key(
        &self,
        subject: &str,
        key: &str,
    ) -> Result<Option<imageplane::store::StoredKey>, StoreError> {
        self.inner.idempotency_key(subject, key).await
    }
    async fn put_token(&self, token: &imageplane::store::IssuedToken) -> Result<(), StoreError> {
        self.inner.put_token(token).await
    }
    async fn token(
        &self,
        sha256: &str,
    ) -> Result<Option<imageplane::store::IssuedToken>, StoreError> {
        self.inner.token(sha256).await
    }
    async fn expire_token(
        &self,
        sha256: &str,
        at_ms: i64,
    ) -> Result<Option<imageplane::store::IssuedToken>, StoreError> {
        self.inner.expire_token(sha256, at_ms).await
    }
    async fn purge_keys_and_tokens(
        &self,
        keys_before_ms: i64,
        tokens_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.inner
            .purge_keys_and_tokens(keys_before_ms, tokens_before_ms, limit)
            .await
    }
    async fn page_key(&self) -> Result<Vec<u8>, StoreError> {
        self.inner.page_key().await
    }
}

#[async_trait::async_trait]
impl store::Inspect for Meddling {
    async fn folder_counts(
        &self,
        folders: Option<&[String]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<store::FolderCounts>, StoreError> {
        self.inner.folder_counts(folders, after, limit).await
    }
    async fn recent_operations(
        &self,
        folders: Option<&[String]>,
        target_id: Option<&str>,
        limit: usize,
    ) -> Result<store::RecentOperations, StoreError> {
        self.inner
            .recent_operations(folders, target_id, limit)
            .await
    }
}

#[async_trait::async_trait]
impl Store for Meddling {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn reset(
        &self,
        seeds: Vec<imageplane::model::resource::Resource>,
    ) -> Result<store::ResetCounts, StoreError> {
        self.inner.reset(seeds).await
    }

    async fn export_state(&self) -> Result<Vec<u8>, StoreError> {
        self.inner.export_state().await
    }

    async fn import_state(
        &self,
        snapshot: store::snapshot::Prepared,
    ) -> Result<store::snapshot::ImportCounts, StoreError> {
        self.inner.import_state(snapshot).await
    }
}

#[tokio::test]
async fn a_database_failure_while_finishing_is_retried_not_turned_into_a_failure() {
    for backend in backends().await {
        let name = backend.name;
        let lease = Duration::from_secs(1);
        let store: Arc<dyn Store> = Arc::new(Meddling {
            inner: backend.open(lease).await,
            how: Meddle::Fail,
            meddled: false.into(),
        });
        let executor = executor_on(&store, lease, Default::default());
        let (resource, record) = create(store.as_ref(), "f", "retried").await;
        executor.start(record.clone());
        // The first finish fails; the lease runs out (1 s) and the copy is claimed again.
        let finished = ended(
            store.as_ref(),
            &record.operation.id,
            &format!("{name}: never retried"),
        )
        .await;
        assert!(
            matches!(finished.result, Some(operation::Result::Response(_))),
            "{name}: {finished:?}"
        );
        let Some(Resource::Disk { disk, .. }) = store
            .resource(ResourceKind::Disk, resource.id())
            .await
            .unwrap()
        else {
            panic!("{name}: the disk is gone")
        };
        assert_eq!(disk.status, disk::Status::Ready as i32, "{name}");
        executor.shutdown().await;
        drop((executor, store));
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn schemas_2_and_3_fill_their_columns_from_the_rows_of_schema_1() {
    use imageplane::store::codec::{OperationRow, ResourceRow};
    let directory =
        std::env::temp_dir().join(format!("imageplane-schema1-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("imageplane.sqlite3");
    let mut resource = creating_disk("f", "old");
    if let Resource::Disk { disk, .. } = &mut resource {
        disk.status = disk::Status::Ready as i32;
        disk.created_at = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        });
    }
    let import = OperationRecord {
        work: Work::ImportUri {
            uri: "http://h/x.qcow2".into(),
        },
        ..record_for(&resource, Work::Copy { source: None })
    };
    {
        // A database as schema 1 left it.
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(imageplane::store::migrations::CREATE_BOOKKEEPING)
            .unwrap();
        connection
            .execute_batch(imageplane::store::migrations::SQLITE[0].sql)
            .unwrap();
        connection
            .execute(
                "INSERT INTO schema_migrations VALUES (1, 'resources and operations', 0)",
                [],
            )
            .unwrap();
        let row = ResourceRow::from_resource(&resource);
        connection
            .execute(
                "INSERT INTO resources (id, kind, folder_id, name, os, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![row.id, row.kind, row.folder_id, row.name, row.os, row.body],
            )
            .unwrap();
        let row = OperationRow::from_record(&import);
        connection
            .execute(
                "INSERT INTO operations (id, done, modified_at_ms, target_kind, target_id,
                     import_uri, owner, lease_until_ms, body)
                 VALUES (?1, 1, ?2, ?3, ?4, ?5, 'old', 0, ?6)",
                rusqlite::params![
                    row.id,
                    row.modified_at_ms,
                    row.target_kind,
                    row.target_id,
                    row.import_uri,
                    row.body
                ],
            )
            .unwrap();
    }
    let store = store::open(
        &DatabaseUrl::Sqlite(path.clone()),
        Replica::new(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let stored = store
        .operation(&import.operation.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.work, import.work,
        "the work is read from the new column"
    );
    assert_eq!(
        stored.target.folder_id, "f",
        "schema 3: the operation's folder is its resource's"
    );
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let (status, created): (i32, i64) = connection
        .query_row("SELECT status, created_at_ms FROM resources", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (status, created),
        (disk::Status::Ready as i32, 1_700_000_000_000)
    );
    let (work, created): (String, i64) = connection
        .query_row("SELECT work, created_at_ms FROM operations", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(work, "import");
    assert!(created > 0);
    let _ = std::fs::remove_dir_all(&directory);
}

/// A change that renames a READY resource, done when stored.
fn rename(to: &'static str) -> imageplane::store::Change {
    Box::new(move |current| {
        let current = current.ok_or_else(|| imageplane::error::Error::NotFound("gone".into()))?;
        let mut resource = current.resource;
        *resource.common_mut().0 = to.to_string();
        let mut operation = imageplane::model::operations::start(
            "Update disk",
            "tester",
            prost_types::Any::default(),
        );
        imageplane::model::operations::succeed(&mut operation, resource.to_any());
        Ok(imageplane::store::Changed {
            record: OperationRecord {
                operation,
                target: resource.reference(),
                work: Work::Change(imageplane::model::resource::ChangeKind::Update),
            },
            resource,
            access_bindings: None,
        })
    })
}

#[tokio::test]
async fn changes_lists_and_operations_of_a_resource() {
    use imageplane::store::query::{Column, Condition, ListQuery, Operator, Order, SqlValue};
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let folder_id = format!("f{:08x}", rand::random::<u32>());
        let mut records = Vec::new();
        for index in 0..5 {
            let (_, record) = create(store.as_ref(), &folder_id, &format!("d{index}")).await;
            records.push(record);
        }
        conclude(store.as_ref(), records.iter().map(due).collect()).await;
        // A change: renamed; onto a taken name: NameTaken, nothing written.
        let target = records[0].target.id.clone();
        let renamed = store
            .change(ResourceKind::Disk, &target, rename("renamed"), None)
            .await
            .unwrap();
        assert!(renamed.operation.done, "{name}");
        let taken = store
            .change(ResourceKind::Disk, &target, rename("d1"), None)
            .await;
        assert!(
            matches!(taken, Err(StoreError::NameTaken { .. })),
            "{name}: {taken:?}"
        );
        let missing = store
            .change(
                ResourceKind::Disk,
                "fhmnosuchdisk0000000",
                rename("x"),
                None,
            )
            .await;
        assert!(
            matches!(missing, Err(StoreError::Refused(_))),
            "{name}: {missing:?}"
        );
        // Lists: by name, filtered, after a cursor.
        let query = |conditions: Vec<Condition>, after| ListQuery {
            kind: ResourceKind::Disk,
            folder_id: folder_id.clone(),
            conditions,
            order: Order {
                column: Column::Name,
                descending: false,
            },
            after,
            limit: 10,
        };
        let all = store.list(&query(Vec::new(), None)).await.unwrap();
        let names: Vec<&str> = all.iter().map(Resource::name).collect();
        assert_eq!(names, ["d1", "d2", "d3", "d4", "renamed"], "{name}");
        let filtered = store
            .list(&query(
                vec![Condition {
                    column: Column::Name,
                    operator: Operator::In,
                    values: vec![SqlValue::Text("d2".into()), SqlValue::Text("d4".into())],
                }],
                None,
            ))
            .await
            .unwrap();
        assert_eq!(filtered.len(), 2, "{name}");
        let after = store
            .list(&query(
                Vec::new(),
                Some(imageplane::store::query::Cursor {
                    value: SqlValue::Text("d3".into()),
                    id: String::new(),
                }),
            ))
            .await
            .unwrap();
        assert_eq!(after.len(), 2, "{name}");
        let ready = store
            .list(&query(
                vec![Condition {
                    column: Column::Status,
                    operator: Operator::Equal,
                    values: vec![SqlValue::I32(2)],
                }],
                None,
            ))
            .await
            .unwrap();
        assert_eq!(ready.len(), 5, "{name}");
        // Operations of the renamed disk, newest first.
        let operations = store.operations_of(&target, None, None, 10).await.unwrap();
        assert_eq!(operations.len(), 2, "{name}");
        assert_eq!(operations[0].description, "Update disk", "{name}");
        // Seeds are idempotent; the page key is stable.
        let seeded = creating_disk(&folder_id, "seeded");
        assert_eq!(store.seed(vec![seeded.clone()]).await.unwrap(), 1, "{name}");
        assert_eq!(store.seed(vec![seeded]).await.unwrap(), 0, "{name}");
        let clash = creating_disk(&folder_id, "d2");
        assert!(matches!(
            store.seed(vec![clash]).await,
            Err(StoreError::NameTaken { .. })
        ));
        assert_eq!(
            store.page_key().await.unwrap(),
            store.page_key().await.unwrap()
        );
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn a_seed_that_fails_stores_nothing_that_a_read_could_find() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let folder_id = format!("seeds-{name}");
        let first = creating_disk(&folder_id, "same");
        let second = creating_disk(&folder_id, "same");
        assert!(
            matches!(
                store.seed(vec![first.clone(), second.clone()]).await,
                Err(StoreError::NameTaken { .. })
            ),
            "{name}"
        );
        // Neither a read by id (answered from the cache where there is one) nor a list
        // finds either of them: the seed wrote nothing.
        for resource in [&first, &second] {
            let found = store.resource(ResourceKind::Disk, resource.id()).await;
            assert_eq!(found.unwrap(), None, "{name}");
        }
        let query = imageplane::store::query::ListQuery {
            kind: ResourceKind::Disk,
            folder_id: folder_id.clone(),
            conditions: Vec::new(),
            order: imageplane::store::query::Order {
                column: imageplane::store::query::Column::Id,
                descending: false,
            },
            after: None,
            limit: 10,
        };
        assert!(store.list(&query).await.unwrap().is_empty(), "{name}");
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn a_rename_onto_a_taken_name_fails_alone_in_a_batch_of_creates() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (existing, record) = create(store.as_ref(), "batch", "existing").await;
        conclude(store.as_ref(), vec![due(&record)]).await;
        let (_, holder) = create(store.as_ref(), "batch", "holder").await;
        conclude(store.as_ref(), vec![due(&holder)]).await;
        // Many creates and one conflicting rename, at once: in SQLite they share commits.
        let mut writes = tokio::task::JoinSet::new();
        for index in 0..64 {
            let store = Arc::clone(&store);
            writes.spawn(async move {
                let resource = creating_disk("batch", &format!("new-{index}"));
                let record = record_for(&resource, Work::Copy { source: None });
                store.create(resource, record, None).await.map(|_| ())
            });
        }
        let renamer = Arc::clone(&store);
        let id = existing.id().to_string();
        let rename = tokio::spawn(async move {
            renamer
                .change(ResourceKind::Disk, &id, rename("holder"), None)
                .await
        });
        let mut created = 0;
        while let Some(outcome) = writes.join_next().await {
            outcome
                .unwrap()
                .unwrap_or_else(|error| panic!("{name}: a create failed: {error}"));
            created += 1;
        }
        assert_eq!(created, 64, "{name}");
        let renamed = rename.await.unwrap();
        assert!(
            matches!(renamed, Err(StoreError::NameTaken { .. })),
            "{name}: {renamed:?}"
        );
        drop(store);
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn a_write_that_meets_a_database_error_fails_alone_among_64() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (_, taken) = create(store.as_ref(), "batch", "first").await;
        // 64 creates at once (in SQLite they share commits); the one in the middle reuses
        // an operation id, which the database refuses as it writes (a primary key).
        let mut writes = tokio::task::JoinSet::new();
        for index in 0..64 {
            let store = Arc::clone(&store);
            let taken_id = taken.operation.id.clone();
            writes.spawn(async move {
                let resource = creating_disk("batch", &format!("new-{index}"));
                let mut record = record_for(&resource, Work::Copy { source: None });
                if index == 32 {
                    record.operation.id = taken_id;
                }
                let outcome = store.create(resource.clone(), record, None).await;
                (index, resource, outcome)
            });
        }
        let mut failed = Vec::new();
        while let Some(joined) = writes.join_next().await {
            let (index, resource, outcome) = joined.unwrap();
            let stored = store
                .resource(ResourceKind::Disk, resource.id())
                .await
                .unwrap();
            match outcome {
                Ok(()) => assert_eq!(stored, Some(resource), "{name}: create {index}"),
                Err(error) => {
                    assert!(
                        matches!(error, StoreError::Duplicate(_)),
                        "{name}: create {index}: {error:?}"
                    );
                    assert_eq!(stored, None, "{name}: the failed create left its resource");
                    failed.push(index);
                }
            }
        }
        assert_eq!(failed, [32], "{name}");
        // What the others wrote is durable: read again after a reopen.
        drop(store);
        if backend.durable() {
            let reopened = backend.open(Duration::from_secs(10)).await;
            let query = imageplane::store::query::ListQuery {
                kind: ResourceKind::Disk,
                folder_id: "batch".into(),
                conditions: Vec::new(),
                order: imageplane::store::query::Order {
                    column: imageplane::store::query::Column::Id,
                    descending: false,
                },
                after: None,
                limit: 100,
            };
            assert_eq!(reopened.list(&query).await.unwrap().len(), 64, "{name}");
        }
        backend.clean_up().await;
    }
}

/// The claim of one idempotency key.
fn claim(key: &str) -> KeyClaim {
    KeyClaim {
        subject: "alice".into(),
        key: key.into(),
        fingerprint: "f1".into(),
    }
}

#[tokio::test]
async fn an_idempotency_key_is_stored_once_with_its_operation_even_across_replicas() {
    for backend in backends().await {
        let name = backend.name;
        // On PostgreSQL the racers are two replicas; the other backends have one process.
        let first = backend.open(Duration::from_secs(10)).await;
        let second = if name == "postgres" {
            backend.open(Duration::from_secs(10)).await
        } else {
            Arc::clone(&first)
        };
        let mut attempts = tokio::task::JoinSet::new();
        for attempt in 0..16 {
            let store = Arc::clone(if attempt % 2 == 0 { &first } else { &second });
            attempts.spawn(async move {
                let resource = creating_disk("keyed", &format!("disk-{attempt}"));
                let record = record_for(&resource, Work::Copy { source: None });
                let outcome = store
                    .create(resource.clone(), record.clone(), Some(&claim("create-1")))
                    .await;
                (outcome, resource, record)
            });
        }
        let mut winner = None;
        while let Some(joined) = attempts.join_next().await {
            let (outcome, resource, record) = joined.unwrap();
            let stored = first.operation(&record.operation.id).await.unwrap();
            let resource_stored = first
                .resource(resource.kind(), resource.id())
                .await
                .unwrap();
            match outcome {
                Ok(()) => {
                    assert!(winner.is_none(), "{name}: two writes took one key");
                    assert!(stored.is_some() && resource_stored.is_some(), "{name}");
                    winner = Some(record.operation.id);
                }
                Err(StoreError::KeyTaken) => assert!(
                    stored.is_none() && resource_stored.is_none(),
                    "{name}: a loser wrote nothing"
                ),
                Err(other) => panic!("{name}: unexpected {other:?}"),
            }
        }
        let winner = winner.unwrap_or_else(|| panic!("{name}: no write took the key"));
        let stored = second.idempotency_key("alice", "create-1").await.unwrap();
        assert_eq!(
            stored,
            Some(imageplane::store::StoredKey {
                fingerprint: "f1".into(),
                operation_id: winner,
            }),
            "{name}"
        );
        // Keys are per subject.
        assert_eq!(
            first.idempotency_key("bob", "create-1").await.unwrap(),
            None
        );

        // A change under a key: the first takes it; the second writes nothing.
        let (resource, _) = create(first.as_ref(), "keyed", "renamed-once").await;
        let changed = first
            .change(
                ResourceKind::Disk,
                resource.id(),
                rename("renamed-1"),
                Some(&claim("change-1")),
            )
            .await
            .unwrap();
        let again = second
            .change(
                ResourceKind::Disk,
                resource.id(),
                rename("renamed-2"),
                Some(&claim("change-1")),
            )
            .await;
        assert!(
            matches!(again, Err(StoreError::KeyTaken)),
            "{name}: {again:?}"
        );
        let now = first
            .resource(ResourceKind::Disk, resource.id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            now.name(),
            "renamed-1",
            "{name}: the second change wrote nothing"
        );
        assert_eq!(
            first
                .idempotency_key("alice", "change-1")
                .await
                .unwrap()
                .map(|key| key.operation_id),
            Some(changed.operation.id),
            "{name}"
        );

        // Purging: keys stored before the cutoff go, newer ones stay.
        let purged = first.purge_keys_and_tokens(0, 0, 100).await.unwrap();
        assert_eq!(purged, 0, "{name}: nothing is older than the epoch");
        let future = imageplane::store::codec::now_ms() + 60_000;
        assert_eq!(
            first.purge_keys_and_tokens(future, 0, 100).await.unwrap(),
            2,
            "{name}"
        );
        assert_eq!(
            first.idempotency_key("alice", "create-1").await.unwrap(),
            None
        );
        drop((first, second));
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn a_revoked_token_ends_when_revoked_and_an_earlier_end_stays() {
    use imageplane::store::IssuedToken;
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let now = imageplane::store::codec::now_ms();
        let token = IssuedToken {
            sha256: "dd".repeat(32),
            subject: "carol".into(),
            folders: None,
            expires_at_ms: now + 3_600_000,
        };
        store.put_token(&token).await.unwrap();
        let revoked = store.expire_token(&token.sha256, now).await.unwrap();
        assert_eq!(
            revoked.map(|token| (token.subject, token.expires_at_ms)),
            Some(("carol".to_string(), now)),
            "{name}"
        );
        // Revoked again later, it keeps its first end; an unknown token is none.
        let again = store
            .expire_token(&token.sha256, now + 5_000)
            .await
            .unwrap();
        assert_eq!(again.map(|token| token.expires_at_ms), Some(now), "{name}");
        assert_eq!(
            store.expire_token(&"ee".repeat(32), now).await.unwrap(),
            None,
            "{name}"
        );
    }
}

#[tokio::test]
async fn issued_tokens_are_kept_by_digest_until_they_expire() {
    use imageplane::store::IssuedToken;
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let now = imageplane::store::codec::now_ms();
        let limited = IssuedToken {
            sha256: "aa".repeat(32),
            subject: "alice".into(),
            folders: Some(vec!["f1".into(), "f2".into()]),
            expires_at_ms: now + 3_600_000,
        };
        let unlimited = IssuedToken {
            sha256: "bb".repeat(32),
            subject: "bob".into(),
            folders: None,
            expires_at_ms: now - 1,
        };
        store.put_token(&limited).await.unwrap();
        store.put_token(&unlimited).await.unwrap();
        assert_eq!(
            store.token(&limited.sha256).await.unwrap(),
            Some(limited.clone()),
            "{name}"
        );
        assert_eq!(
            store.token(&unlimited.sha256).await.unwrap(),
            Some(unlimited.clone()),
            "{name}"
        );
        assert_eq!(store.token(&"cc".repeat(32)).await.unwrap(), None, "{name}");
        // Only the expired one is purged.
        assert_eq!(
            store.purge_keys_and_tokens(0, now, 100).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            store.token(&unlimited.sha256).await.unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            store.token(&limited.sha256).await.unwrap(),
            Some(limited),
            "{name}"
        );
        if backend.durable() {
            drop(store);
            let reopened = backend.open(Duration::from_secs(10)).await;
            assert!(
                reopened.token(&"aa".repeat(32)).await.unwrap().is_some(),
                "{name}: kept across a reopen"
            );
        }
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn an_injected_failure_that_a_cancel_beat_fails_the_next_operation_instead() {
    use imageplane::faults::{Faults, Firing, Rule, Target};
    for backend in backends().await {
        let name = backend.name;
        let lease = Duration::from_secs(10);
        let store: Arc<dyn Store> = Arc::new(Meddling {
            inner: backend.open(lease).await,
            how: Meddle::CancelFirst,
            meddled: false.into(),
        });
        let faults = Arc::new(Faults::default());
        faults.add(Rule {
            id: "f1".into(),
            target: Target::Operation("create-disk".into()),
            code: Some(imageplane::error::Code::ResourceExhausted),
            message: "no room".into(),
            delay: Duration::ZERO,
            firing: Firing::Times(1),
        });
        let executor = executor_on(&store, lease, Arc::clone(&faults));
        // The first copy's ending, carrying the injected failure, loses to a cancel.
        let (_, first) = create(store.as_ref(), "f", "cancelled").await;
        executor.start(first.clone());
        let cancelled = ended(
            store.as_ref(),
            &first.operation.id,
            &format!("{name}: never ended"),
        )
        .await;
        let Some(operation::Result::Error(status)) = cancelled.result else {
            panic!("{name}: {cancelled:?}")
        };
        assert_eq!(status.code, 1, "{name}: CANCELLED, the cancel's");
        // The firing was given back: the next copy fails with it.
        let (_, second) = create(store.as_ref(), "f", "failed").await;
        executor.start(second.clone());
        let failed = ended(
            store.as_ref(),
            &second.operation.id,
            &format!("{name}: never ended"),
        )
        .await;
        let Some(operation::Result::Error(status)) = failed.result else {
            panic!("{name}: {failed:?}")
        };
        assert_eq!(
            (status.code, status.message.as_str()),
            (8, "no room"),
            "{name}"
        );
        assert!(faults.list().is_empty(), "{name}: spent");
        executor.shutdown().await;
        drop((executor, store));
        backend.clean_up().await;
    }
}

#[tokio::test]
async fn folder_counts_and_recent_operations_keep_to_the_folders_asked() {
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let (_, first) = create(store.as_ref(), "inspect-a", "one").await;
        let (second_disk, second) = create(store.as_ref(), "inspect-a", "two").await;
        let (_, other) = create(store.as_ref(), "inspect-b", "three").await;
        let (_, kept) = create(store.as_ref(), "inspect-c", "four").await;
        assert!(
            applied(&conclude(store.as_ref(), vec![due(&first)]).await[0]),
            "{name}"
        );
        // Ended a few milliseconds apart, so that their order is by time, not by id.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            applied(&conclude(store.as_ref(), vec![cancel(&other)]).await[0]),
            "{name}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            applied(&conclude(store.as_ref(), vec![due(&kept)]).await[0]),
            "{name}"
        );

        let folder_a = store::FolderCounts {
            folder_id: "inspect-a".into(),
            resources: vec![(ResourceKind::Disk, 2)],
            running_operations: 1,
        };
        let folder_c = store::FolderCounts {
            folder_id: "inspect-c".into(),
            resources: vec![(ResourceKind::Disk, 1)],
            running_operations: 0,
        };
        assert_eq!(
            store.folder_counts(None, None, 10).await.unwrap(),
            vec![folder_a.clone(), folder_c.clone()],
            "{name}: the cancelled create removed folder b's only disk"
        );
        // A page at a time, by folder id.
        assert_eq!(
            store.folder_counts(None, None, 1).await.unwrap(),
            vec![folder_a.clone()],
            "{name}"
        );
        assert_eq!(
            store
                .folder_counts(None, Some("inspect-a"), 1)
                .await
                .unwrap(),
            vec![folder_c.clone()],
            "{name}"
        );
        let only_b = ["inspect-b".to_string()];
        assert_eq!(
            store.folder_counts(Some(&only_b), None, 10).await.unwrap(),
            vec![],
            "{name}"
        );
        let a_and_b = ["inspect-a".to_string(), "inspect-b".to_string()];
        assert_eq!(
            store.folder_counts(Some(&a_and_b), None, 10).await.unwrap(),
            vec![folder_a],
            "{name}"
        );

        let ids = |records: &[OperationRecord]| {
            records
                .iter()
                .map(|record| record.operation.id.clone())
                .collect::<Vec<_>>()
        };
        let recent = store.recent_operations(None, None, 10).await.unwrap();
        assert_eq!(
            ids(&recent.running),
            vec![second.operation.id.clone()],
            "{name}"
        );
        assert_eq!(recent.running[0].target.folder_id, "inspect-a", "{name}");
        assert_eq!(
            ids(&recent.ended),
            vec![
                kept.operation.id.clone(),
                other.operation.id.clone(),
                first.operation.id.clone()
            ],
            "{name}: the one that ended last comes first"
        );
        let one = store.recent_operations(None, None, 1).await.unwrap();
        assert_eq!(
            ids(&one.ended),
            vec![kept.operation.id.clone()],
            "{name}: the limit"
        );
        let in_b = store
            .recent_operations(Some(&only_b), None, 10)
            .await
            .unwrap();
        assert_eq!(ids(&in_b.ended), vec![other.operation.id.clone()], "{name}");
        assert_eq!(in_b.running, vec![], "{name}");
        let of_second = store
            .recent_operations(None, Some(second_disk.id()), 10)
            .await
            .unwrap();
        assert_eq!(
            (ids(&of_second.running), of_second.ended.len()),
            (vec![second.operation.id.clone()], 0),
            "{name}: one resource's"
        );
        drop(store);
        backend.clean_up().await;
    }
}

/// The disk `id` read as the source of a copy, which must be there.
async fn disk_source(store: &dyn Store, id: &str, reading: imageplane::store::Reading) -> Source {
    store
        .source(ResourceKind::Disk, id, reading)
        .await
        .unwrap()
        .expect("the source disk")
}

/// A new CREATING image copied from `source`, with its running copy operation.
fn copy_of(source: &str, folder_id: &str) -> (Resource, OperationRecord) {
    let image = Resource::ComputeImage(imageplane::pb::compute::Image {
        id: imageplane::ids::new_id(imageplane::ids::prefix::COMPUTE_IMAGE),
        folder_id: folder_id.into(),
        status: imageplane::pb::compute::image::Status::Creating as i32,
        created_at: Some(imageplane::model::operations::now()),
        ..Default::default()
    });
    let record = record_for(
        &image,
        Work::Copy {
            source: Some(source.into()),
        },
    );
    (image, record)
}

/// On PostgreSQL, creates look their source up by its primary key however much the table
/// grew after their connections prepared the statement. PostgreSQL may keep one generic
/// plan of a prepared statement for good; made while the table was small, the plan of a
/// batch of creates scanned the whole table for its sources, and every batch read more
/// rows than the one before. The rows read by sequential scans of `resources` tell.
#[tokio::test]
async fn creates_read_their_sources_by_index_however_the_table_grew() {
    let Some(base_url) = postgres::base_url("the PostgreSQL plan test") else {
        return;
    };
    let (schema, url) = postgres::fresh_schema(&base_url, "plans").await;
    // Plans generic from the first statement, made on the empty table (PostgreSQL would
    // otherwise choose, after five statements, whether to keep one).
    let url = format!("{url}%20-cplan_cache_mode%3Dforce_generic_plan");
    let store = store::open(
        &DatabaseUrl::Postgres(url),
        Replica::new(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let folder_id = format!("f{:08x}", rand::random::<u32>());
    let (disk, record) = create(store.as_ref(), &folder_id, "source").await;
    conclude(store.as_ref(), vec![due(&record)]).await;
    const CALLERS: usize = 16;
    const CREATES: usize = 150;
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (store, disk_id, folder_id) =
            (Arc::clone(&store), disk.id().to_string(), folder_id.clone());
        callers.push(tokio::spawn(async move {
            for _ in 0..CREATES {
                let (image, record) = copy_of(&disk_id, &folder_id);
                store.create(image, record, None).await.unwrap();
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    drop(store);
    // A session reports its counts when it ends or idles; wait until every insert is in.
    let client = postgres::client(&base_url).await;
    let inserted = (1 + CALLERS * CREATES) as i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let scanned = loop {
        let row = client
            .query_one(
                "SELECT n_tup_ins, seq_tup_read FROM pg_stat_user_tables
                 WHERE schemaname = $1 AND relname = 'resources'",
                &[&schema],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) >= inserted {
            break row.get::<_, i64>(1);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL counted {} of {inserted} inserts in a minute",
            row.get::<_, i64>(0)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        scanned < 100,
        "{scanned} rows of resources read by sequential scans during {inserted} creates"
    );
    postgres::drop_schema(&base_url, &schema).await;
}

#[tokio::test]
async fn a_copy_is_written_only_from_its_source_as_the_create_read_it() {
    use imageplane::store::Reading;
    for backend in backends().await {
        let name = backend.name;
        let store = backend.open(Duration::from_secs(10)).await;
        let folder_id = format!("f{:08x}", rand::random::<u32>());
        let (disk, record) = create(store.as_ref(), &folder_id, "source").await;
        conclude(store.as_ref(), vec![due(&record)]).await;
        let read = disk_source(store.as_ref(), disk.id(), Reading::MayUseKept).await;
        // PostgreSQL keeps what it read (and the write compares bodies); SQLite reads
        // through its read cache, which is told every commit (and compares records).
        let keeps = name == "postgres";
        assert_eq!(store.keeps_sources(), keeps, "{name}");
        assert!(read.resource.name() == "source", "{name}");
        // Another call (on PostgreSQL it could come from another replica) renames it.
        store
            .change(ResourceKind::Disk, disk.id(), rename("renamed"), None)
            .await
            .unwrap();
        let again = disk_source(store.as_ref(), disk.id(), Reading::MayUseKept).await;
        let expected = if keeps { "source" } else { "renamed" };
        assert_eq!(
            again.resource.name(),
            expected,
            "{name}: a kept copy, or not"
        );
        // What was read before the rename is stale: every create that read it is refused
        // and writes nothing, alone, in a batch, or with an idempotency key; a create that
        // read the source as stored is written.
        let fresh = disk_source(store.as_ref(), disk.id(), Reading::Stored).await;
        assert_eq!(fresh.resource.name(), "renamed", "{name}");
        assert_ne!(fresh.seen, read.seen, "{name}");
        let mut creates = Vec::new();
        let mut images = Vec::new();
        for index in 0..32 {
            let (image, record) = copy_of(disk.id(), &folder_id);
            images.push((image.id().to_string(), index % 2 == 1));
            let seen = if index % 2 == 1 { &fresh } else { &read }.seen.clone();
            let seen = Some(seen);
            let store = Arc::clone(&store);
            creates.push(tokio::spawn(async move {
                store.create_copy(image, record, None, seen).await
            }));
        }
        for (create, (id, from_fresh)) in creates.into_iter().zip(&images) {
            let outcome = create.await.unwrap();
            match from_fresh {
                true => assert!(outcome.is_ok(), "{name}: {outcome:?}"),
                false => assert!(
                    matches!(&outcome, Err(StoreError::SourceChanged(source)) if source == disk.id()),
                    "{name}: {outcome:?}"
                ),
            }
            let stored = store
                .resource(ResourceKind::ComputeImage, id)
                .await
                .unwrap();
            assert_eq!(stored.is_some(), *from_fresh, "{name}: image {id}");
        }
        let claim = KeyClaim {
            subject: "tester".into(),
            key: format!("key-{}", rand::random::<u32>()),
            fingerprint: "fingerprint".into(),
        };
        let (image, record) = copy_of(disk.id(), &folder_id);
        let operation_id = record.operation.id.clone();
        let keyed = store
            .create_copy(image, record, Some(&claim), Some(read.seen.clone()))
            .await;
        assert!(
            matches!(keyed, Err(StoreError::SourceChanged(_))),
            "{name}: {keyed:?}"
        );
        assert!(
            store.operation(&operation_id).await.unwrap().is_none(),
            "{name}"
        );
        // The fresh read replaced the kept copy.
        let kept = disk_source(store.as_ref(), disk.id(), Reading::MayUseKept).await;
        assert_eq!(kept.resource.name(), "renamed", "{name}");
        assert_eq!(kept.seen, fresh.seen, "{name}");
        let refused: imageplane::error::Error = StoreError::SourceChanged(disk.id().into()).into();
        assert_eq!(refused.code(), imageplane::error::Code::Aborted, "{name}");
        drop(store);
        backend.clean_up().await;
    }
}

//! The embedded default: one SQLite database file in WAL mode, written by one thread with
//! group commit.
//!
//! Durability without giving up throughput: `synchronous = FULL`, so a commit is on disk
//! (fsync'd) before any caller hears back, but one commit serves every write that queued
//! while the previous one was being made. Each write is a job (a closure over the
//! connection) sent to the writer thread; the thread takes all queued jobs, runs them in
//! one transaction, commits once, and only then answers them all. Under load that turns
//! one fsync per create into one fsync per batch.
//!
//! A job checks before it writes: its logical outcomes (a taken name, an operation that
//! is already done) leave nothing written. A database error (I/O, disk full) fails the
//! whole batch: it is rolled back and every job in it gets the error, so no caller is
//! ever told "done" for something that was not committed.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread of their
//! own, so the writer never stops for them. Reads use a small pool of read-only
//! connections, called directly on the caller's thread: they are primary-key lookups
//! answered from SQLite's page cache in microseconds, less than handing them to a
//! blocking thread would cost. WAL lets them read while the writer writes, and they see
//! every committed write.
//!
//! One process at a time: the data directory is locked (`imageplane.lock`) while the
//! store is open. So at start every running operation left in the file is an orphan of a
//! previous run, and claiming takes every one not held by this replica.

mod read_cache;

use super::codec::{self, OperationRow, ResourceRow};
use super::migrations;
use super::query::{self, ListQuery, SqlValue};
use super::{
    Change, Changed, Current, Ending, Finished, IssuedToken, KeyClaim, Replica, ResourceChange,
    Store, StoreError, StoredKey, Transition,
};
use crate::model::resource::{OperationRecord, Resource, ResourceKind};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::AccessBinding;
use async_trait::async_trait;
use read_cache::{ReadCache, Record};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The most jobs one transaction takes; more wait for the next commit.
const MAX_BATCH: usize = 4096;
/// Queued writes beyond this make callers wait (back-pressure instead of memory growth).
const QUEUE_DEPTH: usize = 16 * 1024;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// WAL size (in pages) at which the writer finishes a checkpoint so that the WAL starts
/// over (about 16 MiB).
const WAL_RESET_PAGES: i64 = 4096;
/// Page cache per connection, in KiB (SQLite's negative `cache_size`): bounded, whatever
/// the number of stored records.
const WRITER_CACHE_KIB: i64 = 16 * 1024;
const READER_CACHE_KIB: i64 = 4 * 1024;
/// Readers map the database file: every commit empties a reader's page cache (WAL
/// mode), and a mapped page costs no system call and no copy to read again.
const READER_MMAP_BYTES: i64 = 1 << 30;

/// What a job hands back after the commit: it delivers the job's answer, or the batch's
/// error if the transaction failed.
type Delivery = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A job runs its work and returns its delivery, plus the database error that must fail
/// the whole batch, if it hit one.
type Job = Box<dyn FnOnce(&Connection, &mut Writes) -> (Delivery, Option<StoreError>) + Send>;

/// The records a batch changed, for the read cache once it is committed.
type Writes = Vec<read_cache::Write>;

/// Records kept by the read cache.
const CACHED_RECORDS: usize = 16 * 1024;
/// The most bytes the read cache holds (see `read_cache`).
const CACHED_BYTES: usize = 32 << 20;

/// What a job's work returns: the outer error is a database failure (the batch is rolled
/// back); the inner result is the job's own outcome, with nothing written if it is Err.
type JobResult<T> = rusqlite::Result<Result<T, StoreError>>;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Backend(format!("sqlite: {error}"))
    }
}

/// Whether commits reach the disk before they are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: every acknowledged write survives a crash.
    Full,
    /// `synchronous = OFF`, in a temporary directory removed with the store: `memory:`.
    Ephemeral,
}

/// A [`Store`] in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    durability: Durability,
    /// `memory:`'s directory, removed when the store is dropped.
    _ephemeral_directory: Option<tempfile::TempDir>,
    replica: Replica,
    jobs: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    cache: Arc<ReadCache>,
    /// Dropped with the store: ends the checkpointer.
    _stop_checkpoints: std::sync::mpsc::Sender<()>,
    /// Held while open: another imageplane on the same file would break the
    /// one-process assumption of recovery.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, locks its directory and applies
    /// the migrations.
    pub async fn open(path: &Path, replica: Replica) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            SqliteStore::open_blocking(path, replica, Durability::Full, None)
        })
        .await
        .map_err(|error| StoreError::Backend(format!("opening sqlite: {error}")))?
    }

    /// `memory:`: a database in a new temporary directory, without fsync, gone when the
    /// store is dropped (or the process ends).
    pub async fn open_ephemeral(replica: Replica) -> Result<SqliteStore, StoreError> {
        tokio::task::spawn_blocking(move || {
            let directory = tempfile::Builder::new()
                .prefix("imageplane-memory-")
                .tempdir()
                .map_err(|error| {
                    StoreError::Backend(format!("cannot make a temporary directory: {error}"))
                })?;
            let path = directory.path().join("imageplane.sqlite3");
            SqliteStore::open_blocking(path, replica, Durability::Ephemeral, Some(directory))
        })
        .await
        .map_err(|error| StoreError::Backend(format!("opening sqlite: {error}")))?
    }

    fn open_blocking(
        path: PathBuf,
        replica: Replica,
        durability: Durability,
        ephemeral_directory: Option<tempfile::TempDir>,
    ) -> Result<SqliteStore, StoreError> {
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&directory).map_err(|error| {
            StoreError::Backend(format!("cannot create {}: {error}", directory.display()))
        })?;
        let lock = lock_directory(&directory, &path)?;
        let mut writer = Connection::open(&path)?;
        // SQLite opens a file it may not write read-only, without an error: every write
        // would fail later. Refuse to start instead.
        if writer.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::Backend(format!(
                "{} is read-only: imageplane must be able to write it",
                path.display()
            )));
        }
        configure(&writer, durability)?;
        migrate(&mut writer)?;
        verify_schema(&writer)?;
        // The checkpointer thread copies the WAL back in the background. It cannot reset
        // the WAL while the writer keeps writing, though: the writer's own checkpoint,
        // once the WAL passes this many pages, finishes the little the checkpointer left,
        // and the WAL starts over. Without it the WAL grows without bound and every read
        // slows down with it.
        writer.pragma_update(None, "wal_autocheckpoint", WAL_RESET_PAGES)?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let checkpointer = Connection::open(&path)?;
        configure(&checkpointer, durability)?;
        let (stop_checkpoints, checkpoints_stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, checkpoints_stopped))
            .map_err(|error| StoreError::Backend(format!("starting the checkpointer: {error}")))?;
        let cache = Arc::new(ReadCache::new(CACHED_RECORDS, CACHED_BYTES));
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer_cache = Arc::clone(&cache);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(writer, queue, &writer_cache))
            .map_err(|error| StoreError::Backend(format!("starting the writer: {error}")))?;
        Ok(SqliteStore {
            path,
            durability,
            _ephemeral_directory: ephemeral_directory,
            replica,
            jobs,
            readers: Mutex::new(Vec::new()),
            cache,
            _stop_checkpoints: stop_checkpoints,
            _lock: lock,
        })
    }

    /// Runs `work` in the next group commit; answers once it is durable.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &mut Writes) -> JobResult<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |connection, writes| {
            let (outcome, failure) = match work(connection, writes) {
                Ok(outcome) => (outcome, None),
                Err(error) => {
                    let error = StoreError::from(error);
                    (Err(error.clone()), Some(error))
                }
            };
            let delivery: Delivery = Box::new(move |batch_error| {
                let _ = answer.send(match batch_error {
                    Some(error) => Err(error.clone()),
                    None => outcome,
                });
            });
            (delivery, failure)
        });
        let stopped = || StoreError::Backend("the sqlite writer did not take the write".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Runs `work` on a pooled read connection, on this thread (see the module doc).
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.path)?,
        };
        let outcome = work(&connection);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(connection);
        }
        outcome
    }
}

/// Takes the directory's lock file, or says who holds it.
fn lock_directory(directory: &Path, database: &Path) -> Result<File, StoreError> {
    let lock_path = directory.join("imageplane.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| {
            StoreError::Backend(format!("cannot open {}: {error}", lock_path.display()))
        })?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Backend(format!(
            "{} is in use by another imageplane process (lock {} is held); \
             several replicas need a shared PostgreSQL (--database-url postgres://...)",
            database.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Backend(format!(
            "cannot lock {}: {error}",
            lock_path.display()
        ))),
    }
}

fn configure(connection: &Connection, durability: Durability) -> Result<(), StoreError> {
    // WAL: readers never block the writer. FULL: a commit is fsync'd before it returns.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Ephemeral => "OFF",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    connection.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    connection.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(connection)
}

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`] until the store is
/// dropped. PASSIVE: it never waits for the writer or readers; what it cannot copy now
/// it copies next time.
fn checkpoint_loop(connection: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "sqlite checkpoint failed");
        }
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection.execute_batch(migrations::CREATE_BOOKKEEPING)?;
    let current: i64 = connection.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    for migration in
        migrations::pending(migrations::SQLITE, current).map_err(StoreError::Backend)?
    {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration.sql)?;
        if migration.version == migrations::BACKFILLED {
            backfill_columns(&transaction)?;
        }
        transaction.execute(
            "INSERT INTO schema_migrations (version, description, applied_at_ms) VALUES (?1, ?2, ?3)",
            params![migration.version, migration.description, codec::now_ms()],
        )?;
        transaction.commit()?;
        tracing::info!(
            version = migration.version,
            migration.description,
            "applied schema migration"
        );
    }
    Ok(())
}

/// Reads the whole file read-only (see [`super::check`]).
pub async fn check(path: &Path) -> Result<super::CheckReport, StoreError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        if !path.exists() {
            return Err(StoreError::Backend(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.pragma_update(None, "busy_timeout", 5000)?;
        let mut report = super::CheckReport::default();
        let mut integrity = connection.prepare("PRAGMA integrity_check")?;
        for line in integrity.query_map([], |row| row.get::<_, String>(0))? {
            match line {
                Ok(line) if line == "ok" => {}
                Ok(line) => report.problems.push(format!("integrity_check: {line}")),
                Err(error) => report.problems.push(format!("integrity_check: {error}")),
            }
        }
        if let Err(error) = verify_schema(&connection) {
            report.problems.push(error.to_string());
            return Ok(report);
        }
        let mut resources = connection.prepare("SELECT id, kind, os, body FROM resources")?;
        let mut rows = resources.query([])?;
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let id: String = row.get(0).unwrap_or_default();
                    let decoded = (|| {
                        let kind: i32 = row.get(1)?;
                        let os: Option<Vec<u8>> = row.get(2)?;
                        let body: Vec<u8> = row.get(3)?;
                        codec::resource_from_columns(kind, os.as_deref(), &body)
                    })();
                    report.row("resources", &id, decoded);
                }
                Ok(None) => break,
                Err(error) => {
                    report
                        .problems
                        .push(format!("resources: reading stopped: {error}"));
                    break;
                }
            }
        }
        let mut operations = connection.prepare(&format!(
            "SELECT id, {} FROM operations",
            codec::OPERATION_COLUMNS
        ))?;
        let mut rows = operations.query([])?;
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let id: String = row.get(0).unwrap_or_default();
                    let decoded = (|| {
                        let (columns, body) = operation_columns(row, 1)?;
                        codec::record_from_columns(columns, &body)
                    })();
                    report.row("operations", &id, decoded);
                }
                Ok(None) => break,
                Err(error) => {
                    report
                        .problems
                        .push(format!("operations: reading stopped: {error}"));
                    break;
                }
            }
        }
        Ok(report)
    })
    .await
    .map_err(|error| StoreError::Backend(format!("checking sqlite: {error}")))?
}

/// Fills the columns schema 2 added (status, family and creation time of resources, the
/// creation time of operations) from the bodies of the rows written before it. A row that
/// cannot be decoded keeps the defaults: `imageplane check` names it.
fn backfill_columns(connection: &Connection) -> Result<(), StoreError> {
    let mut resources = connection.prepare("SELECT id, kind, os, body FROM resources")?;
    let rows = resources
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i32>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut update = connection.prepare(
        "UPDATE resources SET status = ?2, family = ?3, created_at_ms = ?4 WHERE id = ?1",
    )?;
    for (id, kind, os, body) in rows {
        if let Ok(resource) = codec::resource_from_columns(kind, os.as_deref(), &body) {
            let row = ResourceRow::from_resource(&resource);
            update.execute(params![id, row.status, row.family, row.created_at_ms])?;
        }
    }
    let mut operations = connection.prepare("SELECT id, body FROM operations")?;
    let rows = operations
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut update =
        connection.prepare("UPDATE operations SET created_at_ms = ?2 WHERE id = ?1")?;
    for (id, body) in rows {
        if let Ok(operation) = codec::decode_operation(&body) {
            update.execute(params![id, codec::created_at_ms(&operation)])?;
        }
    }
    Ok(())
}

/// Probes every table and column the queries use (see `migrations::SCHEMA_PROBES`), and
/// the indexes lists name (`INDEXED BY` fails without them).
fn verify_schema(connection: &Connection) -> Result<(), StoreError> {
    for (table, probe) in migrations::SCHEMA_PROBES {
        connection
            .prepare(probe)
            .map_err(|error| StoreError::Backend(migrations::damaged_schema(table, &error)))?;
    }
    let mut index_exists = connection
        .prepare("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1")?;
    for index in query::LIST_INDEXES {
        let count: i64 = index_exists.query_row([index], |row| row.get(0))?;
        if count == 0 {
            return Err(StoreError::Backend(migrations::damaged_schema(
                "resources",
                &format!("index {index} is missing"),
            )));
        }
    }
    Ok(())
}

/// The writer thread: takes every queued job, runs them in one transaction, commits once
/// and then answers them. Ends when the store is dropped.
fn write_loop(connection: Connection, mut queue: mpsc::Receiver<Job>, cache: &ReadCache) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut writes = Writes::new();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut deliveries: Vec<Delivery> = Vec::with_capacity(batch.len());
        let mut batch_error = run_statement(&connection, "BEGIN IMMEDIATE").err();
        for job in batch.drain(..) {
            if batch_error.is_some() {
                // Not run: the batch already failed. Dropping the job drops its answer
                // channel, and its caller hears that the write was not taken.
                continue;
            }
            let (delivery, failure) = job(&connection, &mut writes);
            deliveries.push(delivery);
            batch_error = failure;
        }
        if batch_error.is_none() {
            batch_error = run_statement(&connection, "COMMIT").err();
        }
        if let Some(error) = &batch_error {
            tracing::error!(%error, "sqlite: a write batch failed and was rolled back");
            let _ = run_statement(&connection, "ROLLBACK");
            writes.clear();
        } else {
            // Before any caller hears back: a read after the answer sees the commit.
            cache.apply(std::mem::take(&mut writes));
        }
        for delivery in deliveries {
            delivery(batch_error.as_ref());
        }
    }
}

/// Runs a statement without parameters, prepared once.
fn run_statement(connection: &Connection, sql: &str) -> Result<(), StoreError> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Inserts a resource unless its name is taken (then returns false, writing nothing).
fn insert_resource(connection: &Connection, row: &ResourceRow) -> rusqlite::Result<bool> {
    let inserted = connection
        .prepare_cached(
            "INSERT INTO resources (id, kind, folder_id, name, os, body, status, family,
                 created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (kind, folder_id, name) WHERE name <> '' DO NOTHING",
        )?
        .execute(params![
            row.id,
            row.kind,
            row.folder_id,
            row.name,
            row.os,
            row.body,
            row.status,
            row.family,
            row.created_at_ms
        ])?;
    Ok(inserted == 1)
}

fn select_resource(connection: &Connection, id: &str) -> JobResult<Option<Resource>> {
    let columns = connection
        .prepare_cached("SELECT kind, os, body FROM resources WHERE id = ?1")?
        .query_row([id], |row| {
            Ok((
                row.get::<_, i32>(0)?,
                row.get::<_, Option<Vec<u8>>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    Ok(columns
        .map(|(kind, os, body)| codec::resource_from_columns(kind, os.as_deref(), &body))
        .transpose())
}

/// SQLite's placeholders and substring test.
const DIALECT: query::Dialect = query::Dialect {
    placeholder: numbered_placeholder,
    contains: instr,
    names_index: true,
};

fn numbered_placeholder(n: usize) -> String {
    format!("?{n}")
}

fn instr(column: &str, placeholder: &str) -> String {
    format!("instr({column}, {placeholder}) > 0")
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            SqlValue::Text(text) => text.to_sql(),
            SqlValue::I32(number) => number.to_sql(),
            SqlValue::I64(number) => number.to_sql(),
        }
    }
}

/// The name under which the page-token key is kept in `settings`.
pub const PAGE_KEY: &str = "page-token-key";

/// A resource's access bindings, as stored (none when the column is NULL).
fn select_bindings(connection: &Connection, id: &str) -> JobResult<Vec<AccessBinding>> {
    let stored: Option<Option<Vec<u8>>> = connection
        .prepare_cached("SELECT access_bindings FROM resources WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(codec::decode_bindings(stored.flatten().as_deref()))
}

/// A running operation that creates, deletes or reads from the resource, if any.
fn busy_with(connection: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    connection
        .prepare_cached(
            "SELECT id FROM operations
             WHERE done = 0 AND (target_id = ?1 OR source_id = ?1) LIMIT 1",
        )?
        .query_row([id], |row| row.get(0))
        .optional()
}

/// Another resource of the kind that holds `name` in `folder_id`.
/// `NameTaken` if another resource of its kind holds `resource`'s non-empty name in its
/// folder. Checked before writing, so that a taken name fails its job alone and not the
/// batch it is committed with.
fn check_name_free(connection: &Connection, resource: &Resource) -> JobResult<()> {
    if resource.name().is_empty() {
        return Ok(Ok(()));
    }
    let holder: Option<String> = connection
        .prepare_cached(
            "SELECT id FROM resources
             WHERE kind = ?1 AND folder_id = ?2 AND name = ?3 AND id <> ?4 LIMIT 1",
        )?
        .query_row(
            params![
                resource.kind().code(),
                resource.folder_id(),
                resource.name(),
                resource.id()
            ],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match holder {
        Some(_) => Err(StoreError::name_taken(resource)),
        None => Ok(()),
    })
}

/// Applies a change in the writer's transaction (see `Store::change`).
fn apply_change(
    connection: &Connection,
    kind: ResourceKind,
    id: &str,
    change: Change,
    (owner, lease_until): (&str, i64),
    writes: &mut Writes,
) -> JobResult<OperationRecord> {
    let resource = match select_resource(connection, id)? {
        Err(error) => return Ok(Err(error)),
        Ok(resource) => resource.filter(|resource| resource.kind() == kind),
    };
    let before = resource.as_ref().map(IndexedColumns::of);
    let current = match resource {
        None => None,
        Some(resource) => Some(Current {
            access_bindings: match select_bindings(connection, id)? {
                Err(error) => return Ok(Err(error)),
                Ok(bindings) => bindings,
            },
            busy_with: busy_with(connection, id)?,
            resource,
        }),
    };
    let Changed {
        resource,
        access_bindings,
        record,
    } = match change(current) {
        Ok(changed) => changed,
        Err(error) => return Ok(Err(StoreError::Refused(error))),
    };
    if let Err(taken) = check_name_free(connection, &resource)? {
        return Ok(Err(taken));
    }
    update_resource(connection, &resource, before.as_ref())?;
    if let Some(bindings) = &access_bindings {
        connection
            .prepare_cached("UPDATE resources SET access_bindings = ?2 WHERE id = ?1")?
            .execute(params![id, codec::encode_bindings(bindings)])?;
    }
    insert_operation(
        connection,
        &OperationRow::from_record(&record),
        owner,
        lease_until,
    )?;
    writes.push((id.to_string(), Some(Record::Resource(resource))));
    writes.push((
        record.operation.id.clone(),
        Some(Record::Operation(record.clone())),
    ));
    Ok(Ok(record))
}

/// Whether the key of `claim` is stored already.
fn key_exists(connection: &Connection, claim: &KeyClaim) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SELECT 1 FROM idempotency_keys WHERE subject = ?1 AND key = ?2")?
        .exists(params![claim.subject, claim.key])
}

/// Stores the key of `claim` for the operation `operation_id`.
fn insert_key(
    connection: &Connection,
    claim: &KeyClaim,
    operation_id: &str,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO idempotency_keys (subject, key, fingerprint, operation_id, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            claim.subject,
            claim.key,
            claim.fingerprint,
            operation_id,
            codec::now_ms()
        ])?;
    Ok(())
}

/// Inserts an operation held by `owner` until `lease_until` (milliseconds).
fn insert_operation(
    connection: &Connection,
    row: &OperationRow,
    owner: &str,
    lease_until: i64,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO operations (id, done, modified_at_ms, target_kind, target_id,
                 import_uri, owner, lease_until_ms, body, work, source_id, created_at_ms,
                 folder_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            row.id,
            row.done,
            row.modified_at_ms,
            row.target_kind,
            row.target_id,
            row.import_uri,
            owner,
            lease_until,
            row.body,
            row.work,
            row.source_id,
            row.created_at_ms,
            row.folder_id
        ])?;
    Ok(())
}

/// The columns of a resource that the list indexes are on.
#[derive(PartialEq)]
struct IndexedColumns {
    folder_id: String,
    name: String,
    family: String,
}

impl IndexedColumns {
    fn of(resource: &Resource) -> IndexedColumns {
        IndexedColumns {
            folder_id: resource.folder_id().to_string(),
            name: resource.name().to_string(),
            family: resource.family().to_string(),
        }
    }
}

/// Writes a resource's new state (every column but its kind, id and creation time).
///
/// SQLite rewrites the entries of every index on a column named in SET, whether its value
/// changed or not; the list indexes are on folder_id, name and family, so when those stay
/// (every ending of an operation but a few changes) only the other columns are set.
fn update_resource(
    connection: &Connection,
    resource: &Resource,
    before: Option<&IndexedColumns>,
) -> rusqlite::Result<()> {
    let row = ResourceRow::from_resource(resource);
    if before == Some(&IndexedColumns::of(resource)) {
        connection
            .prepare_cached("UPDATE resources SET os = ?2, body = ?3, status = ?4 WHERE id = ?1")?
            .execute(params![row.id, row.os, row.body, row.status])?;
        return Ok(());
    }
    connection
        .prepare_cached(
            "UPDATE resources SET folder_id = ?2, name = ?3, os = ?4, body = ?5, status = ?6,
                 family = ?7
             WHERE id = ?1",
        )?
        .execute(params![
            row.id,
            row.folder_id,
            row.name,
            row.os,
            row.body,
            row.status,
            row.family
        ])?;
    Ok(())
}

fn store_finished(connection: &Connection, finished: &Operation) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "UPDATE operations SET done = 1, modified_at_ms = ?2, body = ?3 WHERE id = ?1",
        )?
        .execute(params![
            finished.id,
            codec::modified_at_ms(finished),
            prost::Message::encode_to_vec(finished)
        ])?;
    Ok(())
}

/// The running operation `id`, or why it cannot be finished (unknown or already done).
fn running_operation(connection: &Connection, id: &str) -> JobResult<Result<Operation, Finished>> {
    Ok(match select_record(connection, id)? {
        Err(error) => Err(error),
        Ok(None) => Ok(Err(Finished::Unknown)),
        Ok(Some((true, record))) => Ok(Err(Finished::AlreadyDone(Box::new(record.operation)))),
        Ok(Some((false, record))) => Ok(Ok(record.operation)),
    })
}

/// Ends one running operation as `transition` decides (see `Store::conclude`).
fn conclude_one(
    connection: &Connection,
    ending: Ending,
    transition: Transition,
    writes: &mut Writes,
) -> JobResult<Finished> {
    let record = match select_record(connection, &ending.operation_id)? {
        Err(error) => return Ok(Err(error)),
        Ok(None) => return Ok(Ok(Finished::Unknown)),
        Ok(Some((true, record))) => {
            return Ok(Ok(Finished::AlreadyDone(Box::new(record.operation))))
        }
        Ok(Some((false, record))) => record,
    };
    let resource = match select_resource(connection, &record.target.id)? {
        Err(error) => return Ok(Err(error)),
        Ok(resource) => resource,
    };
    let before = resource.as_ref().map(IndexedColumns::of);
    let (finished, change) = match transition(&record, resource, ending.outcome) {
        Ok(ended) => ended,
        Err(error) => return Ok(Err(error)),
    };
    store_finished(connection, &finished)?;
    match change {
        ResourceChange::Put(resource) => {
            update_resource(connection, &resource, before.as_ref())?;
            writes.push((resource.id().to_string(), Some(Record::Resource(*resource))));
        }
        ResourceChange::Remove(target) => {
            connection
                .prepare_cached("DELETE FROM resources WHERE id = ?1")?
                .execute([&target.id])?;
            writes.push((target.id, None));
        }
        ResourceChange::Keep => {}
    }
    writes.push((
        finished.id.clone(),
        Some(Record::Operation(OperationRecord {
            operation: finished.clone(),
            ..record
        })),
    ));
    Ok(Ok(Finished::Applied(Box::new(finished))))
}

/// An operation record's columns from a row, starting at column `first`, in the order of
/// `codec::OPERATION_COLUMNS`.
fn operation_columns(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<(codec::OperationColumns, Vec<u8>)> {
    Ok((
        codec::OperationColumns {
            target_kind: row.get(first)?,
            target_id: row.get(first + 1)?,
            folder_id: row.get(first + 2)?,
            work: row.get(first + 3)?,
            import_uri: row.get(first + 4)?,
            source_id: row.get(first + 5)?,
        },
        row.get(first + 6)?,
    ))
}

/// An operation's done flag and record, if it exists.
fn select_record(connection: &Connection, id: &str) -> JobResult<Option<(bool, OperationRecord)>> {
    let columns = connection
        .prepare_cached(&format!(
            "SELECT done, {} FROM operations WHERE id = ?1",
            codec::OPERATION_COLUMNS
        ))?
        .query_row([id], |row| {
            Ok((row.get::<_, bool>(0)?, operation_columns(row, 1)?))
        })
        .optional()?;
    Ok(columns
        .map(|(done, (columns, body))| Ok((done, codec::record_from_columns(columns, &body)?)))
        .transpose())
}

/// Binds a list of ids as one JSON array parameter (SQLite has no array type).
fn id_list(ids: &[String]) -> String {
    let quoted: Vec<String> = ids
        .iter()
        .map(|id| format!("\"{}\"", id.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(","))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(
        &self,
        resource: Resource,
        operation: OperationRecord,
        claim: Option<&KeyClaim>,
    ) -> Result<(), StoreError> {
        let resource_row = ResourceRow::from_resource(&resource);
        let row = OperationRow::from_record(&operation);
        let owner = self.replica.id.clone();
        let lease_until = codec::now_ms() + self.replica.lease_ms();
        let claim = claim.cloned();
        self.write(move |connection, writes| {
            // Every refusal comes before the first write: a job cannot undo its writes.
            if let Some(claim) = &claim {
                if key_exists(connection, claim)? {
                    return Ok(Err(StoreError::KeyTaken));
                }
            }
            if !insert_resource(connection, &resource_row)? {
                return Ok(Err(StoreError::name_taken(&resource)));
            }
            if let Some(claim) = &claim {
                insert_key(connection, claim, &row.id)?;
            }
            insert_operation(connection, &row, &owner, lease_until)?;
            writes.push((row.id, Some(Record::Operation(operation))));
            writes.push((resource_row.id, Some(Record::Resource(resource))));
            Ok(Ok(()))
        })
        .await
    }

    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError> {
        let found = match self.cache.begin_read(id) {
            Some(Record::Resource(resource)) => Some(resource),
            Some(Record::Operation(_)) => None,
            None => {
                let found = self.read(|connection| select_resource(connection, id)?);
                let cached = found
                    .as_ref()
                    .ok()
                    .and_then(|found| found.clone())
                    .map(Record::Resource);
                self.cache.finish_read(id, cached.as_ref());
                found?
            }
        };
        Ok(found.filter(|resource| resource.kind() == kind))
    }

    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        match self.cache.begin_read(id) {
            Some(Record::Operation(record)) => return Ok(Some(record)),
            Some(Record::Resource(_)) => return Ok(None),
            None => {}
        }
        let found =
            self.read(|connection| Ok(select_record(connection, id)??.map(|(_, record)| record)));
        let cached = found
            .as_ref()
            .ok()
            .and_then(|found| found.clone())
            .map(Record::Operation);
        self.cache.finish_read(id, cached.as_ref());
        found
    }

    async fn conclude(
        &self,
        endings: Vec<Ending>,
        transition: Transition,
    ) -> Vec<Result<Finished, StoreError>> {
        let count = endings.len();
        let outcome = self
            .write(move |connection, writes| {
                let mut outcomes = Vec::with_capacity(endings.len());
                for ending in endings {
                    outcomes.push(conclude_one(connection, ending, transition, writes)?);
                }
                Ok(Ok(outcomes))
            })
            .await;
        match outcome {
            Ok(outcomes) => outcomes,
            Err(error) => vec![Err(error); count],
        }
    }

    async fn change(
        &self,
        kind: ResourceKind,
        id: &str,
        change: Change,
        claim: Option<&KeyClaim>,
    ) -> Result<OperationRecord, StoreError> {
        let id = id.to_string();
        let owner = self.replica.id.clone();
        let lease_until = codec::now_ms() + self.replica.lease_ms();
        let claim = claim.cloned();
        self.write(move |connection, writes| {
            if let Some(claim) = &claim {
                if key_exists(connection, claim)? {
                    return Ok(Err(StoreError::KeyTaken));
                }
            }
            let record =
                apply_change(connection, kind, &id, change, (&owner, lease_until), writes)?;
            if let (Ok(record), Some(claim)) = (&record, &claim) {
                insert_key(connection, claim, &record.operation.id)?;
            }
            Ok(record)
        })
        .await
    }

    async fn idempotency_key(
        &self,
        subject: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        self.read(|connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT fingerprint, operation_id FROM idempotency_keys
                     WHERE subject = ?1 AND key = ?2",
                )?
                .query_row(params![subject, key], |row| {
                    Ok(StoredKey {
                        fingerprint: row.get(0)?,
                        operation_id: row.get(1)?,
                    })
                })
                .optional()?)
        })
    }

    async fn put_token(&self, token: &IssuedToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.write(move |connection, _writes| {
            connection
                .prepare_cached(
                    "INSERT INTO iam_tokens (token_sha256, subject, folders, expires_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    token.sha256,
                    token.subject,
                    token.folders_column(),
                    token.expires_at_ms
                ])?;
            Ok(Ok(()))
        })
        .await
    }

    async fn token(&self, sha256: &str) -> Result<Option<IssuedToken>, StoreError> {
        self.read(|connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT subject, folders, expires_at_ms FROM iam_tokens
                     WHERE token_sha256 = ?1",
                )?
                .query_row(params![sha256], |row| {
                    Ok(IssuedToken {
                        sha256: sha256.to_string(),
                        subject: row.get(0)?,
                        folders: IssuedToken::folders_from_column(&row.get::<_, String>(1)?),
                        expires_at_ms: row.get(2)?,
                    })
                })
                .optional()?)
        })
    }

    async fn purge_keys_and_tokens(
        &self,
        keys_before_ms: i64,
        tokens_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |connection, _writes| {
            let keys = connection
                .prepare_cached(
                    "DELETE FROM idempotency_keys WHERE (subject, key) IN (
                         SELECT subject, key FROM idempotency_keys
                         WHERE created_at_ms < ?1 LIMIT ?2)",
                )?
                .execute(params![keys_before_ms, limit])?;
            let tokens = connection
                .prepare_cached(
                    "DELETE FROM iam_tokens WHERE token_sha256 IN (
                         SELECT token_sha256 FROM iam_tokens WHERE expires_at_ms < ?1 LIMIT ?2)",
                )?
                .execute(params![tokens_before_ms, limit])?;
            Ok(Ok(keys + tokens))
        })
        .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Resource>, StoreError> {
        let (sql, parameters) = query::list_sql(query, &DIALECT);
        self.read(|connection| {
            let mut statement = connection.prepare_cached(&sql)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(parameters.iter()), |row| {
                    Ok((
                        row.get::<_, i32>(0)?,
                        row.get::<_, Option<Vec<u8>>>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(kind, os, body)| codec::resource_from_columns(kind, os.as_deref(), &body))
                .collect()
        })
    }

    async fn access_bindings(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Vec<AccessBinding>>, StoreError> {
        self.read(|connection| {
            let stored: Option<Option<Vec<u8>>> = connection
                .prepare_cached(
                    "SELECT access_bindings FROM resources WHERE id = ?1 AND kind = ?2",
                )?
                .query_row(params![id, kind.code()], |row| row.get(0))
                .optional()?;
            stored
                .map(|bindings| codec::decode_bindings(bindings.as_deref()))
                .transpose()
        })
    }

    async fn operations_of(
        &self,
        target_id: &str,
        folders: Option<&[String]>,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The folders as a JSON array (NULL: any folder), read with json_each.
        let folders = folders.map(|folders| serde_json::Value::from(folders.to_vec()).to_string());
        let (created, id) = after.unwrap_or((i64::MAX, String::new()));
        let first_page = id.is_empty();
        self.read(|connection| {
            let bodies: Vec<Vec<u8>> = connection
                .prepare_cached(
                    "SELECT body FROM operations WHERE target_id = ?1
                         AND (?5 OR created_at_ms < ?2 OR (created_at_ms = ?2 AND id < ?3))
                         AND (?6 IS NULL OR folder_id IN (SELECT value FROM json_each(?6)))
                     ORDER BY created_at_ms DESC, id DESC LIMIT ?4",
                )?
                .query_map(
                    params![target_id, created, id, limit, first_page, folders],
                    |row| row.get(0),
                )?
                .collect::<Result<_, _>>()?;
            bodies
                .iter()
                .map(|body| codec::decode_operation(body))
                .collect()
        })
    }

    async fn seed(&self, resources: Vec<Resource>) -> Result<usize, StoreError> {
        self.write(move |connection, writes| {
            let mut new = Vec::new();
            let mut exists = connection.prepare_cached("SELECT 1 FROM resources WHERE id = ?1")?;
            for resource in resources {
                if exists.exists([resource.id()])? {
                    continue;
                }
                if let Err(taken) = check_name_free(connection, &resource)? {
                    return Ok(Err(taken));
                }
                new.push(resource);
            }
            for resource in &new {
                insert_resource(connection, &ResourceRow::from_resource(resource))?;
                writes.push((
                    resource.id().to_string(),
                    Some(Record::Resource(resource.clone())),
                ));
            }
            Ok(Ok(new.len()))
        })
        .await
    }

    async fn page_key(&self) -> Result<Vec<u8>, StoreError> {
        let fresh: [u8; 32] = rand::random();
        self.write(move |connection, _| {
            connection
                .prepare_cached(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![PAGE_KEY, fresh.to_vec()])?;
            let key: Vec<u8> = connection
                .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
                .query_row([PAGE_KEY], |row| row.get(0))?;
            Ok(Ok(key))
        })
        .await
    }

    async fn describe_running(
        &self,
        operation_id: &str,
        description: &str,
    ) -> Result<(), StoreError> {
        let id = operation_id.to_string();
        let description = description.to_string();
        self.write(move |connection, writes| {
            let mut operation = match running_operation(connection, &id)? {
                Ok(Ok(operation)) => operation,
                Ok(Err(_)) => return Ok(Ok(())),
                Err(error) => return Ok(Err(error)),
            };
            operation.description = description;
            connection
                .prepare_cached("UPDATE operations SET body = ?2 WHERE id = ?1 AND done = 0")?
                .execute(params![id, prost::Message::encode_to_vec(&operation)])?;
            writes.push((id, None));
            Ok(Ok(()))
        })
        .await
    }

    async fn renew_leases(&self, operation_ids: &[String]) -> Result<Vec<String>, StoreError> {
        if operation_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_list(operation_ids);
        let owner = self.replica.id.clone();
        let lease_until = codec::now_ms() + self.replica.lease_ms();
        self.write(move |connection, _| {
            let mut statement = connection.prepare_cached(
                "UPDATE operations SET lease_until_ms = ?3
                 WHERE id IN (SELECT value FROM json_each(?1)) AND owner = ?2 AND done = 0
                 RETURNING id",
            )?;
            let held = statement
                .query_map(params![ids, owner, lease_until], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Ok(held))
        })
        .await
    }

    async fn claim_orphans(&self, limit: usize) -> Result<Vec<OperationRecord>, StoreError> {
        let owner = self.replica.id.clone();
        let now = codec::now_ms();
        let lease_until = now + self.replica.lease_ms();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |connection, writes| {
            // The directory lock makes this the only process: whatever another replica id
            // holds was left by an earlier run.
            let mut statement = connection.prepare_cached(
                "UPDATE operations SET owner = ?1, lease_until_ms = ?3
                 WHERE id IN (SELECT id FROM operations
                              WHERE done = 0 AND (owner <> ?1 OR lease_until_ms < ?2)
                              LIMIT ?4)
                 RETURNING id, target_kind, target_id, folder_id, work, import_uri,
                           source_id, body",
            )?;
            let rows = statement
                .query_map(params![owner, now, lease_until, limit], |row| {
                    Ok((row.get::<_, String>(0)?, operation_columns(row, 1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (id, (columns, body)) in rows {
                match codec::record_from_columns(columns, &body) {
                    Ok(record) => claimed.push(record),
                    Err(error) => {
                        tracing::error!(operation_id = %id, %error, "ending an unreadable operation");
                        store_finished(connection, &codec::unreadable(&id, &error))?;
                        writes.push((id, None));
                    }
                }
            }
            Ok(Ok(claimed))
        })
        .await
    }

    async fn release_leases(&self, operation_ids: &[String]) -> Result<(), StoreError> {
        if operation_ids.is_empty() {
            return Ok(());
        }
        let ids = id_list(operation_ids);
        let owner = self.replica.id.clone();
        self.write(move |connection, _| {
            connection
                .prepare_cached(
                    "UPDATE operations SET lease_until_ms = 0
                     WHERE id IN (SELECT value FROM json_each(?1)) AND owner = ?2 AND done = 0",
                )?
                .execute(params![ids, owner])?;
            Ok(Ok(()))
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        if self.durability == Durability::Ephemeral {
            return Ok(());
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // Copies the whole WAL into the database file and truncates the WAL to zero
            // bytes, waiting (busy_timeout) for a write still finishing. A copy of the
            // database file alone is then complete.
            let connection = Connection::open(&path)?;
            configure(&connection, Durability::Full)?;
            let (busy, log_pages, checkpointed): (i64, i64, i64) =
                connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            if busy != 0 {
                return Err(StoreError::Backend(format!(
                    "the WAL of {} could not be checkpointed: the database was busy",
                    path.display()
                )));
            }
            tracing::info!(
                pages = checkpointed.max(log_pages),
                "sqlite: WAL checkpointed and truncated"
            );
            Ok(())
        })
        .await
        .map_err(|error| StoreError::Backend(format!("closing sqlite: {error}")))?
    }

    async fn purge_finished(
        &self,
        finished_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |connection, writes| {
            let mut statement = connection.prepare_cached(
                "DELETE FROM operations WHERE id IN (
                     SELECT id FROM operations
                     WHERE done = 1 AND modified_at_ms < ?1 LIMIT ?2)
                 RETURNING id",
            )?;
            let deleted = statement
                .query_map(params![finished_before_ms, limit], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let count = deleted.len();
            writes.extend(deleted.into_iter().map(|id| (id, None)));
            Ok(Ok(count))
        })
        .await
    }
}

//! The SQLite driver: the embedded default, one database file in WAL mode, written by one
//! thread with group commit. Only connection handling lives here; the store's logic and
//! SQL are the core's (`database`, `resources`, ...).
//!
//! Durability without giving up throughput: `synchronous = FULL`, so a commit is on disk
//! (fsync'd) before any caller hears back, but one commit serves every write that queued
//! while the previous one was being made. Each write is a job sent to the writer thread;
//! the thread takes all queued jobs, runs each in a savepoint of its own inside one
//! transaction, commits once, and only then answers them all. A job that fails (its own
//! refusal or a database error) is rolled back to its savepoint alone; the others commit.
//! A failed commit fails every job of the batch, so no caller is ever told "done" for
//! something that was not committed.
//!
//! A savepoint copies every page its job changes, so that it can be undone: on a create,
//! a sixth of all the instructions the server spends (docs/benchmarks.md). A job whose
//! refusals all come before its first change ([`Checks::First`]: its checks, then changes
//! that cannot be refused) runs without one: when it fails, it has changed nothing. Should
//! such a job fail after a change after all, its whole batch is rolled back and fails,
//! rather than commit half of it.
//!
//! A job's statements run at once, on the writer thread, so its future is complete after
//! one poll ([`run_now`]). Checkpoints (copying the WAL back into the database file) run
//! on a thread of their own, so the writer never stops for them. Reads use a small pool of
//! read-only connections, called directly on the caller's thread: they are primary-key
//! lookups answered from SQLite's page cache in microseconds, less than handing them to a
//! blocking thread would cost. WAL lets them read while the writer writes, and they see
//! every committed write. The [`ReadCache`] answers the records read and written last.
//!
//! One process at a time: the data directory is locked (`imageplane.lock`) while the
//! store is open. So at start every running operation left in the file is an orphan of a
//! previous run ([`Dialect::exclusive`]).

use super::read_cache::{ReadCache, Record, Write};
use super::sql::{Dialect, Job, Pending, Row, Tx, Value};
use super::StoreError;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
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
/// Records kept by the read cache.
const CACHED_RECORDS: usize = 16 * 1024;
/// The most bytes the read cache holds (see `read_cache`).
const CACHED_BYTES: usize = 32 << 20;

/// SQLite's SQL where it differs from PostgreSQL's.
pub static DIALECT: Dialect = Dialect {
    running: "done = 0",
    finished: "done = 1",
    now_ms: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    for_update: "",
    for_share: "",
    skip_locked: "",
    in_list: json_each,
    contains: instr,
    names_index: true,
    index_count: "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = $1",
    writable_ctes: false,
    exclusive: true,
    migration_lock: None,
    replace_lock: None,
    batch_parameters: 1,
    migrations: super::migrations::SQLITE,
    integrity_check: Some("PRAGMA integrity_check"),
};

fn json_each(column: &str, placeholder: &str) -> String {
    format!("{column} IN (SELECT value FROM json_each({placeholder}))")
}

fn instr(column: &str, placeholder: &str) -> String {
    format!("instr({column}, {placeholder}) > 0")
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        let unique = [
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE,
            rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        ];
        match error.sqlite_extended_error_code() {
            Some(code) if unique.contains(&code) => StoreError::Duplicate(error.to_string()),
            _ => StoreError::Backend(format!("sqlite: {error}")),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Bool(value) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*value)))
            }
            Value::I32(number) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*number)))
            }
            Value::I64(number) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*number)),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Value::TextList(texts) => ToSqlOutput::Owned(rusqlite::types::Value::Text(
                serde_json::to_string(texts).unwrap_or_else(|_| "[]".into()),
            )),
            Value::Column(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "sqlite: a column of values binds only on PostgreSQL".into(),
                ))
            }
        })
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

/// What the writer thread runs: a job, ready to report how it went. Given no connection,
/// it was not run (its batch had failed already).
struct WriterJob {
    /// Whether the job runs in a savepoint of its own.
    savepoint: bool,
    run: RunJob,
}

/// Runs a job on the writer's connection, or (`None`: its batch failed first) answers
/// that it did not run.
type RunJob = Box<dyn FnOnce(Option<&Mutex<Connection>>) -> Ran + Send>;

/// Where a write's refusals come, which decides whether it needs a savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Anywhere: a failure may come after changes, which its savepoint undoes.
    Anywhere,
    /// Before the first change: every statement that can refuse the write runs before any
    /// that changes a row, and no change after the first can fail (but by a failure of the
    /// database itself, which fails the batch). The writer's single thread makes the
    /// checks and the changes one step.
    First,
}

/// Answers a job's caller, given how its batch's commit went.
type Answer = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// A job that ran: whether it succeeded, what it wrote (for the cache), and how to answer
/// its caller once the commit is known.
struct Ran {
    succeeded: bool,
    /// Whether a statement of the job changed rows (or may have: a writing query).
    changed: bool,
    writes: Vec<Write>,
    answer: Answer,
}

/// A SQLite database file, its writer thread and its readers.
pub struct Sqlite {
    path: PathBuf,
    durability: Durability,
    /// `memory:`'s directory, removed when the store is dropped.
    _ephemeral_directory: Option<tempfile::TempDir>,
    jobs: mpsc::Sender<WriterJob>,
    readers: Mutex<Vec<Connection>>,
    cache: Arc<ReadCache>,
    /// Dropped with the store: ends the checkpointer.
    _stop_checkpoints: std::sync::mpsc::Sender<()>,
    /// Held while open: another imageplane on the same file would break the
    /// one-process assumption of recovery.
    _lock: File,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and locks its directory.
    pub async fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Sqlite::open_blocking(path, Durability::Full, None))
            .await
            .map_err(|error| StoreError::Backend(format!("opening sqlite: {error}")))?
    }

    /// `memory:`: a database in a new temporary directory, without fsync, gone when the
    /// store is dropped (or the process ends).
    pub async fn open_ephemeral() -> Result<Sqlite, StoreError> {
        tokio::task::spawn_blocking(move || {
            let directory = tempfile::Builder::new()
                .prefix("imageplane-memory-")
                .tempdir()
                .map_err(|error| {
                    StoreError::Backend(format!("cannot make a temporary directory: {error}"))
                })?;
            let path = directory.path().join("imageplane.sqlite3");
            Sqlite::open_blocking(path, Durability::Ephemeral, Some(directory))
        })
        .await
        .map_err(|error| StoreError::Backend(format!("opening sqlite: {error}")))?
    }

    fn open_blocking(
        path: PathBuf,
        durability: Durability,
        ephemeral_directory: Option<tempfile::TempDir>,
    ) -> Result<Sqlite, StoreError> {
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&directory).map_err(|error| {
            StoreError::Backend(format!("cannot create {}: {error}", directory.display()))
        })?;
        let lock = lock_directory(&directory, &path)?;
        let writer = Connection::open(&path)?;
        // SQLite opens a file it may not write read-only, without an error: every write
        // would fail later. Refuse to start instead.
        if writer.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::Backend(format!(
                "{} is read-only: imageplane must be able to write it",
                path.display()
            )));
        }
        configure(&writer, durability)?;
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
            .spawn(move || write_loop(Mutex::new(writer), queue, &writer_cache))
            .map_err(|error| StoreError::Backend(format!("starting the writer: {error}")))?;
        Ok(Sqlite {
            path,
            durability,
            _ephemeral_directory: ephemeral_directory,
            jobs,
            readers: Mutex::new(Vec::new()),
            cache,
            _stop_checkpoints: stop_checkpoints,
            _lock: lock,
        })
    }

    /// Runs `job` in the next group commit; answers once it is durable.
    pub async fn write<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        self.write_with(Checks::Anywhere, job).await
    }

    /// The same, for a job whose refusals come where `checks` says.
    pub async fn write_with<T: Send + 'static>(
        &self,
        checks: Checks,
        job: Job<T>,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let run: RunJob = Box::new(move |connection| {
            let Some(connection) = connection else {
                return Ran {
                    succeeded: false,
                    changed: false,
                    writes: Vec::new(),
                    answer: Box::new(move |commit| {
                        let not_run = StoreError::Backend("sqlite: the write batch failed".into());
                        let _ = answer.send(Err(commit.err().cloned().unwrap_or(not_run)));
                    }),
                };
            };
            let tx = SqliteTx::new(connection);
            let outcome = run_now(job(&tx));
            let changed = tx.changed.load(Ordering::Relaxed);
            let writes = tx.into_writes();
            Ran {
                succeeded: outcome.is_ok(),
                changed,
                writes,
                answer: Box::new(move |commit| {
                    let _ = answer.send(match (commit, outcome) {
                        (Err(error), Ok(_)) => Err(error.clone()),
                        (_, outcome) => outcome,
                    });
                }),
            }
        });
        let stopped = || StoreError::Backend("the sqlite writer did not take the write".into());
        let job = WriterJob {
            savepoint: checks == Checks::Anywhere,
            run,
        };
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Runs `job` on a pooled read connection, on this thread (see the module doc).
    pub fn read<T>(&self, job: Job<T>) -> Result<T, StoreError> {
        let idle = lock(&self.readers).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.path)?,
        };
        let connection = Mutex::new(connection);
        let outcome = run_now(job(&SqliteTx::new(&connection)));
        let connection = connection
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(connection);
        }
        outcome
    }

    /// Runs `job` in one read transaction on a connection of its own, on a blocking
    /// thread: it sees one state, however long it reads (WAL keeps that state for it).
    pub async fn read_consistent<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            in_read_transaction(&Mutex::new(open_reader(&path)?), job)
        })
        .await
        .map_err(|error| StoreError::Backend(format!("reading sqlite: {error}")))?
    }

    /// The record `id` from the read cache, else as `job` reads it (and then cached,
    /// unless a commit touched it meanwhile).
    pub fn read_record(
        &self,
        id: &str,
        job: Job<Option<Record>>,
    ) -> Result<Option<Record>, StoreError> {
        if let Some(record) = self.cache.begin_read(id) {
            return Ok(Some(record));
        }
        let found = self.read(job);
        self.cache
            .finish_read(id, found.as_ref().ok().and_then(Option::as_ref));
        found
    }

    /// Copies the whole WAL into the database file and truncates the WAL to zero bytes,
    /// waiting (busy_timeout) for a write still finishing: a copy of the database file
    /// alone is then complete. Called once on a clean stop, after the last write.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.durability == Durability::Ephemeral {
            return Ok(());
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
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
}

/// Runs `job` on a read-only connection to the file at `path`, each statement on its
/// own, without the lock (a server may be running on it): `imageplane check`, which
/// reads a page at a time and must not hold the WAL back for its whole run.
pub async fn read_only<T: Send + 'static>(path: &Path, job: Job<T>) -> Result<T, StoreError> {
    read_only_file(path, job, false).await
}

/// The same in one read transaction, which sees one state: `imageplane state export`.
pub async fn read_only_consistent<T: Send + 'static>(
    path: &Path,
    job: Job<T>,
) -> Result<T, StoreError> {
    read_only_file(path, job, true).await
}

async fn read_only_file<T: Send + 'static>(
    path: &Path,
    job: Job<T>,
    in_one_transaction: bool,
) -> Result<T, StoreError> {
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
        let connection = Mutex::new(connection);
        match in_one_transaction {
            true => in_read_transaction(&connection, job),
            false => run_now(job(&SqliteTx::new(&connection))),
        }
    })
    .await
    .map_err(|error| StoreError::Backend(format!("reading sqlite: {error}")))?
}

/// Runs `job` in one read transaction on `connection`: it sees one state.
fn in_read_transaction<T>(connection: &Mutex<Connection>, job: Job<T>) -> Result<T, StoreError> {
    run_statement(&lock(connection), "BEGIN")?;
    let outcome = run_now(job(&SqliteTx::new(connection)));
    let _ = run_statement(&lock(connection), "ROLLBACK");
    outcome
}

/// A job's view of a SQLite connection: each statement runs when it is called.
struct SqliteTx<'c> {
    connection: &'c Mutex<Connection>,
    writes: Mutex<Vec<Write>>,
    /// Whether a statement run so far changed rows (or, a query, may have).
    changed: std::sync::atomic::AtomicBool,
}

impl<'c> SqliteTx<'c> {
    fn new(connection: &'c Mutex<Connection>) -> SqliteTx<'c> {
        SqliteTx {
            connection,
            writes: Mutex::new(Vec::new()),
            changed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn into_writes(self) -> Vec<Write> {
        self.writes
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Tx for SqliteTx<'_> {
    fn query<'a>(&'a self, sql: &'a str, parameters: Vec<Value>) -> Pending<'a, Vec<Row>> {
        let rows = query(&lock(self.connection), sql, &parameters);
        if let Ok((_, writing)) = &rows {
            if *writing {
                self.changed.store(true, Ordering::Relaxed);
            }
        }
        Box::pin(std::future::ready(rows.map(|(rows, _)| rows)))
    }

    fn execute<'a>(&'a self, sql: &'a str, parameters: Vec<Value>) -> Pending<'a, u64> {
        let changed = execute(&lock(self.connection), sql, &parameters);
        if let Ok(rows) = &changed {
            if *rows > 0 {
                self.changed.store(true, Ordering::Relaxed);
            }
        }
        Box::pin(std::future::ready(changed))
    }

    fn execute_batch<'a>(&'a self, sql: &'a str) -> Pending<'a, ()> {
        // Statements of any kind: counted as a change whether or not they made one.
        self.changed.store(true, Ordering::Relaxed);
        let done = lock(self.connection)
            .execute_batch(sql)
            .map_err(StoreError::from);
        Box::pin(std::future::ready(done))
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn wrote(&self, id: &str, record: Option<Record>) {
        lock(&self.writes).push((id.to_string(), record));
    }
}

/// Polls a job's future once: SQLite's statements run when called, so it is complete.
fn run_now<T>(mut job: Pending<'_, T>) -> Result<T, StoreError> {
    match job.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(StoreError::Backend(
            "a sqlite job waited for something other than SQLite".into(),
        )),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Prepares `sql` (once per connection) and binds each `$N` to `parameters[N - 1]`.
fn prepare<'c>(
    connection: &'c Connection,
    sql: &str,
    parameters: &[Value],
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let value = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok())
            .and_then(|number| parameters.get(number.wrapping_sub(1)))
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "sqlite: parameter {index} of a statement has no value: {sql}"
                ))
            })?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(statement)
}

/// The rows, and whether the statement may write (`INSERT ... RETURNING`, say).
fn query(
    connection: &Connection,
    sql: &str,
    parameters: &[Value],
) -> Result<(Vec<Row>, bool), StoreError> {
    let mut statement = prepare(connection, sql, parameters)?;
    let writing = !statement.readonly();
    let columns = statement.column_count();
    let mut rows = statement.raw_query();
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for column in 0..columns {
            values.push(match row.get_ref(column)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(number) => Value::I64(number),
                ValueRef::Real(number) => Value::I64(number as i64),
                ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
                ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
            });
        }
        found.push(Row::new(values));
    }
    Ok((found, writing))
}

fn execute(connection: &Connection, sql: &str, parameters: &[Value]) -> Result<u64, StoreError> {
    let mut statement = prepare(connection, sql, parameters)?;
    Ok(statement.raw_execute()? as u64)
}

/// Ends a job's savepoint: kept if the job succeeded; else undone alone, so that the jobs
/// before and after it still commit.
fn end_savepoint(connection: &Connection, succeeded: bool) -> Result<(), StoreError> {
    if !succeeded {
        run_statement(connection, "ROLLBACK TO job")?;
    }
    run_statement(connection, "RELEASE job")
}

/// Runs a statement without parameters, prepared once.
fn run_statement(connection: &Connection, sql: &str) -> Result<(), StoreError> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// The writer thread: takes every queued job, runs each in a savepoint of the batch's
/// transaction, commits once and then answers them. Ends when the store is dropped.
fn write_loop(
    connection: Mutex<Connection>,
    mut queue: mpsc::Receiver<WriterJob>,
    cache: &ReadCache,
) {
    let mut batch: Vec<WriterJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut answers = Vec::with_capacity(batch.len());
        let mut writes = Vec::new();
        let mut failure = run_statement(&lock(&connection), "BEGIN IMMEDIATE").err();
        for job in batch.drain(..) {
            if failure.is_none() && job.savepoint {
                failure = run_statement(&lock(&connection), "SAVEPOINT job").err();
            }
            if failure.is_some() {
                // The batch failed already: the job is not run, and hears why.
                answers.push((job.run)(None).answer);
                continue;
            }
            let ran = (job.run)(Some(&connection));
            if job.savepoint {
                failure = end_savepoint(&lock(&connection), ran.succeeded).err();
            } else if !ran.succeeded && ran.changed {
                // Nothing can undo this job's changes alone: the batch does not commit.
                failure = Some(StoreError::Backend(
                    "sqlite: a write failed after it had changed rows; \
                     its batch was rolled back"
                        .into(),
                ));
            }
            if ran.succeeded {
                writes.extend(ran.writes);
            }
            answers.push(ran.answer);
        }
        if failure.is_none() {
            failure = run_statement(&lock(&connection), "COMMIT").err();
        }
        match &failure {
            Some(error) => {
                tracing::error!(%error, "sqlite: a write batch failed and was rolled back");
                let _ = run_statement(&lock(&connection), "ROLLBACK");
            }
            // Before any caller hears back: a read after the answer sees the commit.
            None => cache.apply(std::mem::take(&mut writes)),
        }
        for answer in answers {
            answer(failure.as_ref().map_or(Ok(()), Err));
        }
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
    // Each job's savepoint journals the pages it changes: in memory, never in a file.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
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

#[cfg(test)]
mod tests {
    use super::{Checks, Sqlite};
    use crate::store::sql::{Job, Tx, Value};
    use crate::store::StoreError;
    use std::sync::Arc;
    use std::time::Duration;

    /// A job that inserts `name`, then fails (with a refusal of its own) when told to.
    fn insert(name: &'static str, fail_after: bool) -> Job<()> {
        Box::new(move |tx: &dyn Tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO names (name) VALUES ($1)",
                    vec![Value::Text(name.into())],
                )
                .await?;
                match fail_after {
                    true => Err(StoreError::KeyTaken),
                    false => Ok(()),
                }
            })
        })
    }

    /// A job that refuses before it changes anything.
    fn refuse_first() -> Job<()> {
        Box::new(|tx: &dyn Tx| {
            Box::pin(async move {
                tx.query("SELECT 1", Vec::new()).await?;
                Err(StoreError::KeyTaken)
            })
        })
    }

    /// A job that holds the writer, so that the writes sent meanwhile share one batch.
    fn hold_writer() -> Job<()> {
        Box::new(|_: &dyn Tx| {
            std::thread::sleep(Duration::from_millis(200));
            Box::pin(std::future::ready(Ok(())))
        })
    }

    async fn stored(sqlite: &Sqlite) -> Vec<String> {
        sqlite
            .read(Box::new(|tx: &dyn Tx| {
                Box::pin(async move {
                    let rows = tx.query("SELECT name FROM names ORDER BY name", Vec::new());
                    Ok(rows
                        .await?
                        .into_iter()
                        .map(|mut row| row.text(0).unwrap_or_default())
                        .collect())
                })
            }))
            .unwrap()
    }

    /// Sends `jobs` while the writer is held, so they run in one batch; their outcomes.
    async fn one_batch(sqlite: &Arc<Sqlite>, jobs: Vec<(Checks, Job<()>)>) -> Vec<bool> {
        let holder = {
            let sqlite = Arc::clone(sqlite);
            tokio::spawn(async move { sqlite.write(hold_writer()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut writes = Vec::new();
        for (checks, job) in jobs {
            let sqlite = Arc::clone(sqlite);
            writes.push(tokio::spawn(
                async move { sqlite.write_with(checks, job).await },
            ));
            // In order: each is queued before the next.
            tokio::task::yield_now().await;
        }
        holder.await.unwrap().unwrap();
        let mut outcomes = Vec::new();
        for write in writes {
            outcomes.push(write.await.unwrap().is_ok());
        }
        outcomes
    }

    async fn open() -> Arc<Sqlite> {
        let sqlite = Arc::new(Sqlite::open_ephemeral().await.unwrap());
        sqlite
            .write(Box::new(|tx: &dyn Tx| {
                tx.execute_batch("CREATE TABLE names (name TEXT PRIMARY KEY)")
            }))
            .await
            .unwrap();
        sqlite
    }

    #[tokio::test]
    async fn a_write_without_a_savepoint_that_refuses_first_fails_alone_in_its_batch() {
        let sqlite = open().await;
        let outcomes = one_batch(
            &sqlite,
            vec![
                (Checks::First, insert("a", false)),
                (Checks::First, refuse_first()),
                (Checks::Anywhere, insert("b", true)),
                (Checks::First, insert("c", false)),
            ],
        )
        .await;
        assert_eq!(outcomes, [true, false, false, true]);
        assert_eq!(stored(&sqlite).await, ["a", "c"]);
    }

    #[tokio::test]
    async fn a_write_without_a_savepoint_that_fails_after_a_change_fails_its_batch() {
        let sqlite = open().await;
        let outcomes = one_batch(
            &sqlite,
            vec![
                (Checks::First, insert("a", false)),
                (Checks::First, insert("b", true)),
                (Checks::First, insert("c", false)),
            ],
        )
        .await;
        // Nothing of the batch committed, and nobody heard otherwise.
        assert_eq!(outcomes, [false, false, false]);
        assert!(stored(&sqlite).await.is_empty());
        // The writer goes on.
        sqlite
            .write_with(Checks::First, insert("d", false))
            .await
            .unwrap();
        assert_eq!(stored(&sqlite).await, ["d"]);
    }
}

//! Where resources and operations live. The [`Store`] trait is what the rest of the server
//! sees; two backends implement it: [`sqlite::SqliteStore`] (the embedded default, and
//! `memory:` as SQLite without fsync in a temporary directory) and
//! [`postgres::PostgresStore`] (several replicas on one database). [`DatabaseUrl`] picks one.
//! `memory:` was once its own hash-map backend; it measured 0.60 of that backend's create
//! throughput as SQLite (README), and every query (lists, filters, paging) now has two
//! implementations instead of three.
//!
//! Invariants every backend keeps:
//! - a resource is inserted together with the operation that creates it, or not at all;
//!   when the call returns Ok, both are durable (the durable backends have committed);
//! - among resources of one kind in one folder, a non-empty name is held by one resource;
//! - an operation is finished once: [`Store::finish`] applies only to an operation that is
//!   not done yet, together with its resource change, in one transaction;
//! - a running operation is held by one replica at a time, through a lease that replica
//!   renews; an operation whose lease ran out is an orphan that any replica may claim.

pub mod codec;
pub mod migrations;
pub mod postgres;
pub mod sqlite;

use crate::pb::operation::Operation;
use crate::resource::{OperationRecord, Resource, ResourceKind, ResourceRef};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A non-empty name is taken by another resource of the same kind in the folder.
    NameTaken {
        kind: ResourceKind,
        folder_id: String,
        name: String,
    },
    /// The backend failed (I/O, connection, transaction): the same call may succeed
    /// later.
    Backend(String),
    /// A stored record cannot be used (undecodable, of an unknown kind, or missing where
    /// another one needs it): retrying will not help.
    Corrupt(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NameTaken {
                kind,
                folder_id,
                name,
            } => write!(
                formatter,
                "{} name {} is taken in folder {}",
                kind.display_name(),
                crate::error::excerpt(name),
                crate::error::excerpt(folder_id)
            ),
            StoreError::Backend(message) | StoreError::Corrupt(message) => {
                formatter.write_str(message)
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::error::Error {
    fn from(error: StoreError) -> crate::error::Error {
        match error {
            StoreError::NameTaken {
                kind,
                folder_id,
                name,
            } => crate::error::Error::AlreadyExists(format!(
                "{} with name {} already exists in folder {}",
                kind.display_name(),
                crate::error::excerpt(&name),
                crate::error::excerpt(&folder_id)
            )),
            StoreError::Backend(message) => {
                crate::error::Error::Internal(format!("storage failed: {message}"))
            }
            StoreError::Corrupt(message) => {
                crate::error::Error::Internal(format!("stored data is unusable: {message}"))
            }
        }
    }
}

/// How finishing an operation changes its resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceChange {
    /// Store this state of the resource (e.g. READY).
    Put(Box<Resource>),
    /// Remove the resource: the operation failed or was cancelled.
    Remove(ResourceRef),
}

/// The result of [`Store::finish`].
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The operation was running and is now done as asked.
    Applied,
    /// The operation was already done; nothing changed. Carries it as it is.
    AlreadyDone(Box<Operation>),
    /// No such operation.
    Unknown,
}

/// A copy whose time has come: its operation ends and its resource becomes READY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCopy {
    pub operation_id: String,
    pub target: ResourceRef,
}

impl DueCopy {
    /// The error when the copy's resource is gone while its operation still runs.
    pub fn missing_target(&self) -> StoreError {
        StoreError::Corrupt(format!(
            "{} {} of running operation {} is missing",
            self.target.kind.display_name(),
            self.target.id,
            self.operation_id
        ))
    }
}

/// Who this process is among the replicas sharing a database, and how long its claim on
/// a running operation lasts without renewal.
#[derive(Debug, Clone)]
pub struct Replica {
    pub id: String,
    pub lease: Duration,
}

impl Replica {
    /// A replica with a fresh random id.
    pub fn new(lease: Duration) -> Replica {
        Replica {
            id: format!("replica-{:016x}", rand::random::<u64>()),
            lease,
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

/// The storage of resources and operations.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new resource and the operation that creates it, atomically.
    async fn create(
        &self,
        resource: Resource,
        operation: OperationRecord,
    ) -> Result<(), StoreError>;

    /// The resource of the given kind and id.
    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError>;

    /// The operation with the given id.
    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError>;

    /// Finishes running copies, each in one step: its resource becomes READY, and the
    /// operation done (modified now) with that resource as its response. Does nothing to
    /// an operation that is already done. A running operation whose resource is missing
    /// is a `Backend` error. One outcome per copy, in order; the durable backends commit
    /// the whole batch at once.
    async fn finish_copies(&self, copies: &[DueCopy]) -> Vec<Result<Finished, StoreError>>;

    /// Replaces a running operation by its finished form (done, with response or error)
    /// and applies the change to its resource, atomically; does nothing to an operation
    /// that is already done.
    async fn finish(
        &self,
        finished: Operation,
        change: ResourceChange,
    ) -> Result<Finished, StoreError>;

    /// Sets the description of a running operation (import progress); does nothing to
    /// one that is done or unknown.
    async fn describe_running(
        &self,
        operation_id: &str,
        description: &str,
    ) -> Result<(), StoreError>;

    /// Renews this replica's lease on the given running operations. Returns the ones it
    /// still holds; the others were finished (e.g. cancelled through another replica) or
    /// taken over, and their local work must stop.
    async fn renew_leases(&self, operation_ids: &[String]) -> Result<Vec<String>, StoreError>;

    /// Takes over up to `limit` orphans: running operations whose lease ran out (their
    /// replica died, handed them back, or could not record their end). They are held by
    /// this replica when returned. An orphan whose row cannot be read is finished in place
    /// with an INTERNAL error (see [`codec::unreadable`]) instead of being returned, so
    /// that it cannot stay running forever.
    async fn claim_orphans(&self, limit: usize) -> Result<Vec<OperationRecord>, StoreError>;

    /// Hands running operations back (on shutdown): any replica may claim them at once.
    async fn release_leases(&self, operation_ids: &[String]) -> Result<(), StoreError>;

    /// Deletes up to `limit` operations that finished before `finished_before_ms`
    /// (milliseconds since the Unix epoch); returns how many.
    async fn purge_finished(
        &self,
        finished_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Called once on a clean stop, after the last write: leaves the database complete
    /// in its main file where the backend has more than one (SQLite's WAL).
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Where the state lives, as `--database-url` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `memory:`: SQLite without fsync in a temporary directory, removed at exit.
    Memory,
    /// `sqlite:PATH` or `sqlite://PATH`: the embedded database file.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, passed to the driver as is.
    Postgres(String),
}

impl DatabaseUrl {
    /// The embedded default inside a data directory.
    pub fn default_in(data_dir: &Path) -> DatabaseUrl {
        DatabaseUrl::Sqlite(data_dir.join("imageplane.sqlite3"))
    }

    /// Parses a `--database-url` value.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        if url == "memory:" {
            return Ok(DatabaseUrl::Memory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(
                    "sqlite: needs a file path, e.g. sqlite:///var/lib/imageplane/db.sqlite3"
                        .into(),
                );
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "unsupported database URL {url:?}: use memory:, sqlite:PATH or postgres://..."
        ))
    }

    /// The URL with any password masked, for logs.
    pub fn display(&self) -> String {
        match self {
            DatabaseUrl::Memory => "memory:".into(),
            DatabaseUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    parsed.to_string()
                }
                _ => url.clone(),
            },
        }
    }
}

/// What reading a whole database found: `imageplane check`.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub resources: usize,
    pub operations: usize,
    /// Each damaged part, named: a page or index the database reports, or a row by id.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Decodes one row, counting it or naming it as damaged.
    fn row<T>(&mut self, table: &str, id: &str, decoded: Result<T, StoreError>) {
        match decoded {
            Ok(_) if table == "resources" => self.resources += 1,
            Ok(_) => self.operations += 1,
            Err(error) => self.problems.push(format!(
                "{table} row {}: {error}",
                crate::error::excerpt(id)
            )),
        }
    }
}

/// Reads every row of the database the URL names, without changing it (a server may be
/// running on it), and names what is damaged: the database's own integrity check (SQLite),
/// the schema, and every row that cannot be decoded. A damaged index can make a row
/// invisible to lookups (answered NOT_FOUND); only this check finds that.
pub async fn check(url: &DatabaseUrl) -> Result<CheckReport, StoreError> {
    match url {
        DatabaseUrl::Memory => Ok(CheckReport::default()),
        DatabaseUrl::Sqlite(path) => sqlite::check(path).await,
        DatabaseUrl::Postgres(url) => postgres::check(url).await,
    }
}

/// Opens the store the URL names, applying its schema migrations.
pub async fn open(url: &DatabaseUrl, replica: Replica) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        DatabaseUrl::Memory => Arc::new(sqlite::SqliteStore::open_ephemeral(replica).await?),
        DatabaseUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path, replica).await?),
        DatabaseUrl::Postgres(url) => {
            Arc::new(postgres::PostgresStore::connect(url, replica).await?)
        }
    })
}

//! Where resources and operations live, behind five traits by concern ([`Resources`],
//! [`Operations`], [`Leases`], [`Keys`], [`Inspect`]; together a [`Store`]). They have one
//! implementation, [`SqlStore`]: the same jobs and the same SQL over either database, the
//! embedded SQLite (the default, and `memory:`: SQLite without fsync in a temporary
//! directory) or PostgreSQL (several replicas on one database). [`DatabaseUrl`] picks one;
//! the drivers ([`sqlite`], [`postgres`]) hold connection handling and the few dialect
//! differences ([`sql::Dialect`]).
//!
//! Invariants the store keeps on both databases:
//! - a resource is inserted together with the operation that creates it, or not at all;
//!   when the call returns Ok, both are durable (committed);
//! - among resources of one kind in one folder, a non-empty name is held by one resource;
//! - an operation is finished once: [`Operations::conclude`] applies only to an operation
//!   that is not done yet, together with its resource change, in one transaction;
//! - a running operation is held by one replica at a time, through a lease that replica
//!   renews; an operation whose lease ran out is an orphan that any replica may claim;
//! - a call that fails writes nothing, and fails no other call;
//! - a reset ([`Store::reset`]) and an import ([`Store::import_state`]) are one
//!   transaction each, with the tables locked against other writes (PostgreSQL): a
//!   reader sees the state before or after, a write lands wholly before or after; an
//!   export ([`Store::export_state`]) reads one state.
//!
//! Uses `model` and the leaves only: the domain's rules come in as closures ([`Change`],
//! [`Transition`]), so the store decides nothing itself.

pub mod codec;
mod create_batch;
pub mod database;
mod inspect;
mod kept_sources;
mod keys;
mod leases;
pub mod metered;
pub mod migrations;
mod operations;
pub mod postgres;
pub mod query;
pub mod read_cache;
mod resources;
pub mod schema;
pub mod snapshot;
pub mod sql;
pub mod sqlite;
mod state;

pub use database::SqlStore;
pub use state::ResetCounts;

use crate::model::resource::{OperationRecord, Resource, ResourceKind, ResourceRef};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::AccessBinding;
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
    /// A write broke a uniqueness rule the store did not expect to meet (an id used
    /// twice): nothing was written.
    Duplicate(String),
    /// A [`Change`] refused itself: the domain's error, passed through as it is.
    Refused(crate::error::Error),
    /// The write's [`KeyClaim`] is taken: another write stored that idempotency key
    /// first. Nothing was written.
    KeyTaken,
    /// A copy's source (its id here) is not stored as the create read it
    /// ([`SourceSeen`]): it changed in between. Nothing was written.
    SourceChanged(String),
}

/// The source of a copy, as [`Resources::source`] reads it for a create.
#[derive(Debug, Clone)]
pub struct Source {
    pub resource: Resource,
    /// What the create's write confirms (see [`SourceSeen`]).
    pub seen: SourceSeen,
}

/// A source as a create read it. The write of the create finds the source stored the
/// same, or writes nothing and answers [`StoreError::SourceChanged`]: the record holds
/// every field a copy inherits, the source's folder and its status. So a copy is made
/// from its source as stored when it is written, whatever changed it since the read (on
/// PostgreSQL, the copy this replica kept may be stale).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSeen {
    /// The stored body, compared by the write's statement (PostgreSQL, also in a batch).
    Body(std::sync::Arc<[u8]>),
    /// The record, compared with the stored one decoded (SQLite, read through its read
    /// cache, which holds records, not bodies).
    Record(std::sync::Arc<Resource>),
}

/// Where [`Resources::source`] may read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A copy the store keeps, where it keeps one.
    MayUseKept,
    /// The database, as a [`Resources::resource`] read does.
    Stored,
}

/// An idempotency key's claim on the operation a write stores: kept in the write's
/// transaction, so that the key and its operation exist together or not at all (see
/// `domain::idempotency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    /// Keys are per subject: two callers never share one.
    pub subject: String,
    pub key: String,
    /// What the key was first used for: the SHA-256 of the method and the request.
    pub fingerprint: String,
}

/// A stored idempotency key: what it was used for and the operation it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub operation_id: String,
}

/// An IAM token issued by IamTokenService.Create, known by its SHA-256 (the token itself
/// is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub sha256: String,
    pub subject: String,
    /// The folders it may use; `None`: every folder.
    pub folders: Option<Vec<String>>,
    pub expires_at_ms: i64,
}

impl IssuedToken {
    /// The `folders` column: `*` for every folder, else the folders joined by commas.
    pub fn folders_column(&self) -> String {
        match &self.folders {
            None => "*".to_string(),
            Some(folders) => folders.join(","),
        }
    }

    /// The `folders` field from its column.
    pub fn folders_from_column(column: &str) -> Option<Vec<String>> {
        match column {
            "*" => None,
            "" => Some(Vec::new()),
            list => Some(list.split(',').map(str::to_string).collect()),
        }
    }
}

impl StoreError {
    /// `NameTaken` for the name `resource` wants.
    pub fn name_taken(resource: &Resource) -> StoreError {
        StoreError::NameTaken {
            kind: resource.kind(),
            folder_id: resource.folder_id().to_string(),
            name: resource.name().to_string(),
        }
    }
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
            StoreError::Backend(message)
            | StoreError::Corrupt(message)
            | StoreError::Duplicate(message) => formatter.write_str(message),
            StoreError::Refused(error) => write!(formatter, "{error}"),
            StoreError::KeyTaken => formatter.write_str("the idempotency key is taken"),
            StoreError::SourceChanged(id) => write!(
                formatter,
                "the source {} changed since it was read",
                crate::error::excerpt(id)
            ),
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
            StoreError::Backend(message) | StoreError::Duplicate(message) => {
                crate::error::Error::Internal(format!("storage failed: {message}"))
            }
            StoreError::Corrupt(message) => {
                crate::error::Error::Internal(format!("stored data is unusable: {message}"))
            }
            StoreError::Refused(error) => error,
            StoreError::KeyTaken => crate::error::Error::AlreadyExists(
                "the idempotency key was used by another call at the same time".into(),
            ),
            StoreError::SourceChanged(id) => crate::error::Error::Aborted(format!(
                "{}, the source, changed while the copy was being made: try again",
                crate::error::excerpt(&id)
            )),
        }
    }
}

/// How ending an operation changes its resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceChange {
    /// Store this state of the resource (e.g. READY).
    Put(Box<Resource>),
    /// Remove the resource (a failed create, a done delete).
    Remove(ResourceRef),
    /// Leave it as it is.
    Keep,
}

/// How an operation's work came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The work is done: a copy's or a delete's time came.
    Done,
    /// An import fetched and measured its image.
    Imported(Box<crate::model::image_file::Measured>),
    /// The work failed or was cancelled: the operation ends with this status.
    Failed(crate::pb::google::rpc::Status),
}

/// One running operation to end, and how its work came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub operation_id: String,
    pub outcome: Outcome,
}

/// What ending an operation does: from its record, its resource as stored now (if it
/// exists) and the outcome, the finished operation and the change of the resource. The
/// domain decides it (`domain::transitions::conclude`); a store applies it inside the
/// transaction that ends the operation, so no backend repeats the rules.
pub type Transition = fn(
    &OperationRecord,
    Option<Resource>,
    Outcome,
) -> Result<(Operation, ResourceChange), StoreError>;

/// The state a [`Change`] starts from, read in its transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub resource: Resource,
    pub access_bindings: Vec<AccessBinding>,
    /// A running operation that creates or deletes the resource, or copies from it.
    pub busy_with: Option<String>,
}

/// What a [`Change`] makes: the resource's new state, its access bindings if they
/// change, and the operation to store (done, or running with the new state's work).
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub resource: Resource,
    pub access_bindings: Option<Vec<AccessBinding>>,
    pub record: OperationRecord,
}

/// A change of one resource, decided by the domain from its current state (`None`: it
/// does not exist) inside the store's transaction, so that concurrent changes never
/// overwrite each other. An `Err` writes nothing and comes back as
/// [`StoreError::Refused`].
pub type Change =
    Box<dyn FnOnce(Option<Current>) -> Result<Changed, crate::error::Error> + Send + 'static>;

/// The result of ending an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The operation was running and is now done: as it ended.
    Applied(Box<Operation>),
    /// The operation was already done; nothing changed. Carries it as it is.
    AlreadyDone(Box<Operation>),
    /// No such operation.
    Unknown,
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
}

/// Resources: created with their operation, read, changed, listed, seeded.
#[async_trait]
pub trait Resources: Send + Sync {
    /// Inserts a new resource and the operation that creates it, atomically. The
    /// operation may be running (held by this replica) or already done (a copy that takes
    /// no time, stored finished with its READY resource).
    /// With a `claim`, its key is stored in the same transaction; a key that is stored
    /// already is `KeyTaken`, and nothing is written.
    async fn create(
        &self,
        resource: Resource,
        operation: OperationRecord,
        claim: Option<&KeyClaim>,
    ) -> Result<(), StoreError> {
        self.create_copy(resource, operation, claim, None).await
    }

    /// [`Resources::create`] of a copy whose source was read as `seen`: the write also
    /// finds the source unchanged, or writes nothing and answers
    /// [`StoreError::SourceChanged`].
    async fn create_copy(
        &self,
        resource: Resource,
        operation: OperationRecord,
        claim: Option<&KeyClaim>,
        seen: Option<SourceSeen>,
    ) -> Result<(), StoreError>;

    /// The resource of the given kind and id.
    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError>;

    /// The resource of the given kind and id to copy from, with what the create's write
    /// confirms ([`Source::seen`]). With [`Reading::MayUseKept`] PostgreSQL answers
    /// from the READY sources this replica read last, without a round trip.
    async fn source(
        &self,
        kind: ResourceKind,
        id: &str,
        reading: Reading,
    ) -> Result<Option<Source>, StoreError>;

    /// Whether [`Resources::source`] may answer from a kept copy: a create that read one
    /// and was refused as a stale copy could have made it is tried once more from the
    /// database (`Catalog::reading_source`).
    fn keeps_sources(&self) -> bool {
        false
    }

    /// Changes a resource as `change` decides from its current state and stores the
    /// change's operation with it, atomically. A new name that another resource of the
    /// kind holds in the (new) folder is `NameTaken`, and writes nothing. A `claim` is
    /// stored as [`Resources::create`] stores it.
    async fn change(
        &self,
        kind: ResourceKind,
        id: &str,
        change: Change,
        claim: Option<&KeyClaim>,
    ) -> Result<OperationRecord, StoreError>;

    /// One page of a list (see [`query::ListQuery`]).
    async fn list(&self, query: &query::ListQuery) -> Result<Vec<Resource>, StoreError>;

    /// The access bindings of a resource, or `None` if it does not exist.
    async fn access_bindings(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Vec<AccessBinding>>, StoreError>;

    /// Stores READY resources that do not exist yet (by id), for seed files: the ones
    /// that exist are left as they are. Returns how many were new. A name that another
    /// resource holds is `NameTaken`, and nothing is stored.
    async fn seed(&self, resources: Vec<Resource>) -> Result<usize, StoreError>;
}

/// Operations: read, ended, described, listed, purged.
#[async_trait]
pub trait Operations: Send + Sync {
    /// The operation with the given id.
    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError>;

    /// Ends running operations: for each, reads its record and its resource, asks
    /// `transition` what they become, and writes both, atomically; does nothing to an
    /// operation that is already done (the compare-and-set on `done`: an operation ends
    /// once). One result per ending, in order; an error of one ending (a transition's
    /// `Corrupt`) does not fail the others. The whole list is one transaction.
    async fn conclude(
        &self,
        endings: Vec<Ending>,
        transition: Transition,
    ) -> Vec<Result<Finished, StoreError>>;

    /// Sets the description of a running operation (import progress); does nothing to
    /// one that is done or unknown.
    async fn describe_running(
        &self,
        operation_id: &str,
        description: &str,
    ) -> Result<(), StoreError>;

    /// Operations of a resource (deleted ones' too, until retention purges them), newest
    /// first: at most `limit`, after the (created_at_ms, id) of the previous page's last;
    /// with `folders`, only those recorded in one of them.
    async fn operations_of(
        &self,
        target_id: &str,
        folders: Option<&[String]>,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError>;

    /// Deletes up to `limit` operations that finished before `finished_before_ms`
    /// (milliseconds since the Unix epoch); returns how many.
    async fn purge_finished(
        &self,
        finished_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;
}

/// Leases: which replica runs which running operation.
#[async_trait]
pub trait Leases: Send + Sync {
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
}

/// Keys: idempotency keys, issued IAM tokens, and the key that signs page tokens.
#[async_trait]
pub trait Keys: Send + Sync {
    /// The stored idempotency key of `subject`, if any.
    async fn idempotency_key(
        &self,
        subject: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, StoreError>;

    /// Stores an issued IAM token.
    async fn put_token(&self, token: &IssuedToken) -> Result<(), StoreError>;

    /// The issued IAM token with this SHA-256, if any (expired ones too, until purged).
    async fn token(&self, sha256: &str) -> Result<Option<IssuedToken>, StoreError>;

    /// Ends the issued IAM token with this SHA-256 at `at_ms` (a revocation; one that
    /// ended earlier keeps its end) and answers it as it is now, if it is stored.
    async fn expire_token(
        &self,
        sha256: &str,
        at_ms: i64,
    ) -> Result<Option<IssuedToken>, StoreError>;

    /// Deletes up to `limit` idempotency keys stored before `keys_before_ms` and up to
    /// `limit` IAM tokens that expired before `tokens_before_ms`; returns how many.
    async fn purge_keys_and_tokens(
        &self,
        keys_before_ms: i64,
        tokens_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// The key that signs page tokens: made once per database, so that every replica
    /// and every restart accepts the tokens of the others.
    async fn page_key(&self) -> Result<Vec<u8>, StoreError>;
}

/// What one folder holds (introspection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderCounts {
    pub folder_id: String,
    /// Resources of each kind that the folder holds, in any status (kinds it has none of
    /// are left out).
    pub resources: Vec<(ResourceKind, u64)>,
    /// Operations on the folder's resources that have not ended.
    pub running_operations: u64,
}

/// The newest running and ended operations, read together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentOperations {
    /// Not done, newest first.
    pub running: Vec<OperationRecord>,
    /// Done, the one that ended last first.
    pub ended: Vec<OperationRecord>,
}

/// Summaries of what the store holds, for the introspection API: reads only, each one
/// consistent read.
#[async_trait]
pub trait Inspect: Send + Sync {
    /// At most `limit` folders that hold resources, ordered by id, after `after`; with
    /// `folders`, only those.
    async fn folder_counts(
        &self,
        folders: Option<&[String]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FolderCounts>, StoreError>;

    /// At most `limit` running and `limit` ended operations; with `folders`, only those
    /// recorded in one of them; with `target_id`, only that resource's.
    async fn recent_operations(
        &self,
        folders: Option<&[String]>,
        target_id: Option<&str>,
        limit: usize,
    ) -> Result<RecentOperations, StoreError>;
}

/// The whole store.
#[async_trait]
pub trait Store: Resources + Operations + Leases + Keys + Inspect + 'static {
    /// Whether the database answers: one trivial read.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Removes every resource, operation and idempotency key and stores `seeds`, in one
    /// transaction; issued IAM tokens stay. Operations running anywhere are gone: their
    /// replicas stop them at their next lease renewal.
    async fn reset(&self, seeds: Vec<Resource>) -> Result<ResetCounts, StoreError>;

    /// The whole state as a snapshot file ([`snapshot`]), read in one consistent read.
    async fn export_state(&self) -> Result<Vec<u8>, StoreError>;

    /// Replaces the state with a prepared snapshot ([`snapshot::prepare`]), in one
    /// transaction; issued IAM tokens stay and the snapshot's are added. Operations
    /// running anywhere are gone, as after a reset; the snapshot's running ones are
    /// orphans that a replica claims.
    async fn import_state(
        &self,
        snapshot: snapshot::Prepared,
    ) -> Result<snapshot::ImportCounts, StoreError>;

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

/// Reads every row of the database the URL names, without changing it (a server may be
/// running on it), and names what is damaged: the database's own integrity check (SQLite),
/// the schema, and every row that cannot be decoded. A damaged index can make a row
/// invisible to lookups (answered NOT_FOUND); only this check finds that.
pub async fn check(url: &DatabaseUrl) -> Result<CheckReport, StoreError> {
    let job: sql::Job<CheckReport> = Box::new(|tx| Box::pin(schema::check(tx)));
    match url {
        DatabaseUrl::Memory => Ok(CheckReport::default()),
        DatabaseUrl::Sqlite(path) => sqlite::read_only(path, job).await,
        DatabaseUrl::Postgres(url) => postgres::read_only(url, job).await,
    }
}

/// The whole state of the database the URL names as a snapshot, read in one consistent
/// read without changing it: a server may be running on it (`imageplane state export`).
/// The database must exist and have this binary's schema.
pub async fn export(url: &DatabaseUrl) -> Result<Vec<u8>, StoreError> {
    let job = snapshot::export_job();
    match url {
        DatabaseUrl::Memory => Err(StoreError::Backend(
            "memory: keeps nothing between runs: there is no state to export".into(),
        )),
        DatabaseUrl::Sqlite(path) => sqlite::read_only_consistent(path, job).await,
        DatabaseUrl::Postgres(url) => postgres::read_only_consistent(url, job).await,
    }
}

/// Opens the store the URL names, applying its schema migrations; its calls are timed
/// into the metrics ([`metered`]).
pub async fn open(url: &DatabaseUrl, replica: Replica) -> Result<Arc<dyn Store>, StoreError> {
    let database = match url {
        DatabaseUrl::Memory => database::Database::Sqlite(sqlite::Sqlite::open_ephemeral().await?),
        DatabaseUrl::Sqlite(path) => database::Database::Sqlite(sqlite::Sqlite::open(path).await?),
        DatabaseUrl::Postgres(url) => {
            database::Database::Postgres(postgres::Postgres::connect(url).await?)
        }
    };
    let store: Arc<dyn Store> = Arc::new(SqlStore::new(database, replica).await?);
    Ok(Arc::new(metered::Metered(store)))
}

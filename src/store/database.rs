//! The one implementation of the store: [`SqlStore`], the same logic over either database.
//! Its methods (in `resources`, `operations`, `leases`, `keys` and `schema`) are jobs:
//! closures over a [`Tx`] that read and write with the same SQL on both databases. The
//! [`Database`] runs a job as its driver does:
//! - SQLite ([`sqlite`](super::sqlite)): writes go to one writer thread, which commits
//!   the queued jobs together (group commit), each in a savepoint of its own; reads run
//!   on pooled read-only connections; a read cache answers hot records.
//! - PostgreSQL ([`postgres`](super::postgres)): each write is a transaction on a pooled
//!   connection; each read a statement.
//!
//! Either way a job that returns an error writes nothing, and one that returns Ok is
//! durable when its caller hears back.

use super::create_batch::CreateBatcher;
use super::kept_sources::KeptSources;
use super::postgres::Postgres;
use super::read_cache::Record;
use super::sql::Job;
use super::sqlite::{Checks, Sqlite};
use super::{Replica, StoreError};

/// The database a store keeps its records in, with its driver.
pub enum Database {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

impl Database {
    /// Runs `job` as a write: it commits, or (on an error) writes nothing.
    pub async fn write<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        match self {
            Database::Sqlite(sqlite) => sqlite.write(job).await,
            Database::Postgres(postgres) => postgres.write(job).await,
        }
    }

    /// Runs `job` as a write whose refusals all come before its first change (see
    /// [`Checks::First`]): on SQLite it needs no savepoint of its own. On PostgreSQL, as
    /// any write.
    pub async fn write_checks_first<T: Send + 'static>(
        &self,
        job: Job<T>,
    ) -> Result<T, StoreError> {
        match self {
            Database::Sqlite(sqlite) => sqlite.write_with(Checks::First, job).await,
            Database::Postgres(postgres) => postgres.write(job).await,
        }
    }

    /// How this database writes what differs.
    pub fn dialect(&self) -> &'static super::sql::Dialect {
        match self {
            Database::Sqlite(_) => &super::sqlite::DIALECT,
            Database::Postgres(_) => &super::postgres::DIALECT,
        }
    }

    /// Runs `job` as a read: it sees every write committed before it began.
    pub async fn read<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        match self {
            Database::Sqlite(sqlite) => sqlite.read(job),
            Database::Postgres(postgres) => postgres.read(job).await,
        }
    }

    /// Runs `job` as a read of one consistent state, however many statements it runs.
    pub async fn read_consistent<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        match self {
            Database::Sqlite(sqlite) => sqlite.read_consistent(job).await,
            Database::Postgres(postgres) => postgres.read_consistent(job).await,
        }
    }

    /// Reads the record `id` through the read cache where the driver has one: `job`
    /// reads it from the database on a miss.
    pub async fn read_record(
        &self,
        id: &str,
        job: Job<Option<Record>>,
    ) -> Result<Option<Record>, StoreError> {
        match self {
            Database::Sqlite(sqlite) => sqlite.read_record(id, job),
            Database::Postgres(postgres) => postgres.read(job).await,
        }
    }

    /// Leaves the database complete in its main file (SQLite's WAL checkpointed).
    pub async fn close(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(sqlite) => sqlite.close().await,
            Database::Postgres(_) => Ok(()),
        }
    }
}

/// The store: records in a [`Database`], for one [`Replica`].
pub struct SqlStore {
    pub(super) database: Database,
    pub(super) replica: Replica,
    /// PostgreSQL: unkeyed creates, many in one statement ([`CreateBatcher`]).
    pub(super) creates: Option<CreateBatcher>,
    /// PostgreSQL: the sources of creates this replica read lately ([`KeptSources`]).
    pub(super) kept_sources: Option<KeptSources>,
}

impl SqlStore {
    /// The store over an open database, with its schema migrated and verified.
    pub async fn new(database: Database, replica: Replica) -> Result<SqlStore, StoreError> {
        let mut store = SqlStore {
            database,
            replica,
            creates: None,
            kept_sources: None,
        };
        store.database.write(super::schema::migration()).await?;
        if let Database::Postgres(postgres) = &store.database {
            let owner = store.replica.id.clone();
            let batcher = CreateBatcher::start(postgres.clone(), owner, store.lease_ms());
            store.creates = Some(batcher);
            store.kept_sources = Some(KeptSources::default());
        }
        Ok(store)
    }

    /// Forgets the sources kept ([`KeptSources`]) when the whole state was replaced: they
    /// would only cost each next create a second try.
    fn forget_kept_sources(&self) {
        if let Some(kept) = &self.kept_sources {
            kept.clear();
        }
    }

    /// This replica's lease, in milliseconds (a parameter of lease writes).
    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.replica.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

#[async_trait::async_trait]
impl super::Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.database
            .read(Box::new(|tx| {
                Box::pin(async move { tx.query("SELECT 1", Vec::new()).await.map(drop) })
            }))
            .await
    }

    async fn reset(
        &self,
        seeds: Vec<crate::model::resource::Resource>,
    ) -> Result<super::ResetCounts, StoreError> {
        let counts = self.reset_state(seeds).await;
        self.forget_kept_sources();
        counts
    }

    async fn export_state(&self) -> Result<Vec<u8>, StoreError> {
        self.database
            .read_consistent(super::snapshot::export_job())
            .await
    }

    async fn import_state(
        &self,
        snapshot: super::snapshot::Prepared,
    ) -> Result<super::snapshot::ImportCounts, StoreError> {
        let latest_ms = snapshot.latest_ms;
        let counts = self
            .database
            .write(super::snapshot::write::import_job(snapshot))
            .await;
        self.forget_kept_sources();
        let counts = counts?;
        // New ids must not repeat the snapshot's, which a fixture made with the same seed
        // would hold: the deterministic clock, which ids carry, moves past its records.
        crate::ids::advance_past(latest_ms);
        Ok(counts)
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.database.close().await
    }
}

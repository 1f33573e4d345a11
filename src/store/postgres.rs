//! The PostgreSQL driver: the database for several replicas sharing one schema. Only
//! connection handling lives here; the store's logic and SQL are the core's
//! (`database`, `resources`, ...).
//!
//! A write is one transaction on a pooled connection; a read is its statements on a
//! pooled connection. Statements a job issues without waiting for each other are
//! pipelined on the connection. Replicas take turns on the rows they change through row
//! locks ([`Dialect::for_update`]), claim orphans with `SKIP LOCKED`, and time leases by
//! the database's clock, so that their own clocks need not agree.

use super::sql::{Dialect, Job, Pending, Row, Tx, Value};
use super::StoreError;
use bytes::BytesMut;
use deadpool_postgres::{
    GenericClient, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod,
};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

/// Connections per replica. With fewer than the concurrent calls, waits for a pooled
/// connection dominated (16 gave 1.8k creates/s under 32 clients, 32 gave 4.5k).
const POOL_SIZE: usize = 32;

/// What every connection sets first: a statement, not the startup `options` (PgBouncer
/// refuses a setting there that it does not track, this one among them).
///
/// `enable_seqscan = off`: every statement that serves a call is written to read through
/// an index (a primary key, or the folder indexes `query.rs` picks from), and a statement
/// is prepared once per connection. PostgreSQL plans a prepared statement for its
/// parameters five times, then may keep one generic plan until the table is analyzed or
/// its schema changes, made for the table as it was then. Made while `resources` was a
/// few pages, the generic plan of a batch of creates looked its sources up by scanning
/// the table, and kept doing so as the table grew: on a database whose statistics were
/// not refreshed (autovacuum off, or between its runs) creates slowed as the table filled
/// (docs/benchmarks.md). With sequential scans off the planner takes the index wherever
/// there is one, whatever size it believes the table is; a statement that has no index
/// to use still scans. The few that read a whole table (a state export, the console's
/// folders, `imageplane check`) read it through an index.
const SESSION_SETTINGS: &str = "SET enable_seqscan = off";

/// PostgreSQL's SQL where it differs from SQLite's.
pub static DIALECT: Dialect = Dialect {
    running: "NOT done",
    finished: "done",
    // The statement's start: stable within it, so an index can serve a comparison.
    now_ms: "(extract(epoch from statement_timestamp()) * 1000)::bigint",
    for_update: " FOR UPDATE",
    for_share: " FOR SHARE",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    in_list: any,
    contains: strpos,
    names_index: false,
    index_count: "SELECT count(*) FROM pg_indexes
                  WHERE schemaname = current_schema() AND indexname = $1",
    writable_ctes: true,
    exclusive: false,
    // An arbitrary constant: replicas starting together migrate one at a time.
    migration_lock: Some("SELECT pg_advisory_xact_lock(84328757838)"),
    replace_lock: Some("LOCK TABLE resources, operations, idempotency_keys IN EXCLUSIVE MODE"),
    batch_parameters: 8_000,
    migrations: super::migrations::POSTGRES,
    integrity_check: None,
};

fn any(column: &str, placeholder: &str) -> String {
    format!("{column} = ANY({placeholder})")
}

fn strpos(column: &str, placeholder: &str) -> String {
    format!("strpos({column}, {placeholder}) > 0")
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            return StoreError::Duplicate(error.to_string());
        }
        StoreError::Backend(format!("postgres: {error}"))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> StoreError {
        StoreError::Backend(format!("postgres connection: {error}"))
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(value) => value.to_sql(ty, out),
            Value::I32(number) if *ty == Type::INT8 => i64::from(*number).to_sql(ty, out),
            Value::I32(number) => number.to_sql(ty, out),
            Value::I64(number) if *ty == Type::INT4 => i32::try_from(*number)?.to_sql(ty, out),
            Value::I64(number) => number.to_sql(ty, out),
            Value::Text(text) => text.to_sql(ty, out),
            Value::Bytes(bytes) => bytes.to_sql(ty, out),
            Value::TextList(texts) => texts.to_sql(ty, out),
            Value::Column(values) => values.to_sql(ty, out),
        }
    }

    /// Every value goes where the core's SQL puts it; `to_sql` converts integers to the
    /// column's width.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A pool of connections to one PostgreSQL database (a clone shares the pool).
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
}

impl Postgres {
    /// Connects and checks the connection. The URL is libpq's
    /// (`postgres://user:password@host:port/database?options=...`); TLS is not supported.
    pub async fn connect(url: &str) -> Result<Postgres, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| StoreError::Backend(format!("invalid postgres URL: {error}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(SESSION_SETTINGS)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|error| StoreError::Backend(format!("postgres pool: {error}")))?;
        drop(pool.get().await?);
        Ok(Postgres { pool })
    }

    /// Runs `job` in a transaction: committed if it succeeds, rolled back if not.
    pub async fn write<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let outcome = job(&PostgresTx(&transaction)).await;
        match outcome {
            Ok(value) => {
                transaction.commit().await?;
                Ok(value)
            }
            Err(error) => {
                let _ = transaction.rollback().await;
                Err(error)
            }
        }
    }

    /// Runs a job of one statement on a pooled connection, committed alone (no
    /// transaction around it: one round trip).
    pub async fn write_one_statement<T: Send + 'static>(
        &self,
        job: Job<T>,
    ) -> Result<T, StoreError> {
        self.read(job).await
    }

    /// Runs `job` in one read-only REPEATABLE READ transaction: it sees one state.
    pub async fn read_consistent<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        let mut client = self.pool.get().await?;
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let outcome = job(&PostgresTx(&transaction)).await;
        let _ = transaction.rollback().await;
        outcome
    }

    /// Runs `job`'s statements on a pooled connection, each on its own.
    pub async fn read<T: Send + 'static>(&self, job: Job<T>) -> Result<T, StoreError> {
        let client = self.pool.get().await?;
        job(&PostgresTx(&client)).await
    }
}

/// Runs `job` on a connection of its own to the database at `url`, each statement on its
/// own (`imageplane check`: a failed read must not abort the reads after it).
pub async fn read_only<T: Send + 'static>(url: &str, job: Job<T>) -> Result<T, StoreError> {
    Postgres::connect(url).await?.read(job).await
}

/// The same in one read-only REPEATABLE READ transaction (`imageplane state export`).
pub async fn read_only_consistent<T: Send + 'static>(
    url: &str,
    job: Job<T>,
) -> Result<T, StoreError> {
    Postgres::connect(url).await?.read_consistent(job).await
}

/// A job's view of a connection or a transaction.
struct PostgresTx<'a, C>(&'a C);

impl<C: GenericClient> Tx for PostgresTx<'_, C> {
    fn query<'a>(&'a self, sql: &'a str, parameters: Vec<Value>) -> Pending<'a, Vec<Row>> {
        Box::pin(async move {
            let statement = self.0.prepare_cached(sql).await?;
            self.0
                .query(&statement, &references(&parameters))
                .await?
                .iter()
                .map(row_values)
                .collect()
        })
    }

    fn execute<'a>(&'a self, sql: &'a str, parameters: Vec<Value>) -> Pending<'a, u64> {
        Box::pin(async move {
            let statement = self.0.prepare_cached(sql).await?;
            Ok(self.0.execute(&statement, &references(&parameters)).await?)
        })
    }

    fn execute_batch<'a>(&'a self, sql: &'a str) -> Pending<'a, ()> {
        Box::pin(async move { Ok(self.0.batch_execute(sql).await?) })
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }
}

/// Parameters as the driver takes them.
fn references(parameters: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    parameters
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

/// A row's values, by the types of its columns.
fn row_values(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::BOOL => row.try_get::<_, Option<bool>>(index)?.map(Value::Bool),
            Type::INT4 => row.try_get::<_, Option<i32>>(index)?.map(Value::I32),
            Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Value::I64),
            Type::TEXT | Type::VARCHAR | Type::NAME => {
                row.try_get::<_, Option<String>>(index)?.map(Value::Text)
            }
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index)?.map(Value::Bytes),
            ref other => {
                return Err(StoreError::Corrupt(format!(
                    "column {} has type {other}, which the store does not read",
                    column.name()
                )))
            }
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row::new(values))
}

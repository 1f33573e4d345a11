//! What the store core asks of a database driver: run one statement inside a transaction
//! ([`Tx`]), with parameters and rows of a few plain types ([`Value`], [`Row`]), in SQL
//! whose few differences between SQLite and PostgreSQL a [`Dialect`] spells out.
//!
//! The core writes each statement once, with PostgreSQL's `$1, $2, ...` placeholders:
//! SQLite takes `$N` as a named parameter, and its driver binds the values by those
//! names. A driver turns database errors into [`StoreError`]s, a unique-constraint
//! violation into [`StoreError::Duplicate`] so that the core can tell a taken name from
//! a broken disk.

use super::migrations::Migration;
use super::read_cache::Record;
use super::StoreError;
use std::future::Future;
use std::pin::Pin;

/// A statement's future, boxed so that [`Tx`] can be a trait object.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A job: what one store call does inside one transaction (a write) or on one
/// connection (a read). The drivers run jobs; the core writes them.
pub type Job<T> = Box<dyn for<'t> FnOnce(&'t dyn Tx) -> Pending<'t, T> + Send>;

/// A parameter or a column value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    /// An INTEGER column (kinds, statuses).
    I32(i32),
    /// A BIGINT column (times in milliseconds, counts).
    I64(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// A list of texts, for [`Dialect::in_list`]: PostgreSQL binds a `text[]`, SQLite a
    /// JSON array that `json_each` reads.
    TextList(Vec<String>),
    /// One column of many rows, bound as an array (PostgreSQL only: a statement such as
    /// `SELECT * FROM unnest($1::text[], $2::bigint[])` reads it as rows).
    Column(Vec<Value>),
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Value {
        text.map_or(Value::Null, Value::Text)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value::Bytes(bytes)
    }
}

impl From<Option<Vec<u8>>> for Value {
    fn from(bytes: Option<Vec<u8>>) -> Value {
        bytes.map_or(Value::Null, Value::Bytes)
    }
}

impl From<i32> for Value {
    fn from(number: i32) -> Value {
        Value::I32(number)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Value {
        Value::I64(number)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Value {
        Value::Bool(value)
    }
}

/// A `usize` limit as a BIGINT parameter.
pub fn limit(limit: usize) -> Value {
    Value::I64(i64::try_from(limit).unwrap_or(i64::MAX))
}

/// One row of a result, read column by column (each value can be taken once).
#[derive(Debug, Default)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    fn take(&mut self, column: usize) -> Value {
        self.values
            .get_mut(column)
            .map(std::mem::take)
            .unwrap_or(Value::Null)
    }

    fn mismatch(column: usize, expected: &str, found: &Value) -> StoreError {
        StoreError::Corrupt(format!(
            "column {column} holds {found:?} where {expected} was expected"
        ))
    }

    pub fn text(&mut self, column: usize) -> Result<String, StoreError> {
        match self.take(column) {
            Value::Text(text) => Ok(text),
            other => Err(Row::mismatch(column, "text", &other)),
        }
    }

    pub fn optional_text(&mut self, column: usize) -> Result<Option<String>, StoreError> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            other => Err(Row::mismatch(column, "text or NULL", &other)),
        }
    }

    pub fn bytes(&mut self, column: usize) -> Result<Vec<u8>, StoreError> {
        match self.take(column) {
            Value::Bytes(bytes) => Ok(bytes),
            other => Err(Row::mismatch(column, "bytes", &other)),
        }
    }

    pub fn optional_bytes(&mut self, column: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::Bytes(bytes) => Ok(Some(bytes)),
            other => Err(Row::mismatch(column, "bytes or NULL", &other)),
        }
    }

    pub fn i64(&mut self, column: usize) -> Result<i64, StoreError> {
        match self.take(column) {
            Value::I64(number) => Ok(number),
            Value::I32(number) => Ok(i64::from(number)),
            other => Err(Row::mismatch(column, "an integer", &other)),
        }
    }

    pub fn optional_i64(&mut self, column: usize) -> Result<Option<i64>, StoreError> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::I64(number) => Ok(Some(number)),
            Value::I32(number) => Ok(Some(i64::from(number))),
            other => Err(Row::mismatch(column, "an integer or NULL", &other)),
        }
    }

    pub fn i32(&mut self, column: usize) -> Result<i32, StoreError> {
        match self.take(column) {
            Value::I32(number) => Ok(number),
            Value::I64(number) => i32::try_from(number)
                .map_err(|_| Row::mismatch(column, "a 32-bit integer", &Value::I64(number))),
            other => Err(Row::mismatch(column, "an integer", &other)),
        }
    }

    pub fn optional_i32(&mut self, column: usize) -> Result<Option<i32>, StoreError> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::I32(number) => Ok(Some(number)),
            Value::I64(number) => i32::try_from(number)
                .map(Some)
                .map_err(|_| Row::mismatch(column, "a 32-bit integer", &Value::I64(number))),
            other => Err(Row::mismatch(column, "an integer or NULL", &other)),
        }
    }

    /// A boolean: PostgreSQL's BOOLEAN, or SQLite's 0 and 1.
    pub fn bool(&mut self, column: usize) -> Result<bool, StoreError> {
        match self.take(column) {
            Value::Bool(value) => Ok(value),
            Value::I64(number) => Ok(number != 0),
            Value::I32(number) => Ok(number != 0),
            other => Err(Row::mismatch(column, "a boolean", &other)),
        }
    }
}

/// One transaction (or, for reads, one connection), as the core sees it. A statement's
/// future may run concurrently with the next ones of the same job: PostgreSQL then
/// pipelines them on its connection; SQLite runs each at once.
pub trait Tx: Sync {
    /// Runs a statement that returns rows.
    fn query<'a>(&'a self, sql: &'a str, parameters: Vec<Value>) -> Pending<'a, Vec<Row>>;

    /// Runs a statement; returns how many rows it changed.
    fn execute<'a>(&'a self, sql: &'a str, parameters: Vec<Value>) -> Pending<'a, u64>;

    /// Runs several statements without parameters (a migration's SQL).
    fn execute_batch<'a>(&'a self, sql: &'a str) -> Pending<'a, ()>;

    /// How this database writes what differs.
    fn dialect(&self) -> &'static Dialect;

    /// Tells the driver what a write changed, for its read cache (SQLite's): the new state
    /// of a record, or `None` if it is gone or only its row knows its new state. Kept only
    /// if the job commits.
    fn wrote(&self, _id: &str, _record: Option<Record>) {}
}

/// The SQL that differs between the databases.
#[derive(Debug)]
pub struct Dialect {
    /// `done` of a running operation, in the form its partial index is declared with.
    pub running: &'static str,
    /// `done` of a finished operation, likewise.
    pub finished: &'static str,
    /// The database clock in milliseconds since the Unix epoch: leases are timed by it, so
    /// that replicas' clocks need not agree.
    pub now_ms: &'static str,
    /// Appended to a SELECT whose rows the transaction will change: row locks, so that
    /// replicas writing the same rows take turns ("" where one writer does everything).
    pub for_update: &'static str,
    /// Appended to a SELECT of a row that must not change until the transaction ends,
    /// which other readers may lock alike (a copy's source).
    pub for_share: &'static str,
    /// Appended to the search for orphans: rows another replica is claiming are skipped.
    pub skip_locked: &'static str,
    /// `column` is one of the texts of the [`Value::TextList`] at `placeholder`.
    pub in_list: fn(column: &str, placeholder: &str) -> String,
    /// `column` contains the text at `placeholder`.
    pub contains: fn(column: &str, placeholder: &str) -> String,
    /// Whether a list names the index that serves it (SQLite's `INDEXED BY`; its planner
    /// has no statistics).
    pub names_index: bool,
    /// How many indexes of this name the schema holds (one parameter, the name).
    pub index_count: &'static str,
    /// Whether a statement may hold data-modifying CTEs (`WITH x AS (INSERT ...)`), so
    /// that a create is one statement (PostgreSQL).
    pub writable_ctes: bool,
    /// Whether one process holds the database (SQLite's directory lock): then at start
    /// every running operation another replica id holds is an orphan of an earlier run.
    pub exclusive: bool,
    /// Taken first in the transaction that migrates, so that replicas starting together
    /// migrate one at a time.
    pub migration_lock: Option<&'static str>,
    /// The database's own check of its files, for `imageplane check`: rows of text, "ok"
    /// when sound.
    pub integrity_check: Option<&'static str>,
    /// Locks the tables a reset or an import replaces against writes (`state`): `None`
    /// where one writer runs everything.
    pub replace_lock: Option<&'static str>,
    /// The most values one statement of many rows binds (a snapshot's import): many rows a
    /// statement save PostgreSQL's round trips; SQLite has none to save, and finding a
    /// `$N` parameter's name costs it time in proportion to their number, so it takes a
    /// row at a time.
    pub batch_parameters: usize,
    /// The schema's migrations, in order (their DDL is the database's own).
    pub migrations: &'static [Migration],
}

//! State snapshots: the store's whole state as a file of JSON lines that another store,
//! SQLite or PostgreSQL, takes back exactly (`GET`/`PUT /imageplane/v1/state`,
//! `imageplane state export|import`, `serve --restore`).
//!
//! The file is the tables' rows, typed by column: line 1 a header
//! `{"imageplaneState": 1, "schema": 4, ...}` (the format's version and the schema version
//! of the rows), then one line per row, `{"table": "resources", "row": {...}}`: text as
//! strings, integers as numbers, booleans, NULL as null, bytes (the protobuf bodies) in
//! base64 ([`file`]). The tables are `resources`, `operations`, `idempotency_keys` and
//! `iam_tokens`; not the store's own settings (the page-token key stays the server's).
//!
//! An import goes in two steps. [`prepare`] checks the whole snapshot without touching the
//! store: an older schema is migrated by the migrations themselves (its rows go into a
//! scratch SQLite database at its version, which is then migrated and read back; this
//! works because a migration only adds tables and columns and never changes a column's
//! type: [`TABLES`] lists the newest schema's columns, an older snapshot's are some of
//! them), and every row must decode and agree with its body, no key may be given twice,
//! and every running operation must have its resource and work that can run. Then
//! [`write::import_job`] replaces resources, operations and idempotency keys in one
//! transaction (PostgreSQL: with the tables locked against writes, so that no write lands
//! between the delete and the inserts); issued IAM tokens are kept and the snapshot's
//! added, so that no client is signed out. The snapshot's running operations are stored
//! with no owner and an expired lease: orphans, which the executor claims.

mod file;
mod prepare;
pub mod write;

pub use file::{export_job, parse};
pub use prepare::{migrate_job, prepare};

use super::migrations;
use super::sql::{Row, Tx, Value};
use super::StoreError;

/// The version of the file's layout (the header and the row lines). Rows carry the
/// schema's version besides.
pub const FORMAT: i64 = 1;

/// The media type of a snapshot file.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// INTEGER (kinds, statuses).
    Int,
    /// BIGINT (times in milliseconds).
    BigInt,
    Bool,
    Bytes,
}

/// A table a snapshot carries, with the columns of the newest schema.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
    /// The key a row is known by, for the order of the file.
    pub order_by: &'static str,
}

use ColumnType::{BigInt, Bool, Bytes, Int, Text};

/// Every table a snapshot carries, in the order they are written and inserted. Keep in
/// step with the migrations (a test compares them with `migrations::SCHEMA_PROBES`).
pub const TABLES: &[Table] = &[
    Table {
        name: "resources",
        columns: &[
            ("id", Text),
            ("kind", Int),
            ("folder_id", Text),
            ("name", Text),
            ("os", Bytes),
            ("body", Bytes),
            ("status", Int),
            ("family", Text),
            ("created_at_ms", BigInt),
            ("access_bindings", Bytes),
        ],
        order_by: "id",
    },
    Table {
        name: "operations",
        columns: &[
            ("id", Text),
            ("done", Bool),
            ("modified_at_ms", BigInt),
            ("target_kind", Int),
            ("target_id", Text),
            ("import_uri", Text),
            ("owner", Text),
            ("lease_until_ms", BigInt),
            ("body", Bytes),
            ("work", Text),
            ("source_id", Text),
            ("created_at_ms", BigInt),
            ("folder_id", Text),
        ],
        order_by: "id",
    },
    Table {
        name: "idempotency_keys",
        columns: &[
            ("subject", Text),
            ("key", Text),
            ("fingerprint", Text),
            ("operation_id", Text),
            ("created_at_ms", BigInt),
        ],
        order_by: "subject, key",
    },
    Table {
        name: "iam_tokens",
        columns: &[
            ("token_sha256", Text),
            ("subject", Text),
            ("folders", Text),
            ("expires_at_ms", BigInt),
        ],
        order_by: "token_sha256",
    },
];

/// The largest snapshot file an import takes, in bytes.
pub const MAX_SNAPSHOT_BYTES: usize = 512 << 20;

/// A parsed snapshot: its rows, checked against the column types, at `schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub schema: i64,
    pub rows: Vec<SnapshotRow>,
}

/// One row: its table (an index into [`TABLES`]), the line it came from (0: made here),
/// and its values by column (`None`: the line does not have the column, which an older
/// schema lacks).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    pub table: usize,
    pub line: usize,
    pub values: Vec<Option<Value>>,
}

/// A snapshot ready to import ([`prepare`]): at the newest schema and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub(super) rows: Vec<SnapshotRow>,
    /// The schema the snapshot was written with.
    pub schema: i64,
    /// The latest time a record of it was created or changed, in milliseconds since the
    /// Unix epoch (`--deterministic-ids` moves its clock past it).
    pub latest_ms: i64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub resources_removed: u64,
    pub operations_removed: u64,
    pub resources: u64,
    pub operations: u64,
    pub idempotency_keys: u64,
    /// Issued IAM tokens stored; one already stored here is kept as it is.
    pub iam_tokens: u64,
    /// The schema the snapshot was written with.
    pub schema: i64,
}

/// The tables and columns later schemas added, as `table` or `table.column`, with the
/// schema that added them; the rest came with schema 1. A snapshot of an older schema
/// cannot hold them. Keep in step with `migrations/`.
pub const ADDED: &[(&str, i64)] = &[
    ("resources.status", 2),
    ("resources.family", 2),
    ("resources.created_at_ms", 2),
    ("resources.access_bindings", 2),
    ("operations.work", 2),
    ("operations.source_id", 2),
    ("operations.created_at_ms", 2),
    ("operations.folder_id", 3),
    ("idempotency_keys", 3),
    ("iam_tokens", 3),
];

/// The schema that added `name` (`table` or `table.column`).
fn added_in(name: &str) -> i64 {
    ADDED
        .iter()
        .find(|(added, _)| *added == name)
        .map_or(1, |(_, schema)| *schema)
}

/// The columns that may hold NULL, as `table.column`; every other column must not.
pub const NULLABLE: &[&str] = &[
    "resources.os",
    "resources.access_bindings",
    "operations.import_uri",
    "operations.source_id",
];

/// A snapshot file read ([`parse`], on a blocking thread: up to 512 MiB of JSON) and
/// prepared ([`prepare`]): what every way of importing one starts with.
pub async fn read(file: Vec<u8>) -> Result<Prepared, crate::error::Error> {
    let snapshot = tokio::task::spawn_blocking(move || parse(&file))
        .await
        .map_err(|error| {
            crate::error::Error::Internal(format!("reading the snapshot: {error}"))
        })??;
    Ok(prepare(snapshot).await?)
}

/// The schema version this binary writes.
pub fn latest_schema() -> i64 {
    migrations::SQLITE
        .last()
        .map_or(0, |migration| migration.version)
}

/// Reads every row of every table in [`TABLES`], in their order and each in key order,
/// and hands each to `each` with its table's index and its values, typed as the table
/// says (SQLite keeps booleans and integers alike).
async fn read_rows(tx: &dyn Tx, mut each: impl FnMut(usize, Vec<Value>)) -> Result<(), StoreError> {
    for (index, table) in TABLES.iter().enumerate() {
        let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            columns.join(", "),
            table.name,
            table.order_by
        );
        for mut row in tx.query(&sql, Vec::new()).await? {
            let mut values = Vec::with_capacity(table.columns.len());
            for (column, (_, kind)) in table.columns.iter().enumerate() {
                values.push(typed(&mut row, column, *kind)?);
            }
            each(index, values);
        }
    }
    Ok(())
}

/// A column's value, typed as [`TABLES`] says.
fn typed(row: &mut Row, index: usize, kind: ColumnType) -> Result<Value, StoreError> {
    Ok(match kind {
        Text => row.optional_text(index)?.map_or(Value::Null, Value::Text),
        Int => row.optional_i32(index)?.map_or(Value::Null, Value::I32),
        BigInt => row.optional_i64(index)?.map_or(Value::Null, Value::I64),
        Bool => Value::Bool(row.bool(index)?),
        Bytes => row.optional_bytes(index)?.map_or(Value::Null, Value::Bytes),
    })
}

/// The value of `name` in `row`, if it has it.
fn column<'r>(row: &'r SnapshotRow, name: &str) -> Option<&'r Value> {
    TABLES[row.table]
        .columns
        .iter()
        .position(|(column, _)| *column == name)
        .and_then(|index| row.values.get(index))
        .and_then(Option::as_ref)
}

/// The text of `name` in `row` ("" if it has none).
fn text<'r>(row: &'r SnapshotRow, name: &str) -> &'r str {
    match column(row, name) {
        Some(Value::Text(text)) => text,
        _ => "",
    }
}

/// The key a row is known by in its table (its primary key's values, joined).
fn key_of(row: &SnapshotRow) -> String {
    match TABLES[row.table].name {
        "idempotency_keys" => format!("{}\0{}", text(row, "subject"), text(row, "key")),
        "iam_tokens" => text(row, "token_sha256").to_string(),
        _ => text(row, "id").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_have_the_columns_the_schema_probes_name() {
        for table in TABLES {
            let (_, probe) = migrations::SCHEMA_PROBES
                .iter()
                .find(|(name, _)| *name == table.name)
                .unwrap_or_else(|| panic!("no probe of {}", table.name));
            let mut probed: Vec<&str> = probe
                .trim_start_matches("SELECT ")
                .split(" FROM ")
                .next()
                .unwrap()
                .split(',')
                .map(str::trim)
                .collect();
            let mut listed: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
            listed.sort();
            probed.sort();
            assert_eq!(listed, probed, "{}", table.name);
        }
        for nullable in NULLABLE {
            let (table, name) = nullable.split_once('.').unwrap();
            let table = TABLES.iter().find(|t| t.name == table).unwrap();
            assert!(
                table.columns.iter().any(|(column, _)| *column == name),
                "{nullable}"
            );
        }
    }
}

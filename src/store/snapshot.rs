//! State snapshots: the store's whole state as a file of JSON lines that another store,
//! SQLite or PostgreSQL, takes back exactly (`GET`/`PUT /imageplane/v1/state`,
//! `imageplane state export|import`, `serve --restore`).
//!
//! The file is the tables' rows, typed by column: line 1 a header
//! `{"imageplaneState": 1, "schema": 3, ...}` (the format's version and the schema version
//! of the rows), then one line per row, `{"table": "resources", "row": {...}}`: text as
//! strings, integers as numbers, booleans, NULL as null, bytes (the protobuf bodies) in
//! base64. The tables are `resources`, `operations`, `idempotency_keys` and `iam_tokens`;
//! not the store's own settings (the page-token key stays the server's).
//!
//! A snapshot of an older schema is migrated by the migrations themselves: its rows go
//! into a scratch SQLite database at its version, which is then migrated and read back
//! ([`migrate`]). This works because a migration only adds tables and columns and never
//! changes a column's type (see `migrations`); [`TABLES`] lists the columns of the newest
//! schema with their types, and an older snapshot's columns are some of them. A newer
//! schema or format is refused, naming both versions.
//!
//! Importing ([`import_job`]) replaces resources, operations and idempotency keys in one
//! transaction (PostgreSQL: with the tables locked against writes, so no replica's write
//! lands between the delete and the inserts); issued IAM tokens are kept and the
//! snapshot's added, so that no client is signed out. The snapshot's running operations
//! are stored with no owner and an expired lease: orphans, which the executor claims.

use super::migrations;
use super::read_cache::Record;
use super::sql::{Job, Row, Tx, Value};
use super::StoreError;
use crate::error::{excerpt, Error};
use base64::Engine;
use serde_json::{json, Map, Value as Json};

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

/// The schema version this binary writes.
pub fn latest_schema() -> i64 {
    migrations::SQLITE
        .last()
        .map_or(0, |migration| migration.version)
}

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

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub resources_removed: u64,
    pub operations_removed: u64,
    pub resources: u64,
    pub operations: u64,
    pub idempotency_keys: u64,
    pub iam_tokens: u64,
    /// The schema the snapshot was written with.
    pub schema: i64,
}

/// The header line of a snapshot written now.
fn header(schema: i64) -> String {
    json!({
        "imageplaneState": FORMAT,
        "schema": schema,
        "imageplane": env!("CARGO_PKG_VERSION"),
        "exportedAt": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    })
    .to_string()
}

/// The read that writes the whole state as a snapshot file; run it as one consistent
/// read (`Database::read_consistent`).
pub fn export_job() -> Job<Vec<u8>> {
    Box::new(|tx| Box::pin(async move { export(tx).await }))
}

async fn export(tx: &dyn Tx) -> Result<Vec<u8>, StoreError> {
    let mut file = header(latest_schema()).into_bytes();
    file.push(b'\n');
    for table in TABLES {
        let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            columns.join(", "),
            table.name,
            table.order_by
        );
        for mut row in tx.query(&sql, Vec::new()).await? {
            // Written by hand so that "table" comes first and the columns keep their
            // order: a person reading the file sees each row as the table has it.
            file.extend_from_slice(format!("{{\"table\":\"{}\",\"row\":{{", table.name).as_bytes());
            for (index, (name, kind)) in table.columns.iter().enumerate() {
                if index > 0 {
                    file.push(b',');
                }
                let value = json_of(&mut row, index, *kind)?;
                file.extend_from_slice(format!("\"{name}\":{value}").as_bytes());
            }
            file.extend_from_slice(b"}}\n");
        }
    }
    Ok(file)
}

/// A column's value as JSON.
fn json_of(row: &mut Row, index: usize, kind: ColumnType) -> Result<Json, StoreError> {
    let text = |text: Option<String>| text.map_or(Json::Null, Json::String);
    Ok(match kind {
        Text => text(row.optional_text(index)?),
        Int => row.optional_i32(index)?.map_or(Json::Null, Json::from),
        BigInt => row.optional_i64(index)?.map_or(Json::Null, Json::from),
        Bool => Json::Bool(row.bool(index)?),
        Bytes => row.optional_bytes(index)?.map_or(Json::Null, |bytes| {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }),
    })
}

/// Reads a snapshot file, checking its header's versions and each row's table, columns
/// and types; an error names the line and what is wrong.
pub fn parse(file: &[u8]) -> Result<Snapshot, Error> {
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let invalid = |line: usize, message: String| {
        Error::InvalidArgument(format!("state snapshot line {line}: {message}"))
    };
    let mut lines = file
        .split(|byte| *byte == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
    let Some((number, first)) = lines.next() else {
        return Err(Error::InvalidArgument(
            "the state snapshot is empty: it needs a header line such as \
             {\"imageplaneState\": 1, \"schema\": 3}"
                .into(),
        ));
    };
    let schema = parse_header(first).map_err(|message| invalid(number, message))?;
    let mut rows = Vec::new();
    for (number, line) in lines {
        rows.push(parse_row(line, schema).map_err(|message| invalid(number, message))?);
        if let Some(row) = rows.last_mut() {
            row.line = number;
        }
    }
    Ok(Snapshot { schema, rows })
}

/// The schema version of a header line; refuses a newer format or schema.
fn parse_header(line: &[u8]) -> Result<i64, String> {
    let header: Map<String, Json> = serde_json::from_slice(line).map_err(|error| {
        format!("the header is not a JSON object ({error}); a snapshot starts with {{\"imageplaneState\": 1, ...}}")
    })?;
    let version = |key: &str| -> Result<i64, String> {
        header
            .get(key)
            .and_then(Json::as_i64)
            .filter(|version| *version >= 1)
            .ok_or_else(|| format!("the header needs \"{key}\", a version number of 1 or more"))
    };
    let format = version("imageplaneState")?;
    if format > FORMAT {
        return Err(format!(
            "the snapshot has format version {format}, newer than this imageplane \
             ({}) reads ({FORMAT}): import it with a newer imageplane",
            env!("CARGO_PKG_VERSION")
        ));
    }
    let schema = version("schema")?;
    let latest = latest_schema();
    if schema > latest {
        return Err(format!(
            "the snapshot has schema version {schema}, newer than this imageplane's \
             ({latest}, imageplane {}): import it with a newer imageplane",
            env!("CARGO_PKG_VERSION")
        ));
    }
    Ok(schema)
}

/// One row line.
fn parse_row(line: &[u8], schema: i64) -> Result<SnapshotRow, String> {
    let mut object: Map<String, Json> =
        serde_json::from_slice(line).map_err(|error| format!("not a JSON object: {error}"))?;
    let name = match object.remove("table") {
        Some(Json::String(name)) => name,
        _ => return Err("needs \"table\", the name of a table".into()),
    };
    let (table, spec) = TABLES
        .iter()
        .enumerate()
        .find(|(_, table)| table.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
            format!(
                "unknown table {}: a snapshot holds {}",
                excerpt(&name),
                known.join(", ")
            )
        })?;
    let row = match object.remove("row") {
        Some(Json::Object(row)) => row,
        _ => return Err("needs \"row\", an object of the row's columns".into()),
    };
    if let Some(other) = object.keys().next() {
        return Err(format!(
            "unknown key {}: a line holds \"table\" and \"row\"",
            excerpt(other)
        ));
    }
    let mut values = vec![None; spec.columns.len()];
    for (column, value) in row {
        let index = spec
            .columns
            .iter()
            .position(|(name, _)| *name == column)
            .ok_or_else(|| format!("table {name} has no column {}", excerpt(&column)))?;
        let kind = spec.columns[index].1;
        values[index] = Some(
            value_of(&value, kind)
                .map_err(|expected| format!("column {name}.{column} must be {expected}"))?,
        );
    }
    if schema == latest_schema() {
        if let Some(index) = values.iter().position(Option::is_none) {
            return Err(format!(
                "the {name} row lacks column {}",
                spec.columns[index].0
            ));
        }
    }
    Ok(SnapshotRow {
        table,
        line: 0,
        values,
    })
}

/// A JSON value as a column's value, or what it must be.
fn value_of(value: &Json, kind: ColumnType) -> Result<Value, &'static str> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match kind {
        Text => value
            .as_str()
            .map(|text| Value::Text(text.to_string()))
            .ok_or("a string or null"),
        Int => value
            .as_i64()
            .and_then(|number| i32::try_from(number).ok())
            .map(Value::I32)
            .ok_or("a 32-bit integer or null"),
        BigInt => value.as_i64().map(Value::I64).ok_or("an integer or null"),
        Bool => value.as_bool().map(Value::Bool).ok_or("true or false"),
        Bytes => value
            .as_str()
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .map(Value::Bytes)
            .ok_or("bytes in base64 (standard, padded) or null"),
    }
}

/// The snapshot at the newest schema: as it is, or migrated in a scratch SQLite database
/// ([`migrate_job`]).
pub async fn migrate(snapshot: Snapshot) -> Result<Snapshot, StoreError> {
    if snapshot.schema == latest_schema() {
        return Ok(snapshot);
    }
    let scratch = super::database::Database::Sqlite(super::sqlite::Sqlite::open_ephemeral().await?);
    scratch.write(migrate_job(snapshot)).await
}

/// Brings an older snapshot to the newest schema through the migrations: its rows go
/// into `tx` (a scratch SQLite database, empty) after the migrations up to its version,
/// the rest of the migrations run over them, and the rows are read back.
pub fn migrate_job(snapshot: Snapshot) -> Job<Snapshot> {
    Box::new(move |tx| {
        Box::pin(async move {
            super::schema::migrate(tx, Some(snapshot.schema)).await?;
            insert_all(tx, &snapshot.rows, false).await?;
            super::schema::migrate(tx, None).await?;
            let mut rows = Vec::new();
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
                        values.push(Some(typed(&mut row, column, *kind)?));
                    }
                    rows.push(SnapshotRow {
                        table: index,
                        line: 0,
                        values,
                    });
                }
            }
            Ok(Snapshot {
                schema: latest_schema(),
                rows,
            })
        })
    })
}

/// A column's value, typed as [`TABLES`] says (SQLite keeps booleans and integers
/// alike).
fn typed(row: &mut Row, index: usize, kind: ColumnType) -> Result<Value, StoreError> {
    Ok(match kind {
        Text => row.optional_text(index)?.map_or(Value::Null, Value::Text),
        Int => row.optional_i32(index)?.map_or(Value::Null, Value::I32),
        BigInt => row.optional_i64(index)?.map_or(Value::Null, Value::I64),
        Bool => Value::Bool(row.bool(index)?),
        Bytes => row.optional_bytes(index)?.map_or(Value::Null, Value::Bytes),
    })
}

/// Inserts `rows` with the statements of [`batches`]: many rows a statement.
/// `replace_lease`: a running operation is stored with no owner and an expired lease, so
/// that a replica claims it. An error names the row's line, or the lines of its batch.
async fn insert_all(
    tx: &dyn Tx,
    rows: &[SnapshotRow],
    replace_lease: bool,
) -> Result<(), StoreError> {
    for batch in batches(rows, tx.dialect().batch_parameters) {
        insert(tx, batch, replace_lease).await?;
    }
    Ok(())
}

/// `rows` cut into runs of one table and the same columns, each of at most
/// `max_parameters` values (or one row).
fn batches(rows: &[SnapshotRow], max_parameters: usize) -> Vec<&[SnapshotRow]> {
    let mut batches = Vec::new();
    let mut start = 0;
    for end in 1..=rows.len() {
        let first = &rows[start];
        let same = |row: &SnapshotRow| {
            row.table == first.table
                && row
                    .values
                    .iter()
                    .zip(&first.values)
                    .all(|(a, b)| a.is_some() == b.is_some())
        };
        let columns = first.values.iter().flatten().count().max(1);
        if end == rows.len() || !same(&rows[end]) || (end - start + 1) * columns > max_parameters {
            batches.push(&rows[start..end]);
            start = end;
        }
    }
    batches
}

/// One INSERT of `rows` (one table, the same columns).
async fn insert(tx: &dyn Tx, rows: &[SnapshotRow], replace_lease: bool) -> Result<(), StoreError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let table = &TABLES[first.table];
    let names: Vec<&str> = first
        .values
        .iter()
        .enumerate()
        .filter(|(_, value)| value.is_some())
        .map(|(index, _)| table.columns[index].0)
        .collect();
    let mut values = Vec::with_capacity(rows.len() * names.len());
    let mut tuples = Vec::with_capacity(rows.len());
    for row in rows {
        let running = table.name == "operations"
            && matches!(row.values.get(1), Some(Some(Value::Bool(false))));
        let mut placeholders = Vec::with_capacity(names.len());
        for (index, value) in row.values.iter().enumerate() {
            let Some(value) = value else { continue };
            let value = match (replace_lease && running, table.columns[index].0) {
                (true, "owner") => Value::Text(String::new()),
                (true, "lease_until_ms") => Value::I64(0),
                _ => value.clone(),
            };
            values.push(value);
            placeholders.push(format!("${}", values.len()));
        }
        tuples.push(format!("({})", placeholders.join(", ")));
    }
    let conflict = match table.name {
        "iam_tokens" => " ON CONFLICT (token_sha256) DO NOTHING",
        _ => "",
    };
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}{conflict}",
        table.name,
        names.join(", "),
        tuples.join(", ")
    );
    tx.execute(&sql, values).await.map_err(|error| match rows {
        [row] => refused(row, &error),
        [first, .., last] => StoreError::Refused(Error::InvalidArgument(format!(
            "state snapshot lines {}-{}, {} rows: cannot be stored: {error}",
            first.line, last.line, table.name
        ))),
        [] => error,
    })?;
    Ok(())
}

/// Refuses a row whose key an earlier row holds (an id; a non-empty name of a kind in a
/// folder), naming both lines: the database would refuse the batch without saying which.
fn check_keys(rows: &[SnapshotRow]) -> Result<(), StoreError> {
    let mut seen: std::collections::HashMap<(usize, String), usize> = Default::default();
    for row in rows {
        let table = TABLES[row.table].name;
        let text = |name: &str| match column(row, name) {
            Some(Value::Text(text)) => text.clone(),
            Some(Value::I32(number)) => number.to_string(),
            _ => String::new(),
        };
        let mut keys = vec![match table {
            "idempotency_keys" => format!(
                "key {} of {}",
                excerpt(&text("key")),
                excerpt(&text("subject"))
            ),
            "iam_tokens" => continue,
            _ => format!("id {}", excerpt(&text("id"))),
        }];
        if table == "resources" && !text("name").is_empty() {
            keys.push(format!(
                "name {} of kind {} in folder {}",
                excerpt(&text("name")),
                text("kind"),
                excerpt(&text("folder_id"))
            ));
        }
        for key in keys {
            if let Some(earlier) = seen.insert((row.table, key.clone()), row.line) {
                return Err(invalid_row(
                    row,
                    &format!("its {key} is taken by line {earlier}"),
                ));
            }
        }
    }
    Ok(())
}

/// An insert's failure as the snapshot's fault, naming the line.
fn refused(row: &SnapshotRow, error: &StoreError) -> StoreError {
    let what = match error {
        StoreError::Duplicate(_) => {
            "its key (an id, or a name in its folder) is taken by another row".to_string()
        }
        other => other.to_string(),
    };
    invalid_row(row, &format!("cannot be stored: {what}"))
}

/// INVALID_ARGUMENT about `row`, by its line (a migrated row has none).
fn invalid_row(row: &SnapshotRow, message: &str) -> StoreError {
    let table = TABLES[row.table].name;
    let place = match row.line {
        0 => format!("state snapshot, a {table} row (after migrating it)"),
        line => format!("state snapshot line {line}, the {table} row"),
    };
    StoreError::Refused(Error::InvalidArgument(format!("{place}: {message}")))
}

/// The value of `column` in `row`, if it has it.
fn column<'r>(row: &'r SnapshotRow, column: &str) -> Option<&'r Value> {
    TABLES[row.table]
        .columns
        .iter()
        .position(|(name, _)| *name == column)
        .and_then(|index| row.values.get(index))
        .and_then(Option::as_ref)
}

/// Checks that a resource's or an operation's row decodes as the store reads it, and
/// that its columns agree with its body; answers its id (for the read cache).
fn check_record(row: &SnapshotRow) -> Result<Option<String>, StoreError> {
    let value = |name: &str| column(row, name).cloned().unwrap_or_default();
    let bad = |error: &dyn std::fmt::Display| invalid_row(row, &error.to_string());
    let id = match value("id") {
        Value::Text(id) => id,
        _ => return Ok(None),
    };
    match TABLES[row.table].name {
        "resources" => {
            let mut columns = Row::new(vec![value("kind"), value("os"), value("body")]);
            let resource = super::codec::resource_from_row(&mut columns, 0).map_err(|e| bad(&e))?;
            if resource.id() != id || resource.folder_id() != text(&value("folder_id")) {
                return Err(bad(&"its id and folder_id columns differ from its body's"));
            }
            super::codec::decode_bindings(match &value("access_bindings") {
                Value::Bytes(bytes) => Some(bytes),
                _ => None,
            })
            .map_err(|e| bad(&e))?;
        }
        "operations" => {
            let names = [
                "target_kind",
                "target_id",
                "folder_id",
                "work",
                "import_uri",
                "source_id",
                "body",
            ];
            let mut columns = Row::new(names.iter().map(|name| value(name)).collect());
            let record = super::codec::record_from_row(&mut columns, 0).map_err(|e| bad(&e))?;
            if record.operation.id != id || Value::Bool(record.operation.done) != value("done") {
                return Err(bad(&"its id and done columns differ from its body's"));
            }
        }
        _ => return Ok(None),
    }
    Ok(Some(id))
}

fn text(value: &Value) -> &str {
    match value {
        Value::Text(text) => text,
        _ => "",
    }
}

/// The write that replaces the state with `snapshot` (at the newest schema: see
/// [`migrate_job`]) in one transaction; see the module documentation.
pub fn import_job(snapshot: Snapshot) -> Job<ImportCounts> {
    Box::new(move |tx| {
        Box::pin(async move {
            let (operations_removed, resources_removed) =
                super::state::delete_everything(tx).await?;
            let mut counts = ImportCounts {
                resources_removed,
                operations_removed,
                schema: snapshot.schema,
                ..ImportCounts::default()
            };
            check_keys(&snapshot.rows)?;
            for row in &snapshot.rows {
                if let Some(id) = check_record(row)? {
                    tx.wrote(&id, None::<Record>);
                }
                let count = match TABLES[row.table].name {
                    "resources" => &mut counts.resources,
                    "operations" => &mut counts.operations,
                    "idempotency_keys" => &mut counts.idempotency_keys,
                    _ => &mut counts.iam_tokens,
                };
                *count += 1;
            }
            insert_all(tx, &snapshot.rows, true).await?;
            Ok(counts)
        })
    })
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
            let probed: Vec<&str> = probe
                .trim_start_matches("SELECT ")
                .split(" FROM ")
                .next()
                .unwrap()
                .split(',')
                .map(str::trim)
                .collect();
            let mut listed: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
            let mut probed_sorted = probed.clone();
            listed.sort();
            probed_sorted.sort();
            assert_eq!(listed, probed_sorted, "{}", table.name);
        }
    }

    fn row(table: usize, present: &[bool]) -> SnapshotRow {
        SnapshotRow {
            table,
            line: 0,
            values: present
                .iter()
                .map(|present| present.then_some(Value::I64(1)))
                .collect(),
        }
    }

    #[test]
    fn batches_hold_one_table_with_the_same_columns_within_the_limit() {
        let rows = vec![
            row(0, &[true, true]),
            row(0, &[true, true]),
            row(0, &[true, true]),
            row(0, &[true, false]),
            row(1, &[true, false]),
        ];
        let sizes = |limit| -> Vec<usize> {
            batches(&rows, limit)
                .iter()
                .map(|batch| batch.len())
                .collect()
        };
        assert_eq!(sizes(100), [3, 1, 1]);
        assert_eq!(sizes(4), [2, 1, 1, 1]);
        assert_eq!(sizes(1), [1, 1, 1, 1, 1]);
        assert!(batches(&[], 10).is_empty());
    }
}

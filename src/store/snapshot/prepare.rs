//! Checking a snapshot whole before it touches the store ([`prepare`]): an older schema
//! migrated in a scratch SQLite database ([`migrate_job`]), then every row checked as the
//! store will read it.

use super::write::insert_all;
use super::TABLES;
use super::{column, key_of, latest_schema, read_rows, text, Prepared, Snapshot, SnapshotRow};
use crate::error::{excerpt, Error};
use crate::model::resource::work_kind;
use crate::store::codec::{self, OperationRow, ResourceRow};
use crate::store::sql::{Job, Row, Value};
use crate::store::StoreError;
use std::collections::HashMap;

/// The snapshot at the newest schema and checked, or INVALID_ARGUMENT naming the line
/// and the rule: every resource and operation decodes and its columns agree with its
/// body; no id, idempotency key or name in a folder is given twice; every running
/// operation's resource is in the snapshot, and its work can run. Touches no store.
pub async fn prepare(snapshot: Snapshot) -> Result<Prepared, StoreError> {
    let schema = snapshot.schema;
    let rows = match schema == latest_schema() {
        true => snapshot.rows,
        false => {
            // The migrated rows come back in key order: give them their lines again.
            let lines: HashMap<(usize, String), usize> = snapshot
                .rows
                .iter()
                .map(|row| ((row.table, key_of(row)), row.line))
                .collect();
            let scratch = crate::store::database::Database::Sqlite(
                crate::store::sqlite::Sqlite::open_ephemeral().await?,
            );
            let mut migrated = scratch.write(migrate_job(snapshot)).await?;
            for row in &mut migrated.rows {
                row.line = lines.get(&(row.table, key_of(row))).copied().unwrap_or(0);
            }
            migrated.rows
        }
    };
    check_keys(&rows)?;
    let mut latest_ms = 0;
    let mut resources = HashMap::new();
    let mut running = Vec::new();
    for row in &rows {
        match check_record(row)? {
            Checked::Resource {
                id,
                kind,
                changed_ms,
            } => {
                resources.insert(id, kind);
                latest_ms = latest_ms.max(changed_ms);
            }
            Checked::Operation { record, changed_ms } => {
                latest_ms = latest_ms.max(changed_ms);
                if !record.operation.done {
                    running.push((row, record));
                }
            }
            Checked::Other => {}
        }
    }
    for (row, record) in running {
        let target = &record.target;
        if resources.get(&target.id) != Some(&target.kind) {
            return Err(invalid_row(
                row,
                &format!(
                    "it is running, and its {} {} is not in the snapshot",
                    target.kind.display_name(),
                    excerpt(&target.id)
                ),
            ));
        }
        if work_kind(&record.work, target.kind).is_none() {
            return Err(invalid_row(
                row,
                &format!(
                    "it is running {} work on a {}, which nothing runs",
                    record.work.name(),
                    target.kind.display_name()
                ),
            ));
        }
    }
    Ok(Prepared {
        rows,
        schema,
        latest_ms,
    })
}

/// Brings an older snapshot to the newest schema through the migrations: its rows go
/// into `tx` (a scratch SQLite database, empty) after the migrations up to its version,
/// the rest of the migrations run over them, and the rows are read back.
pub fn migrate_job(snapshot: Snapshot) -> Job<Snapshot> {
    Box::new(move |tx| {
        Box::pin(async move {
            crate::store::schema::migrate(tx, Some(snapshot.schema)).await?;
            insert_all(tx, &snapshot.rows, false).await?;
            crate::store::schema::migrate(tx, None).await?;
            let mut rows = Vec::new();
            read_rows(tx, |table, values| {
                rows.push(SnapshotRow {
                    table,
                    line: 0,
                    values: values.into_iter().map(Some).collect(),
                })
            })
            .await?;
            Ok(Snapshot {
                schema: latest_schema(),
                rows,
            })
        })
    })
}

/// Refuses a row whose key an earlier row holds (an id; an idempotency key of a subject;
/// a non-empty name of a kind in a folder), naming both lines: the database would refuse
/// a batch without saying which row.
fn check_keys(rows: &[SnapshotRow]) -> Result<(), StoreError> {
    let mut seen: HashMap<(usize, String), usize> = HashMap::new();
    for row in rows {
        let table = TABLES[row.table].name;
        if table == "iam_tokens" {
            continue;
        }
        let mut keys = vec![(
            key_of(row),
            match table {
                "idempotency_keys" => format!(
                    "key {} of {}",
                    excerpt(text(row, "key")),
                    excerpt(text(row, "subject"))
                ),
                _ => format!("id {}", excerpt(text(row, "id"))),
            },
        )];
        if table == "resources" && !text(row, "name").is_empty() {
            let kind = match column(row, "kind") {
                Some(Value::I32(kind)) => *kind,
                _ => 0,
            };
            keys.push((
                format!("{kind}\0{}\0{}", text(row, "folder_id"), text(row, "name")),
                format!(
                    "name {} in folder {}",
                    excerpt(text(row, "name")),
                    excerpt(text(row, "folder_id"))
                ),
            ));
        }
        for (key, named) in keys {
            if let Some(earlier) = seen.insert((row.table, key), row.line) {
                return Err(invalid_row(
                    row,
                    &format!("its {named} is taken by line {earlier}"),
                ));
            }
        }
    }
    Ok(())
}

/// What a row is, checked.
enum Checked {
    Resource {
        id: String,
        kind: crate::model::resource::ResourceKind,
        changed_ms: i64,
    },
    Operation {
        record: Box<crate::model::resource::OperationRecord>,
        changed_ms: i64,
    },
    Other,
}

/// Checks that a resource's or an operation's row decodes as the store reads it, and that
/// its columns agree with its body (they are what lists and constraints see).
fn check_record(row: &SnapshotRow) -> Result<Checked, StoreError> {
    let value = |name: &str| column(row, name).cloned().unwrap_or_default();
    let bad = |error: &dyn std::fmt::Display| invalid_row(row, &error.to_string());
    let differ = |pairs: Vec<(&str, Value)>| -> Result<(), StoreError> {
        let differing: Vec<&str> = pairs
            .into_iter()
            .filter(|(name, derived)| value(name) != *derived)
            .map(|(name, _)| name)
            .collect();
        match differing.is_empty() {
            true => Ok(()),
            false => Err(bad(&format!(
                "its columns differ from its body's: {}",
                differing.join(", ")
            ))),
        }
    };
    match TABLES[row.table].name {
        "resources" => {
            let mut columns = Row::new(vec![value("kind"), value("os"), value("body")]);
            let resource = codec::resource_from_row(&mut columns, 0).map_err(|e| bad(&e))?;
            let derived = ResourceRow::from_resource(&resource);
            differ(vec![
                ("id", Value::Text(derived.id)),
                ("folder_id", Value::Text(derived.folder_id)),
                ("name", Value::Text(derived.name)),
                ("status", Value::I32(derived.status)),
                ("family", Value::Text(derived.family)),
                ("created_at_ms", Value::I64(derived.created_at_ms)),
            ])?;
            let bindings = match value("access_bindings") {
                Value::Bytes(bytes) => Some(bytes),
                _ => None,
            };
            codec::decode_bindings(bindings.as_deref()).map_err(|e| bad(&e))?;
            check_time(row, derived.created_at_ms)?;
            Ok(Checked::Resource {
                id: resource.id().to_string(),
                kind: resource.kind(),
                changed_ms: derived.created_at_ms,
            })
        }
        "operations" => {
            // The columns the store reads a record from, in its order.
            let names = codec::OPERATION_COLUMNS.split(", ");
            let mut columns = Row::new(names.map(value).collect());
            let record = codec::record_from_row(&mut columns, 0).map_err(|e| bad(&e))?;
            let derived = OperationRow::from_record(&record);
            differ(vec![
                ("id", Value::Text(derived.id)),
                ("done", Value::Bool(derived.done)),
                ("modified_at_ms", Value::I64(derived.modified_at_ms)),
                ("created_at_ms", Value::I64(derived.created_at_ms)),
            ])?;
            check_time(row, derived.created_at_ms)?;
            check_time(row, derived.modified_at_ms)?;
            Ok(Checked::Operation {
                record: Box::new(record),
                changed_ms: derived.modified_at_ms,
            })
        }
        _ => Ok(Checked::Other),
    }
}

/// The first and the last millisecond a record's time may be: the years 1970 to 2099 (ids
/// carry their creation time in eight base-36 digits of milliseconds from 2020, which
/// reach 2109).
const TIMES_MS: std::ops::RangeInclusive<i64> = 0..=4_102_444_799_999;

/// Refuses a time outside [`TIMES_MS`].
fn check_time(row: &SnapshotRow, unix_ms: i64) -> Result<(), StoreError> {
    match TIMES_MS.contains(&unix_ms) {
        true => Ok(()),
        false => Err(invalid_row(
            row,
            "a time of its body is outside the years 1970 to 2099",
        )),
    }
}

/// INVALID_ARGUMENT about `row`, by its line (a row a migration made has none).
pub(super) fn invalid_row(row: &SnapshotRow, message: &str) -> StoreError {
    let table = TABLES[row.table].name;
    let place = match row.line {
        0 => format!("state snapshot, a {table} row (after migrating it)"),
        line => format!("state snapshot line {line}, the {table} row"),
    };
    StoreError::Refused(Error::InvalidArgument(format!("{place}: {message}")))
}

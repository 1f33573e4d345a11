//! Writing a prepared snapshot into a store ([`import_job`]) or a scratch database (the
//! migration): many rows a statement where that saves round trips.

use super::prepare::invalid_row;
use super::{column, key_of, ImportCounts, Prepared, SnapshotRow, TABLES};
use crate::error::Error;
use crate::store::read_cache::Record;
use crate::store::sql::{Job, Tx, Value};
use crate::store::StoreError;

/// The write that replaces the state with a prepared snapshot, in one transaction (see
/// the module documentation of `snapshot`).
pub fn import_job(prepared: Prepared) -> Job<ImportCounts> {
    Box::new(move |tx| {
        Box::pin(async move {
            crate::store::state::lock_for_replace(tx).await?;
            let (operations_removed, resources_removed) =
                crate::store::state::delete_everything(tx).await?;
            for row in &prepared.rows {
                if ["resources", "operations"].contains(&TABLES[row.table].name) {
                    tx.wrote(&key_of(row), None::<Record>);
                }
            }
            let inserted = insert_all(tx, &prepared.rows, true).await?;
            let count = |table: &str| {
                inserted
                    .iter()
                    .filter(|(of, _)| *of == table)
                    .map(|(_, count)| count)
                    .sum()
            };
            Ok(ImportCounts {
                resources_removed,
                operations_removed,
                resources: count("resources"),
                operations: count("operations"),
                idempotency_keys: count("idempotency_keys"),
                iam_tokens: count("iam_tokens"),
                schema: prepared.schema,
            })
        })
    })
}

/// Inserts `rows` with the statements of [`batches`]; answers each statement's table and
/// the rows it stored. `replace_lease`: a running operation is stored with no owner and
/// an expired lease, so that a replica claims it.
pub(super) async fn insert_all(
    tx: &dyn Tx,
    rows: &[SnapshotRow],
    replace_lease: bool,
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    let mut inserted = Vec::new();
    for batch in batches(rows, tx.dialect().batch_parameters) {
        let stored = insert(tx, batch, replace_lease).await?;
        inserted.push((TABLES[batch[0].table].name, stored));
    }
    Ok(inserted)
}

/// `rows` cut into batches of one table and the same columns, each of at most
/// `max_parameters` values (or one row) and of a power of two rows, so that the few
/// statements a database prepares are the same from one import to the next.
fn batches(rows: &[SnapshotRow], max_parameters: usize) -> Vec<&[SnapshotRow]> {
    let same_shape = |a: &SnapshotRow, b: &SnapshotRow| {
        a.table == b.table
            && a.values
                .iter()
                .zip(&b.values)
                .all(|(a, b)| a.is_some() == b.is_some())
    };
    let mut batches = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let run = rows[start..]
            .iter()
            .take_while(|row| same_shape(row, &rows[start]))
            .count();
        let columns = rows[start].values.iter().flatten().count().max(1);
        let most = (max_parameters / columns).max(1);
        let mut left = run;
        while left > 0 {
            let size = 1 << (usize::BITS - 1 - left.min(most).leading_zeros());
            batches.push(&rows[start..start + size]);
            start += size;
            left -= size;
        }
    }
    batches
}

/// One INSERT of `rows` (one table, the same columns); how many it stored.
async fn insert(tx: &dyn Tx, rows: &[SnapshotRow], replace_lease: bool) -> Result<u64, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(0);
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
        let running =
            table.name == "operations" && column(row, "done") == Some(&Value::Bool(false));
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
    // The keys were checked (`prepare`): a duplicate is a row a database constraint
    // refuses all the same; any other error is the database's, passed on as it is.
    tx.execute(&sql, values)
        .await
        .map_err(|error| match (&error, rows) {
            (StoreError::Duplicate(_), [row]) => {
                invalid_row(row, "a unique key of its table is taken")
            }
            (StoreError::Duplicate(_), [first, .., last]) => {
                StoreError::Refused(Error::InvalidArgument(format!(
                    "state snapshot lines {}-{}, {} rows: a unique key of the table is taken",
                    first.line, last.line, table.name
                )))
            }
            _ => error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn batches_hold_one_table_with_the_same_columns_in_powers_of_two_within_the_limit() {
        let mut rows = vec![row(0, &[true, true]); 7];
        rows.push(row(0, &[true, false]));
        rows.push(row(1, &[true, false]));
        let sizes = |limit| -> Vec<usize> {
            batches(&rows, limit)
                .iter()
                .map(|batch| batch.len())
                .collect()
        };
        assert_eq!(sizes(100), [4, 2, 1, 1, 1]);
        assert_eq!(sizes(4), [2, 2, 2, 1, 1, 1]);
        assert_eq!(sizes(1), [1; 9]);
        assert!(batches(&[], 10).is_empty());
    }
}

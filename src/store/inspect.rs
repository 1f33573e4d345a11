//! [`Inspect`] of the [`SqlStore`]: what the store holds, summed up for the introspection
//! API and the console (folders with their counts, a page at a time; the newest running
//! and ended operations). Reads only, each one consistent read on a connection of its own
//! (off the async runtime's threads on SQLite), since a summary may count many rows.

use super::codec::{self, OPERATION_COLUMNS};
use super::sql::{limit, Tx, Value};
use super::{FolderCounts, Inspect, RecentOperations, SqlStore, StoreError};
use crate::model::resource::{OperationRecord, ResourceKind};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// Every kind's code, so that a condition on the folder can use the indexes that start
/// with (kind, folder_id).
const EVERY_KIND: &str = "kind IN (1, 2, 3, 4)";

#[async_trait]
impl Inspect for SqlStore {
    async fn folder_counts(
        &self,
        folders: Option<&[String]>,
        after: Option<&str>,
        limit_to: usize,
    ) -> Result<Vec<FolderCounts>, StoreError> {
        let folders = folders.map(<[String]>::to_vec);
        let after = after.map(str::to_string);
        self.database
            .read_consistent(Box::new(move |tx| {
                Box::pin(async move {
                    // The page's folders first, then their counts, by index.
                    let mut sql =
                        format!("SELECT DISTINCT folder_id FROM resources WHERE {EVERY_KIND}");
                    let mut parameters = vec![limit(limit_to)];
                    if let Some(folders) = folders {
                        parameters.push(Value::TextList(folders));
                        sql.push_str(" AND ");
                        sql.push_str(&(tx.dialect().in_list)("folder_id", "$2"));
                    }
                    if let Some(after) = after {
                        parameters.push(after.into());
                        sql.push_str(&format!(" AND folder_id > ${}", parameters.len()));
                    }
                    sql.push_str(" ORDER BY folder_id LIMIT $1");
                    let mut page = Vec::new();
                    for row in tx.query(&sql, parameters).await?.iter_mut() {
                        page.push(row.text(0)?);
                    }
                    counts_of(tx, page).await
                })
            }))
            .await
    }

    async fn recent_operations(
        &self,
        folders: Option<&[String]>,
        target_id: Option<&str>,
        limit_to: usize,
    ) -> Result<RecentOperations, StoreError> {
        let folders = folders.map(<[String]>::to_vec);
        let target_id = target_id.map(str::to_string);
        self.database
            .read_consistent(Box::new(move |tx| {
                Box::pin(async move {
                    let running = operations(tx, &folders, &target_id, false, limit_to).await?;
                    let ended = operations(tx, &folders, &target_id, true, limit_to).await?;
                    Ok(RecentOperations { running, ended })
                })
            }))
            .await
    }
}

/// The counts of these folders, in their order.
async fn counts_of(tx: &dyn Tx, page: Vec<String>) -> Result<Vec<FolderCounts>, StoreError> {
    let mut counts: BTreeMap<String, FolderCounts> = page
        .iter()
        .map(|folder_id| {
            let counts = FolderCounts {
                folder_id: folder_id.clone(),
                ..FolderCounts::default()
            };
            (folder_id.clone(), counts)
        })
        .collect();
    if page.is_empty() {
        return Ok(Vec::new());
    }
    let in_page = (tx.dialect().in_list)("folder_id", "$1");
    let resources = format!(
        "SELECT folder_id, kind, COUNT(*) FROM resources WHERE {EVERY_KIND} AND {in_page}
         GROUP BY folder_id, kind"
    );
    let parameters = vec![Value::TextList(page)];
    for row in tx.query(&resources, parameters.clone()).await?.iter_mut() {
        let folder_id = row.text(0)?;
        let kind = row.i32(1)?;
        let count = u64::try_from(row.i64(2)?).unwrap_or(0);
        let kind = ResourceKind::from_code(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("a resource of unknown kind {kind}")))?;
        if let Some(folder) = counts.get_mut(&folder_id) {
            folder.resources.push((kind, count));
        }
    }
    let running = format!(
        "SELECT folder_id, COUNT(*) FROM operations WHERE {} AND {in_page} GROUP BY folder_id",
        tx.dialect().running
    );
    for row in tx.query(&running, parameters).await?.iter_mut() {
        let folder_id = row.text(0)?;
        let count = u64::try_from(row.i64(1)?).unwrap_or(0);
        if let Some(folder) = counts.get_mut(&folder_id) {
            folder.running_operations = count;
        }
    }
    Ok(counts.into_values().collect())
}

/// At most `limit_to` running operations, newest first, or ended ones, the one that ended
/// last first; in `folders` and of `target_id` when given.
async fn operations(
    tx: &dyn Tx,
    folders: &Option<Vec<String>>,
    target_id: &Option<String>,
    done: bool,
    limit_to: usize,
) -> Result<Vec<OperationRecord>, StoreError> {
    // Ended ones by when they ended, which the partial index on finished operations
    // serves; one resource's by its index.
    let (state, order) = match done {
        false => (tx.dialect().running, "created_at_ms DESC, id DESC"),
        true => (tx.dialect().finished, "modified_at_ms DESC, id DESC"),
    };
    let mut sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE {state}");
    let mut parameters = vec![limit(limit_to)];
    if let Some(folders) = folders {
        parameters.push(Value::TextList(folders.clone()));
        sql.push_str(" AND ");
        sql.push_str(&(tx.dialect().in_list)(
            "folder_id",
            &format!("${}", parameters.len()),
        ));
    }
    if let Some(target_id) = target_id {
        parameters.push(target_id.clone().into());
        sql.push_str(&format!(" AND target_id = ${}", parameters.len()));
    }
    sql.push_str(&format!(" ORDER BY {order} LIMIT $1"));
    tx.query(&sql, parameters)
        .await?
        .iter_mut()
        .map(|row| codec::record_from_row(row, 0))
        .collect()
}

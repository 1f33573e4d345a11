//! [`Inspect`] of the [`SqlStore`]: what the store holds, summed up for the introspection
//! API and the console (folders with their counts, the newest running and ended
//! operations). Reads only.

use super::codec::{self, OPERATION_COLUMNS};
use super::sql::{limit, Value};
use super::{FolderCounts, Inspect, SqlStore, StoreError};
use crate::model::resource::{OperationRecord, ResourceKind};
use async_trait::async_trait;
use std::collections::BTreeMap;

#[async_trait]
impl Inspect for SqlStore {
    async fn folder_counts(
        &self,
        folders: Option<&[String]>,
    ) -> Result<Vec<FolderCounts>, StoreError> {
        let folders = folders.map(<[String]>::to_vec);
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move {
                    let (filter, parameters) = match folders {
                        Some(folders) => (
                            format!(" AND {}", (tx.dialect().in_list)("folder_id", "$1")),
                            vec![Value::TextList(folders)],
                        ),
                        None => (String::new(), Vec::new()),
                    };
                    let mut counts: BTreeMap<String, FolderCounts> = BTreeMap::new();
                    let resources = format!(
                        "SELECT folder_id, kind, COUNT(*) FROM resources WHERE 1 = 1{filter}
                         GROUP BY folder_id, kind"
                    );
                    for row in tx.query(&resources, parameters.clone()).await?.iter_mut() {
                        let folder_id = row.text(0)?;
                        let kind = row.i32(1)?;
                        let count = u64::try_from(row.i64(2)?).unwrap_or(0);
                        let kind = ResourceKind::from_code(kind).ok_or_else(|| {
                            StoreError::Corrupt(format!("a resource of unknown kind {kind}"))
                        })?;
                        let folder =
                            counts
                                .entry(folder_id.clone())
                                .or_insert_with(|| FolderCounts {
                                    folder_id,
                                    ..FolderCounts::default()
                                });
                        folder.resources.push((kind, count));
                    }
                    let running = format!(
                        "SELECT folder_id, COUNT(*) FROM operations WHERE {}{filter}
                         GROUP BY folder_id",
                        tx.dialect().running
                    );
                    for row in tx.query(&running, parameters).await?.iter_mut() {
                        let folder_id = row.text(0)?;
                        let count = u64::try_from(row.i64(1)?).unwrap_or(0);
                        let folder =
                            counts
                                .entry(folder_id.clone())
                                .or_insert_with(|| FolderCounts {
                                    folder_id,
                                    ..FolderCounts::default()
                                });
                        folder.running_operations = count;
                    }
                    Ok(counts.into_values().collect())
                })
            }))
            .await
    }

    async fn recent_operations(
        &self,
        folders: Option<&[String]>,
        done: bool,
        limit_to: usize,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        let folders = folders.map(<[String]>::to_vec);
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move {
                    // Running ones by age; ended ones by when they ended, which the
                    // partial index on finished operations serves.
                    let (state, order) = match done {
                        false => (tx.dialect().running, "created_at_ms DESC, id DESC"),
                        true => (tx.dialect().finished, "modified_at_ms DESC, id DESC"),
                    };
                    let mut sql =
                        format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE {state}");
                    let mut parameters = vec![limit(limit_to)];
                    if let Some(folders) = folders {
                        parameters.push(Value::TextList(folders));
                        sql.push_str(" AND ");
                        sql.push_str(&(tx.dialect().in_list)("folder_id", "$2"));
                    }
                    sql.push_str(&format!(" ORDER BY {order} LIMIT $1"));
                    tx.query(&sql, parameters)
                        .await?
                        .iter_mut()
                        .map(|row| codec::record_from_row(row, 0))
                        .collect()
                })
            }))
            .await
    }
}

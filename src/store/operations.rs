//! [`Operations`] of the [`SqlStore`]: reading, ending (the compare-and-set on `done`),
//! describing, listing and purging operations.

use super::codec::{self, ResourceRow, OPERATION_COLUMNS};
use super::read_cache::Record;
use super::resources::{update_resource, Indexed};
use super::sql::Job;
use super::sql::{limit, Pending, Tx, Value};
use super::{Ending, Finished, Operations, ResourceChange, SqlStore, StoreError, Transition};
use crate::model::resource::{OperationRecord, Resource};
use crate::pb::operation::Operation;
use async_trait::async_trait;
use std::collections::HashMap;

#[async_trait]
impl Operations for SqlStore {
    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        let key = id.to_string();
        let job: Job<Option<Record>> = Box::new(move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1");
                let mut rows = tx.query(&sql, vec![key.into()]).await?;
                rows.first_mut()
                    .map(|row| codec::record_from_row(row, 0).map(Record::Operation))
                    .transpose()
            })
        });
        Ok(match self.database.read_record(id, job).await? {
            Some(Record::Operation(record)) => Some(record),
            _ => None,
        })
    }

    async fn conclude(
        &self,
        endings: Vec<Ending>,
        transition: Transition,
    ) -> Vec<Result<Finished, StoreError>> {
        let count = endings.len();
        let outcome = self
            .database
            .write(Box::new(move |tx| {
                Box::pin(conclude_in(tx, endings, transition))
            }))
            .await;
        match outcome {
            Ok(outcomes) => outcomes,
            Err(error) => vec![Err(error); count],
        }
    }

    async fn describe_running(
        &self,
        operation_id: &str,
        description: &str,
    ) -> Result<(), StoreError> {
        let id = operation_id.to_string();
        let description = description.to_string();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    let dialect = tx.dialect();
                    let select = format!(
                        "SELECT body FROM operations WHERE id = $1 AND {}{}",
                        dialect.running, dialect.for_update
                    );
                    let mut rows = tx.query(&select, vec![id.clone().into()]).await?;
                    let Some(row) = rows.first_mut() else {
                        return Ok(());
                    };
                    let mut operation = codec::decode_operation(&row.bytes(0)?)?;
                    operation.description = description;
                    tx.execute(
                        "UPDATE operations SET body = $2 WHERE id = $1",
                        vec![
                            id.clone().into(),
                            prost::Message::encode_to_vec(&operation).into(),
                        ],
                    )
                    .await?;
                    tx.wrote(&id, None);
                    Ok(())
                })
            }))
            .await
    }

    async fn operations_of(
        &self,
        target_id: &str,
        folders: Option<&[String]>,
        after: Option<(i64, String)>,
        limit_to: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        let target_id = target_id.to_string();
        let folders = folders.map(<[String]>::to_vec);
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move {
                    let mut sql = "SELECT body FROM operations WHERE target_id = $1".to_string();
                    let mut parameters = vec![target_id.into(), limit(limit_to)];
                    if let Some((created, id)) = after {
                        sql.push_str(" AND (created_at_ms, id) < ($3, $4)");
                        parameters.extend([created.into(), id.into()]);
                    }
                    if let Some(folders) = folders {
                        parameters.push(Value::TextList(folders));
                        let placeholder = format!("${}", parameters.len());
                        sql.push_str(" AND ");
                        sql.push_str(&(tx.dialect().in_list)("folder_id", &placeholder));
                    }
                    sql.push_str(" ORDER BY created_at_ms DESC, id DESC LIMIT $2");
                    tx.query(&sql, parameters)
                        .await?
                        .iter_mut()
                        .map(|row| codec::decode_operation(&row.bytes(0)?))
                        .collect()
                })
            }))
            .await
    }

    async fn purge_finished(
        &self,
        finished_before_ms: i64,
        limit_to: usize,
    ) -> Result<usize, StoreError> {
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    let sql = format!(
                        "DELETE FROM operations WHERE id IN (
                             SELECT id FROM operations
                             WHERE {} AND modified_at_ms < $1 LIMIT $2)
                         RETURNING id",
                        tx.dialect().finished
                    );
                    let mut deleted = tx
                        .query(&sql, vec![finished_before_ms.into(), limit(limit_to)])
                        .await?;
                    for row in deleted.iter_mut() {
                        tx.wrote(&row.text(0)?, None);
                    }
                    Ok(deleted.len())
                })
            }))
            .await
    }
}

/// Ends a batch of operations in one transaction: locks and reads the operations, then
/// their resources (both in id order, so that concurrent transactions never wait on each
/// other in a cycle), asks `transition` what each becomes, and writes the changed
/// resources and the ended operations.
async fn conclude_in(
    tx: &dyn Tx,
    endings: Vec<Ending>,
    transition: Transition,
) -> Result<Vec<Result<Finished, StoreError>>, StoreError> {
    let dialect = tx.dialect();
    let ids: Vec<String> = endings.iter().map(|e| e.operation_id.clone()).collect();
    let select_operations = format!(
        "SELECT id, done, {OPERATION_COLUMNS} FROM operations WHERE {} ORDER BY id{}",
        (dialect.in_list)("id", "$1"),
        dialect.for_update
    );
    let mut records = HashMap::new();
    for mut row in tx
        .query(&select_operations, vec![Value::TextList(ids)])
        .await?
    {
        let id = row.text(0)?;
        let done = row.bool(1)?;
        records.insert(id, (done, codec::record_from_row(&mut row, 2)));
    }
    let targets: Vec<String> = records
        .values()
        .filter_map(|(done, record)| record.as_ref().ok().filter(|_| !done))
        .map(|record| record.target.id.clone())
        .collect();
    let select_resources = format!(
        "SELECT id, kind, os, body FROM resources WHERE {} ORDER BY id{}",
        (dialect.in_list)("id", "$1"),
        dialect.for_update
    );
    let mut found: HashMap<String, Result<Resource, StoreError>> = HashMap::new();
    for mut row in tx
        .query(&select_resources, vec![Value::TextList(targets)])
        .await?
    {
        let id = row.text(0)?;
        found.insert(id, codec::resource_from_row(&mut row, 1));
    }

    let mut outcomes = Vec::with_capacity(endings.len());
    let mut writes: Vec<Pending<'_, u64>> = Vec::new();
    for ending in endings {
        let outcome = match records.remove(&ending.operation_id) {
            None => Ok(Finished::Unknown),
            Some((_, Err(error))) => Err(error),
            Some((true, Ok(record))) => Ok(Finished::AlreadyDone(Box::new(record.operation))),
            Some((false, Ok(record))) => match found.remove(&record.target.id).transpose() {
                Err(error) => Err(error),
                Ok(resource) => {
                    let before = resource.as_ref().map(Indexed::of);
                    match transition(&record, resource, ending.outcome) {
                        Err(error) => Err(error),
                        Ok((finished, change)) => {
                            match change {
                                ResourceChange::Put(resource) => {
                                    let unchanged = before == Some(Indexed::of(&resource));
                                    writes.push(update_resource(
                                        tx,
                                        ResourceRow::from_resource(&resource),
                                        unchanged,
                                    ));
                                    let id = resource.id().to_string();
                                    tx.wrote(&id, Some(Record::Resource(*resource)));
                                }
                                ResourceChange::Remove(target) => {
                                    tx.wrote(&target.id, None);
                                    writes.push(tx.execute(
                                        "DELETE FROM resources WHERE id = $1",
                                        vec![target.id.into()],
                                    ));
                                }
                                ResourceChange::Keep => {}
                            }
                            writes.push(store_finished(tx, &finished));
                            tx.wrote(
                                &finished.id,
                                Some(Record::Operation(OperationRecord {
                                    operation: finished.clone(),
                                    ..record
                                })),
                            );
                            Ok(Finished::Applied(Box::new(finished)))
                        }
                    }
                }
            },
        };
        outcomes.push(outcome);
    }
    // Sent together: PostgreSQL pipelines them.
    futures_util::future::try_join_all(writes).await?;
    Ok(outcomes)
}

/// Sets an operation done, as `finished` (its response or error) says.
pub(super) fn store_finished<'t>(tx: &'t dyn Tx, finished: &Operation) -> Pending<'t, u64> {
    tx.execute(
        "UPDATE operations SET done = $2, modified_at_ms = $3, body = $4 WHERE id = $1",
        vec![
            finished.id.clone().into(),
            true.into(),
            codec::modified_at_ms(finished).into(),
            prost::Message::encode_to_vec(finished).into(),
        ],
    )
}

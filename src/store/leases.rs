//! [`Leases`] of the [`SqlStore`]: which replica runs which running operation. A lease is
//! timed by the database's clock; renewing, claiming and handing back lock the rows in id
//! order, as ending operations does, so that concurrent transactions never wait on each
//! other in a cycle.

use super::codec::{self, OPERATION_COLUMNS};
use super::operations::store_finished;
use super::sql::{limit, Value};
use super::{Leases, SqlStore, StoreError};
use crate::model::resource::OperationRecord;
use async_trait::async_trait;

#[async_trait]
impl Leases for SqlStore {
    async fn renew_leases(&self, operation_ids: &[String]) -> Result<Vec<String>, StoreError> {
        if operation_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = Value::TextList(operation_ids.to_vec());
        let owner = self.replica.id.clone();
        let lease_ms = self.lease_ms();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    let dialect = tx.dialect();
                    let sql = format!(
                        "UPDATE operations SET lease_until_ms = {} + $3
                         WHERE id IN (SELECT id FROM operations
                                      WHERE {} AND owner = $2 AND {} ORDER BY id{})
                         RETURNING id",
                        dialect.now_ms,
                        (dialect.in_list)("id", "$1"),
                        dialect.running,
                        dialect.for_update
                    );
                    tx.query(&sql, vec![ids, owner.into(), lease_ms.into()])
                        .await?
                        .iter_mut()
                        .map(|row| row.text(0))
                        .collect()
                })
            }))
            .await
    }

    async fn claim_orphans(&self, limit_to: usize) -> Result<Vec<OperationRecord>, StoreError> {
        let owner = self.replica.id.clone();
        let lease_ms = self.lease_ms();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    let dialect = tx.dialect();
                    let now = dialect.now_ms;
                    // One process per database (SQLite): whatever another replica id holds
                    // was left by an earlier run. Several: only leases that ran out.
                    let orphan = match dialect.exclusive {
                        true => format!("(owner <> $1 OR lease_until_ms < {now})"),
                        false => format!("lease_until_ms < {now}"),
                    };
                    let sql = format!(
                        "UPDATE operations SET owner = $1, lease_until_ms = {now} + $2
                         WHERE id IN (SELECT id FROM operations
                                      WHERE {} AND {orphan} LIMIT $3{})
                         RETURNING id, {OPERATION_COLUMNS}",
                        dialect.running, dialect.skip_locked
                    );
                    let rows = tx
                        .query(&sql, vec![owner.into(), lease_ms.into(), limit(limit_to)])
                        .await?;
                    let mut claimed = Vec::with_capacity(rows.len());
                    for mut row in rows {
                        let id = row.text(0)?;
                        match codec::record_from_row(&mut row, 1) {
                            Ok(record) => claimed.push(record),
                            // Ended in place, so that it cannot stay running forever.
                            Err(error) => {
                                tracing::error!(operation_id = %id, %error, "ending an unreadable operation");
                                store_finished(tx, &codec::unreadable(&id, &error)).await?;
                                tx.wrote(&id, None);
                            }
                        }
                    }
                    Ok(claimed)
                })
            }))
            .await
    }

    async fn release_leases(&self, operation_ids: &[String]) -> Result<(), StoreError> {
        if operation_ids.is_empty() {
            return Ok(());
        }
        let ids = Value::TextList(operation_ids.to_vec());
        let owner = self.replica.id.clone();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    let dialect = tx.dialect();
                    let sql = format!(
                        "UPDATE operations SET lease_until_ms = 0
                         WHERE id IN (SELECT id FROM operations
                                      WHERE {} AND owner = $2 AND {} ORDER BY id{})",
                        (dialect.in_list)("id", "$1"),
                        dialect.running,
                        dialect.for_update
                    );
                    tx.execute(&sql, vec![ids, owner.into()]).await?;
                    Ok(())
                })
            }))
            .await
    }
}

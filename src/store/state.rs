//! The store's state as a whole: [`Store::reset`](super::Store::reset) empties it and
//! stores the seed resources again, in one transaction, so that every reader sees the
//! state before or after, never between; an import (`snapshot::write`) replaces it the
//! same way.

use super::read_cache::Record;
use super::resources::{insert_seeds, seed_rows};
use super::sql::Tx;
use super::{SqlStore, StoreError};
use crate::model::resource::Resource;

/// What a reset removed and stored again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResetCounts {
    /// Every resource there was, the seeded ones among them.
    pub resources_removed: u64,
    /// Every operation there was, running ones included.
    pub operations_removed: u64,
    /// The seed resources stored again.
    pub resources_seeded: u64,
}

impl SqlStore {
    /// Removes every resource, operation and idempotency key, then stores `seeds`; keeps
    /// the issued IAM tokens and the store's own settings (the page-token key).
    pub(super) async fn reset_state(
        &self,
        seeds: Vec<Resource>,
    ) -> Result<ResetCounts, StoreError> {
        let rows = seed_rows(seeds);
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    lock_for_replace(tx).await?;
                    let (operations_removed, resources_removed) = delete_everything(tx).await?;
                    let resources_seeded = insert_seeds(tx, rows).await? as u64;
                    Ok(ResetCounts {
                        resources_removed,
                        operations_removed,
                        resources_seeded,
                    })
                })
            }))
            .await
    }
}

/// How long one try to lock the tables for a replacement waits for each table before it
/// gives way.
const LOCK_TRY: &str = "200ms";
/// How many tries before a replacement gives up (about a minute).
const LOCK_TRIES: u32 = 250;

/// Locks the tables a reset or an import replaces against every write until the
/// transaction ends (PostgreSQL; SQLite's one writer runs nothing meanwhile), so that no
/// write of another connection lands between the delete and the inserts, and none that
/// began earlier is half seen. Each try waits [`LOCK_TRY`], then gives way and tries
/// again: a write holding one table while it waits for another that this lock holds
/// would otherwise deadlock with it, and the writes queued behind a waiting lock finish
/// first. Fails with UNAVAILABLE if the tables stay busy.
pub(super) async fn lock_for_replace(tx: &dyn Tx) -> Result<(), StoreError> {
    let Some(lock) = tx.dialect().replace_lock else {
        return Ok(());
    };
    tx.execute_batch(&format!("SET LOCAL lock_timeout = '{LOCK_TRY}'"))
        .await?;
    for attempt in 1..=LOCK_TRIES {
        tx.execute_batch("SAVEPOINT replace_lock").await?;
        match tx.execute_batch(lock).await {
            Ok(()) => {
                tx.execute_batch(
                    "RELEASE SAVEPOINT replace_lock; SET LOCAL lock_timeout TO DEFAULT",
                )
                .await?;
                return Ok(());
            }
            Err(error) if attempt == LOCK_TRIES => {
                return Err(StoreError::Refused(crate::error::Error::Unavailable(
                    format!("the store stayed too busy to be replaced: {error}"),
                )))
            }
            Err(_) => {
                tx.execute_batch("ROLLBACK TO SAVEPOINT replace_lock")
                    .await?;
                tokio::time::sleep(std::time::Duration::from_millis(
                    5 + u64::from(rand::random::<u8>() % 20),
                ))
                .await;
            }
        }
    }
    Ok(())
}

/// Deletes every idempotency key, operation and resource; returns how many operations
/// and resources. A create commits its resource and its operation together, and the
/// deletes must see both or neither: on PostgreSQL, where a create on another connection
/// may commit between two statements, they are one statement (one snapshot); on SQLite
/// the one writer runs nothing between them, and each deleted id is told to the read
/// cache.
pub(super) async fn delete_everything(tx: &dyn Tx) -> Result<(u64, u64), StoreError> {
    if tx.dialect().writable_ctes {
        let mut rows = tx
            .query(
                "WITH keys AS (DELETE FROM idempotency_keys RETURNING 1),
                      operations AS (DELETE FROM operations RETURNING 1),
                      resources AS (DELETE FROM resources RETURNING 1)
                 SELECT (SELECT COUNT(*) FROM operations), (SELECT COUNT(*) FROM resources)",
                Vec::new(),
            )
            .await?;
        let mut counts = rows
            .pop()
            .ok_or_else(|| StoreError::Backend("a reset's delete returned no row".into()))?;
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        return Ok((count(counts.i64(0)?), count(counts.i64(1)?)));
    }
    tx.execute("DELETE FROM idempotency_keys", Vec::new())
        .await?;
    let operations = delete_all(tx, "DELETE FROM operations RETURNING id").await?;
    let resources = delete_all(tx, "DELETE FROM resources RETURNING id").await?;
    Ok((operations, resources))
}

/// Runs `delete`, a DELETE that returns the `id` of each row, and tells the read cache
/// that each is gone; returns how many.
async fn delete_all(tx: &dyn Tx, delete: &'static str) -> Result<u64, StoreError> {
    let rows = tx.query(delete, Vec::new()).await?;
    let count = rows.len() as u64;
    for mut row in rows {
        tx.wrote(&row.text(0)?, None::<Record>);
    }
    Ok(count)
}

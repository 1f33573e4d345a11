//! Unkeyed creates on PostgreSQL, many in one statement. Each create there is one
//! statement that commits alone (`insert_created`); under load, each cost the database a
//! round trip, a plan and a commit of its own. Creates that arrive while earlier batches
//! are still in the database wait here and go together, up to [`MAX_BATCH`] in one
//! statement (`insert_created_many`), at most [`STATEMENTS_AT_ONCE`] statements at a time:
//! group commit, as SQLite's writer does it.
//!
//! Each caller hears its own outcome, and only once the statement has committed: a create
//! whose name is taken, whose source is not ready or has changed since the create read it
//! (`SourceSeen`) is refused alone, as on its own. A
//! statement that fails (a database error, or a key that the database refuses) is run
//! again one create at a time, so that the error reaches only the create it belongs to.

use super::postgres::Postgres;
use super::resources::{insert_created, insert_created_many, NewRows};
use super::sql::Job;
use super::StoreError;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// The most creates in one statement.
pub const MAX_BATCH: usize = 64;
/// Statements running at once (the connection pool serves the reads too). Few, so that
/// creates arriving meanwhile fill the next statement: the database's work per statement
/// (its plan, its indexes opened, its commit) is most of a small batch's cost. With up to
/// this many callers a create never waits for another; beyond, it usually waits for one
/// statement at most (more when over 64 creates queue, or a failed batch runs its creates
/// one at a time). 4 against 16: 1.43 times the creates a second at 8x16 and at 32x1
/// (docs/benchmarks.md).
pub const STATEMENTS_AT_ONCE: usize = 4;
/// Creates waiting beyond this make their callers wait.
const QUEUE_DEPTH: usize = 4096;

/// A create waiting for its batch.
struct Queued {
    rows: NewRows,
    /// The error for a taken name (made by the caller, who has the resource).
    name_taken: StoreError,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

/// Takes creates and writes them in batches (see the module documentation).
pub struct CreateBatcher {
    queue: mpsc::Sender<Queued>,
}

impl CreateBatcher {
    /// Starts the batching task; it ends when the batcher is dropped and its queue drained.
    pub fn start(postgres: Postgres, owner: String, lease_ms: i64) -> CreateBatcher {
        let (queue, queued) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(collect(postgres, owner, lease_ms, queued));
        CreateBatcher { queue }
    }

    /// Writes one create; answers once it has committed, or why it was refused.
    pub async fn create(&self, rows: NewRows, name_taken: StoreError) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Backend("the create batcher has stopped".into());
        self.queue
            .send(Queued {
                rows,
                name_taken,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Waits for a statement's turn, then takes every create queued meanwhile (up to
/// [`MAX_BATCH`]) into it.
async fn collect(
    postgres: Postgres,
    owner: String,
    lease_ms: i64,
    mut queued: mpsc::Receiver<Queued>,
) {
    let statements = Arc::new(Semaphore::new(STATEMENTS_AT_ONCE));
    while let Some(first) = queued.recv().await {
        let Ok(turn) = Arc::clone(&statements).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        tokio::spawn(write(
            postgres.clone(),
            owner.clone(),
            lease_ms,
            batch,
            turn,
        ));
    }
}

/// Writes a batch in one statement, or (one create, or the statement failed) each create
/// in a statement of its own; answers each caller.
async fn write(
    postgres: Postgres,
    owner: String,
    lease_ms: i64,
    batch: Vec<Queued>,
    _turn: OwnedSemaphorePermit,
) {
    if batch.len() > 1 {
        let rows: Vec<NewRows> = batch.iter().map(|queued| queued.rows.clone()).collect();
        let (many_owner, count) = (owner.clone(), batch.len());
        let job: Job<Vec<Result<bool, StoreError>>> =
            Box::new(move |tx| Box::pin(insert_created_many(tx, rows, many_owner, lease_ms)));
        match postgres.write_one_statement(job).await {
            Ok(outcomes) if outcomes.len() == count => {
                crate::metrics::global()
                    .create_batch_rows
                    .observe(count as f64);
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    answer(queued.answer, queued.name_taken, outcome);
                }
                return;
            }
            Ok(_) => tracing::error!("a batch of creates answered the wrong number of rows"),
            Err(error) => {
                tracing::debug!(%error, creates = count, "a batch of creates failed; each runs alone")
            }
        }
    }
    for queued in batch {
        let Queued {
            rows,
            name_taken,
            answer: to,
        } = queued;
        let owner = owner.clone();
        let job: Job<bool> =
            Box::new(move |tx| Box::pin(insert_created(tx, rows, owner, lease_ms)));
        let outcome = postgres.write_one_statement(job).await;
        crate::metrics::global().create_batch_rows.observe(1.0);
        answer(to, name_taken, outcome);
    }
}

/// Tells a caller how its create went: written, its name taken, or its error.
fn answer(
    to: oneshot::Sender<Result<(), StoreError>>,
    name_taken: StoreError,
    outcome: Result<bool, StoreError>,
) {
    let _ = to.send(match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(name_taken),
        Err(error) => Err(error),
    });
}

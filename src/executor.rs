//! Runs the background part of every operation and cancels it.
//!
//! Two kinds of work:
//! - a copy (an image from an image, disk or snapshot; a snapshot; a disk) has nothing to
//!   move in this server: its result was fixed at create time and it only takes
//!   `--operation-delay`. One scheduler task keeps all pending copies in a timer queue
//!   and finishes each when its time comes, draining new ones in batches. No task per
//!   operation: under load that is what keeps the cost of a create close to the cost of
//!   the RPC itself (see the benchmark in the README).
//! - an import from a URI runs in a task of its own with a cancellation token (the
//!   transfer must stop at once when cancelled). Importing is not implemented yet: the
//!   task ends the operation with UNIMPLEMENTED.
//!
//! Finishing is one store call that sets the operation done together with its resource
//! (READY, or removed on error). [`Executor::cancel`] finishes a running operation with
//! CANCELLED and removes its resource the same way, then drops the pending copy or
//! stops the import. Whichever finishes first wins: the store's compare-and-set on `done`
//! sees to that, so an operation ends exactly once.

use crate::error::Error;
use crate::operations;
use crate::pb::operation::Operation;
use crate::resource::{OperationRecord, Resource, Work};
use crate::store::{Finished, ResourceChange, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};
use tracing::{debug, info, warn, Instrument};

/// How many queued commands the scheduler takes in one go.
const SCHEDULER_BATCH: usize = 1024;
/// After taking a batch the scheduler rests this long, so that under load it wakes once
/// per batch of creates rather than once per create.
const SCHEDULER_REST: Duration = Duration::from_millis(1);

enum Command {
    /// Finish this copy after the copy duration.
    Copy(Box<OperationRecord>),
    /// The operation was cancelled: drop its pending copy.
    Forget(String),
}

/// Runs and cancels operations.
pub struct Executor {
    store: Arc<dyn Store>,
    copies: mpsc::UnboundedSender<Command>,
    imports: Mutex<HashMap<String, CancellationToken>>,
}

impl Executor {
    /// Starts the copy scheduler on the current Tokio runtime. `copy_duration` is how
    /// long making a resource from another one takes.
    pub fn new(store: Arc<dyn Store>, copy_duration: Duration) -> Arc<Executor> {
        let (copies, commands) = mpsc::unbounded_channel();
        tokio::spawn(schedule_copies(Arc::clone(&store), copy_duration, commands));
        Arc::new(Executor {
            store,
            copies,
            imports: Mutex::new(HashMap::new()),
        })
    }

    fn imports(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.imports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the background work of a stored, running operation.
    pub fn start(self: &Arc<Executor>, record: OperationRecord) {
        match &record.work {
            Work::Copy => {
                if self.copies.send(Command::Copy(Box::new(record))).is_err() {
                    warn!("the copy scheduler has stopped; the operation stays running");
                }
            }
            Work::ImportUri { .. } => self.start_import(record),
        }
    }

    fn start_import(self: &Arc<Executor>, record: OperationRecord) {
        let token = CancellationToken::new();
        self.imports()
            .insert(record.operation.id.clone(), token.clone());
        let executor = Arc::clone(self);
        let span = tracing::info_span!("operation", id = %record.operation.id);
        tokio::spawn(
            async move {
                let outcome = tokio::select! {
                    _ = token.cancelled() => None,
                    outcome = import(&record) => Some(outcome),
                };
                match outcome {
                    Some(outcome) => complete(executor.store.as_ref(), &record, outcome).await,
                    None => info!("import stopped: cancelled"),
                }
                executor.imports().remove(&record.operation.id);
            }
            .instrument(span),
        );
    }

    /// Cancels an operation: a running one ends with CANCELLED and its resource is
    /// removed; a finished one is returned as it is.
    pub async fn cancel(&self, operation_id: &str) -> Result<Operation, Error> {
        let not_found = || Error::NotFound(format!("Operation {operation_id} not found"));
        let record = self
            .store
            .operation(operation_id)
            .await?
            .ok_or_else(not_found)?;
        if record.operation.done {
            return Ok(record.operation);
        }
        let cancelled = operations::failed(
            &record.operation,
            Error::Cancelled(format!("Operation {operation_id} was cancelled")).to_rpc_status(),
        );
        let operation = match self
            .store
            .finish(cancelled.clone(), ResourceChange::Remove(record.target))
            .await?
        {
            Finished::Applied => {
                info!(operation_id, "cancelled");
                cancelled
            }
            Finished::AlreadyDone(operation) => *operation,
            Finished::Unknown => return Err(not_found()),
        };
        let _ = self.copies.send(Command::Forget(operation_id.to_string()));
        if let Some(token) = self.imports().remove(operation_id) {
            token.cancel();
        }
        Ok(operation)
    }
}

/// The copy scheduler: keeps pending copies in a timer queue and finishes them when due.
/// Ends when the executor is dropped.
async fn schedule_copies(
    store: Arc<dyn Store>,
    copy_duration: Duration,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut pending: DelayQueue<OperationRecord> = DelayQueue::new();
    let mut keys: HashMap<String, delay_queue::Key> = HashMap::new();
    let mut batch = Vec::with_capacity(SCHEDULER_BATCH);
    loop {
        tokio::select! {
            received = commands.recv_many(&mut batch, SCHEDULER_BATCH) => {
                if received == 0 {
                    return;
                }
                for command in batch.drain(..) {
                    match command {
                        Command::Copy(record) if copy_duration.is_zero() => {
                            finish_copy(store.as_ref(), &record).await;
                        }
                        Command::Copy(record) => {
                            let id = record.operation.id.clone();
                            keys.insert(id, pending.insert(*record, copy_duration));
                        }
                        Command::Forget(id) => {
                            if let Some(key) = keys.remove(&id) {
                                pending.remove(&key);
                            }
                        }
                    }
                }
                tokio::time::sleep(SCHEDULER_REST).await;
            }
            Some(expired) = pending.next(), if !pending.is_empty() => {
                let record = expired.into_inner();
                keys.remove(&record.operation.id);
                finish_copy(store.as_ref(), &record).await;
            }
        }
    }
}

/// Finishes a copy: its resource, as fixed at create time, becomes READY.
async fn finish_copy(store: &dyn Store, record: &OperationRecord) {
    let id = &record.operation.id;
    match store.finish_ready(id, &record.target).await {
        // The store could not finish it as READY: end it with the error instead, so that
        // no operation stays running.
        Err(error) => complete(store, record, Err(Error::from(error))).await,
        finished => log_finished(id, finished),
    }
}

async fn import(record: &OperationRecord) -> Result<Resource, Error> {
    let uri = match &record.work {
        Work::ImportUri { uri } => uri,
        Work::Copy => return Err(Error::Internal("a copy was sent to the importer".into())),
    };
    Err(Error::Unimplemented(format!(
        "importing images from a URI is not implemented by this server yet: \
         the request was valid, but {uri} was not fetched and no image was created"
    )))
}

/// Ends the operation with the outcome of its work, together with its resource.
async fn complete(store: &dyn Store, record: &OperationRecord, outcome: Result<Resource, Error>) {
    let id = &record.operation.id;
    let (finished, change) = match outcome {
        Ok(resource) => (
            operations::succeeded(&record.operation, resource.to_any()),
            ResourceChange::Put(Box::new(resource)),
        ),
        Err(error) => {
            warn!(operation_id = %id, code = error.code(), %error, "operation failed");
            (
                operations::failed(&record.operation, error.to_rpc_status()),
                ResourceChange::Remove(record.target.clone()),
            )
        }
    };
    log_finished(id, store.finish(finished, change).await);
}

/// Logs how the store took the end of an operation.
fn log_finished(id: &str, finished: Result<Finished, StoreError>) {
    match finished {
        Ok(Finished::Applied) => debug!(operation_id = %id, "operation done"),
        Ok(Finished::AlreadyDone(_)) => debug!(operation_id = %id, "already finished by a cancel"),
        Ok(Finished::Unknown) => warn!(operation_id = %id, "operation vanished from the store"),
        Err(error) => {
            warn!(operation_id = %id, ?error, "could not record the end of the operation")
        }
    }
}

//! Runs the background part of every operation and cancels it.
//!
//! [`Executor::start`] spawns one task per operation. The task does the work (a copy
//! takes `--operation-delay`; an import from a URI is not implemented yet) and then
//! finishes the operation in the store together with its resource: READY and a response,
//! or removed and an error. [`Executor::cancel`] finishes a running operation with
//! CANCELLED and removes its resource in one store call, then stops the task; whichever
//! of the two finishes first wins, the store's compare-and-set on `done` sees to that.

use crate::error::Error;
use crate::operations;
use crate::pb::operation::Operation;
use crate::resource::{OperationRecord, Resource, Work};
use crate::store::{Finished, ResourceChange, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// Runs and cancels operations.
pub struct Executor {
    store: Arc<dyn Store>,
    copy_duration: Duration,
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl Executor {
    /// `copy_duration` is how long making a resource from another one takes.
    pub fn new(store: Arc<dyn Store>, copy_duration: Duration) -> Arc<Executor> {
        Arc::new(Executor {
            store,
            copy_duration,
            running: Mutex::new(HashMap::new()),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the background work of a stored, running operation.
    pub fn start(self: &Arc<Executor>, record: OperationRecord) {
        let token = CancellationToken::new();
        self.running()
            .insert(record.operation.id.clone(), token.clone());
        let executor = Arc::clone(self);
        let span = tracing::info_span!("operation", id = %record.operation.id);
        tokio::spawn(
            async move {
                let outcome = tokio::select! {
                    _ = token.cancelled() => None,
                    outcome = executor.perform(&record) => Some(outcome),
                };
                match outcome {
                    Some(outcome) => executor.complete(&record, outcome).await,
                    None => info!("stopped: cancelled"),
                }
                executor.running().remove(&record.operation.id);
            }
            .instrument(span),
        );
    }

    async fn perform(&self, record: &OperationRecord) -> Result<Resource, Error> {
        match &record.work {
            Work::Copy => {
                if !self.copy_duration.is_zero() {
                    tokio::time::sleep(self.copy_duration).await;
                }
                let target = &record.target;
                let resource = self
                    .store
                    .resource(target.kind, &target.id)
                    .await?
                    .ok_or_else(|| {
                        Error::Internal(format!(
                            "{} {} disappeared while it was being created",
                            target.kind.display_name(),
                            target.id
                        ))
                    })?;
                Ok(resource.into_ready())
            }
            Work::ImportUri { uri } => Err(Error::Unimplemented(format!(
                "importing images from a URI is not implemented by this server yet: \
                 the request was valid, but {uri} was not fetched and no image was created"
            ))),
        }
    }

    async fn complete(&self, record: &OperationRecord, outcome: Result<Resource, Error>) {
        let (finished, change) = match outcome {
            Ok(resource) => (
                operations::succeeded(&record.operation, resource.to_any()),
                ResourceChange::Put(Box::new(resource)),
            ),
            Err(error) => {
                warn!(code = error.code(), %error, "failed");
                (
                    operations::failed(&record.operation, error.to_rpc_status()),
                    ResourceChange::Remove(record.target.clone()),
                )
            }
        };
        match self.store.finish(finished, change).await {
            Ok(Finished::Applied(_)) => info!("done"),
            Ok(Finished::AlreadyDone(_)) => debug!("already finished by a cancel"),
            Ok(Finished::Unknown) => warn!("operation vanished from the store"),
            Err(error) => warn!(?error, "could not record the end of the operation"),
        }
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
            .finish(cancelled, ResourceChange::Remove(record.target))
            .await?
        {
            Finished::Applied(operation) => {
                info!(operation_id, "cancelled");
                operation
            }
            Finished::AlreadyDone(operation) => operation,
            Finished::Unknown => return Err(not_found()),
        };
        if let Some(token) = self.running().remove(operation_id) {
            token.cancel();
        }
        Ok(operation)
    }
}

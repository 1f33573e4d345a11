//! The rules of imageplane's own admin API (`imageplane.v1.AdminService`), which lets a
//! test suite control the emulator: who may use it, what a reset does, the delays of
//! background work, and ending an operation at will.
//!
//! The API is off unless the server runs with `--enable-admin`; then, with authentication
//! on, only a token marked `@admin` in the token file may use it (`Caller::admin`).

use super::call::{CallContext, Caller};
use super::seed::Seeds;
use crate::error::{excerpt, Error};
use crate::model::resource::Work;
use crate::pb::google::rpc::Status;
use crate::pb::operation::Operation;
use crate::store::{Outcome, ResetCounts, Store};
use crate::work::executor::Executor;
use crate::work::timing::Timing;
use std::sync::Arc;
use tracing::info;

/// See the module documentation.
pub struct Admin {
    enabled: bool,
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    /// What a reset stores again: the seeds as read at start.
    seeds: Arc<Seeds>,
}

impl Admin {
    /// The admin API, on if `enabled`.
    pub fn new(
        enabled: bool,
        store: Arc<dyn Store>,
        executor: Arc<Executor>,
        seeds: Arc<Seeds>,
    ) -> Admin {
        Admin {
            enabled,
            store,
            executor,
            seeds,
        }
    }

    /// PERMISSION_DENIED unless the API is on and the caller may use it.
    pub fn check(&self, caller: &Caller) -> Result<(), Error> {
        if !self.enabled {
            return Err(Error::PermissionDenied(
                "the admin API is off: start imageplane with --enable-admin".into(),
            ));
        }
        if !caller.admin {
            return Err(Error::PermissionDenied(format!(
                "subject {} may not use the admin API: only a token marked @admin in the \
                 token file may",
                excerpt(&caller.subject)
            )));
        }
        Ok(())
    }

    /// Stops the operations running here, then removes every resource, operation and
    /// idempotency key and stores the seeds again, in one transaction. Operations running
    /// on other replicas stop at their next lease renewal.
    pub async fn reset(&self, call: &CallContext) -> Result<ResetCounts, Error> {
        self.check(&call.caller)?;
        self.executor.stop_all();
        let counts = self.store.reset(self.seeds.resources().to_vec()).await?;
        info!(
            resources_removed = counts.resources_removed,
            operations_removed = counts.operations_removed,
            resources_seeded = counts.resources_seeded,
            "reset"
        );
        Ok(counts)
    }

    /// The delays of background work in force.
    pub fn timing(&self, call: &CallContext) -> Result<Timing, Error> {
        self.check(&call.caller)?;
        Ok(self.executor.timing())
    }

    /// Sets the delays from their text form (`Timing::parse`): work started from now on
    /// takes them. INVALID_ARGUMENT, naming the item, for a bad one.
    pub fn set_timing(&self, call: &CallContext, text: &str) -> Result<Timing, Error> {
        self.check(&call.caller)?;
        let timing = Timing::parse(text).map_err(Error::InvalidArgument)?;
        self.executor.set_timing(timing.clone());
        Ok(timing)
    }

    /// Ends a running operation now: done as its work would end, or failed with `error`
    /// (see `AdminService.FinishOperation`, whose proto bounds its code to 1-16).
    pub async fn finish(
        &self,
        call: &CallContext,
        operation_id: &str,
        error: Option<Status>,
    ) -> Result<Operation, Error> {
        self.check(&call.caller)?;
        let not_found =
            || Error::NotFound(format!("Operation {} not found", excerpt(operation_id)));
        let record = self
            .store
            .operation(operation_id)
            .await?
            .ok_or_else(not_found)?;
        if record.operation.done {
            return Err(Error::FailedPrecondition(format!(
                "operation {operation_id} has ended already"
            )));
        }
        let outcome = match (error, &record.work) {
            (Some(error), _) => Outcome::Failed(error),
            (None, Work::Copy { .. } | Work::Delete) => Outcome::Done,
            (None, Work::ImportUri { .. }) => {
                return Err(Error::FailedPrecondition(format!(
                    "operation {operation_id} is an import: it ends done when its transfer \
                     does; finish it with an error, or cancel it"
                )))
            }
            (None, Work::Change(_)) => {
                return Err(Error::FailedPrecondition(format!(
                    "operation {operation_id} is a change, done when stored"
                )))
            }
        };
        self.executor.end_now(operation_id, outcome).await
    }
}

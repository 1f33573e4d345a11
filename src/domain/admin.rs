//! The rules of imageplane's own admin API (`imageplane.v1.AdminService`), which lets a
//! test suite control the emulator: who may use it, and what a reset does.
//!
//! The API is off unless the server runs with `--enable-admin`; then, with authentication
//! on, only a token marked `@admin` in the token file may use it (`Caller::admin`).

use super::call::{CallContext, Caller};
use super::seed::Seeds;
use crate::error::{excerpt, Error};
use crate::store::{ResetCounts, Store};
use crate::work::executor::Executor;
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
}

//! The rules of imageplane's own admin API (`imageplane.v1.AdminService`), which lets a
//! test suite control the emulator: who may use it, what a reset does, the delays of
//! background work, ending an operation at will, and which faults may be injected.
//!
//! The API is off unless the server runs with `--enable-admin`; then, with authentication
//! on, only a token marked `@admin` in the token file may use it (`Caller::admin`).

use super::call::{CallContext, Caller};
use super::seed::Seeds;
use crate::error::{excerpt, Code, Error};
use crate::faults::{Faults, Firing, Rule, Target};
use crate::model::resource::Work;
use crate::model::resource::WORK_KINDS;
use crate::pb::google::rpc::Status;
use crate::pb::operation::Operation;
use crate::store::snapshot::{self, ImportCounts};
use crate::store::{Outcome, ResetCounts, Store};
use crate::work::executor::Executor;
use crate::work::timing::{Timing, CHANGES};
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

/// See the module documentation.
pub struct Admin {
    enabled: bool,
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    /// What a reset stores again: the seeds as read at start.
    seeds: Arc<Seeds>,
    faults: Arc<Faults>,
}

/// The longest delay a fault rule may add to a call.
pub const MAX_FAULT_DELAY: Duration = Duration::from_secs(3600);

/// The service whose methods no fault rule may target.
const ADMIN_SERVICE: &str = "imageplane.v1.AdminService";

/// A fault rule as asked for, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct FaultRequest {
    pub method: Option<String>,
    pub operation: Option<String>,
    pub code: String,
    pub message: String,
    pub times: i64,
    pub probability: f64,
    pub delay: String,
}

impl Admin {
    /// The admin API, on if `enabled`.
    pub fn new(
        enabled: bool,
        store: Arc<dyn Store>,
        executor: Arc<Executor>,
        seeds: Arc<Seeds>,
        faults: Arc<Faults>,
    ) -> Admin {
        Admin {
            enabled,
            store,
            executor,
            seeds,
            faults,
        }
    }

    /// Whether the API is on (`--enable-admin`).
    pub fn enabled(&self) -> bool {
        self.enabled
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
        let counts = self
            .replacing(self.store.reset(self.seeds.resources().to_vec()))
            .await?;
        info!(
            resources_removed = counts.resources_removed,
            operations_removed = counts.operations_removed,
            resources_seeded = counts.resources_seeded,
            "reset"
        );
        Ok(counts)
    }

    /// The whole state as a snapshot file, read in one consistent read.
    pub async fn export_state(&self, call: &CallContext) -> Result<Vec<u8>, Error> {
        self.check(&call.caller)?;
        let file = self.store.export_state().await?;
        info!(bytes = file.len(), "state exported");
        Ok(file)
    }

    /// Replaces the state with a snapshot file: checked whole first (a bad one changes
    /// nothing, and stops nothing), then the operations running here are stopped, the
    /// state replaced in one transaction, and the snapshot's running operations taken up
    /// here. If the store fails the replacement, the stopped operations are taken up again.
    pub async fn import_state(
        &self,
        call: &CallContext,
        file: Vec<u8>,
    ) -> Result<ImportCounts, Error> {
        self.check(&call.caller)?;
        let prepared = snapshot::read(file).await?;
        let counts = self.replacing(self.store.import_state(prepared)).await?;
        self.executor.resume_orphans().await;
        info!(
            resources = counts.resources,
            operations = counts.operations,
            schema = counts.schema,
            "state imported"
        );
        Ok(counts)
    }

    /// Runs `replace`, a store call that replaces the state (a reset, an import), with
    /// the operations running here stopped first: the state they ran for is going. If the
    /// store fails it, they are handed back and run again.
    async fn replacing<T>(
        &self,
        replace: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
    ) -> Result<T, Error> {
        let stopped = self.executor.stop_all();
        match replace.await {
            Ok(replaced) => Ok(replaced),
            Err(error) => {
                self.executor.hand_back(&stopped).await;
                Err(error.into())
            }
        }
    }

    /// The delays of background work in force.
    pub fn timing(&self, call: &CallContext) -> Result<Timing, Error> {
        self.check(&call.caller)?;
        Ok(self.executor.timing())
    }

    /// Sets the delays from their parts (`Timing::from_parts`): work started from now on
    /// takes them. INVALID_ARGUMENT, naming the part, for a bad one.
    pub fn set_timing(
        &self,
        call: &CallContext,
        default: Option<&str>,
        kinds: &[(&str, &str)],
    ) -> Result<Timing, Error> {
        self.check(&call.caller)?;
        let timing = Timing::from_parts(default, kinds).map_err(Error::InvalidArgument)?;
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
            (Some(_), Work::Change(_)) => {
                return Err(Error::FailedPrecondition(format!(
                    "operation {operation_id} is a change, stored when it was asked: it ends \
                     done; finish it without an error"
                )))
            }
            (Some(error), _) => Outcome::Failed(error),
            (None, Work::Copy { .. } | Work::Delete) => Outcome::Done,
            (None, Work::ImportUri { .. }) => {
                return Err(Error::FailedPrecondition(format!(
                    "operation {operation_id} is an import: it ends done when its transfer \
                     does; finish it with an error, or cancel it"
                )))
            }
            (None, Work::Change(_)) => Outcome::Done,
        };
        // Another ending (its work's, a cancel, another replica's finish) may have won
        // since the read above: then this finish did nothing.
        match self.executor.end_now(operation_id, outcome).await? {
            (operation, true) => Ok(operation),
            (_, false) => Err(Error::FailedPrecondition(format!(
                "operation {operation_id} has ended already"
            ))),
        }
    }

    /// Checks a fault rule and adds it; INVALID_ARGUMENT names the field and its rule.
    pub fn add_fault(&self, call: &CallContext, request: FaultRequest) -> Result<Rule, Error> {
        self.check(&call.caller)?;
        let rule = fault_rule(request)?;
        if !self.faults.add(rule.clone()) {
            return Err(Error::ResourceExhausted(format!(
                "{} fault rules are set already, the most there may be: remove some first",
                crate::faults::MAX_RULES
            )));
        }
        tracing::info!(fault_id = %rule.id, target = ?rule.target, "fault rule added");
        Ok(rule)
    }

    /// The fault rules in force.
    pub fn faults(&self, call: &CallContext) -> Result<Vec<Rule>, Error> {
        self.check(&call.caller)?;
        Ok(self.faults.list())
    }

    /// Removes a fault rule; NOT_FOUND if there is none of that id.
    pub fn delete_fault(&self, call: &CallContext, id: &str) -> Result<(), Error> {
        self.check(&call.caller)?;
        match self.faults.remove(id) {
            true => Ok(()),
            false => Err(Error::NotFound(format!("Fault {} not found", excerpt(id)))),
        }
    }

    /// Removes every fault rule; how many there were.
    pub fn clear_faults(&self, call: &CallContext) -> Result<usize, Error> {
        self.check(&call.caller)?;
        Ok(self.faults.clear())
    }
}

/// A fault rule from its request, every field checked.
fn fault_rule(request: FaultRequest) -> Result<Rule, Error> {
    let code = match request.code.as_str() {
        "" => None,
        name => match Code::from_name(name) {
            Some(Code::Ok) | None => {
                return Err(Error::invalid_field(
                    "code",
                    format!(
                        "{} is not a failure code: one of CANCELLED, UNKNOWN, \
                         INVALID_ARGUMENT, ..., UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED \
                         (google.rpc.Code names)",
                        excerpt(name)
                    ),
                ))
            }
            code => code,
        },
    };
    let delay = match request.delay.as_str() {
        "" => Duration::ZERO,
        text => {
            let delay = humantime::parse_duration(text).map_err(|error| {
                Error::invalid_field(
                    "delay",
                    format!("{} is not a duration: {error}", excerpt(text)),
                )
            })?;
            if delay > MAX_FAULT_DELAY {
                return Err(Error::invalid_field("delay", "must be at most 1h"));
            }
            delay
        }
    };
    let target = match (request.method, request.operation) {
        (Some(method), None) => {
            let path = format!("/{}", method.trim_start_matches('/'));
            let (service, name) = path[1..].split_once('/').unwrap_or((&path[1..], ""));
            let known = crate::pb::descriptor_pool()
                .get_service_by_name(service)
                .is_some_and(|service| service.methods().any(|method| method.name() == name));
            if !known {
                return Err(Error::invalid_field(
                    "method",
                    format!(
                        "{} is not a method of the API (PACKAGE.SERVICE/METHOD, e.g. \
                         yandex.cloud.compute.v1.ImageService/Get)",
                        excerpt(&method)
                    ),
                ));
            }
            if service == ADMIN_SERVICE {
                return Err(Error::invalid_field(
                    "method",
                    "the admin API's own methods take no faults",
                ));
            }
            if code.is_none() && delay.is_zero() {
                return Err(Error::invalid_field(
                    "code",
                    "a method's fault needs a code, a delay, or both",
                ));
            }
            Target::Method(path)
        }
        (None, Some(kind)) => {
            if !WORK_KINDS.contains(&kind.as_str()) {
                return Err(Error::invalid_field(
                    "operation",
                    format!(
                        "{} is not a kind of work: one of {}",
                        excerpt(&kind),
                        WORK_KINDS.join(", ")
                    ),
                ));
            }
            if CHANGES.contains(&kind.as_str()) {
                return Err(Error::invalid_field(
                    "operation",
                    format!(
                        "{kind} is a change, stored when it is asked: its operation cannot \
                         fail afterwards; give its method a fault instead (e.g. \
                         yandex.cloud.compute.v1.ImageService/Update)"
                    ),
                ));
            }
            if code.is_none() {
                return Err(Error::invalid_field(
                    "code",
                    "an operation's fault needs the code it ends with",
                ));
            }
            if !delay.is_zero() {
                return Err(Error::invalid_field(
                    "delay",
                    "an operation's fault takes no delay: set the kind's delay instead \
                     (SetOperationTiming)",
                ));
            }
            Target::Operation(kind)
        }
        _ => {
            return Err(Error::InvalidArgument(
                "a fault names either a method or an operation".into(),
            ))
        }
    };
    let firing = if request.probability != 0.0 {
        if request.times != 0 {
            return Err(Error::InvalidArgument(
                "a fault fires either `times` times or with a `probability`, not both".into(),
            ));
        }
        if !(request.probability > 0.0 && request.probability <= 1.0) {
            return Err(Error::invalid_field(
                "probability",
                "must be above 0 and at most 1",
            ));
        }
        Firing::Probability(request.probability)
    } else {
        match u64::try_from(request.times) {
            Ok(0) => Firing::Always,
            Ok(times) => Firing::Times(times),
            Err(_) => {
                return Err(Error::invalid_field(
                    "times",
                    "must be 0 (every time) or more",
                ))
            }
        }
    };
    Ok(Rule {
        id: crate::ids::new_id("flt"),
        target,
        code,
        message: request.message,
        delay,
        firing,
    })
}

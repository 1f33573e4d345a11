//! Runs the background part of every operation, cancels it, and keeps this replica's
//! share of the work in the store.
//!
//! Two kinds of background work (a change without a delay is done when stored and never
//! runs here):
//! - timed work: a copy (an image from an image, disk or snapshot; a snapshot; a disk), a
//!   delete or a change with a delay has nothing to move in this server: its result is
//!   fixed when it is asked for and it only takes its kind's delay ([`Timing`], `--operation-delay`) from the
//!   operation's creation, or is held until [`Executor::end_now`] ends it (`manual`). One scheduler
//!   task keeps all pending timed work in a timer queue and hands the due ones to the
//!   store in batches. No task per operation: under load that is what keeps the cost of a
//!   create close to the cost of the RPC itself (see the benchmark in the README).
//! - an import from a URI runs in a task of its own with a cancellation token (the
//!   transfer must stop at once when cancelled: the token drops the import's future, and
//!   with it the connection). [`crate::work::import`] does the transfer and measures the image;
//!   the operation ends when the transfer is done, and not before its kind's delay.
//!
//! Ending is one store call, `Store::conclude`, that sets the operation done together
//! with its resource as the domain's transitions decide (`ExecutorSettings::transition`: READY,
//! removed, or back to READY after a failed delete). [`Executor::cancel`] ends a running
//! operation with CANCELLED the same way, then stops the local work. Whichever ends it
//! first wins: the store's compare-and-set on `done` sees to that, so an operation ends
//! exactly once.
//!
//! The keeper task ties the local work to the store's leases. Every third of the lease
//! it renews the leases of the operations running here (stopping any that were finished
//! or taken over elsewhere, e.g. cancelled through another replica), claims orphans
//! (running operations whose replica died or handed them back, or whose end could not be
//! recorded; at start, what the last run left) and starts them here. A purger task
//! deletes finished operations older than the retention. [`Executor::shutdown`] stops
//! both, then the local work, and hands the work back.
//!
//! A database failure while finishing leaves the operation running: it drops out of
//! `running`, its lease is not renewed, and it is claimed and tried again when the lease
//! runs out. Only a record that cannot be used ([`StoreError::Corrupt`]) ends it with an
//! error.

use crate::error::Error;
use crate::faults::{Faults, Fired};
use crate::model::resource::{work_kind, ChangeKind, OperationRecord, ResourceKind, Work};
use crate::pb::operation::Operation;
use crate::store::codec::unix_ms;
use crate::store::{Ending, Finished, Outcome, Store, StoreError, Transition};
use crate::work::import::{ImportSettings, Importer, Progress, ProgressReading};
use crate::work::timing::{Delay, Timing};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};
use tracing::{debug, info, warn, Instrument};

/// How many orphans one claim takes.
const CLAIM_BATCH: usize = 256;
/// How many finished operations one purge statement deletes.
const PURGE_BATCH: usize = 10_000;

/// How many queued commands the scheduler takes in one go.
const SCHEDULER_BATCH: usize = 1024;
/// Batches of due copies being finished at once (store transactions in flight).
const FINISHES_IN_FLIGHT: usize = 2;
/// After taking a batch the scheduler rests this long, so that under load it wakes once
/// per batch of creates rather than once per create.
const SCHEDULER_REST: Duration = Duration::from_millis(1);

enum Command {
    /// End this timed work when its time comes.
    Due(Box<OperationRecord>, tokio::time::Instant),
    /// The operation was cancelled: drop its pending work.
    Forget(String),
}

/// Work running in this replica.
#[derive(Clone)]
enum Running {
    /// A copy or a delete, pending in the scheduler.
    Timed,
    /// An import task: its token, a number that tells this task from a later one for the
    /// same operation, and how far its transfer has come.
    Import(CancellationToken, u64, Arc<Progress>),
    /// A copy or a delete of a kind whose delay is `manual`: held until [`Executor::end_now`].
    Held,
}

/// The operations running in this replica, by id.
type RunningSet = Arc<Mutex<HashMap<String, Running>>>;

fn lock(running: &RunningSet) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
    running
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How the executor runs work and keeps it.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// How long each kind of work takes, from the operation's creation, at start (the admin
    /// API may change it: [`Executor::set_timing`]).
    pub timing: Timing,
    /// How long this replica's claim on a running operation lasts without renewal.
    pub lease: Duration,
    /// How long finished operations are kept.
    pub retention: Duration,
    /// How imports from URIs run.
    pub import: ImportSettings,
    /// How an operation ends: the domain's rule (`domain::transitions::conclude`).
    pub transition: Transition,
    /// How long idempotency keys are kept (`domain::idempotency::KEY_RETENTION`).
    pub key_retention: Duration,
    /// The fault rules of the admin API: an operation of a kind a rule targets ends failed.
    pub faults: Arc<Faults>,
}

/// Runs and cancels operations.
pub struct Executor {
    store: Arc<dyn Store>,
    settings: ExecutorSettings,
    importer: Importer,
    copies: mpsc::UnboundedSender<Command>,
    running: RunningSet,
    /// The delays in force: they apply to work started after they are set.
    timing: Mutex<Timing>,
    stop_keeper: CancellationToken,
    /// The keeper and the purger, awaited on shutdown.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Executor {
    /// Starts the copy scheduler, the keeper and the purger on the current Tokio runtime.
    /// The keeper's first round runs at once, so orphans are claimed as serving starts.
    pub fn new(store: Arc<dyn Store>, settings: ExecutorSettings) -> Result<Arc<Executor>, Error> {
        let importer = Importer::new(settings.import.clone())?;
        let (copies, commands) = mpsc::unbounded_channel();
        let running = RunningSet::default();
        let sampled = Arc::downgrade(&running);
        crate::metrics::global().sample_with(move |metrics| match sampled.upgrade() {
            Some(running) => {
                metrics.running_operations.set(lock(&running).len() as i64);
                true
            }
            None => false,
        });
        tokio::spawn(schedule_copies(
            Arc::clone(&store),
            settings.transition,
            Arc::clone(&settings.faults),
            Arc::clone(&running),
            commands,
        ));
        let executor = Arc::new(Executor {
            store,
            timing: Mutex::new(settings.timing.clone()),
            settings,
            importer,
            copies,
            running,
            stop_keeper: CancellationToken::new(),
            background: Mutex::new(Vec::new()),
        });
        let keeper = tokio::spawn(keep(Arc::clone(&executor)));
        let purger = tokio::spawn(purge_periodically(Arc::clone(&executor)));
        executor
            .background
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend([keeper, purger]);
        Ok(executor)
    }

    /// The delays in force.
    pub fn timing(&self) -> Timing {
        self.timing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Sets the delays of work started from now on (work already running keeps its own).
    pub fn set_timing(&self, timing: Timing) {
        info!(timing = %timing, "operation delays set");
        *self
            .timing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = timing;
    }

    /// The delay of a record's work now; `None` for a change.
    fn delay_of(&self, record: &OperationRecord) -> Option<Delay> {
        self.timing().of_work(&record.work, record.target.kind)
    }

    /// Whether a copy takes no time (its kind's delay is 0s, the default): then it has no
    /// background part, and the domain stores it finished (`Catalog::launch`).
    /// A copy that a fault rule targets is not: the executor ends it, asking the rules.
    pub fn is_instant(&self, record: &OperationRecord) -> bool {
        matches!(record.work, Work::Copy { .. })
            && self.delay_of(record) == Some(Delay::After(Duration::ZERO))
            && !work_kind(&record.work, record.target.kind)
                .is_some_and(|kind| self.settings.faults.targets_operation(kind))
    }

    /// Whether a change of a resource of `kind` is done when stored (its kind's delay is
    /// 0s, the default, or it has none); otherwise the domain stores its operation running
    /// and starts it here, to end done after its delay.
    pub fn is_instant_change(&self, change: ChangeKind, kind: ResourceKind) -> bool {
        matches!(
            self.timing().of_work(&Work::Change(change), kind),
            None | Some(Delay::After(Duration::ZERO))
        )
    }

    /// Refuses, at create time, a URI whose host imports may not fetch.
    pub fn check_import_host(&self, uri: &str) -> Result<(), Error> {
        self.settings.import.check_host(uri)
    }

    /// Starts the background work of a stored, running operation held by this replica.
    /// An operation already running here is left as it is (a claim can return one that
    /// this replica still runs, when a renewal came late).
    pub fn start(self: &Arc<Executor>, record: OperationRecord) {
        let id = record.operation.id.clone();
        let delay = self.delay_of(&record);
        let entry = match &record.work {
            _ if delay.is_none() => {
                warn!(operation_id = %id, "a running operation of work that takes no delay (access bindings): nothing to run");
                return;
            }
            Work::Copy { .. } | Work::Delete | Work::Change(_) if delay == Some(Delay::Manual) => {
                Running::Held
            }
            Work::Copy { .. } | Work::Delete | Work::Change(_) => Running::Timed,
            Work::ImportUri { .. } => Running::Import(
                CancellationToken::new(),
                rand::random(),
                Arc::new(Progress::default()),
            ),
        };
        {
            // One lock for the check and the insert: two starts of one id cannot both pass.
            let mut running = lock(&self.running);
            if running.contains_key(&id) {
                debug!(operation_id = %id, "already running here");
                return;
            }
            running.insert(id.clone(), entry.clone());
        }
        match entry {
            Running::Held => info!(operation_id = %id, "held until finished through the admin API"),
            Running::Timed => {
                let due = due_at(&record, after(delay));
                if self
                    .copies
                    .send(Command::Due(Box::new(record), due))
                    .is_err()
                {
                    // No longer renewed: it is claimed again when its lease runs out.
                    lock(&self.running).remove(&id);
                    warn!(operation_id = %id, "the scheduler has stopped");
                }
            }
            Running::Import(token, task, progress) => {
                self.start_import(record, token, task, progress, after(delay))
            }
        }
    }

    /// Runs an import, already entered in `running` with this token and task number.
    fn start_import(
        self: &Arc<Executor>,
        record: OperationRecord,
        token: CancellationToken,
        task: u64,
        progress: Arc<Progress>,
        delay: Duration,
    ) {
        let executor = Arc::clone(self);
        let span = tracing::info_span!("operation", id = %record.operation.id);
        tokio::spawn(
            async move {
                let work = async {
                    let outcome = executor
                        .importer
                        .import(&record, executor.store.as_ref(), &progress)
                        .await;
                    // Not before its kind's delay.
                    tokio::time::sleep_until(due_at(&record, delay)).await;
                    outcome
                };
                let outcome = tokio::select! {
                    _ = token.cancelled() => None,
                    outcome = work => Some(outcome),
                };
                match outcome {
                    Some(Ok(measured)) => {
                        let fired = fault_for(&executor.settings.faults, &record);
                        let outcome = with_fault(&fired, Outcome::Imported(Box::new(measured)));
                        let applied = end(executor.store.as_ref(), executor.settings.transition, &record, outcome).await;
                        if let Some(fired) = &fired {
                            executor.settings.faults.settle(fired, applied);
                        }
                    }
                    Some(Err(error)) => fail(executor.store.as_ref(), executor.settings.transition, &record, error).await,
                    None => info!("import stopped"),
                }
                // Only this task's entry: the operation may have been claimed again and
                // started anew meanwhile.
                let mut running = lock(&executor.running);
                if matches!(running.get(&record.operation.id), Some(Running::Import(_, t, _)) if *t == task) {
                    running.remove(&record.operation.id);
                }
            }
            .instrument(span),
        );
    }

    /// How far the import of an operation has come, if it runs here and its transfer
    /// has started.
    pub fn import_progress(&self, operation_id: &str) -> Option<ProgressReading> {
        match lock(&self.running).get(operation_id) {
            Some(Running::Import(_, _, progress)) => progress.read(),
            _ => None,
        }
    }

    /// Stops the local work of an operation, if it runs here.
    fn stop_local(&self, operation_id: &str) {
        let removed = lock(&self.running).remove(operation_id);
        match removed {
            Some(Running::Timed) => {
                let _ = self.copies.send(Command::Forget(operation_id.to_string()));
            }
            Some(Running::Import(token, _, _)) => token.cancel(),
            Some(Running::Held) | None => {}
        }
    }

    /// Stops the local work of every operation running here, without handing it back: a
    /// reset or an import is about to remove them. Answers their ids.
    pub fn stop_all(&self) -> Vec<String> {
        let ids: Vec<String> = lock(&self.running).keys().cloned().collect();
        for id in &ids {
            self.stop_local(id);
        }
        ids
    }

    /// Hands operations stopped here back to the store and claims what is waiting, so
    /// that they run again (an import that failed after `stop_all`).
    pub async fn hand_back(self: &Arc<Executor>, operation_ids: &[String]) {
        if let Err(error) = self.store.release_leases(operation_ids).await {
            warn!(
                ?error,
                "could not hand operations back; they resume when their leases run out"
            );
        }
        self.keep_leases().await;
    }

    /// Cancels an operation, as the caller read it: a running one ends with CANCELLED and
    /// its work is undone (a create's resource removed, a deleting resource READY again); a
    /// finished one is returned as it is. The operation may run in another replica: the
    /// store tells it at its next lease renewal; one that ended meanwhile is returned as it
    /// ended (the store's compare-and-set on `done` decides).
    pub async fn cancel(&self, operation: Operation) -> Result<Operation, Error> {
        if operation.done {
            return Ok(operation);
        }
        let cancelled = Error::Cancelled(format!("Operation {} was cancelled", operation.id));
        let (operation, _applied) = self
            .end_now(&operation.id, Outcome::Failed(cancelled.to_rpc_status()))
            .await?;
        Ok(operation)
    }

    /// Ends a running operation now with `outcome`, wherever it runs, and stops its work
    /// here: a cancel, or the admin API's finish. Whichever ending reaches the store first
    /// wins (its compare-and-set on `done`); returns the operation as it ended, perhaps
    /// by another ending, and whether it was this one. NOT_FOUND if the store has no such
    /// operation.
    pub async fn end_now(
        &self,
        operation_id: &str,
        outcome: Outcome,
    ) -> Result<(Operation, bool), Error> {
        // Read first for the metrics (a cancel or a finish is rare).
        let record = self.store.operation(operation_id).await?;
        let ending = Ending {
            operation_id: operation_id.to_string(),
            outcome,
        };
        let ended = self
            .store
            .conclude(vec![ending], self.settings.transition)
            .await
            .pop()
            .unwrap_or(Ok(Finished::Unknown))?;
        let (operation, applied) = match ended {
            Finished::Applied(operation) => {
                if let Some(record) = &record {
                    count_ended(record, &Ok(Finished::Applied(operation.clone())));
                }
                let failed = matches!(ending_kind(&operation), Some(code) if code != 0);
                info!(operation_id, failed, "ended before its work did, as asked");
                (*operation, true)
            }
            Finished::AlreadyDone(operation) => (*operation, false),
            Finished::Unknown => {
                return Err(Error::NotFound(format!(
                    "Operation {} not found",
                    crate::error::excerpt(operation_id)
                )))
            }
        };
        self.stop_local(operation_id);
        Ok((operation, applied))
    }

    /// Stops the keeper and the local work, and hands the running operations back to
    /// the store so that another replica (or the next start) takes them over at once.
    pub async fn shutdown(&self) {
        self.stop_keeper.cancel();
        // A renewal or claim under way finishes first, so that nothing it does lands
        // after the hand-back below.
        let background: Vec<_> = std::mem::take(
            &mut *self
                .background
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in background {
            let _ = task.await;
        }
        let ids: Vec<String> = lock(&self.running).keys().cloned().collect();
        for id in &ids {
            self.stop_local(id);
        }
        match self.store.release_leases(&ids).await {
            Ok(()) if ids.is_empty() => {}
            Ok(()) => info!(count = ids.len(), "handed running operations back"),
            Err(error) => warn!(
                ?error,
                "could not hand running operations back; they resume when their leases run out"
            ),
        }
    }

    /// Claims the orphans waiting now (an imported snapshot's running operations) instead
    /// of at the keeper's next round.
    pub async fn resume_orphans(self: &Arc<Executor>) {
        self.keep_leases().await;
    }

    /// One round of the keeper: renew, stop what is no longer ours, claim orphans.
    async fn keep_leases(self: &Arc<Executor>) {
        let ids: Vec<String> = lock(&self.running).keys().cloned().collect();
        match self.store.renew_leases(&ids).await {
            Ok(held) => {
                let held: HashSet<String> = held.into_iter().collect();
                for id in ids.iter().filter(|id| !held.contains(*id)) {
                    if lock(&self.running).contains_key(id) {
                        info!(operation_id = %id, "finished or taken over elsewhere: stopping it here");
                        self.stop_local(id);
                    }
                }
            }
            Err(error) => warn!(?error, "could not renew leases"),
        }
        while !self.stop_keeper.is_cancelled() {
            match self.store.claim_orphans(CLAIM_BATCH).await {
                Ok(claimed) => {
                    let count = claimed.len();
                    for record in claimed {
                        info!(operation_id = %record.operation.id, "resuming operation");
                        self.start(record);
                    }
                    if count < CLAIM_BATCH {
                        break;
                    }
                }
                Err(error) => {
                    warn!(?error, "could not claim orphaned operations");
                    break;
                }
            }
        }
    }

    /// Deletes finished operations older than the retention, idempotency keys older than
    /// theirs, and expired IAM tokens.
    async fn purge(&self) {
        let now = SystemTime::now();
        let before = |retention| now.checked_sub(retention).map_or(0, unix_ms);
        // With deterministic ids, operations are stamped by the seeded clock, not the
        // system's: none is purged.
        if !crate::ids::is_deterministic() {
            let operations_before = before(self.settings.retention);
            self.purge_in_batches("finished operations past their retention", || {
                self.store.purge_finished(operations_before, PURGE_BATCH)
            })
            .await;
        }
        let keys_before = before(self.settings.key_retention);
        self.purge_in_batches("old idempotency keys and expired IAM tokens", || {
            self.store
                .purge_keys_and_tokens(keys_before, unix_ms(now), PURGE_BATCH)
        })
        .await;
    }

    /// Runs `batch` (one purge of at most [`PURGE_BATCH`] rows a table) until one comes
    /// back short, the keeper stops or the store fails; logs what it deleted.
    async fn purge_in_batches<Batch>(&self, what: &str, mut batch: impl FnMut() -> Batch)
    where
        Batch: std::future::Future<Output = Result<usize, StoreError>>,
    {
        let mut total = 0;
        while !self.stop_keeper.is_cancelled() {
            match batch().await {
                Ok(deleted) => {
                    total += deleted;
                    if deleted < PURGE_BATCH {
                        break;
                    }
                }
                Err(error) => {
                    warn!(?error, "could not purge {what}");
                    break;
                }
            }
        }
        if total > 0 {
            info!(count = total, "purged {what}");
        }
    }
}

/// Counts an operation this call ended in the metrics: its kind, its code, how long it ran.
fn count_ended(record: &OperationRecord, finished: &Result<Finished, StoreError>) {
    let (Ok(Finished::Applied(operation)), Some(kind)) =
        (finished, work_kind(&record.work, record.target.kind))
    else {
        return;
    };
    let code = crate::error::Code::from_number(ending_kind(operation).unwrap_or(0)).name();
    // With deterministic ids creation times are not the system's: no duration is known.
    let took = operation
        .created_at
        .filter(|_| !crate::ids::is_deterministic())
        .and_then(|at| SystemTime::try_from(at).ok())
        .and_then(|created| SystemTime::now().duration_since(created).ok())
        .unwrap_or_default();
    crate::metrics::global().operation_ended(kind, code, took);
}

/// The failure a fault rule injects into an operation's ending, if one fires for its kind.
fn fault_for(faults: &Faults, record: &OperationRecord) -> Option<Fired> {
    let kind = work_kind(&record.work, record.target.kind)?;
    faults.on_ending(kind, &record.operation.id)
}

/// The outcome of an ending with a fault that fired for it, if one did.
fn with_fault(fired: &Option<Fired>, outcome: Outcome) -> Outcome {
    match fired {
        Some(fired) => Outcome::Failed(fired.status.clone()),
        None => outcome,
    }
}

/// The status code an ended operation carries: 0 for a response, `None` while running.
fn ending_kind(operation: &Operation) -> Option<i32> {
    use crate::pb::operation::operation::Result;
    match &operation.result {
        Some(Result::Error(status)) => Some(status.code),
        Some(Result::Response(_)) => Some(0),
        None => None,
    }
}

/// A delay as a duration (a held operation has none: it is never scheduled).
fn after(delay: Option<Delay>) -> Duration {
    match delay {
        Some(Delay::After(duration)) => duration,
        Some(Delay::Manual) | None => Duration::ZERO,
    }
}

/// When work is due: its operation's creation plus `delay` (resumed work may be due at
/// once). With deterministic ids, creation times are not the system's: from now.
fn due_at(record: &OperationRecord, delay: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    if crate::ids::is_deterministic() {
        return now + delay;
    }
    let created = record
        .operation
        .created_at
        .and_then(|at| SystemTime::try_from(at).ok())
        .unwrap_or_else(SystemTime::now);
    let due = created.checked_add(delay).unwrap_or(created);
    match due.duration_since(SystemTime::now()) {
        Ok(remaining) => now + remaining,
        Err(_) => now,
    }
}

/// The keeper: renews leases and claims orphans every third of the lease.
async fn keep(executor: Arc<Executor>) {
    let renew_every = (executor.settings.lease / 3).max(Duration::from_millis(50));
    let mut renew = tokio::time::interval(renew_every);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = executor.stop_keeper.cancelled() => return,
            _ = renew.tick() => executor.keep_leases().await,
        }
    }
}

/// Purges finished operations every tenth of the retention (at most hourly), in a task of
/// its own: a long purge must not delay lease renewals.
async fn purge_periodically(executor: Arc<Executor>) {
    let purge_every = (executor.settings.retention / 10)
        .clamp(Duration::from_millis(100), Duration::from_secs(3600));
    let mut purge = tokio::time::interval(purge_every);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = executor.stop_keeper.cancelled() => return,
            _ = purge.tick() => executor.purge().await,
        }
    }
}

/// The scheduler: keeps pending timed work in a timer queue and hands the due ones to
/// the store in batches. Ends when the executor is dropped.
async fn schedule_copies(
    store: Arc<dyn Store>,
    transition: Transition,
    faults: Arc<Faults>,
    running: RunningSet,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut pending: DelayQueue<OperationRecord> = DelayQueue::new();
    let mut keys: HashMap<String, delay_queue::Key> = HashMap::new();
    let mut batch = Vec::with_capacity(SCHEDULER_BATCH);
    // At most this many batches are being finished at once; while they are, due copies
    // gather into the next (larger) batch instead of opening more transactions.
    let finishing = Arc::new(tokio::sync::Semaphore::new(FINISHES_IN_FLIGHT));
    let spawn_finish = |due: Vec<OperationRecord>, permit: tokio::sync::OwnedSemaphorePermit| {
        let (store, running, faults) = (
            Arc::clone(&store),
            Arc::clone(&running),
            Arc::clone(&faults),
        );
        tokio::spawn(async move {
            end_due(store, transition, &faults, running, due).await;
            drop(permit);
        });
    };
    loop {
        tokio::select! {
            received = commands.recv_many(&mut batch, SCHEDULER_BATCH) => {
                if received == 0 {
                    return;
                }
                let now = tokio::time::Instant::now();
                let mut due = Vec::new();
                for command in batch.drain(..) {
                    match command {
                        Command::Due(record, at) if at <= now => due.push(*record),
                        Command::Due(record, at) => {
                            let id = record.operation.id.clone();
                            keys.insert(id, pending.insert_at(*record, at));
                        }
                        Command::Forget(id) => {
                            if let Some(key) = keys.remove(&id) {
                                pending.remove(&key);
                            }
                        }
                    }
                }
                if !due.is_empty() {
                    let Ok(permit) = Arc::clone(&finishing).acquire_owned().await else { return };
                    spawn_finish(due, permit);
                }
                tokio::time::sleep(SCHEDULER_REST).await;
            }
            Some(expired) = pending.next(), if !pending.is_empty() => {
                let mut due = vec![expired.into_inner()];
                // Whatever else is due now goes in the same batch.
                {
                    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
                    while due.len() < SCHEDULER_BATCH {
                        match pending.poll_expired(&mut context) {
                            std::task::Poll::Ready(Some(expired)) => {
                                due.push(expired.into_inner())
                            }
                            _ => break,
                        }
                    }
                }
                for record in &due {
                    keys.remove(&record.operation.id);
                }
                let Ok(permit) = Arc::clone(&finishing).acquire_owned().await else { return };
                spawn_finish(due, permit);
            }
        }
    }
}

/// Ends due timed work in one store call: each copy's resource, as fixed at create time,
/// becomes READY; each deleted resource goes (unless a fault rule fails it).
async fn end_due(
    store: Arc<dyn Store>,
    transition: Transition,
    faults: &Faults,
    running: RunningSet,
    records: Vec<OperationRecord>,
) {
    let fired: Vec<Option<Fired>> = records
        .iter()
        .map(|record| fault_for(faults, record))
        .collect();
    let endings: Vec<Ending> = records
        .iter()
        .zip(&fired)
        .map(|(record, fired)| Ending {
            operation_id: record.operation.id.clone(),
            outcome: with_fault(fired, Outcome::Done),
        })
        .collect();
    let outcomes = store.conclude(endings, transition).await;
    for ((record, outcome), fired) in records.iter().zip(outcomes).zip(fired) {
        if let Some(fired) = &fired {
            faults.settle(fired, matches!(outcome, Ok(Finished::Applied(_))));
        }
        match outcome {
            // Its records cannot end as asked: end it with the error instead, so that no
            // operation stays running.
            Err(error @ StoreError::Corrupt(_)) => {
                fail(store.as_ref(), transition, record, Error::from(error)).await
            }
            // The database failed (perhaps for a moment): nothing was written. Dropped from
            // `running` below, its lease is not renewed, and it is claimed and tried again
            // when the lease runs out.
            Err(error) => warn!(
                operation_id = %record.operation.id,
                %error,
                "could not end the operation; it is retried when its lease runs out"
            ),
            finished => {
                count_ended(record, &finished);
                log_finished(&record.operation.id, finished)
            }
        }
    }
    let mut running = lock(&running);
    for record in &records {
        running.remove(&record.operation.id);
    }
}

/// Ends one operation with the outcome of its work; whether that outcome is how it ended
/// (not another ending's, nor the error of records that could not take it).
async fn end(
    store: &dyn Store,
    transition: Transition,
    record: &OperationRecord,
    outcome: Outcome,
) -> bool {
    let ending = Ending {
        operation_id: record.operation.id.clone(),
        outcome,
    };
    let ended = store
        .conclude(vec![ending], transition)
        .await
        .pop()
        .unwrap_or(Ok(Finished::Unknown));
    match ended {
        Err(error @ StoreError::Corrupt(_)) => {
            let error = Error::from(error);
            let ending = Ending {
                operation_id: record.operation.id.clone(),
                outcome: Outcome::Failed(error.to_rpc_status()),
            };
            let retried = store
                .conclude(vec![ending], transition)
                .await
                .pop()
                .unwrap_or(Ok(Finished::Unknown));
            count_ended(record, &retried);
            log_finished(&record.operation.id, retried);
            false
        }
        ended => {
            let applied = matches!(ended, Ok(Finished::Applied(_)));
            count_ended(record, &ended);
            log_finished(&record.operation.id, ended);
            applied
        }
    }
}

/// Ends one operation with an error: its work is undone.
async fn fail(store: &dyn Store, transition: Transition, record: &OperationRecord, error: Error) {
    warn!(
        operation_id = %record.operation.id,
        code = error.code().number(),
        %error,
        "operation failed"
    );
    end(
        store,
        transition,
        record,
        Outcome::Failed(error.to_rpc_status()),
    )
    .await;
}

/// Logs how the store took the end of an operation.
fn log_finished(id: &str, finished: Result<Finished, StoreError>) {
    match finished {
        Ok(Finished::Applied(_)) => debug!(operation_id = %id, "operation done"),
        Ok(Finished::AlreadyDone(_)) => debug!(operation_id = %id, "already finished by a cancel"),
        Ok(Finished::Unknown) => warn!(operation_id = %id, "operation vanished from the store"),
        Err(error) => {
            warn!(operation_id = %id, ?error, "could not record the end of the operation")
        }
    }
}

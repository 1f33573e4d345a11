//! Whether the server is alive and ready to serve, one state for every probe:
//! `GET /healthz` (the process answers), `GET /readyz` (it serves calls: not stopping, and
//! its store answers), and `grpc.health.v1.Health`, whose services report NOT_SERVING
//! whenever `/readyz` would answer 503.
//!
//! Before the start is complete (store open, migrations applied, seeds loaded) the port
//! answers for the server ([`super::starting`]): `/healthz` alive, `/readyz` 503
//! "starting". The store is asked at each `/readyz` and every [`WATCH_INTERVAL`] for gRPC
//! health, with at most [`PING_TIMEOUT`] to answer.

use super::services;
use crate::store::Store;
use bytes::Bytes;
use http::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The liveness probe's path.
pub const LIVE_PATH: &str = "/healthz";
/// The readiness probe's path.
pub const READY_PATH: &str = "/readyz";

/// The HTTP probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`: the process answers.
    Live,
    /// `/readyz`: it serves calls.
    Ready,
}

impl Probe {
    /// The probe at `path`, if any.
    pub fn at(path: &str) -> Option<Probe> {
        match path {
            LIVE_PATH => Some(Probe::Live),
            READY_PATH => Some(Probe::Ready),
            _ => None,
        }
    }
}

/// How often gRPC health asks the store.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long the store has to answer a probe.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// See the module documentation.
pub struct Health {
    store: Arc<dyn Store>,
    reporter: HealthReporter,
    stopping: AtomicBool,
    /// Cancelled on stop: ends the watch at once (it holds the store).
    stopped: CancellationToken,
    /// What gRPC health reports now (`None` before the first report).
    reported: Mutex<Option<bool>>,
}

impl Health {
    /// A server's health, serving, reported through `reporter`.
    pub async fn new(store: Arc<dyn Store>, reporter: HealthReporter) -> Arc<Health> {
        let health = Arc::new(Health {
            store,
            reporter,
            stopping: AtomicBool::new(false),
            stopped: CancellationToken::new(),
            reported: Mutex::new(None),
        });
        health.report(true).await;
        health
    }

    /// Why the server is not ready, if it is not.
    pub async fn not_ready(&self) -> Option<String> {
        if self.stopping.load(Ordering::Acquire) {
            return Some("shutting down".into());
        }
        let why = match tokio::time::timeout(PING_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("the store does not answer: {error}")),
            Err(_) => Some(format!(
                "the store did not answer within {}",
                humantime::format_duration(PING_TIMEOUT)
            )),
        };
        self.report(why.is_none()).await;
        why
    }

    /// The status and JSON body of a probe.
    pub async fn answer(&self, probe: Probe) -> (StatusCode, Bytes) {
        let (status, body) = match probe {
            Probe::Live => (StatusCode::OK, serde_json::json!({"status": "alive"})),
            Probe::Ready => match self.not_ready().await {
                None => (StatusCode::OK, serde_json::json!({"status": "ready"})),
                Some(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "not ready", "reason": why}),
                ),
            },
        };
        (status, Bytes::from(body.to_string()))
    }

    /// From now on, not ready: the server is stopping.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stopped.cancel();
        self.report(false).await;
    }

    /// Asks the store every [`WATCH_INTERVAL`], so that gRPC health follows it, until
    /// the server stops.
    pub fn watch(self: &Arc<Health>) {
        let health = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(WATCH_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = health.stopped.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                if let Some(why) = health.not_ready().await {
                    if !health.stopping.load(Ordering::Acquire) {
                        tracing::warn!(%why, "not ready");
                    }
                }
            }
        });
    }

    /// Sets every reported service's gRPC health when it changes.
    async fn report(&self, serving: bool) {
        let mut reported = self.reported.lock().await;
        if *reported == Some(serving) {
            return;
        }
        // Once stopping, nothing reports serving again.
        let serving = serving && !self.stopping.load(Ordering::Acquire);
        let status = match serving {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        for name in services::names(|service| service.reported) {
            self.reporter.set_service_status(name, status).await;
        }
        *reported = Some(serving);
    }
}

//! The top layer: the server as a whole. This file wires it (store, executor, catalog,
//! services) and serves every gRPC service, server reflection (v1 and v1alpha),
//! grpc.health.v1 and the REST gateway on one already-bound listener until the shutdown
//! future resolves; its submodules carry the connections: the accept loop and its limits
//! ([`listener`], [`request_budget`], [`tls`]), what the port answers while the server
//! starts ([`starting`]), the split between gRPC and REST ([`dispatch`]), health
//! ([`health`]) and the access log ([`access_log`]). Every call passes through
//! [`AccessLogLayer`] (request id, span, access log); every RPC, whether it came over gRPC
//! or through the gateway, through [`RpcLayer`] (caller, call context, deadline).
//!
//! May use every layer below; nothing below uses it.

pub mod access_log;
pub mod console;
pub mod dispatch;
pub mod health;
pub mod listener;
pub mod request_budget;
pub mod services;
pub mod starting;
pub mod tls;

use crate::domain::admin::Admin;
use crate::domain::identity::{Identities, TokenFile, DEFAULT_TOKEN_LIFETIME};
use crate::domain::introspection::{Introspection, ServerFacts};
use crate::domain::seed::{self, Seeds};
use crate::domain::validation::Validator;
use crate::domain::{Catalog, Offerings};
use crate::faults::Faults;
use crate::gateway::Gateway;
use crate::rpc::auth::Authenticator;
use crate::rpc::layer::RpcLayer;
use crate::rpc::GrpcService;
use crate::store::{self, DatabaseUrl, Replica, Store};
use crate::work::executor::{Executor, ExecutorSettings};
use crate::work::import::ImportSettings;
use crate::work::timing::Timing;
use access_log::{AccessLog, AccessLogLayer};
use dispatch::Dispatch;
use health::Health;
use listener::ConnectionLimits;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tls::Tls;
use tokio::net::TcpListener;
use tonic_health::server::HealthReporter;
use tower::Layer;
use tracing::{info, warn};

/// What the server needs besides its listener.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long each kind of background work takes (`--operation-delay`).
    pub operation_timing: Timing,
    /// What ApiEndpointService advertises; `None` means the bound address.
    pub advertise_address: Option<String>,
    /// Longest time one RPC may take; zero means no server-side deadline.
    pub request_timeout: Duration,
    /// How long a stop waits for running calls and open connections.
    pub shutdown_grace: Duration,
    /// Where the state lives.
    pub database: DatabaseUrl,
    /// How long this replica's claim on a running operation lasts without renewal.
    pub lease: Duration,
    /// How long finished operations are kept.
    pub operation_retention: Duration,
    /// How imports from URIs run.
    pub import: ImportSettings,
    /// What connections and unfinished requests may hold.
    pub connections: ConnectionLimits,
    /// The zones and disk types disks may name.
    pub offerings: Offerings,
    /// Whether the built-in public image catalogue is loaded at start (not with
    /// `--no-public-images`).
    pub public_images: bool,
    /// Seed files loaded at start after the catalogue, as (where from, text): the
    /// `--seed` files.
    pub seeds: Vec<(String, String)>,
    /// A state snapshot that replaces the store's state at start, before the seeds are
    /// loaded, as (where from, the file): `--restore`.
    pub restore: Option<(String, Vec<u8>)>,
    /// The tokens of `--auth-tokens`; `None`: every call is accepted, as "anonymous".
    pub auth_tokens: Option<TokenFile>,
    /// How long IAM tokens issued by IamTokenService.Create live.
    pub iam_token_lifetime: Duration,
    /// TLS on the port; `None`: plaintext.
    pub tls: Option<Tls>,
    /// Whether the admin API (`imageplane.v1.AdminService`) is on (`--enable-admin`).
    pub enable_admin: bool,
    /// Whether the web console is served at `/console` (not with `--no-console`).
    pub console: bool,
}

/// The default `--lease-duration`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The default `--operation-retention`: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            operation_timing: Timing::default(),
            advertise_address: None,
            request_timeout: Duration::ZERO,
            shutdown_grace: Duration::from_secs(5),
            database: DatabaseUrl::Memory,
            lease: DEFAULT_LEASE,
            operation_retention: DEFAULT_RETENTION,
            import: ImportSettings::default(),
            connections: ConnectionLimits::default(),
            offerings: Offerings::default(),
            public_images: true,
            seeds: Vec::new(),
            restore: None,
            auth_tokens: None,
            iam_token_lifetime: DEFAULT_TOKEN_LIFETIME,
            tls: None,
            enable_admin: false,
            console: true,
        }
    }
}

/// The error of a start or a run.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A server ready to serve: its store open and migrated, seeds loaded, its work and its
/// services built. Everything that can fail at start has, before [`serve`] announces it.
pub struct Server {
    settings: Settings,
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    service: AccessLog<Dispatch>,
    health: Arc<Health>,
}

impl Server {
    /// Opens the store `settings.database` names for a new replica and builds the server
    /// that will answer at `local_address`. A failure after the store opened closes it.
    pub async fn start(settings: Settings, local_address: SocketAddr) -> Result<Server, Failure> {
        let replica = Replica::new(settings.lease);
        let store = store::open(&settings.database, replica.clone())
            .await
            .map_err(|error| format!("cannot open {}: {error}", settings.database.display()))?;
        info!(database = %settings.database.display(), replica = %replica.id, "store open");
        let validator = Validator::for_api();
        let (seeds, faults, executor) =
            match load_seeds_and_start_work(&settings, &validator, &store).await {
                Ok(started) => started,
                Err(error) => {
                    close(store.as_ref()).await;
                    return Err(error);
                }
            };
        let built = build_service(
            &settings,
            validator,
            (&store, &executor, seeds, faults),
            local_address,
        )
        .await;
        match built {
            Ok((service, health)) => Ok(Server {
                settings,
                store,
                executor,
                service,
                health,
            }),
            Err(error) => {
                executor.shutdown().await;
                close(store.as_ref()).await;
                Err(error)
            }
        }
    }
}

/// Serves `listener` from now on and starts the server behind it: until the start is
/// complete the port answers that the server is starting ([`starting`]); then `announce`
/// runs (the binary prints its ready line) and the server answers every call. When
/// `shutdown` resolves it stops accepting calls, lets running ones end, hands the
/// operations still running back to the store and closes it. A failed start stops
/// serving and returns its error. Tests and benchmarks call it on port 0.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    announce: impl FnOnce() + Send,
) -> Result<(), Failure> {
    let local_address = listener.local_addr()?;
    let started = starting::Started::default();
    let health_once: Arc<OnceLock<Arc<Health>>> = Arc::default();
    let (start_failed, failed) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            _ = failed => {}
        }
    };
    let on_stop = {
        let health_once = Arc::clone(&health_once);
        async move {
            info!("shutting down: no new calls, finishing running ones");
            if let Some(health) = health_once.get() {
                health.stop().await;
            }
        }
    };
    let connections = tokio::spawn(listener::serve_connections(
        listener,
        settings.tls.as_ref().map(|tls| tls.acceptor.clone()),
        starting::Starting::new(Arc::clone(&started)),
        settings.connections.clone(),
        settings.shutdown_grace,
        stop,
        on_stop,
    ));
    let server = match Server::start(settings, local_address).await {
        Ok(server) => server,
        Err(error) => {
            let _ = start_failed.send(());
            let _ = connections.await;
            return Err(error);
        }
    };
    let Server {
        settings,
        store,
        executor,
        service,
        health,
    } = server;
    match &settings.tls {
        Some(tls) => {
            info!(address = %local_address, certificate = %tls.cert.display(), "serving over TLS")
        }
        None => info!(address = %local_address, "serving (plaintext)"),
    }
    if connections.is_finished() {
        // Told to stop while starting: the port is closed; no ready line.
        info!("stopped before serving");
    } else {
        health.watch();
        let _ = health_once.set(health);
        let _ = started.set(service);
        announce();
    }
    if let Err(error) = connections.await {
        warn!(%error, "the connection loop ended abnormally");
    }
    executor.shutdown().await;
    close(store.as_ref()).await;
    info!("stopped");
    Ok(())
}

/// Leaves the store complete in its files (SQLite's WAL checkpointed).
async fn close(store: &dyn Store) {
    if let Err(error) = store.close().await {
        warn!(%error, "the store did not close cleanly");
    }
}

/// Restores the `--restore` snapshot, loads the seed files (and returns them, for
/// resets) and starts the background work,
/// which asks the fault rules (returned, for the RPC layer and the admin API).
async fn load_seeds_and_start_work(
    settings: &Settings,
    validator: &Validator,
    store: &Arc<dyn Store>,
) -> Result<(Arc<Seeds>, Arc<Faults>, Arc<Executor>), Failure> {
    let faults = Arc::new(Faults::default());
    let rules = seed::Rules {
        validator,
        offerings: &settings.offerings,
    };
    let seeds = Seeds::read(rules, settings.public_images, &settings.seeds)
        .map_err(|error| format!("seed: {error}"))?;
    if let Some((path, file)) = &settings.restore {
        let restore = |error: &dyn std::fmt::Display| format!("--restore {path}: {error}");
        let prepared = crate::store::snapshot::read(file.clone())
            .await
            .map_err(|error| restore(&error))?;
        let counts = store
            .import_state(prepared)
            .await
            .map_err(|error| restore(&crate::error::Error::from(error)))?;
        info!(
            resources = counts.resources,
            operations = counts.operations,
            schema = counts.schema,
            "state restored from {path}"
        );
    }
    let seeded = seeds
        .store(store.as_ref())
        .await
        .map_err(|error| format!("seed: {error}"))?;
    if seeded > 0 {
        info!(count = seeded, "seeded resources");
    }
    let executor = Executor::new(
        Arc::clone(store),
        ExecutorSettings {
            timing: settings.operation_timing.clone(),
            lease: settings.lease,
            retention: settings.operation_retention,
            import: settings.import.clone(),
            transition: crate::domain::transitions::conclude,
            key_retention: crate::domain::idempotency::KEY_RETENTION,
            faults: Arc::clone(&faults),
        },
    )?;
    Ok((Arc::new(seeds), faults, executor))
}

/// The domain, the services of [`services::SERVICES`] behind the RPC layer, the gateway,
/// and the access log around them all; and the server's health.
async fn build_service(
    settings: &Settings,
    validator: Validator,
    (store, executor, seeds, faults): (&Arc<dyn Store>, &Arc<Executor>, Arc<Seeds>, Arc<Faults>),
    local_address: SocketAddr,
) -> Result<(AccessLog<Dispatch>, Arc<Health>), Failure> {
    let catalog = Arc::new(
        Catalog::new(
            Arc::clone(store),
            Arc::clone(executor),
            validator,
            settings.offerings.clone(),
        )
        .await?,
    );
    let identities = Arc::new(Identities::new(
        settings.auth_tokens.clone(),
        Arc::clone(store),
        settings.iam_token_lifetime,
    ));
    if let Some(tokens) = &settings.auth_tokens {
        info!(
            tokens = tokens.len(),
            "authentication on: calls need a bearer token"
        );
    }
    let authenticator = Arc::new(Authenticator::new(
        Arc::clone(&identities),
        services::open_paths(),
    ));
    let reporter = HealthReporter::new();
    let health = Health::new(Arc::clone(store), reporter.clone()).await;
    let admin = Arc::new(Admin::new(
        settings.enable_admin,
        Arc::clone(store),
        Arc::clone(executor),
        seeds,
        Arc::clone(&faults),
    ));
    let introspection = Arc::new(Introspection::new(
        Arc::clone(store),
        Arc::clone(executor),
        Arc::clone(&admin),
        ServerFacts {
            version: env!("CARGO_PKG_VERSION"),
            store: match settings.database {
                DatabaseUrl::Memory => "memory",
                DatabaseUrl::Sqlite(_) => "sqlite",
                DatabaseUrl::Postgres(_) => "postgres",
            },
            started_at: std::time::SystemTime::now(),
            authentication: settings.auth_tokens.is_some(),
        },
    ));
    let parts = services::Parts {
        catalog: Arc::clone(&catalog),
        admin,
        introspection,
        identities,
        health: reporter,
        advertise_address: settings.advertise_address.clone(),
        local_address,
    };
    let grpc = GrpcService::new(
        RpcLayer {
            timeout: (!settings.request_timeout.is_zero()).then_some(settings.request_timeout),
            authenticator,
            faults,
        }
        .layer(services::routes(&parts).prepare()),
    );
    let rest: Vec<&str> = services::names(|service| service.rest).collect();
    let gateway = Gateway::new(grpc.clone(), catalog.validator(), &rest)?;
    let documents = services::documents(&gateway);
    Ok((
        AccessLogLayer.layer(Dispatch::new(
            grpc,
            gateway,
            documents,
            Arc::clone(&health),
            settings.console,
        )),
        health,
    ))
}

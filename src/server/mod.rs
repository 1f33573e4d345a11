//! The top layer: the server as a whole. This file wires it (store, executor, catalog,
//! services) and serves every gRPC service, server reflection (v1 and v1alpha),
//! grpc.health.v1 and the REST gateway on one already-bound listener until the shutdown
//! future resolves; its submodules carry the connections: the accept loop and its limits
//! ([`listener`], [`request_budget`], [`tls`]), the split between gRPC and REST
//! ([`dispatch`]) and the access log ([`access_log`]). Every call passes through
//! [`AccessLogLayer`] (request id, span, access log); every RPC, whether it came over gRPC
//! or through the gateway, through [`RpcLayer`] (caller, call context, deadline).
//!
//! May use every layer below; nothing below uses it.

pub mod access_log;
pub mod dispatch;
pub mod listener;
pub mod request_budget;
pub mod tls;

use crate::api::{
    baremetal_image::BaremetalImageApi, compute_disk::ComputeDiskApi,
    compute_image::ComputeImageApi, compute_snapshot::ComputeSnapshotApi, endpoint::EndpointApi,
    iam::IamApi, operation::OperationApi,
};
use crate::domain::identity::{Identities, TokenFile, DEFAULT_TOKEN_LIFETIME};
use crate::domain::validation::Validator;
use crate::domain::{Catalog, Offerings};
use crate::gateway::Gateway;
use crate::pb;
use crate::rpc::auth::Authenticator;
use crate::rpc::layer::RpcLayer;
use crate::rpc::{GrpcService, MAX_REQUEST_BYTES};
use crate::store::{self, DatabaseUrl, Replica, Store};
use crate::work::executor::{Executor, ExecutorSettings};
use crate::work::import::ImportSettings;
use access_log::AccessLogLayer;
use dispatch::Dispatch;
use listener::ConnectionLimits;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tls::Tls;
use tokio::net::TcpListener;
use tower::Layer;
use tracing::{info, warn};

/// What the server needs besides its listener.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long the background work of a copy takes.
    pub operation_delay: Duration,
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
    /// Seed files loaded at start, as (where from, text): the public catalogue unless
    /// `--no-public-images`, then `--seed` files.
    pub seeds: Vec<(String, String)>,
    /// The tokens of `--auth-tokens`; `None`: every call is accepted, as "anonymous".
    pub auth_tokens: Option<TokenFile>,
    /// How long IAM tokens issued by IamTokenService.Create live.
    pub iam_token_lifetime: Duration,
    /// TLS on the port; `None`: plaintext.
    pub tls: Option<Tls>,
}

/// The default `--lease-duration`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The default `--operation-retention`: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            operation_delay: Duration::ZERO,
            advertise_address: None,
            request_timeout: Duration::ZERO,
            shutdown_grace: Duration::from_secs(5),
            database: DatabaseUrl::Memory,
            lease: DEFAULT_LEASE,
            operation_retention: DEFAULT_RETENTION,
            import: ImportSettings::default(),
            connections: ConnectionLimits::default(),
            offerings: Offerings::default(),
            seeds: vec![public_images()],
            auth_tokens: None,
            iam_token_lifetime: DEFAULT_TOKEN_LIFETIME,
            tls: None,
        }
    }
}

/// The built-in public image catalogue as a seed.
pub fn public_images() -> (String, String) {
    (
        "the public image catalogue (seeds/standard-images.jsonl)".into(),
        crate::domain::seed::PUBLIC_IMAGES.to_string(),
    )
}

/// Opens the store `settings.database` names for a new replica, applying migrations.
pub async fn open_store(
    settings: &Settings,
) -> Result<Arc<dyn Store>, Box<dyn std::error::Error + Send + Sync>> {
    let replica = Replica::new(settings.lease);
    let store = store::open(&settings.database, replica.clone())
        .await
        .map_err(|error| format!("cannot open {}: {error}", settings.database.display()))?;
    info!(database = %settings.database.display(), replica = %replica.id, "store open");
    let seeded = crate::domain::seed::load(store.as_ref(), &settings.seeds)
        .await
        .map_err(|error| format!("seed: {error}"))?;
    if seeded > 0 {
        info!(count = seeded, "seeded resources");
    }
    Ok(store)
}

/// Opens the store and serves until `shutdown` resolves (see [`serve_store`]).
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = open_store(&settings).await?;
    serve_store(listener, settings, store, shutdown).await
}

/// Serves an open store until `shutdown` resolves, then stops accepting calls, lets
/// running ones end, and hands the operations still running back to the store.
pub async fn serve_store(
    listener: TcpListener,
    settings: Settings,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let local_address = listener.local_addr()?;
    let store_to_close = Arc::clone(&store);
    let identities = Arc::new(Identities::new(
        settings.auth_tokens.clone(),
        Arc::clone(&store),
        settings.iam_token_lifetime,
    ));
    let authenticator = Arc::new(Authenticator::new(
        Arc::clone(&identities),
        OPEN_SERVICES.iter().copied(),
    ));
    if let Some(tokens) = &settings.auth_tokens {
        info!(
            tokens = tokens.len(),
            "authentication on: calls need a bearer token"
        );
    }
    let executor = Executor::new(
        Arc::clone(&store),
        ExecutorSettings {
            copy_duration: settings.operation_delay,
            lease: settings.lease,
            retention: settings.operation_retention,
            import: settings.import.clone(),
            transition: crate::domain::transitions::conclude,
            key_retention: crate::domain::idempotency::KEY_RETENTION,
        },
    )?;
    let catalog = Arc::new(
        Catalog::new(
            store,
            Arc::clone(&executor),
            Validator::for_api(),
            settings.offerings.clone(),
        )
        .await?,
    );

    let compute_images =
        pb::compute::image_service_server::ImageServiceServer::new(ComputeImageApi {
            catalog: Arc::clone(&catalog),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let snapshots =
        pb::compute::snapshot_service_server::SnapshotServiceServer::new(ComputeSnapshotApi {
            catalog: Arc::clone(&catalog),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let disks = pb::compute::disk_service_server::DiskServiceServer::new(ComputeDiskApi {
        catalog: Arc::clone(&catalog),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let baremetal_images =
        pb::baremetal::image_service_server::ImageServiceServer::new(BaremetalImageApi {
            catalog: Arc::clone(&catalog),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let operations =
        pb::operation::operation_service_server::OperationServiceServer::new(OperationApi {
            catalog: Arc::clone(&catalog),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let endpoints =
        pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointServiceServer::new(
            EndpointApi {
                advertise_address: settings.advertise_address.clone(),
                local_address,
                catalog: Arc::clone(&catalog),
            },
        )
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let iam =
        pb::yandex::cloud::iam::v1::iam_token_service_server::IamTokenServiceServer::new(IamApi {
            catalog: Arc::clone(&catalog),
            identities,
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    for service in SERVICE_NAMES {
        health_reporter
            .set_service_status(*service, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let routes = tonic::service::Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(compute_images)
        .add_service(snapshots)
        .add_service(disks)
        .add_service(baremetal_images)
        .add_service(operations)
        .add_service(endpoints)
        .add_service(iam)
        .prepare();
    let grpc: GrpcService = GrpcService::new(
        RpcLayer {
            timeout: (!settings.request_timeout.is_zero()).then_some(settings.request_timeout),
            authenticator,
        }
        .layer(routes),
    );
    let gateway = Gateway::new(grpc.clone(), catalog.validator())?;
    let service = AccessLogLayer.layer(Dispatch::new(grpc, gateway));

    match &settings.tls {
        Some(tls) => {
            info!(address = %local_address, certificate = %tls.cert.display(), "serving over TLS")
        }
        None => info!(address = %local_address, "serving (plaintext)"),
    }
    let on_stop = async move {
        info!("shutting down: no new calls, finishing running ones");
        for service in SERVICE_NAMES {
            health_reporter
                .set_service_status(*service, tonic_health::ServingStatus::NotServing)
                .await;
        }
    };
    listener::serve_connections(
        listener,
        settings.tls.as_ref().map(|tls| tls.acceptor.clone()),
        service,
        settings.connections.clone(),
        settings.shutdown_grace,
        shutdown,
        on_stop,
    )
    .await;
    // On every way out, the running operations are handed back.
    executor.shutdown().await;
    if let Err(error) = store_to_close.close().await {
        warn!(%error, "the store did not close cleanly");
    }
    info!("stopped");
    Ok(())
}

/// The services that need no token.
const OPEN_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "yandex.cloud.endpoint.ApiEndpointService",
    "yandex.cloud.iam.v1.IamTokenService",
];

/// The services whose health grpc.health.v1 reports one by one.
pub const SERVICE_NAMES: &[&str] = &[
    "yandex.cloud.compute.v1.ImageService",
    "yandex.cloud.compute.v1.SnapshotService",
    "yandex.cloud.compute.v1.DiskService",
    "yandex.cloud.baremetal.v1alpha.ImageService",
    "yandex.cloud.operation.OperationService",
    "yandex.cloud.endpoint.ApiEndpointService",
    "yandex.cloud.iam.v1.IamTokenService",
];

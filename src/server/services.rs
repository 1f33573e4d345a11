//! The one list of what the server serves: every gRPC service (its name, whether a call
//! needs a token, whether health reports it, how it is built) and every plain document
//! (a path that is not an RPC). The routes, health, reflection, authentication and the
//! REST gateway all take their lists from here, so a new service is one entry.

use crate::api::{
    admin::AdminApi, baremetal_image::BaremetalImageApi, compute_disk::ComputeDiskApi,
    compute_image::ComputeImageApi, compute_snapshot::ComputeSnapshotApi, endpoint::EndpointApi,
    iam::IamApi, introspection::IntrospectionApi, operation::OperationApi,
};
use crate::domain::admin::Admin;
use crate::domain::identity::Identities;
use crate::domain::introspection::Introspection;
use crate::domain::Catalog;
use crate::gateway::Gateway;
use crate::pb;
use crate::rpc::MAX_REQUEST_BYTES;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

/// Who may call a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, reflection, and what a client needs before it has a token.
    Open,
    /// A caller with a token, when authentication is on.
    Token,
    /// Anyone, except for these methods, which need a token as [`Access::Token`].
    OpenExcept(&'static [&'static str]),
}

/// What building the services needs.
pub struct Parts {
    pub catalog: Arc<Catalog>,
    pub admin: Arc<Admin>,
    pub introspection: Arc<Introspection>,
    pub identities: Arc<Identities>,
    pub health: HealthReporter,
    /// `--advertise-address`, if set.
    pub advertise_address: Option<String>,
    pub local_address: SocketAddr,
}

/// One gRPC service.
pub struct Service {
    /// Its full name, as the descriptors (and the gRPC path) spell it.
    pub name: &'static str,
    pub access: Access,
    /// Whether grpc.health.v1 reports its status by name (the API's services).
    pub reported: bool,
    /// Whether the REST gateway serves it (its protos' `google.api.http` rules).
    pub rest: bool,
    /// Adds it to the routes.
    pub add: fn(&Parts, Routes) -> Routes,
}

/// A gRPC service of the API: needs a token, reported by health, served over REST too.
const fn api(name: &'static str, add: fn(&Parts, Routes) -> Routes) -> Service {
    Service {
        name,
        access: Access::Token,
        reported: true,
        rest: true,
        add,
    }
}

/// A service of gRPC's own (health, reflection): open, gRPC only.
const fn grpc_only(name: &'static str, add: fn(&Parts, Routes) -> Routes) -> Service {
    Service {
        name,
        access: Access::Open,
        reported: false,
        rest: false,
        add,
    }
}

/// Every gRPC service the server answers.
pub const SERVICES: &[Service] = &[
    api(
        <pb::compute::image_service_server::ImageServiceServer<ComputeImageApi>>::NAME,
        |parts, routes| {
            routes.add_service(
                pb::compute::image_service_server::ImageServiceServer::new(ComputeImageApi {
                    catalog: Arc::clone(&parts.catalog),
                })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
        },
    ),
    api(
        <pb::compute::snapshot_service_server::SnapshotServiceServer<ComputeSnapshotApi>>::NAME,
        |parts, routes| {
            routes.add_service(
                pb::compute::snapshot_service_server::SnapshotServiceServer::new(
                    ComputeSnapshotApi {
                        catalog: Arc::clone(&parts.catalog),
                    },
                )
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
        },
    ),
    api(
        <pb::compute::disk_service_server::DiskServiceServer<ComputeDiskApi>>::NAME,
        |parts, routes| {
            routes.add_service(
                pb::compute::disk_service_server::DiskServiceServer::new(ComputeDiskApi {
                    catalog: Arc::clone(&parts.catalog),
                })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
        },
    ),
    api(
        <pb::baremetal::image_service_server::ImageServiceServer<BaremetalImageApi>>::NAME,
        |parts, routes| {
            routes.add_service(
                pb::baremetal::image_service_server::ImageServiceServer::new(BaremetalImageApi {
                    catalog: Arc::clone(&parts.catalog),
                })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
        },
    ),
    api(
        <pb::operation::operation_service_server::OperationServiceServer<OperationApi>>::NAME,
        |parts, routes| {
            routes.add_service(
                pb::operation::operation_service_server::OperationServiceServer::new(
                    OperationApi {
                        catalog: Arc::clone(&parts.catalog),
                    },
                )
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
        },
    ),
    // Discovery and the token exchange come before a client has a token.
    Service {
        access: Access::Open,
        ..api(
            <pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointServiceServer<
                EndpointApi,
            >>::NAME,
            |parts, routes| {
                routes.add_service(
                    pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointServiceServer::new(
                        EndpointApi {
                            advertise_address: parts.advertise_address.clone(),
                            local_address: parts.local_address,
                            catalog: Arc::clone(&parts.catalog),
                        },
                    )
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                )
            },
        )
    },
    // A token for a service account is made for a caller who has a token of its own.
    Service {
        access: Access::OpenExcept(&["CreateForServiceAccount"]),
        ..api(
            <pb::yandex::cloud::iam::v1::iam_token_service_server::IamTokenServiceServer<IamApi>>::NAME,
            |parts, routes| {
                routes.add_service(
                    pb::yandex::cloud::iam::v1::iam_token_service_server::IamTokenServiceServer::new(
                        IamApi {
                            catalog: Arc::clone(&parts.catalog),
                            identities: Arc::clone(&parts.identities),
                        },
                    )
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                )
            },
        )
    },
    // imageplane's own: refused unless --enable-admin (the domain's `Admin::check`).
    Service {
        reported: false,
        ..api(
            <pb::imageplane::v1::admin_service_server::AdminServiceServer<AdminApi>>::NAME,
            |parts, routes| {
                routes.add_service(
                    pb::imageplane::v1::admin_service_server::AdminServiceServer::new(AdminApi {
                        catalog: Arc::clone(&parts.catalog),
                        admin: Arc::clone(&parts.admin),
                    })
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                )
            },
        )
    },
    // imageplane's own: what the server holds and does, for the console.
    Service {
        reported: false,
        ..api(
            <pb::imageplane::v1::introspection_service_server::IntrospectionServiceServer<
                IntrospectionApi,
            >>::NAME,
            |parts, routes| {
                routes.add_service(
                    pb::imageplane::v1::introspection_service_server::IntrospectionServiceServer::new(
                        IntrospectionApi {
                            catalog: Arc::clone(&parts.catalog),
                            introspection: Arc::clone(&parts.introspection),
                        },
                    )
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                )
            },
        )
    },
    grpc_only(<HealthServer<HealthService>>::NAME, |parts, routes| {
        routes.add_service(HealthServer::new(HealthService::from_health_reporter(
            parts.health.clone(),
        )))
    }),
    // The descriptor sets are built into the binary: every test server proves they load.
    grpc_only("grpc.reflection.v1.ServerReflection", |_, routes| {
        routes.add_service(reflection().build_v1().expect("the descriptors load"))
    }),
    grpc_only("grpc.reflection.v1alpha.ServerReflection", |_, routes| {
        routes.add_service(reflection().build_v1alpha().expect("the descriptors load"))
    }),
];

/// Server reflection over every descriptor the server has.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The routes of every service.
pub fn routes(parts: &Parts) -> Routes {
    SERVICES.iter().fold(Routes::default(), |routes, service| {
        (service.add)(parts, routes)
    })
}

/// The names of the services `which` picks, e.g. `names(|service| service.reported)`.
pub fn names(which: fn(&Service) -> bool) -> impl Iterator<Item = &'static str> {
    SERVICES
        .iter()
        .filter(move |service| which(service))
        .map(|service| service.name)
}

/// The gRPC paths that need no token: `/package.Service/` for an open service (a prefix),
/// `/package.Service/Method` for an open method of a service that is open but for some.
pub fn open_paths() -> Vec<String> {
    let pool = pb::descriptor_pool();
    SERVICES
        .iter()
        .flat_map(|service| match service.access {
            Access::Open => vec![format!("/{}/", service.name)],
            Access::Token => Vec::new(),
            Access::OpenExcept(closed) => pool
                .get_service_by_name(service.name)
                .expect("a served service is in the descriptor pool")
                .methods()
                .filter(|method| !closed.contains(&method.name()))
                .map(|method| format!("/{}/{}", service.name, method.name()))
                .collect(),
        })
        .collect()
}

/// A plain document: a path that is not an RPC, answered to GET without a token.
pub struct Document {
    pub path: &'static str,
    pub body: Bytes,
}

/// Every plain document the server answers.
pub fn documents(gateway: &Gateway) -> Vec<Document> {
    vec![Document {
        path: "/openapi.json",
        body: gateway.openapi(),
    }]
}

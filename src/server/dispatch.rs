//! One port, two protocols: a request whose content-type is `application/grpc` (or
//! `application/grpc+proto`, ...) goes to the gRPC services; a health probe (`/healthz`,
//! `/readyz`: [`Health`]) gets its answer, `/metrics` the Prometheus page, and a request
//! for a plain document (`services::documents`, e.g. `/openapi.json`) the document, none
//! needing a token; the web console's files (`/console`, [`console`]) theirs, unless it
//! is off;
//! anything else goes to the REST gateway. All answer with the same body type, so one
//! connection can carry every kind.

use super::console;
use super::health::{Health, Probe};
use super::services::Document;
use crate::gateway::Gateway;
use crate::rpc::GrpcService;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::ServiceExt;

/// Where the Prometheus metrics are served (no token).
pub const METRICS_PATH: &str = "/metrics";
/// The content type of JSON documents and probes.
const JSON: &str = "application/json";
/// The content type of the metrics page.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether a request speaks gRPC, by its content-type.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// See the module documentation.
#[derive(Clone)]
pub struct Dispatch {
    grpc: GrpcService,
    gateway: Gateway,
    documents: Arc<[Document]>,
    health: Arc<Health>,
    /// Whether `/console` is served.
    console: bool,
}

impl Dispatch {
    pub fn new(
        grpc: GrpcService,
        gateway: Gateway,
        documents: Vec<Document>,
        health: Arc<Health>,
        console: bool,
    ) -> Dispatch {
        Dispatch {
            grpc,
            gateway,
            documents: documents.into(),
            health,
            console,
        }
    }
}

impl tower::Service<Request<tonic::body::Body>> for Dispatch {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each request is served by clones that are made ready as it is dispatched.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        if is_grpc(request.headers()) {
            let grpc = self.grpc.clone();
            return Box::pin(grpc.oneshot(request));
        }
        let path = request.uri().path();
        if let Some(probe) = Probe::at(path) {
            let (health, gateway) = (Arc::clone(&self.health), self.gateway.clone());
            return Box::pin(async move {
                let (status, body) = health.answer(probe).await;
                let path = request.uri().path();
                Ok(gateway.document(request.method(), path, status, (JSON, body)))
            });
        }
        if path == METRICS_PATH {
            let page = Bytes::from(crate::metrics::global().render());
            let response =
                self.gateway
                    .document(request.method(), path, StatusCode::OK, (OPENMETRICS, page));
            return Box::pin(std::future::ready(Ok(response)));
        }
        if let Some(asset) = self.console.then(|| console::asset(path)).flatten() {
            let mut response = self.gateway.document(
                request.method(),
                path,
                StatusCode::OK,
                (asset.content_type, Bytes::from_static(asset.body)),
            );
            console::protect(response.headers_mut());
            return Box::pin(std::future::ready(Ok(response)));
        }
        if let Some(document) = self.documents.iter().find(|document| document.path == path) {
            let response = self.gateway.document(
                request.method(),
                path,
                StatusCode::OK,
                (JSON, document.body.clone()),
            );
            Box::pin(std::future::ready(Ok(response)))
        } else {
            let gateway = self.gateway.clone();
            Box::pin(async move { Ok(gateway.handle(request).await) })
        }
    }
}

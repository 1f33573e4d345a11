//! The outermost layer of every call, gRPC or REST: its request id, its tracing span, and
//! one access-log line when it ends.
//!
//! The request id is the caller's `x-request-id` (if it is short, visible ASCII) or a new
//! one. It replaces the header on the request, so every layer and handler below sees the
//! same id (the gateway passes it into the gRPC call it makes), and the response echoes it.
//! The line, "call finished", has the protocol, the RPC, the REST route, the HTTP status,
//! the gRPC status and the latency; the span adds the request id, the HTTP method and the
//! path to it and to every other line of the call.
//!
//! The line has its own target, [`TARGET`], so a log filter can leave it out and keep
//! everything else: `--log-level info,imageplane::access=off`.
//!
//! The layer does not wrap response bodies (tower-http's trace layer did, and it cost
//! measurable throughput): a gRPC status is read from the response headers, where tonic puts
//! it for every failed unary call; a successful one carries it in the trailers, and is
//! logged as 0. The REST gateway reports its route and status in a
//! [`RestCall`](crate::gateway::RestCall) extension. Each call is counted in the metrics
//! ([`crate::metrics`]) with its latency.

use super::dispatch::is_grpc;
use crate::gateway::RestCall;
use http::{HeaderValue, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::{info, Instrument};

const X_REQUEST_ID: &str = "x-request-id";
/// The target of the access-log line (see the module documentation).
pub const TARGET: &str = "imageplane::access";
const MAX_REQUEST_ID_LEN: usize = 128;

/// Adds [`AccessLog`] around a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

/// The caller's request id if it is usable, else a new one. Marked sensitive: HPACK then
/// sends it literally instead of indexing it; every value is new, and indexing each one
/// cost more than the rest of a call.
fn request_id<B>(request: &Request<B>) -> HeaderValue {
    let mut id = request
        .headers()
        .get(X_REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_REQUEST_ID_LEN
                && bytes.iter().all(|byte| byte.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&crate::ids::new_random_id("req")).expect("ids are ASCII")
        });
    id.set_sensitive(true);
    id
}

impl<S, B, ResBody> tower::Service<Request<B>> for AccessLog<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = request_id(&request);
        request.headers_mut().insert(X_REQUEST_ID, id.clone());
        let grpc = is_grpc(request.headers());
        let span = tracing::info_span!(
            "call",
            request_id = %id.to_str().unwrap_or_default(),
            method = %request.method(),
            path = %request.uri().path(),
        );
        let rpc = if grpc {
            request.uri().path().to_string()
        } else {
            String::new()
        };
        // The service that was polled ready handles this call; a clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let started = Instant::now();
        Box::pin(
            async move {
                let mut response = inner.call(request).await?;
                let latency_us = started.elapsed().as_micros() as u64;
                let http_status = response.status().as_u16();
                if grpc {
                    let grpc_status = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .unwrap_or(0);
                    count("grpc", &rpc, grpc_status, started.elapsed());
                    info!(
                        target: TARGET,
                        protocol = "grpc",
                        rpc, http_status, grpc_status, latency_us, "call finished"
                    );
                } else {
                    let call = response.extensions().get::<RestCall>();
                    count(
                        "rest",
                        call.map_or("-", |call| &call.rpc),
                        call.map_or(0, |call| call.grpc_status),
                        started.elapsed(),
                    );
                    info!(
                        target: TARGET,
                        protocol = "rest",
                        rpc = call.map_or("-", |call| &call.rpc),
                        route = call.map_or("-", |call| &call.route),
                        http_status,
                        grpc_status = call.map_or(0, |call| call.grpc_status),
                        latency_us,
                        "call finished"
                    );
                }
                response.headers_mut().insert(X_REQUEST_ID, id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Counts a finished call in the metrics: by protocol, its RPC's service and method (those
/// the server knows; `unknown` for a REST call that reached none), and its code.
fn count(protocol: &'static str, rpc: &str, grpc_status: i32, took: std::time::Duration) {
    let metrics = crate::metrics::global();
    let (service, method) = crate::metrics::method_labels(rpc);
    let code = crate::error::Code::from_number(grpc_status).name();
    metrics
        .call_seconds
        .get_or_create(&crate::metrics::LatencyLabels {
            protocol,
            service,
            method,
        })
        .observe(took.as_secs_f64());
    metrics
        .calls
        .get_or_create(&crate::metrics::CallLabels {
            protocol,
            service,
            method,
            code,
        })
        .inc();
}

//! The tower layer around every call: a request id, a tracing span, one access-log line,
//! and the server's deadline.
//!
//! The request id comes from the caller's `x-request-id` header (if it is short, visible
//! ASCII) or is made up; the response echoes it, and every log line of the call carries
//! it. A call that runs past `--request-timeout` ends with DEADLINE_EXCEEDED. One layer
//! instead of tower-http's request-id and trace layers: this one does not wrap response
//! bodies, which measurably cost throughput (see the README's benchmark).

use http::{HeaderValue, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::{info, Instrument};

const X_REQUEST_ID: &str = "x-request-id";
const MAX_REQUEST_ID_LEN: usize = 128;

/// Adds [`RpcService`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct RpcLayer {
    /// Longest time one call may take; `None`: no server-side deadline (a deadline the
    /// client sends as `grpc-timeout` still applies).
    pub timeout: Option<Duration>,
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            timeout: self.timeout,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    timeout: Option<Duration>,
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
            HeaderValue::from_str(&crate::ids::new_id("req")).expect("ids are ASCII")
        });
    id.set_sensitive(true);
    id
}

impl<S, B> tower::Service<Request<B>> for RpcService<S>
where
    S: tower::Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let id = request_id(&request);
        let span = tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            request_id = %id.to_str().unwrap_or_default(),
        );
        // The service that was polled ready handles this call; a clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let timeout = self.timeout;
        let started = Instant::now();
        Box::pin(
            async move {
                let outcome = match timeout {
                    Some(timeout) => tokio::time::timeout(timeout, inner.call(request)).await,
                    None => Ok(inner.call(request).await),
                };
                let mut response = match outcome {
                    Ok(result) => result?,
                    Err(_) => tonic::Status::deadline_exceeded(format!(
                        "the call took longer than the server's request timeout ({})",
                        humantime::format_duration(timeout.unwrap_or_default())
                    ))
                    .into_http(),
                };
                response.headers_mut().insert(X_REQUEST_ID, id);
                // Unary calls that fail carry grpc-status in the headers; successful ones
                // end with status 0 in the trailers.
                let grpc_status = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("0");
                info!(
                    grpc_status,
                    latency_us = started.elapsed().as_micros() as u64,
                    "rpc finished"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

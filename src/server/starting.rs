//! The port answers from the moment it is bound: until the server has started (store open,
//! migrations applied, seeds loaded, services built), `GET /healthz` answers alive,
//! `GET /readyz` 503 "starting", a gRPC call UNAVAILABLE and a REST call 503, each saying
//! that the server is starting; from then on, every request goes to the server. A client
//! that connected early keeps its connection.

use super::access_log::AccessLog;
use super::dispatch::{is_grpc, Dispatch};
use super::health::Probe;
use futures_util::future::{Either, Ready};
use http::{header, HeaderValue, Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

/// The server's service once it has started.
pub type Started = Arc<OnceLock<AccessLog<Dispatch>>>;

/// Answers for the server while it starts, then passes every request to it.
#[derive(Clone)]
pub struct Starting {
    started: Started,
    /// This connection's copy of the started service, once there is one.
    ready: Option<AccessLog<Dispatch>>,
}

impl Starting {
    pub fn new(started: Started) -> Starting {
        Starting {
            started,
            ready: None,
        }
    }
}

/// What the server answers while it starts.
fn starting_answer<B>(request: &Request<B>) -> Response<tonic::body::Body> {
    const STARTING: &str = "imageplane is starting: try again when GET /readyz answers 200";
    if is_grpc(request.headers()) {
        return tonic::Status::unavailable(STARTING).into_http();
    }
    let (status, body) = match Probe::at(request.uri().path()) {
        Some(Probe::Live) => (StatusCode::OK, serde_json::json!({"status": "alive"})),
        Some(Probe::Ready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not ready", "reason": "starting"}),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"code": 14, "message": STARTING, "details": []}),
        ),
    };
    let mut response = Response::new(tonic::body::Body::new(http_body_util::Full::new(
        bytes::Bytes::from(body.to_string()),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl tower::Service<Request<tonic::body::Body>> for Starting {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Either<
        <AccessLog<Dispatch> as tower::Service<Request<tonic::body::Body>>>::Future,
        Ready<Result<Self::Response, Infallible>>,
    >;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.ready.is_none() {
            self.ready = self.started.get().cloned();
        }
        match &mut self.ready {
            Some(service) => service.poll_ready(context),
            None => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        match &mut self.ready {
            Some(service) => Either::Left(service.call(request)),
            None => Either::Right(futures_util::future::ready(Ok(starting_answer(&request)))),
        }
    }
}

//! One port, two protocols: a request whose content-type is `application/grpc` (or
//! `application/grpc+proto`, ...) goes to the gRPC services, anything else to the REST
//! gateway. Both answer with the same body type, so one connection can carry both.

use crate::gateway::Gateway;
use crate::rpc::GrpcService;
use http::{HeaderMap, Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::ServiceExt;

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
}

impl Dispatch {
    pub fn new(grpc: GrpcService, gateway: Gateway) -> Dispatch {
        Dispatch { grpc, gateway }
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
            Box::pin(grpc.oneshot(request))
        } else {
            let gateway = self.gateway.clone();
            Box::pin(async move { Ok(gateway.handle(request).await) })
        }
    }
}

//! The REST/JSON gateway (being built): every request that is not gRPC.

use crate::dispatch::GrpcService;
use http::{Request, Response};
use hyper::body::Incoming;

/// See the module documentation.
#[derive(Clone)]
pub struct Gateway {
    #[allow(dead_code)]
    grpc: GrpcService,
}

impl Gateway {
    pub fn new(grpc: GrpcService) -> Gateway {
        Gateway { grpc }
    }

    pub async fn handle(&self, _request: Request<Incoming>) -> Response<tonic::body::Body> {
        let body = r#"{"code":5,"message":"no route","details":[]}"#;
        Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(tonic::body::Body::new(http_body_util::Full::new(
                bytes::Bytes::from_static(body.as_bytes()),
            )))
            .unwrap()
    }
}

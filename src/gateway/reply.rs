//! From gRPC back to HTTP: a response message as proto3 JSON, an error as the JSON of its
//! google.rpc.Status (`{"code", "message", "details"}`) with the HTTP status of its code
//! ([`Code::wire`]), and the gateway's own refusals with theirs.
//!
//! JSON out is canonical proto3 JSON (prost-reflect): lowerCamelCase names, int64 as
//! strings, enums as names, Timestamp in RFC 3339, Any with "@type". Fields without
//! presence are written even when they hold their default (`"done": false`,
//! `"labels": {}`), as grpc-gateway v2 does, so a client can read every field it knows;
//! unset message fields and unset oneof members are left out.

use crate::error::{Code, Error};
use crate::pb::google::rpc::Status;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// A refusal by the gateway itself, before any RPC runs.
#[derive(Debug)]
pub enum Rejection {
    /// The request cannot become the RPC's request message (malformed JSON, a value of
    /// the wrong type, a parameter that names no field, ...).
    Invalid(Error),
    /// No route has this path.
    NoRoute { method: Method, path: String },
    /// Routes have this path, with other methods.
    WrongMethod(Vec<Method>),
    /// The body is larger than the limit.
    TooLarge { limit: usize },
    /// The body is not JSON.
    UnsupportedMediaType(String),
    /// The body did not arrive within `--request-receive-timeout`.
    NotReceived(String),
    /// Reading the body failed with this status (e.g. a buffer limit: RESOURCE_EXHAUSTED).
    Status(Status),
}

impl Rejection {
    /// The table of the gateway's own refusals: the HTTP status and the google.rpc.Code
    /// of each (grpc-gateway v2 answers a wrong method with 405 and UNIMPLEMENTED).
    fn status_and_code(&self) -> (StatusCode, Code) {
        match self {
            Rejection::Invalid(error) => (http_status(error.code()), error.code()),
            Rejection::NoRoute { .. } => (StatusCode::NOT_FOUND, Code::NotFound),
            Rejection::WrongMethod(_) => (StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented),
            Rejection::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, Code::OutOfRange),
            Rejection::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument)
            }
            Rejection::NotReceived(_) => (StatusCode::REQUEST_TIMEOUT, Code::DeadlineExceeded),
            Rejection::Status(status) => {
                let code = Code::from_number(status.code);
                (http_status(code), code)
            }
        }
    }

    /// The refusal as a google.rpc.Status.
    fn to_status(&self) -> Status {
        let (_, code) = self.status_and_code();
        let message = match self {
            Rejection::Invalid(error) => return error.to_rpc_status(),
            Rejection::Status(status) => return status.clone(),
            Rejection::NotReceived(message) => message.clone(),
            Rejection::NoRoute { method, path } => {
                format!("no route for {method} {path}; the routes are listed at /openapi.json")
            }
            Rejection::WrongMethod(allowed) => format!(
                "this path answers {} only",
                allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Rejection::TooLarge { limit } => {
                format!("the request body is larger than the limit of {limit} bytes")
            }
            Rejection::UnsupportedMediaType(content_type) => format!(
                "Content-Type {content_type:?} is not supported: send JSON (application/json)"
            ),
        };
        Status {
            code: code.number(),
            message,
            details: Vec::new(),
        }
    }

    /// The refusal as an HTTP response (with `Allow` for a wrong method).
    pub fn into_response(self, renderer: &Renderer) -> (Response<tonic::body::Body>, i32) {
        let (status_code, code) = self.status_and_code();
        let mut response = renderer.status_response(status_code, &self.to_status());
        if let Rejection::WrongMethod(allowed) = &self {
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
        (response, code.number())
    }
}

/// The HTTP status of a code.
pub fn http_status(code: Code) -> StatusCode {
    StatusCode::from_u16(code.http_status()).expect("the table holds valid statuses")
}

/// Renders messages and statuses as JSON responses.
#[derive(Debug, Clone)]
pub struct Renderer {
    pool: DescriptorPool,
}

impl Renderer {
    pub fn new(pool: DescriptorPool) -> Renderer {
        Renderer { pool }
    }

    /// A message as proto3 JSON.
    pub fn json(&self, message: &DynamicMessage) -> Result<Vec<u8>, serde_json::Error> {
        let mut buffer = Vec::with_capacity(256);
        let mut serializer = serde_json::Serializer::new(&mut buffer);
        message.serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )?;
        Ok(buffer)
    }

    /// A google.rpc.Status as the JSON error body. Details whose type this server does
    /// not know are left out rather than failing the response.
    pub fn status_json(&self, status: &Status) -> Vec<u8> {
        let descriptor = self
            .pool
            .get_message_by_name("google.rpc.Status")
            .expect("google.rpc.Status is in the descriptor set");
        let render = |status: &Status| {
            let mut message = DynamicMessage::new(descriptor.clone());
            message.transcode_from(status).ok()?;
            self.json(&message).ok()
        };
        render(status)
            .or_else(|| {
                render(&Status {
                    details: Vec::new(),
                    ..status.clone()
                })
            })
            .unwrap_or_else(|| {
                br#"{"code":13,"message":"the error could not be rendered","details":[]}"#.to_vec()
            })
    }

    /// An error response: the status's JSON with `http_status`, and for UNAUTHENTICATED
    /// (401) the `WWW-Authenticate` challenge RFC 6750 asks for.
    pub fn status_response(
        &self,
        http_status: StatusCode,
        status: &Status,
    ) -> Response<tonic::body::Body> {
        let mut response = json_response(http_status, self.status_json(status));
        if status.code == Code::Unauthenticated.number() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"imageplane\""),
            );
        }
        response
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<tonic::body::Body> {
    let mut response = Response::new(tonic::body::Body::new(http_body_util::Full::new(
        body.into(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

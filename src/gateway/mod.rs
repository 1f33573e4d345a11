//! The REST/JSON gateway: every request that is not gRPC (nor a plain document), with the
//! URLs, JSON and errors of Yandex Cloud's REST API, on the gRPC port.
//!
//! Routes come from the protos' `google.api.http` rules (`routes`, `template`). A request
//! becomes the protobuf request of its RPC (`transcode`), which goes to the same gRPC
//! services the gRPC clients reach, in-process, through the same layers ([`GrpcService`]:
//! authentication, call context, deadline), so every rule exists once. The
//! answer comes back as proto3 JSON, or as the JSON of its google.rpc.Status with the HTTP
//! status of its code (`reply`). A method that gRPC answers UNIMPLEMENTED answers 501
//! here, and works here as soon as it works there. [`Gateway::openapi`] is the OpenAPI
//! document of every route (`openapi`), which the server serves as a plain document
//! ([`Gateway::document`]).
//!
//! HEAD is answered wherever GET is, without the body; a path that is not UTF-8 once
//! percent-decoded is refused before routing.
//!
//! Headers: `Authorization`, `Idempotency-Key` and `X-Request-Id` pass into the call's
//! metadata, `Grpc-Metadata-NAME: value` as `NAME: value`. Limits: a body of at most
//! [`MAX_BODY_BYTES`] (larger: 413), JSON only (another Content-Type: 415).
//!
//! A method whose request or answer is `google.api.HttpBody` (the admin API's state
//! snapshots) takes or answers the HTTP body as it is, with its Content-Type, as
//! grpc-gateway does: a request body (at most [`MAX_RAW_BODY_BYTES`]) goes to the RPC as a
//! stream of parts, and the parts of a streamed answer are joined.
//!
//! Uses `rpc` (the service it calls) and the domain's validator (the constraints the
//! OpenAPI document states); never the server above it, nor an adapter directly.

mod json;
mod openapi;
mod reply;
mod routes;
mod template;
mod transcode;

use crate::domain::validation::Validator;
use crate::error::{Code, Error};
use crate::pb::google::rpc::Status;
use crate::rpc::GrpcService;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use prost::Message;
use prost_reflect::DynamicMessage;
use reply::{http_status, json_response, Rejection, Renderer};
use routes::{Lookup, Route, RouteTable};
use std::sync::Arc;
use tower::ServiceExt;

/// The largest request body accepted, in bytes (the same limit as a gRPC message).
pub const MAX_BODY_BYTES: usize = crate::rpc::MAX_REQUEST_BYTES;

/// The largest body of a route whose request is `google.api.HttpBody` (a state
/// snapshot), in bytes; the listener's per-connection budget
/// (`--connection-buffer-limit`) bounds it too.
pub const MAX_RAW_BODY_BYTES: usize = 512 << 20;
/// The parts such a body is sent to its RPC in (each under the gRPC message limit).
const RAW_PART_BYTES: usize = 1 << 20;

/// Request headers that pass into the call's metadata under their own name.
const FORWARDED_HEADERS: &[&str] = &["authorization", "idempotency-key", "x-request-id"];
/// `Grpc-Metadata-NAME` passes as `NAME`.
const METADATA_PREFIX: &str = "grpc-metadata-";

/// What the REST gateway tells the access log about a call: a response extension.
#[derive(Debug, Clone)]
pub struct RestCall {
    /// The route that matched, e.g. `POST /compute/v1/images` ("-" when none did).
    pub route: String,
    /// The RPC it called, e.g. `/yandex.cloud.compute.v1.ImageService/Create` ("-").
    pub rpc: String,
    /// The google.rpc.Code the call ended with.
    pub grpc_status: i32,
}

/// See the module documentation.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    grpc: GrpcService,
}

struct Shared {
    routes: RouteTable,
    renderer: Renderer,
    openapi: Bytes,
}

impl Gateway {
    /// The gateway of the named services (full names), calling `grpc`; `validator`
    /// gives the OpenAPI document its constraints.
    pub fn new(
        grpc: GrpcService,
        validator: &Validator,
        services: &[&str],
    ) -> Result<Gateway, String> {
        let pool = crate::pb::descriptor_pool().clone();
        let routes = RouteTable::build(&pool, services)?;
        let openapi = openapi::document(&pool, &routes, validator);
        Ok(Gateway {
            shared: Arc::new(Shared {
                routes,
                renderer: Renderer::new(pool),
                openapi: Bytes::from(openapi),
            }),
            grpc,
        })
    }

    /// The OpenAPI 3.1 document of every route, as JSON.
    pub fn openapi(&self) -> Bytes {
        self.shared.openapi.clone()
    }

    /// Answers a request for a plain document at `path` with `status` and `content_type`
    /// (GET, and HEAD without the body); the response carries a [`RestCall`] for the access
    /// log.
    pub fn document(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        (content_type, body): (&'static str, Bytes),
    ) -> Response<tonic::body::Body> {
        let length = body.len();
        let (mut response, call) = if method == Method::GET || method == Method::HEAD {
            let call = RestCall {
                route: format!("GET {path}"),
                rpc: "-".into(),
                grpc_status: 0,
            };
            let mut response = json_response(status, body);
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
            (response, call)
        } else {
            let rejection = Rejection::WrongMethod(vec![Method::GET, Method::HEAD]);
            let (response, grpc_status) = rejection.into_response(&self.shared.renderer);
            let call = RestCall {
                route: "-".into(),
                rpc: "-".into(),
                grpc_status,
            };
            (response, call)
        };
        response.extensions_mut().insert(call);
        if method == Method::HEAD {
            return without_body(response, length);
        }
        response
    }

    /// Answers one HTTP request; the response carries a [`RestCall`] for the access log.
    /// HEAD is answered as GET, without the body.
    pub async fn handle(&self, request: Request<tonic::body::Body>) -> Response<tonic::body::Body> {
        let head = request.method() == Method::HEAD;
        let (mut response, call) = self.respond(request).await;
        response.extensions_mut().insert(call);
        if head {
            let (parts, body) = response.into_parts();
            let length = body
                .collect()
                .await
                .map_or(0, |collected| collected.to_bytes().len());
            return without_body(
                Response::from_parts(parts, tonic::body::Body::empty()),
                length,
            );
        }
        response
    }

    async fn respond(
        &self,
        request: Request<tonic::body::Body>,
    ) -> (Response<tonic::body::Body>, RestCall) {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let renderer = &self.shared.renderer;
        let refuse = |rejection: Rejection, route: &str, rpc: &str| {
            let (response, grpc_status) = rejection.into_response(renderer);
            let call = RestCall {
                route: route.to_string(),
                rpc: rpc.to_string(),
                grpc_status,
            };
            (response, call)
        };
        if percent_encoding::percent_decode_str(&path)
            .decode_utf8()
            .is_err()
        {
            let bad = Error::InvalidArgument(format!(
                "the path {path} is not UTF-8 once percent-decoded"
            ));
            return refuse(Rejection::Invalid(bad), "-", "-");
        }
        let (route, bindings) = match self.shared.routes.lookup(&method, &path) {
            Lookup::Found(route, bindings) => (route, bindings),
            Lookup::WrongMethod(allowed) => {
                return refuse(Rejection::WrongMethod(allowed), "-", "-")
            }
            Lookup::BadPath(bad) => {
                return refuse(Rejection::Invalid(Error::InvalidArgument(bad.0)), "-", "-")
            }
            Lookup::NotFound => return refuse(Rejection::NoRoute { method, path }, "-", "-"),
        };
        match self.call(route, bindings, request).await {
            Ok((response, grpc_status)) => (
                response,
                RestCall {
                    route: route.display.clone(),
                    rpc: route.grpc_path.clone(),
                    grpc_status,
                },
            ),
            Err(rejection) => refuse(rejection, &route.display, &route.grpc_path),
        }
    }

    /// Transcodes the request, calls the RPC, and renders its answer.
    async fn call(
        &self,
        route: &Route,
        bindings: template::Bindings,
        request: Request<tonic::body::Body>,
    ) -> Result<(Response<tonic::body::Body>, i32), Rejection> {
        let (parts, body) = request.into_parts();
        let frames = match is_raw(&route.rpc.input()) {
            true => raw_frames(&parts.headers, body).await?,
            false => {
                let body = read_body(&parts.headers, body).await?;
                let message = transcode::request_bytes(route, bindings, parts.uri.query(), &body)
                    .map_err(Rejection::Invalid)?;
                let mut frames = BytesMut::with_capacity(5 + message.len());
                frame(&message, &mut frames);
                frames.freeze()
            }
        };
        let response = self
            .grpc
            .clone()
            .oneshot(grpc_request(
                route,
                &parts.headers,
                crate::rpc::layer::authority(&parts.uri, &parts.headers),
                frames,
            ))
            .await
            .unwrap_or_else(|never| match never {});
        Ok(self.translate(route, response).await)
    }

    /// The gRPC response as JSON, or its status as a JSON error.
    async fn translate(
        &self,
        route: &Route,
        response: Response<tonic::body::Body>,
    ) -> (Response<tonic::body::Body>, i32) {
        let renderer = &self.shared.renderer;
        let (parts, body) = response.into_parts();
        let failed = |status: Status| {
            let code = Code::from_number(status.code);
            (
                renderer.status_response(http_status(code), &status),
                status.code,
            )
        };
        let internal = |message: String| failed(Error::Internal(message).to_rpc_status());
        let collected = match body.collect().await {
            Ok(collected) => collected,
            Err(status) => return failed(rpc_status_of(&status)),
        };
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let status = tonic::Status::from_header_map(&parts.headers)
            .or_else(|| tonic::Status::from_header_map(&trailers));
        match status {
            Some(status) if status.code() == tonic::Code::Ok => {}
            Some(status) => return failed(rpc_status_of(&status)),
            None => {
                return internal(format!(
                    "{} answered without a gRPC status",
                    route.grpc_path
                ))
            }
        }
        let data = collected.to_bytes();
        if is_raw(&route.rpc.output()) {
            return match raw_response(&data) {
                Some(response) => (response, 0),
                None => internal(format!(
                    "{} answered with a malformed google.api.HttpBody stream",
                    route.grpc_path
                )),
            };
        }
        let Some(encoded) = unframe(&data).map(|(message, _)| message) else {
            return internal(format!(
                "{} answered with a malformed message frame",
                route.grpc_path
            ));
        };
        let message = match DynamicMessage::decode(route.rpc.output(), encoded) {
            Ok(message) => message,
            Err(error) => {
                return internal(format!(
                    "decoding the answer of {}: {error}",
                    route.grpc_path
                ))
            }
        };
        match renderer.json(&message) {
            Ok(json) => (json_response(StatusCode::OK, json), 0),
            Err(error) => internal(format!(
                "rendering the answer of {}: {error}",
                route.grpc_path
            )),
        }
    }
}

/// The body's bytes, at most `limit` (413 at once if its Content-Length says more),
/// copied frame by frame into one buffer: a frame's bytes may hold on to the
/// connection's whole read buffer, so a body sent as millions of 1-byte chunks, kept as
/// its frames, would hold far more memory than its bytes.
async fn collect_body(
    headers: &HeaderMap,
    mut body: tonic::body::Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Rejection::TooLarge { limit });
    }
    // What the client declares is not taken on trust beyond the first MiB.
    let reserve = declared.unwrap_or(0).min(1 << 20) as usize;
    let mut collected = BytesMut::with_capacity(reserve);
    while let Some(frame) = body.frame().await {
        // The listener's guard fails a body with a status: over a budget, late, or
        // malformed (a bad chunk, a body cut short: INVALID_ARGUMENT).
        let frame = frame.map_err(|status| match status.code() {
            tonic::Code::DeadlineExceeded => Rejection::NotReceived(status.message().to_string()),
            _ => Rejection::Status(rpc_status_of(&status)),
        })?;
        if let Some(data) = frame.data_ref() {
            if collected.len() + data.len() > limit {
                return Err(Rejection::TooLarge { limit });
            }
            collected.extend_from_slice(data);
        }
    }
    Ok(collected.freeze())
}

/// The answer to HEAD: GET's status and headers, no body, and the length the body had.
fn without_body(
    response: Response<tonic::body::Body>,
    length: usize,
) -> Response<tonic::body::Body> {
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Response::from_parts(parts, tonic::body::Body::empty())
}

/// The request body, at most [`MAX_BODY_BYTES`], and only JSON.
async fn read_body(headers: &HeaderMap, body: tonic::body::Body) -> Result<Bytes, Rejection> {
    let body = collect_body(headers, body, MAX_BODY_BYTES).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
            if !is_json(content_type) {
                return Err(Rejection::UnsupportedMediaType(
                    String::from_utf8_lossy(content_type.as_bytes()).into_owned(),
                ));
            }
        }
    }
    Ok(body)
}

/// `application/json` (any parameters) or a `+json` type.
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(text) = content_type.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Appends `message` as one uncompressed gRPC frame.
fn frame(message: &[u8], frames: &mut BytesMut) {
    frames.put_u8(0);
    frames.put_u32(message.len() as u32);
    frames.put_slice(message);
}

/// Whether a message is `google.api.HttpBody`: a body that is not JSON, passed as it is.
fn is_raw(message: &prost_reflect::MessageDescriptor) -> bool {
    message.full_name() == "google.api.HttpBody"
}

/// The request body of a route whose request is `google.api.HttpBody`, any media type,
/// at most [`MAX_RAW_BODY_BYTES`], as a stream of such messages (the body in parts of
/// [`RAW_PART_BYTES`], its Content-Type in the first), framed.
async fn raw_frames(headers: &HeaderMap, body: tonic::body::Body) -> Result<Bytes, Rejection> {
    let body = collect_body(headers, body, MAX_RAW_BODY_BYTES).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mut frames = BytesMut::with_capacity(body.len() + 64);
    for part in crate::pb::http_body_parts(content_type, &body, RAW_PART_BYTES) {
        frame(&part.encode_to_vec(), &mut frames);
    }
    Ok(frames.freeze())
}

/// The answer of a method that answers a stream of `google.api.HttpBody`: their data
/// joined as the body, with the first one's Content-Type; `None` if a frame is malformed.
fn raw_response(mut frames: &[u8]) -> Option<Response<tonic::body::Body>> {
    let mut body = BytesMut::new();
    let mut content_type = None;
    while !frames.is_empty() {
        let (message, rest) = unframe(frames)?;
        let part = crate::pb::google::api::HttpBody::decode(message).ok()?;
        if content_type.is_none() && !part.content_type.is_empty() {
            content_type = Some(part.content_type);
        }
        body.extend_from_slice(&part.data);
        frames = rest;
    }
    let mut response = Response::new(tonic::body::Body::new(Full::new(body.freeze())));
    let content_type = content_type.unwrap_or_else(|| "application/octet-stream".into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).ok()?,
    );
    Some(response)
}

/// The in-process gRPC request: its framed messages, and the headers that pass into its
/// metadata. The host and port the client used (`authority`) pass as the `host` header.
fn grpc_request(
    route: &Route,
    headers: &HeaderMap,
    authority: Option<String>,
    frames: Bytes,
) -> Request<tonic::body::Body> {
    let mut request = Request::new(tonic::body::Body::new(Full::new(frames)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = route.grpc_path.parse().expect("gRPC paths are valid URIs");
    *request.version_mut() = http::Version::HTTP_2;
    let metadata = request.headers_mut();
    metadata.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    metadata.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(value) = authority.and_then(|value| HeaderValue::from_str(&value).ok()) {
        metadata.insert(header::HOST, value);
    }
    for name in FORWARDED_HEADERS {
        for value in headers.get_all(*name) {
            metadata.append(HeaderName::from_static(name), value.clone());
        }
    }
    for (name, value) in headers {
        if let Some(inner) = name.as_str().strip_prefix(METADATA_PREFIX) {
            let reserved = matches!(
                inner,
                "content-type" | "te" | "grpc-status" | "grpc-message"
            );
            if let (false, Ok(inner)) = (reserved, HeaderName::from_bytes(inner.as_bytes())) {
                metadata.append(inner, value.clone());
            }
        }
    }
    request
}

/// The message inside the first gRPC frame (flag 0: uncompressed), and what follows.
fn unframe(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&flag, rest) = data.split_first()?;
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    (flag == 0).then_some(())?;
    Some((rest.get(4..4 + length)?, rest.get(4 + length..)?))
}

/// A tonic status as a google.rpc.Status, with the details it carries.
fn rpc_status_of(status: &tonic::Status) -> Status {
    if !status.details().is_empty() {
        if let Ok(decoded) = Status::decode(status.details()) {
            return decoded;
        }
    }
    Status {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_pass_into_the_calls_metadata() {
        let routes = routes::tests::table();
        let route = match routes.lookup(&Method::GET, "/operations/opr1") {
            Lookup::Found(route, _) => route.clone(),
            other => panic!("{other:?}"),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer t1.secret"),
            ("idempotency-key", "key-1"),
            ("x-request-id", "req-1"),
            ("grpc-metadata-x-custom", "yes"),
            ("grpc-metadata-grpc-timeout", "5S"),
            ("grpc-metadata-content-type", "text/plain"),
            ("cookie", "not-forwarded"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let request = grpc_request(
            &route,
            &headers,
            None,
            Bytes::from_static(b"\x00\x00\x00\x00\x06\x0a\x04opr1"),
        );
        assert_eq!(
            request.uri(),
            "/yandex.cloud.operation.OperationService/Get"
        );
        let metadata = request.headers();
        assert_eq!(metadata["authorization"], "Bearer t1.secret");
        assert_eq!(metadata["idempotency-key"], "key-1");
        assert_eq!(metadata["x-request-id"], "req-1");
        assert_eq!(metadata["x-custom"], "yes");
        assert_eq!(metadata["grpc-timeout"], "5S");
        assert_eq!(metadata["content-type"], "application/grpc");
        assert!(metadata.get("cookie").is_none());
    }

    #[test]
    fn the_operation_of_a_delete_renders_its_empty_response() {
        let pool = crate::pb::descriptor_pool().clone();
        let operation = crate::pb::operation::Operation {
            id: "opr1".into(),
            done: true,
            result: Some(crate::pb::operation::operation::Result::Response(
                prost_types::Any::from_msg(&()).unwrap(),
            )),
            ..Default::default()
        };
        let mut message = DynamicMessage::new(
            pool.get_message_by_name("yandex.cloud.operation.Operation")
                .unwrap(),
        );
        message.transcode_from(&operation).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&Renderer::new(pool).json(&message).unwrap()).unwrap();
        assert_eq!(
            json["response"]["@type"],
            "type.googleapis.com/google.protobuf.Empty"
        );
        assert_eq!(json["done"], true);
        assert_eq!(json["description"], "");
    }

    #[test]
    fn frames_are_read_only_when_whole_and_uncompressed() {
        assert_eq!(
            unframe(b"\x00\x00\x00\x00\x02abc"),
            Some((&b"ab"[..], &b"c"[..]))
        );
        assert_eq!(unframe(b"\x00\x00\x00\x00\x03ab"), None);
        assert_eq!(unframe(b"\x01\x00\x00\x00\x02ab"), None);
        assert_eq!(unframe(b""), None);
    }
}

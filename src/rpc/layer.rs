//! The layer around every RPC, whether it arrived over gRPC or through the REST gateway
//! (which calls the same gRPC services in-process): it decides who calls (`auth`), builds
//! the call's [`CallContext`] into the request's extensions for the API adapters, and
//! enforces the deadline. A call without valid credentials ends here, UNAUTHENTICATED. A
//! fault rule of the admin API ([`Faults`]) that fires for the method delays the call or
//! answers its error here, before the adapter.
//! An UNIMPLEMENTED answer leaves saying which method is not served
//! ([`explain_unimplemented`]).
//!
//! The deadline is the shorter of `--request-timeout` (when set) and the caller's own
//! `grpc-timeout` header (REST callers can send it as `Grpc-Metadata-Grpc-Timeout`). A call
//! that runs past it ends with DEADLINE_EXCEEDED. tonic's transport server did this for
//! `grpc-timeout`; imageplane serves its own connections (see `listener`), so it is here.

use crate::domain::call::CallContext;
use crate::faults::Faults;
use crate::rpc::auth::Authenticator;
use http::{HeaderMap, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Adds [`RpcService`] around a service.
#[derive(Clone)]
pub struct RpcLayer {
    /// Longest time one call may take; `None`: no server-side deadline (a deadline the
    /// client sends as `grpc-timeout` still applies).
    pub timeout: Option<Duration>,
    pub authenticator: Arc<Authenticator>,
    pub faults: Arc<Faults>,
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            timeout: self.timeout,
            authenticator: Arc::clone(&self.authenticator),
            faults: Arc::clone(&self.faults),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    timeout: Option<Duration>,
    authenticator: Arc<Authenticator>,
    faults: Arc<Faults>,
}

/// The host and port a client used to reach the server: the URI's authority (HTTP/2's
/// `:authority`), else the `host` header (HTTP/1.1, and the REST gateway's inner calls).
pub fn authority(uri: &http::Uri, headers: &HeaderMap) -> Option<String> {
    uri.authority()
        .map(|authority| authority.as_str().to_string())
        .or_else(|| header_text(headers, "host"))
        .filter(|authority| !authority.is_empty())
}

/// A header's value as text, if it is text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// The caller's deadline from a `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S,
/// m, u, n). A malformed value is ignored, as tonic did.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Which deadline applies to a call, and whose it is.
fn deadline(server: Option<Duration>, headers: &HeaderMap) -> Option<(Duration, &'static str)> {
    match (server, grpc_timeout(headers)) {
        (Some(server), Some(client)) if client < server => Some((client, "the caller's deadline")),
        (Some(server), _) => Some((server, "the server's request timeout")),
        (None, Some(client)) => Some((client, "the caller's deadline")),
        (None, None) => None,
    }
}

/// What tonic's generated servers say when a method has no implementation: a served
/// service's method that its adapter leaves to the generated default.
const TONIC_STUB_MESSAGE: &str = "Not yet implemented";

/// An UNIMPLEMENTED answer that says what is not served. tonic's own say nothing useful:
/// "" for an unknown service or method, [`TONIC_STUB_MESSAGE`] for a method of the API
/// that imageplane does not serve. Any other answer passes unchanged.
pub fn explain_unimplemented(
    path: &str,
    response: Response<tonic::body::Body>,
) -> Response<tonic::body::Body> {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    let says_nothing = status.message().is_empty() || status.message() == TONIC_STUB_MESSAGE;
    if status.code() != tonic::Code::Unimplemented || !says_nothing {
        return response;
    }
    let method = path
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(service, method)| {
            crate::pb::descriptor_pool()
                .get_service_by_name(service)?
                .methods()
                .find(|candidate| candidate.name() == method)
        });
    let explained = match method {
        Some(method) => format!(
            "{} is not served by imageplane (the API declares it; this server does not \
             implement it)",
            method.full_name()
        ),
        None => format!("{path}: this server has no such service or method"),
    };
    tonic::Status::unimplemented(explained).into_http()
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let deadline = deadline(self.timeout, request.headers());
        let authenticator = Arc::clone(&self.authenticator);
        let faults = Arc::clone(&self.faults);
        // The service that was polled ready handles this call; a clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let started = Instant::now();
        Box::pin(async move {
            let call = async move {
                let path = request.uri().path().to_string();
                let path_of_call = path.clone();
                let caller = match authenticator.caller(&path, request.headers()).await {
                    Ok(caller) => caller,
                    Err(error) => return Ok(tonic::Status::from(error).into_http()),
                };
                if let Some(injected) = faults.on_call(&path) {
                    tokio::time::sleep(injected.delay).await;
                    if let Some(status) = injected.error {
                        let code = tonic::Code::from_i32(status.code);
                        return Ok(tonic::Status::new(code, status.message).into_http());
                    }
                }
                let headers = request.headers();
                let context = CallContext {
                    caller,
                    authority: authority(request.uri(), headers),
                    request_id: header_text(headers, "x-request-id").unwrap_or_default(),
                    // Bytes that are not text are kept (mended) for the domain to refuse:
                    // a key that cannot be read is an error, not an absent key.
                    idempotency_key: headers
                        .get("idempotency-key")
                        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
                    deadline: deadline.map(|(limit, _)| started + limit),
                    method: path,
                    claim: None,
                };
                request.extensions_mut().insert(context);
                let response = inner.call(request).await?;
                Ok(explain_unimplemented(&path_of_call, response))
            };
            let Some((limit, whose)) = deadline else {
                return call.await;
            };
            match tokio::time::timeout(limit, call).await {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call took longer than {whose} ({})",
                    humantime::format_duration(limit)
                ))
                .into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timeout: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", timeout.parse().unwrap());
        headers
    }

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        let read = |value: &str| grpc_timeout(&headers(value));
        assert_eq!(read("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(read("3M"), Some(Duration::from_secs(180)));
        assert_eq!(read("5S"), Some(Duration::from_secs(5)));
        assert_eq!(read("250m"), Some(Duration::from_millis(250)));
        assert_eq!(read("7u"), Some(Duration::from_micros(7)));
        assert_eq!(read("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }

    /// An endpoint service that implements nothing: every method is tonic's default.
    struct NothingServed;

    #[tonic::async_trait]
    impl crate::pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointService
        for NothingServed
    {
    }

    fn grpc_message(response: &Response<tonic::body::Body>) -> String {
        tonic::Status::from_header_map(response.headers())
            .map(|status| status.message().to_string())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn unimplemented_answers_say_what_is_not_served() {
        use crate::pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointServiceServer;
        use tower::ServiceExt;
        let path = "/yandex.cloud.endpoint.ApiEndpointService/List";
        let request = Request::post(path)
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"\0\0\0\0\0"),
            )))
            .unwrap();
        let response = ApiEndpointServiceServer::new(NothingServed)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(
            grpc_message(&response),
            TONIC_STUB_MESSAGE,
            "tonic's stub text"
        );
        let explained = explain_unimplemented(path, response);
        assert_eq!(
            grpc_message(&explained),
            "yandex.cloud.endpoint.ApiEndpointService.List is not served by imageplane (the \
             API declares it; this server does not implement it)"
        );
        let unknown = explain_unimplemented(
            "/no.Such/Method",
            tonic::Status::unimplemented("").into_http(),
        );
        assert_eq!(
            grpc_message(&unknown),
            "/no.Such/Method: this server has no such service or method"
        );
        let other = explain_unimplemented(
            path,
            tonic::Status::unimplemented("said by the adapter").into_http(),
        );
        assert_eq!(grpc_message(&other), "said by the adapter");
    }

    #[test]
    fn the_shorter_deadline_wins() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(
            deadline(second, &headers("100m")),
            Some((Duration::from_millis(100), "the caller's deadline"))
        );
        assert_eq!(
            deadline(second, &headers("5S")),
            Some((Duration::from_secs(1), "the server's request timeout"))
        );
        assert_eq!(deadline(None, &HeaderMap::new()), None);
    }
}

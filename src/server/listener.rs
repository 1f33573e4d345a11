//! The accept loop and what every connection may hold: one TCP listener serves gRPC and REST
//! alike, over HTTP/1.1 and HTTP/2 (h2c, prior knowledge), through hyper-util's auto builder,
//! in plaintext or, with a [`TlsAcceptor`], over TLS (the handshake runs in the connection's
//! own task, within `first_request_timeout`, so a slow handshake never holds the loop).
//!
//! - Every accepted socket gets TCP_NODELAY: a unary call's response is a few small writes,
//!   and without it each waits for Nagle's algorithm and the client's delayed ACK (about
//!   40 ms a call on one connection).
//! - At most [`ConnectionLimits::max_connections`] connections are open; at the cap the
//!   listener stops accepting (new clients wait in the kernel's backlog) until one closes.
//!   So descriptors run out only when something else uses them; an accept error (EMFILE,
//!   ENFILE, ENOBUFS, ...) still pauses, from 10 ms doubling to 1 s, instead of spinning.
//! - A connection that has not sent the headers of its first request within
//!   `first_request_timeout` (a half-sent HTTP/2 preface, a silent socket) is closed; one
//!   with no call in flight for `idle_timeout` is shut down gracefully (clients reconnect).
//! - Every request body is a [`GuardedBody`]: bytes held by unfinished requests are bounded
//!   per connection and in all, and a request must arrive within `receive_timeout`.
//!
//! A stop closes the listener at once, asks every connection to finish gracefully (HTTP/2
//! GOAWAY; HTTP/1.1 closes after the response in flight), and closes the connections still
//! open after the grace period.

use crate::server::dispatch::is_grpc;
use crate::server::request_budget::{Accounting, Budget, GuardedBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The most calls one HTTP/2 connection may have in flight
/// (SETTINGS_MAX_CONCURRENT_STREAMS); clients queue the rest on their side.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;

/// How long an HTTP/1.1 client may take to send a request's headers (hyper's default,
/// enforced because a timer is set).
pub const HTTP1_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The first pause after a failed accept; it doubles up to [`MAX_ACCEPT_BACKOFF`].
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What connections and unfinished requests may hold; every field has a flag.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once (`--max-connections`).
    pub max_connections: usize,
    /// Time from accept to the first request's headers (`--first-request-timeout`).
    pub first_request_timeout: Duration,
    /// Time without a call in flight before a connection is shut down (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// Time from a request's headers to the end of its body (`--request-receive-timeout`).
    pub receive_timeout: Duration,
    /// Request body bytes one connection's unfinished requests may hold
    /// (`--connection-buffer-limit`).
    pub connection_buffer: usize,
    /// Request body bytes all unfinished requests may hold (`--total-buffer-limit`).
    pub total_buffer: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1000,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            receive_timeout: Duration::from_secs(30),
            connection_buffer: 16 << 20,
            total_buffer: 256 << 20,
        }
    }
}

/// The connection builder with imageplane's HTTP settings.
fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HTTP1_HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        // No keep-alive pings of the server's own: --idle-timeout closes idle connections.
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    builder
}

/// Accepts the next connection and sets TCP_NODELAY on it.
pub async fn accept(listener: &TcpListener) -> std::io::Result<TcpStream> {
    let (stream, _peer) = listener.accept().await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Serves `service` on every connection `listener` accepts until `shutdown` resolves;
/// then calls `on_stop`, closes the listener and lets the open connections finish for
/// at most `grace`.
#[allow(clippy::too_many_arguments)]
pub async fn serve_connections<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    limits: ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
    on_stop: impl Future<Output = ()>,
) where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = connection_builder();
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let total_buffer = Arc::new(Budget::new(limits.total_buffer, "the server's"));
    let (sampled_permits, sampled_buffer) =
        (Arc::downgrade(&permits), Arc::downgrade(&total_buffer));
    let max_connections = limits.max_connections;
    crate::metrics::global().sample_with(move |metrics| {
        match (sampled_permits.upgrade(), sampled_buffer.upgrade()) {
            (Some(permits), Some(buffer)) => {
                let open = max_connections.saturating_sub(permits.available_permits());
                metrics.open_connections.set(open as i64);
                metrics.request_body_bytes.set(buffer.used() as i64);
                true
            }
            _ => false,
        }
    });
    let (stopping, stop_signal) = watch::channel(false);
    let close_now = CancellationToken::new();
    let mut backoff = FIRST_ACCEPT_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                warn!(
                    max_connections = limits.max_connections,
                    "at the connection limit: new connections wait until one closes"
                );
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = Arc::clone(&permits).acquire_owned() => {
                        permit.expect("the semaphore is never closed")
                    }
                }
            }
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let stream = match stream {
            Ok(stream) => {
                backoff = FIRST_ACCEPT_BACKOFF;
                stream
            }
            Err(error) => {
                warn!(%error, backoff = ?backoff, "accepting a connection failed; pausing");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let activity = Arc::new(Activity::new());
        let connection_service = ConnectionService {
            inner: service.clone(),
            activity: Arc::clone(&activity),
            connection_buffer: Arc::new(Budget::new(limits.connection_buffer, "this connection's")),
            total_buffer: Arc::clone(&total_buffer),
            receive_timeout: limits.receive_timeout,
        };
        // The first request (a TLS handshake included) is due this long after the accept.
        let first_request_by = Instant::now() + limits.first_request_timeout;
        let builder = builder.clone();
        let limits = Arc::clone(&limits);
        let stop_signal = stop_signal.clone();
        let close = close_now.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(connection_service);
            match tls {
                None => {
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let deadline = first_request_by;
                    drive_connection(connection, activity, &limits, deadline, stop_signal, close)
                        .await;
                }
                Some(tls) => {
                    let handshake = tokio::time::timeout_at(first_request_by, tls.accept(stream));
                    let stream = tokio::select! {
                        handshake = handshake => match handshake {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                debug!(%error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!("TLS handshake not finished in time: closing");
                                return;
                            }
                        },
                        () = close.cancelled() => return,
                    };
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let deadline = first_request_by;
                    drive_connection(connection, activity, &limits, deadline, stop_signal, close)
                        .await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    on_stop.await;
    let open = limits.max_connections - permits.available_permits();
    info!(
        connections = open,
        "stopped accepting; finishing open connections"
    );
    let all_closed = permits.acquire_many(limits.max_connections as u32);
    tokio::select! {
        _ = all_closed => {}
        () = tokio::time::sleep(grace) => {
            warn!(
                grace = %humantime::format_duration(grace),
                "grace period over: closing the connections that are still open"
            );
            close_now.cancel();
        }
    }
}

/// Serves one connection until it ends, closing it if its first request does not come
/// in time, shutting it down gracefully when idle or when the server stops.
async fn drive_connection<C, E>(
    connection: C,
    activity: Arc<Activity>,
    limits: &ConnectionLimits,
    first_request_by: Instant,
    mut stop_signal: watch::Receiver<bool>,
    close: CancellationToken,
) where
    C: Future<Output = Result<(), E>> + GracefulShutdown,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let first_request_deadline = tokio::time::sleep_until(first_request_by);
    tokio::pin!(first_request_deadline);
    let mut idle_check = tokio::time::interval(
        limits
            .idle_timeout
            .div_f64(4.0)
            .max(Duration::from_millis(10)),
    );
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutting_down = *stop_signal.borrow();
    if shutting_down {
        connection.as_mut().shut_down_gracefully();
    }
    // A select's condition is read when it is entered, not when a branch fires: the
    // deadline checks again whether a request came meanwhile (one may be running now).
    let mut first_request_due = true;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = &mut first_request_deadline, if first_request_due => {
                if activity.has_seen_a_request() {
                    first_request_due = false;
                    continue;
                }
                debug!(
                    timeout = %humantime::format_duration(limits.first_request_timeout),
                    "no request on a new connection in time: closing it"
                );
                return;
            }
            _ = idle_check.tick(), if !shutting_down => {
                if activity.idle_for() >= limits.idle_timeout {
                    debug!("connection idle: shutting it down");
                    connection.as_mut().shut_down_gracefully();
                    shutting_down = true;
                }
            }
            changed = stop_signal.changed(), if !shutting_down => {
                if changed.is_err() || *stop_signal.borrow() {
                    connection.as_mut().shut_down_gracefully();
                    shutting_down = true;
                }
            }
            () = close.cancelled() => return,
        }
    }
}

/// A connection that can be asked to finish what it has and close.
trait GracefulShutdown {
    fn shut_down_gracefully(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulShutdown
    for auto::Connection<
        'static,
        TokioIo<I>,
        TowerToHyperService<ConnectionService<S>>,
        TokioExecutor,
    >
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// When a connection was last busy, and whether it has had a request at all.
#[derive(Debug)]
struct Activity {
    seen_request: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` when the last call ended.
    last_ended_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            seen_request: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_ended_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn has_seen_a_request(&self) -> bool {
        self.seen_request.load(Ordering::Acquire)
    }

    fn call_started(&self) {
        self.seen_request.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn call_ended(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_ended_ms.store(now, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// How long the connection has had no call in flight (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ended_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Ends a call in the connection's [`Activity`] when dropped (the call's future finished
/// or was dropped).
struct CallInFlight(Arc<Activity>);

impl Drop for CallInFlight {
    fn drop(&mut self) {
        self.0.call_ended();
    }
}

/// The service of one connection: guards each request's body and tracks activity.
#[derive(Clone)]
struct ConnectionService<S> {
    inner: S,
    activity: Arc<Activity>,
    connection_buffer: Arc<Budget>,
    total_buffer: Arc<Budget>,
    receive_timeout: Duration,
}

impl<S, B> tower::Service<http::Request<Incoming>> for ConnectionService<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<B>, Infallible>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<Incoming>) -> Self::Future {
        self.activity.call_started();
        let in_flight = CallInFlight(Arc::clone(&self.activity));
        let accounting = if is_grpc(request.headers()) {
            Accounting::GrpcMessages
        } else {
            Accounting::Bytes
        };
        let request = request.map(|body| {
            tonic::body::Body::new(GuardedBody::new(
                body,
                accounting,
                Arc::clone(&self.connection_buffer),
                Arc::clone(&self.total_buffer),
                self.receive_timeout,
            ))
        });
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(in_flight);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let accepted = accept(&listener).await.unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_calls_in_flight() {
        let activity = Activity::new();
        assert!(!activity.has_seen_a_request());
        activity.call_started();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(activity.idle_for(), Duration::ZERO);
        activity.call_ended();
        assert!(activity.has_seen_a_request());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(activity.idle_for(), Duration::from_secs(3));
    }
}

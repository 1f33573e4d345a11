//! The accept loop and the HTTP settings of every connection: one TCP listener serves
//! gRPC and REST alike, over HTTP/1.1 and HTTP/2 (h2c, prior knowledge), through hyper-util's
//! auto builder.
//!
//! Every accepted socket gets TCP_NODELAY: a unary call's response is a few small writes,
//! and without it each waits for Nagle's algorithm and the client's delayed ACK (about 40 ms
//! a call on one connection). An accept error (EMFILE, ENFILE, ENOBUFS, ...) backs off,
//! from 10 ms doubling to 1 s, instead of spinning a core on a listener that stays readable.
//!
//! A stop closes the listener at once, asks every connection to finish gracefully (HTTP/2
//! GOAWAY; HTTP/1.1 closes after the response in flight), and closes the connections still
//! open after the grace period.

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The most calls one HTTP/2 connection may have in flight
/// (SETTINGS_MAX_CONCURRENT_STREAMS); clients queue the rest on their side.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;

/// How long an HTTP/2 keep-alive ping may go unanswered (tonic's default; pings are sent
/// only when the client asks for them, as with tonic's server).
pub const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long an HTTP/1.1 client may take to send a request's headers (hyper's default,
/// enforced because a timer is set).
pub const HTTP1_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The first pause after a failed accept; it doubles up to [`MAX_ACCEPT_BACKOFF`].
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The connection builder with imageplane's limits.
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
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT);
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
pub async fn serve_connections<S, B>(
    listener: TcpListener,
    service: S,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
    on_stop: impl Future<Output = ()>,
) where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = connection_builder();
    let graceful = GracefulShutdown::new();
    let close_now = CancellationToken::new();
    let mut backoff = FIRST_ACCEPT_BACKOFF;
    tokio::pin!(shutdown);
    loop {
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
        let connection = builder
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        let close = close_now.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        debug!(%error, "connection ended with an error");
                    }
                }
                () = close.cancelled() => {}
            }
        });
    }
    drop(listener);
    on_stop.await;
    info!(
        connections = graceful.count(),
        "stopped accepting; finishing open connections"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            warn!(
                grace = %humantime::format_duration(grace),
                "grace period over: closing the connections that are still open"
            );
            close_now.cancel();
        }
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
}

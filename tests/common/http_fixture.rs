//! A loopback HTTP/1.1 server for import tests, written on plain Tokio sockets so that it
//! can misbehave on purpose. Paths choose the behaviour:
//!
//! - `/files/NAME`: the bytes registered under NAME, with Content-Length; honours
//!   `Range: bytes=N-` with 206 Partial Content;
//! - `/slow/NAME`: the same, 64 KiB every 50 ms (for cancellation; it records when the
//!   client went away);
//! - `/truncate/NAME`: announces the full length and sends half, then closes (every
//!   time, so retries cannot help unless the Range resumes... and it ignores Range);
//! - `/flaky/NAME`: the first request sends half then closes; later ones honour Range;
//! - `/badrange/NAME`: like flaky, but answers a Range with 206 from byte 0 (the wrong
//!   offset);
//! - `/restarting/NAME`: every plain request sends a third and closes; every resume is
//!   answered from byte 0 (another offset than asked), so the transfer starts over;
//! - `/trickle/NAME`: announces the full length and sends one byte every 100 ms;
//! - `/shrinking/NAME`: announces the full length and sends 30%, then answers a resume
//!   with 416 and `Content-Range: bytes */SENT` (the file "is" as long as what was sent);
//! - `/stalling/NAME`: the first request gets the full length announced and half of the
//!   bytes, then nothing more for as long as the client stays; later ones are served as
//!   `/files/` (so a client can be stopped mid-transfer however slow the machine is);
//! - `/silent/ANY`: accepts the request and never answers;
//! - `/status/CODE`: an empty answer with that status;
//! - `/redirect/N/REST`: N redirects, then `/REST`;
//! - `/redirect-to/HOST:PORT/REST`: one redirect to another host.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    files: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    requests: AtomicUsize,
    /// When a `/slow/` client disconnected.
    slow_client_gone: Mutex<Option<Instant>>,
    flaky_served: Mutex<HashMap<String, usize>>,
}

/// A running fixture server; it stops with the test's runtime.
#[derive(Clone)]
pub struct HttpFixture {
    pub address: std::net::SocketAddr,
    state: Arc<State>,
}

impl HttpFixture {
    pub async fn start() -> HttpFixture {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, Arc::clone(&serving)));
            }
        });
        HttpFixture { address, state }
    }

    /// The same server over TLS, with this certificate and key (DER).
    pub async fn start_tls(certificate: Vec<u8>, key: Vec<u8>) -> HttpFixture {
        use tokio_rustls::rustls;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: fine.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        handle(stream, state).await;
                    }
                });
            }
        });
        HttpFixture { address, state }
    }

    /// Registers bytes under a name.
    pub fn add(&self, name: &str, bytes: Vec<u8>) {
        self.state
            .files
            .lock()
            .unwrap()
            .insert(name.to_string(), Arc::new(bytes));
    }

    /// The URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The https URL of a path on this server started with [`HttpFixture::start_tls`], by
    /// the name its certificate is for.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// When the client of a `/slow/` transfer went away, if it has.
    pub fn slow_client_gone(&self) -> Option<Instant> {
        *self.state.slow_client_gone.lock().unwrap()
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Arc<State>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&request).to_string();
    // The path without its query (sources of presigned URLs ignore it too).
    let path = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let range_start: Option<usize> = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.eq_ignore_ascii_case("range") {
            return None;
        }
        value
            .trim()
            .strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse()
            .ok()
    });
    let file = |name: &str| state.files.lock().unwrap().get(name).cloned();

    if let Some(code) = path.strip_prefix("/status/") {
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 {code} Fixture\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await;
        return;
    }
    if let Some(rest) = path.strip_prefix("/redirect-to/") {
        let location = format!("http://{rest}");
        let _ = redirect(&mut stream, &location).await;
        return;
    }
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let (count, target) = rest.split_once('/').unwrap_or(("0", ""));
        let count: usize = count.parse().unwrap_or(0);
        let location = if count <= 1 {
            format!("/{target}")
        } else {
            format!("/redirect/{}/{target}", count - 1)
        };
        let _ = redirect(&mut stream, &location).await;
        return;
    }
    if path.starts_with("/silent/") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    let (mode, name) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    let Some(bytes) = file(name) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    };
    match mode {
        "files" => {
            let _ = send(&mut stream, &bytes, range_start, bytes.len()).await;
        }
        "truncate" => {
            let _ = send(&mut stream, &bytes, None, bytes.len() / 2).await;
        }
        "flaky" => {
            let served = {
                let mut served = state.flaky_served.lock().unwrap();
                let count = served.entry(name.to_string()).or_insert(0);
                *count += 1;
                *count
            };
            let upto = if served == 1 {
                bytes.len() / 2
            } else {
                bytes.len()
            };
            let _ = send(&mut stream, &bytes, range_start, upto).await;
        }
        "badrange" => {
            let served = {
                let mut served = state.flaky_served.lock().unwrap();
                let count = served.entry(format!("bad:{name}")).or_insert(0);
                *count += 1;
                *count
            };
            if served == 1 {
                let _ = send(&mut stream, &bytes, None, bytes.len() / 2).await;
            } else if range_start.is_some() {
                let _ = send(&mut stream, &bytes, Some(0), bytes.len()).await;
            } else {
                let _ = send(&mut stream, &bytes, None, bytes.len()).await;
            }
        }
        "stalling" => {
            let served = {
                let mut served = state.flaky_served.lock().unwrap();
                let count = served.entry(format!("stalling:{name}")).or_insert(0);
                *count += 1;
                *count
            };
            if served > 1 {
                let _ = send(&mut stream, &bytes, range_start, bytes.len()).await;
                return;
            }
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            if stream.write_all(header.as_bytes()).await.is_err()
                || stream.write_all(&bytes[..bytes.len() / 2]).await.is_err()
            {
                return;
            }
            // Until the client goes away.
            let mut probe = [0u8; 1];
            while let Ok(read) = stream.read(&mut probe).await {
                if read == 0 {
                    return;
                }
            }
        }
        "restarting" => {
            let third = bytes.len() / 3;
            let from = range_start.map(|_| 0);
            let _ = send(&mut stream, &bytes, from, third).await;
        }
        "shrinking" => {
            let sent = bytes.len() * 3 / 10;
            if range_start.is_some() {
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{sent}\r\n\
                             content-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            } else {
                let _ = send(&mut stream, &bytes, None, sent).await;
            }
        }
        "trickle" => {
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            if stream.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            for byte in bytes.iter() {
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        "slow" => {
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            if stream.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            for chunk in bytes.chunks(64 * 1024) {
                if stream.write_all(chunk).await.is_err() {
                    *state.slow_client_gone.lock().unwrap() = Some(Instant::now());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                // A closed peer shows up as a readable EOF before writes fail.
                let mut probe = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
                {
                    *state.slow_client_gone.lock().unwrap() = Some(Instant::now());
                    return;
                }
            }
        }
        _ => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    }
}

async fn redirect<S: AsyncWrite + Unpin>(stream: &mut S, location: &str) -> std::io::Result<()> {
    stream
        .write_all(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
}

/// Sends `bytes` from `range_start` (206) or whole (200), announcing the full length but
/// writing only up to `upto`.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    range_start: Option<usize>,
    upto: usize,
) -> std::io::Result<()> {
    let start = range_start.unwrap_or(0).min(bytes.len());
    let header = match range_start {
        Some(_) => format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
            bytes.len() - start,
            bytes.len().saturating_sub(1),
            bytes.len()
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\naccept-ranges: bytes\r\nconnection: close\r\n\r\n",
            bytes.len()
        ),
    };
    stream.write_all(header.as_bytes()).await?;
    if start < upto {
        stream.write_all(&bytes[start..upto]).await?;
    }
    stream.flush().await?;
    stream.shutdown().await
}

//! Importing an image from a URI: the fetch, and what the bytes become.
//!
//! [`Importer::import`] streams the URI once (never holding the image in memory): every
//! chunk goes through the format [`format::Sniffer`] (which keeps only the head and the
//! tail) and, for bare metal, an MD5 digest; then the image is recognized, checked against
//! what the kind accepts, and the READY resource is built from the numbers. A transfer
//! that breaks off is resumed with `Range` where the server allows it, after a backoff;
//! failures that retrying cannot fix (a 4xx, a size limit, a bad header) end at once.
//! How far a transfer has come is written into its [`Progress`] at every chunk, and into
//! the running operation's description every two seconds.
//!
//! Limits: at most `max_concurrent` imports run at once and the rest wait in order
//! (a fair semaphore); only http and https; only hosts in `allow_hosts` when it is set
//! (checked on every redirect too); at most `max_bytes` per image; connect and idle
//! timeouts; at most [`MAX_REDIRECTS`] redirects. Cancelling drops the import's future,
//! which drops the response and closes the connection.
//!
//! Every import ends: it fails after `timeout` in all, when the source sends less than
//! `min_rate` bytes a second over a `rate_window`, after [`ATTEMPTS`] attempts that bring
//! no byte beyond the furthest one received, and after [`MAX_RESTARTS`] starts from byte 0.
//! The image must have the size the source first promised. URIs in messages and logs go
//! through [`crate::redact`].

pub mod format;
pub mod progress;

pub use crate::model::image_file::Measured;

use crate::error::Error;
use crate::model::resource::{OperationRecord, Work};
use crate::redact;
use crate::store::Store;
use format::Sniffer;
use md5::{Digest, Md5};
pub use progress::{Progress, ProgressReading};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;
use tracing::{info, warn};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// Attempts per import (the first and the retries of transient failures); an attempt that
/// brings bytes beyond the furthest received so far starts the count again.
pub const ATTEMPTS: u32 = 4;
/// Times a transfer may start over from byte 0 (the source sent the whole file again, or
/// resumed at another offset than asked) before the import fails.
pub const MAX_RESTARTS: u32 = 3;
/// How often progress is logged and written into the operation's description.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How imports run.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Imports running at once; the rest wait in order.
    pub max_concurrent: usize,
    /// Hosts that may be fetched (exact names, lowercase); empty means any.
    pub allow_hosts: Vec<String>,
    /// The largest image accepted, in bytes.
    pub max_bytes: u64,
    /// How long establishing a connection may take.
    pub connect_timeout: Duration,
    /// How long the source may send nothing before the attempt is given up.
    pub idle_timeout: Duration,
    /// Extra trusted root certificates for https sources (PEM), beside the public ones.
    pub extra_roots_pem: Vec<u8>,
    /// The longest an import may take in all, waiting for a slot excluded.
    pub timeout: Duration,
    /// The slowest a source may send, in bytes a second over `rate_window`.
    pub min_rate: u64,
    /// The span over which `min_rate` is measured.
    pub rate_window: Duration,
}

impl Default for ImportSettings {
    fn default() -> ImportSettings {
        ImportSettings {
            max_concurrent: 4,
            allow_hosts: Vec::new(),
            max_bytes: 1 << 40,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            extra_roots_pem: Vec::new(),
            timeout: Duration::from_secs(24 * 3600),
            min_rate: 64 * 1024,
            rate_window: Duration::from_secs(60),
        }
    }
}

impl ImportSettings {
    /// Whether `host` may be fetched.
    pub fn allows(&self, host: &str) -> bool {
        self.allow_hosts.is_empty()
            || self
                .allow_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }

    /// Checks a source URI against the host list (the scheme is checked at create time).
    pub fn check_host(&self, uri: &str) -> Result<(), Error> {
        let host = url::Url::parse(uri)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_default();
        if self.allows(&host) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "uri: host {host:?} is not in --import-allow-hosts ({})",
            self.allow_hosts.join(", ")
        )))
    }
}

/// Runs imports.
pub struct Importer {
    client: reqwest::Client,
    settings: ImportSettings,
    permits: Arc<Semaphore>,
}

impl Importer {
    pub fn new(settings: ImportSettings) -> Result<Importer, Error> {
        let redirect_settings = settings.clone();
        let mut builder = reqwest::Client::builder();
        if !settings.extra_roots_pem.is_empty() {
            let roots = reqwest::Certificate::from_pem_bundle(&settings.extra_roots_pem).map_err(
                |error| {
                    Error::InvalidArgument(format!(
                        "--import-ca-file: not PEM certificates: {error}"
                    ))
                },
            )?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let client = builder
            .connect_timeout(settings.connect_timeout)
            // Also bounds the wait for response headers: a source that accepts the
            // connection and never answers must not hold an import slot forever.
            .read_timeout(settings.idle_timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let host = attempt.url().host_str().unwrap_or_default().to_string();
                let scheme = attempt.url().scheme().to_string();
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(RedirectRefused::TooMany)
                } else if !matches!(scheme.as_str(), "http" | "https") {
                    attempt.error(RedirectRefused::Scheme(scheme))
                } else if !redirect_settings.allows(&host) {
                    attempt.error(RedirectRefused::HostNotAllowed(host))
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|error| Error::Internal(format!("cannot build the HTTP client: {error}")))?;
        Ok(Importer {
            client,
            permits: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            settings,
        })
    }

    /// Fetches the URI of a stored, running operation and measures the image.
    pub async fn import(
        &self,
        record: &OperationRecord,
        store: &dyn Store,
        progress: &Progress,
    ) -> Result<Measured, Error> {
        let Work::ImportUri { uri } = &record.work else {
            return Err(Error::Internal("a copy was sent to the importer".into()));
        };
        self.settings.check_host(uri)?;
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                info!(uri = %redact::url(uri), "waiting for a free import slot");
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("the import queue is closed".into()))?
            }
        };
        let in_flight = &crate::metrics::global().imports_in_flight;
        in_flight.inc();
        // Counted down however the import ends, cancelled (dropped) included.
        let _in_flight = down_on_drop(in_flight);
        progress.start();
        let fetched = tokio::time::timeout(
            self.settings.timeout,
            self.fetch(record, uri, store, progress),
        )
        .await
        .map_err(|_| {
            Error::DeadlineExceeded(format!(
                "{}: the import took longer than {} (--import-timeout)",
                redact::url(uri),
                humantime::format_duration(self.settings.timeout)
            ))
        })??;
        info!(
            uri = %redact::url(uri),
            format = %fetched.recognized.format,
            bytes = fetched.recognized.file_size,
            virtual_size = fetched.recognized.virtual_size,
            "import fetched"
        );
        Ok(fetched)
    }

    /// Streams the URI through the sniffer and the digest, resuming after transient
    /// failures. An attempt that brought bytes beyond the furthest received resets the
    /// count of attempts.
    async fn fetch(
        &self,
        record: &OperationRecord,
        uri: &str,
        store: &dyn Store,
        progress: &Progress,
    ) -> Result<Measured, Error> {
        // Only bare-metal images carry a checksum; MD5 would cost compute imports more
        // than the transfer itself.
        let wants_checksum =
            record.target.kind == crate::model::resource::ResourceKind::BaremetalImage;
        let mut transfer = Transfer::new(wants_checksum, progress);
        let shown = redact::url(uri);
        let mut rate = RateCheck::new(&self.settings);
        let mut attempt = 0;
        let mut furthest = 0;
        loop {
            attempt += 1;
            let outcome = self
                .attempt(uri, &shown, &mut transfer, &mut rate, record, store)
                .await;
            if transfer.restarts > MAX_RESTARTS {
                return Err(Error::Unavailable(format!(
                    "{shown}: the source made the transfer start over {} times",
                    transfer.restarts
                )));
            }
            match outcome {
                Ok(()) => break,
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Transient(error)) => {
                    if transfer.received > furthest {
                        furthest = transfer.received;
                        attempt = 1;
                    }
                    if attempt >= ATTEMPTS {
                        return Err(Error::Unavailable(format!(
                            "{} (gave up after {ATTEMPTS} attempts)",
                            error.message()
                        )));
                    }
                    let backoff = Duration::from_millis(200 * 2u64.pow(attempt - 1));
                    warn!(uri = %shown, attempt, received = transfer.received, error = %error, ?backoff, "import interrupted; retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
        let recognized = transfer.sniffer.finish().map_err(|error| {
            Error::InvalidArgument(format!("{shown}: not a usable image: {error}"))
        })?;
        if recognized.file_size == 0 {
            return Err(Error::InvalidArgument(format!(
                "{shown}: the image is empty"
            )));
        }
        Ok(Measured {
            recognized,
            md5_hex: transfer
                .digest
                .map(|digest| {
                    digest
                        .finalize()
                        .iter()
                        .map(|byte| format!("{byte:02x}"))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// One request: the whole file, or from `transfer.received` on when resuming (with
    /// `Range`, and `If-Range` so that a changed file is sent whole instead).
    async fn attempt(
        &self,
        uri: &str,
        shown: &str,
        transfer: &mut Transfer<'_>,
        rate: &mut RateCheck,
        record: &OperationRecord,
        store: &dyn Store,
    ) -> Result<(), Failure> {
        use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
        use reqwest::StatusCode;
        let resuming = transfer.received > 0;
        let mut request = self.client.get(uri);
        if resuming {
            request = request.header(RANGE, format!("bytes={}-", transfer.received));
            if let Some(validator) = &transfer.validator {
                request = request.header(IF_RANGE, validator.clone());
            }
        }
        let response = request
            .send()
            .await
            .map_err(|error| request_failure(shown, &error))?;
        let status = response.status();
        let content_range = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|value| value.to_str().ok())
            .map(parse_content_range);
        match status {
            StatusCode::OK => {
                if resuming {
                    info!(uri = %shown, "the source sent the whole file again: starting over");
                    transfer.restart();
                }
                // A strong validator, to resume only the same file later.
                transfer.validator = response
                    .headers()
                    .get(ETAG)
                    .filter(|etag| !etag.as_bytes().starts_with(b"W/"))
                    .or_else(|| response.headers().get(LAST_MODIFIED))
                    .cloned();
                transfer.expected = response.content_length();
            }
            StatusCode::PARTIAL_CONTENT if resuming => match content_range {
                Some(Some((start, total)))
                    if start == transfer.received
                        && (transfer.expected.is_none() || total == transfer.expected) =>
                {
                    if total.is_some() {
                        transfer.expected = total;
                    }
                }
                _ => {
                    transfer.restart();
                    return Err(Failure::Transient(Error::Unavailable(format!(
                        "{shown}: the source resumed at another offset than asked; starting over"
                    ))));
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE
                if resuming
                    && matches!(content_range, Some(Some((_, Some(total)))) if total == transfer.received) =>
            {
                // Everything had arrived before the connection broke, if the file is as
                // long as the source first said.
                return match transfer.expected {
                    Some(promised) if promised != transfer.received => {
                        Err(Failure::Final(Error::FailedPrecondition(format!(
                            "{shown}: the source first said the file has {promised} bytes, \
                             then that it has {}",
                            transfer.received
                        ))))
                    }
                    _ => Ok(()),
                };
            }
            _ => return Err(status_failure(shown, status)),
        }
        if let Some(total) = transfer.expected {
            if total > self.settings.max_bytes {
                return Err(Failure::Final(too_big(
                    shown,
                    total,
                    self.settings.max_bytes,
                )));
            }
        }
        let mut body = response.bytes_stream();
        loop {
            rate.check(shown).map_err(Failure::Final)?;
            let next = tokio::time::timeout(self.settings.idle_timeout, body.next())
                .await
                .map_err(|_| {
                    Failure::Transient(Error::Unavailable(format!(
                        "{shown}: nothing received for {}",
                        humantime::format_duration(self.settings.idle_timeout)
                    )))
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|error| {
                let received = transfer.received;
                let why = match transfer.expected {
                    Some(total) => format!("the body ended after {received} of {total} bytes"),
                    None => format!("the transfer broke off after {received} bytes"),
                };
                Failure::Transient(Error::Unavailable(format!("{shown}: {why} ({error})")))
            })?;
            transfer.take(&chunk);
            rate.count(chunk.len() as u64, shown)
                .map_err(Failure::Final)?;
            if transfer.received > self.settings.max_bytes {
                return Err(Failure::Final(too_big(
                    shown,
                    transfer.received,
                    self.settings.max_bytes,
                )));
            }
            if transfer.last_progress.elapsed() >= PROGRESS_EVERY {
                transfer.last_progress = Instant::now();
                report_progress(record, store, transfer.received, transfer.expected).await;
            }
        }
        match transfer.expected {
            Some(total) if transfer.received < total => {
                Err(Failure::Transient(Error::Unavailable(format!(
                    "{shown}: the body ended after {} of {total} bytes",
                    transfer.received
                ))))
            }
            Some(total) if transfer.received > total => {
                Err(Failure::Final(Error::FailedPrecondition(format!(
                    "{shown}: the source said the file has {total} bytes and sent {}",
                    transfer.received
                ))))
            }
            _ => Ok(()),
        }
    }
}

/// The source's pace: the bytes of the current window, across attempts (backoffs count as
/// time), must reach `min_rate` a second.
struct RateCheck {
    min_rate: u64,
    window: Duration,
    window_started: Instant,
    window_bytes: u64,
}

impl RateCheck {
    fn new(settings: &ImportSettings) -> RateCheck {
        RateCheck {
            min_rate: settings.min_rate,
            window: settings.rate_window,
            window_started: Instant::now(),
            window_bytes: 0,
        }
    }

    fn count(&mut self, bytes: u64, shown: &str) -> Result<(), Error> {
        self.window_bytes += bytes;
        self.check(shown)
    }

    /// At the end of each window: enough bytes, or the import fails.
    fn check(&mut self, shown: &str) -> Result<(), Error> {
        let elapsed = self.window_started.elapsed();
        if elapsed < self.window {
            return Ok(());
        }
        let wanted = (self.min_rate as f64 * elapsed.as_secs_f64()) as u64;
        if self.window_bytes < wanted {
            return Err(Error::Unavailable(format!(
                "{shown}: the source sent {} bytes in {}, slower than {} bytes a second \
                 (--import-min-rate)",
                self.window_bytes,
                humantime::format_duration(Duration::from_secs(elapsed.as_secs())),
                self.min_rate
            )));
        }
        self.window_started = Instant::now();
        self.window_bytes = 0;
        Ok(())
    }
}

/// What a transfer has taken in so far, across its attempts; its [`Progress`] follows
/// every chunk and every start over.
struct Transfer<'p> {
    progress: &'p Progress,
    sniffer: Sniffer,
    digest: Option<Md5>,
    received: u64,
    /// The length of the whole file, when the source said it.
    expected: Option<u64>,
    /// The first response's strong ETag or Last-Modified, sent as If-Range on resume.
    validator: Option<reqwest::header::HeaderValue>,
    last_progress: Instant,
    /// Times the transfer started over from byte 0.
    restarts: u32,
}

impl<'p> Transfer<'p> {
    fn new(wants_checksum: bool, progress: &'p Progress) -> Transfer<'p> {
        Transfer {
            progress,
            sniffer: Sniffer::new(),
            digest: wants_checksum.then(Md5::new),
            received: 0,
            expected: None,
            validator: None,
            last_progress: Instant::now(),
            restarts: 0,
        }
    }

    /// Forgets what was received: the next attempt fetches from the first byte.
    fn restart(&mut self) {
        let restarts = self.restarts + 1;
        *self = Transfer::new(self.digest.is_some(), self.progress);
        self.restarts = restarts;
        self.progress.update(0, None);
    }

    fn take(&mut self, chunk: &[u8]) {
        self.received += chunk.len() as u64;
        self.progress.update(self.received, self.expected);
        crate::metrics::global()
            .import_bytes
            .inc_by(chunk.len() as u64);
        self.sniffer.feed(chunk);
        if let Some(digest) = self.digest.as_mut() {
            digest.update(chunk);
        }
    }
}

/// `Content-Range: bytes START-END/TOTAL` (or `*/TOTAL`, or `/*`) as (start, total);
/// `None` if it does not parse.
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    let start = if range == "*" {
        0
    } else {
        range.split_once('-')?.0.parse().ok()?
    };
    Some((start, total))
}

/// Why an attempt failed, and whether another may succeed.
enum Failure {
    Transient(Error),
    Final(Error),
}

fn too_big(uri: &str, bytes: u64, limit: u64) -> Error {
    Error::ResourceExhausted(format!(
        "{uri}: the image is {bytes} bytes or more, over the limit of {limit} bytes (--import-max-bytes)"
    ))
}

/// Why the import refused to follow a redirect.
#[derive(Debug)]
enum RedirectRefused {
    TooMany,
    Scheme(String),
    HostNotAllowed(String),
}

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedirectRefused::TooMany => write!(formatter, "more than {MAX_REDIRECTS} redirects"),
            RedirectRefused::Scheme(scheme) => write!(formatter, "redirect to a {scheme} URL"),
            RedirectRefused::HostNotAllowed(host) => write!(
                formatter,
                "redirect to host {host:?}, which is not in --import-allow-hosts"
            ),
        }
    }
}

impl std::error::Error for RedirectRefused {}

/// An error and its causes, outermost first. An I/O error's source skips the error it
/// wraps (std's choice), so that one is taken in too.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
        Some(current)
    })
}

/// Whether TLS refused the source's certificate: no point in trying again.
fn certificate_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    use tokio_rustls::rustls::Error as Tls;
    causes(error).any(|cause| {
        matches!(
            cause.downcast_ref::<Tls>(),
            Some(
                Tls::InvalidCertificate(_)
                    | Tls::NoCertificatesPresented
                    | Tls::InvalidCertRevocationList(_)
            )
        )
    })
}

fn request_failure(uri: &str, error: &reqwest::Error) -> Failure {
    // The whole chain: reqwest's own message hides the cause (refused, DNS, TLS).
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    // reqwest's message holds the whole URL, and its causes may too.
    let message = redact::urls_in(&message);
    let refused_redirect = causes(error).find_map(|cause| cause.downcast_ref::<RedirectRefused>());
    if let Some(refused) = refused_redirect {
        return Failure::Final(match refused {
            RedirectRefused::HostNotAllowed(_) => {
                Error::PermissionDenied(format!("{uri}: {message}"))
            }
            RedirectRefused::TooMany | RedirectRefused::Scheme(_) => {
                Error::FailedPrecondition(format!("{uri}: {message}"))
            }
        });
    }
    if error.is_redirect() {
        return Failure::Final(Error::FailedPrecondition(format!("{uri}: {message}")));
    }
    if error.is_builder() {
        return Failure::Final(Error::InvalidArgument(format!("{uri}: {message}")));
    }
    if certificate_refused(error) {
        return Failure::Final(Error::Unavailable(format!("{uri}: {message}")));
    }
    // Refused, reset, DNS, timeouts: worth another attempt.
    Failure::Transient(Error::Unavailable(format!("{uri}: {message}")))
}

fn status_failure(uri: &str, status: reqwest::StatusCode) -> Failure {
    let message = format!("{uri}: the server answered {status}");
    match status.as_u16() {
        404 | 410 => Failure::Final(Error::NotFound(message)),
        401 | 403 => Failure::Final(Error::PermissionDenied(message)),
        408 | 429 => Failure::Transient(Error::Unavailable(message)),
        500..=599 => Failure::Transient(Error::Unavailable(message)),
        _ => Failure::Final(Error::FailedPrecondition(message)),
    }
}

/// Logs progress and writes it into the running operation's description.
async fn report_progress(
    record: &OperationRecord,
    store: &dyn Store,
    received: u64,
    expected: Option<u64>,
) {
    let description = match expected {
        Some(total) => format!(
            "{} (fetched {received} of {total} bytes)",
            record.operation.description
        ),
        None => format!(
            "{} (fetched {received} bytes)",
            record.operation.description
        ),
    };
    info!(operation_id = %record.operation.id, received, expected, "import progress");
    if let Err(error) = store
        .describe_running(&record.operation.id, &description)
        .await
    {
        warn!(operation_id = %record.operation.id, %error, "could not record import progress");
    }
}

/// Decrements `gauge` when dropped.
fn down_on_drop(gauge: &prometheus_client::metrics::gauge::Gauge) -> impl Drop + '_ {
    struct Down<'a>(&'a prometheus_client::metrics::gauge::Gauge);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    Down(gauge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */300"), Some((0, Some(300))));
        assert_eq!(parse_content_range("bytes x-1/2"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn the_host_list_is_exact_and_empty_means_any() {
        let any = ImportSettings::default();
        assert!(any.check_host("https://anything.example/x").is_ok());
        let listed = ImportSettings {
            allow_hosts: vec!["images.example.com".into()],
            ..ImportSettings::default()
        };
        assert!(listed
            .check_host("https://IMAGES.example.com/a.qcow2")
            .is_ok());
        let error = listed
            .check_host("http://169.254.169.254/latest")
            .unwrap_err();
        assert_eq!(error.code(), crate::error::Code::PermissionDenied);
    }
}

//! Importing an image from a URI: the fetch, and what the bytes become.
//!
//! [`Importer::import`] streams the URI once (never holding the image in memory): every
//! chunk goes through the format [`format::Sniffer`] (which keeps only the head and the
//! tail) and, for bare metal, an MD5 digest; then the image is recognized, checked against
//! what the kind accepts, and the READY resource is built from the numbers. A transfer
//! that breaks off is resumed with `Range` where the server allows it, after a backoff;
//! failures that retrying cannot fix (a 4xx, a size limit, a bad header) end at once.
//!
//! Limits: at most `max_concurrent` imports run at once and the rest wait in order
//! (a fair semaphore); only http and https; only hosts in `allow_hosts` when it is set
//! (checked on every redirect too); at most `max_bytes` per image; connect and idle
//! timeouts; at most [`MAX_REDIRECTS`] redirects. Cancelling drops the import's future,
//! which drops the response and closes the connection.

pub mod format;

use crate::error::Error;
use crate::resource::{OperationRecord, Resource, Work};
use crate::store::Store;
use format::{Format, Recognized, Sniffer};
use md5::{Digest, Md5};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_stream::StreamExt;
use tracing::{info, warn};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// Attempts per import (the first and the retries of transient failures).
pub const ATTEMPTS: u32 = 4;
/// The smallest min_disk_size an image gets (the API's lower bound).
pub const MIN_DISK_SIZE: u64 = 4 * 1024 * 1024;
/// The largest disk the API allows (min_disk_size's upper bound): 4 TiB.
pub const MAX_DISK_SIZE: u64 = 4 << 40;
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

/// What a finished transfer measured.
struct Fetched {
    recognized: Recognized,
    md5_hex: String,
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
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let host = attempt.url().host_str().unwrap_or_default().to_string();
                let scheme = attempt.url().scheme().to_string();
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
                } else if !matches!(scheme.as_str(), "http" | "https") {
                    attempt.error(format!("redirect to a {scheme} URL"))
                } else if !redirect_settings.allows(&host) {
                    attempt.error(format!(
                        "redirect to host {host:?}, which is not in --import-allow-hosts"
                    ))
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

    /// Imports the URI of a stored, running operation and returns its resource READY.
    pub async fn import(
        &self,
        record: &OperationRecord,
        store: &dyn Store,
    ) -> Result<Resource, Error> {
        let Work::ImportUri { uri } = &record.work else {
            return Err(Error::Internal("a copy was sent to the importer".into()));
        };
        self.settings.check_host(uri)?;
        let resource = store
            .resource(record.target.kind, &record.target.id)
            .await?
            .ok_or_else(|| {
                Error::Internal(format!("the image of {} is gone", record.operation.id))
            })?;
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                info!(uri = %uri, "waiting for a free import slot");
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("the import queue is closed".into()))?
            }
        };
        let fetched = self.fetch(record, uri, store).await?;
        info!(
            uri = %uri,
            format = %fetched.recognized.format,
            bytes = fetched.recognized.file_size,
            virtual_size = fetched.recognized.virtual_size,
            "import fetched"
        );
        ready_resource(resource, &fetched)
    }

    /// Streams the URI through the sniffer and the digest, resuming after transient
    /// failures.
    async fn fetch(
        &self,
        record: &OperationRecord,
        uri: &str,
        store: &dyn Store,
    ) -> Result<Fetched, Error> {
        let mut sniffer = Sniffer::new();
        // Only bare-metal images carry a checksum; MD5 would cost compute imports more
        // than the transfer itself.
        let wants_checksum = record.target.kind == crate::resource::ResourceKind::BaremetalImage;
        let mut digest = wants_checksum.then(Md5::new);
        let mut received: u64 = 0;
        let mut expected: Option<u64> = None;
        let mut last_progress = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self
                .attempt(
                    uri,
                    &mut sniffer,
                    &mut digest,
                    &mut received,
                    &mut expected,
                    &mut last_progress,
                    record,
                    store,
                )
                .await;
            match outcome {
                Ok(()) => break,
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Transient(error)) if attempt >= ATTEMPTS => {
                    return Err(Error::Unavailable(format!(
                        "{} (gave up after {ATTEMPTS} attempts)",
                        error.message()
                    )))
                }
                Err(Failure::Transient(error)) => {
                    let backoff = Duration::from_millis(200 * 2u64.pow(attempt - 1));
                    warn!(uri = %uri, attempt, received, error = %error, ?backoff, "import interrupted; retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
        Ok(Fetched {
            recognized: sniffer.finish().map_err(|error| {
                Error::InvalidArgument(format!("{uri}: not a usable image: {error}"))
            })?,
            md5_hex: digest
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

    /// One request: from `received` on (a Range request when resuming).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        uri: &str,
        sniffer: &mut Sniffer,
        digest: &mut Option<Md5>,
        received: &mut u64,
        expected: &mut Option<u64>,
        last_progress: &mut Instant,
        record: &OperationRecord,
        store: &dyn Store,
    ) -> Result<(), Failure> {
        let mut request = self.client.get(uri);
        if *received > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={received}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|error| request_failure(uri, &error))?;
        let status = response.status();
        if *received > 0 && status == reqwest::StatusCode::OK {
            // The server ignored the range: start over from the first byte.
            *sniffer = Sniffer::new();
            if digest.is_some() {
                *digest = Some(Md5::new());
            }
            *received = 0;
        } else if !status.is_success()
            || (*received > 0 && status != reqwest::StatusCode::PARTIAL_CONTENT)
        {
            return Err(status_failure(uri, status));
        }
        if let Some(length) = response.content_length() {
            let total = *received + length;
            if total > self.settings.max_bytes {
                return Err(Failure::Final(too_big(uri, total, self.settings.max_bytes)));
            }
            *expected = Some(total);
        }
        let mut body = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.settings.idle_timeout, body.next())
                .await
                .map_err(|_| {
                    Failure::Transient(Error::Unavailable(format!(
                        "{uri}: nothing received for {}",
                        humantime::format_duration(self.settings.idle_timeout)
                    )))
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|error| {
                let why = match *expected {
                    Some(total) => format!("the body ended after {received} of {total} bytes"),
                    None => format!("the transfer broke off after {received} bytes"),
                };
                Failure::Transient(Error::Unavailable(format!("{uri}: {why} ({error})")))
            })?;
            *received += chunk.len() as u64;
            if *received > self.settings.max_bytes {
                return Err(Failure::Final(too_big(
                    uri,
                    *received,
                    self.settings.max_bytes,
                )));
            }
            sniffer.feed(&chunk);
            if let Some(digest) = digest.as_mut() {
                digest.update(&chunk);
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                *last_progress = Instant::now();
                report_progress(record, store, *received, *expected).await;
            }
        }
        match *expected {
            Some(total) if *received < total => Err(Failure::Transient(Error::Unavailable(
                format!("{uri}: the body ended after {received} of {total} bytes"),
            ))),
            _ => Ok(()),
        }
    }
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

fn request_failure(uri: &str, error: &reqwest::Error) -> Failure {
    // The whole chain: reqwest's own message hides the cause (refused, DNS, TLS).
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_redirect() {
        return Failure::Final(if message.contains("--import-allow-hosts") {
            Error::PermissionDenied(format!("{uri}: {message}"))
        } else {
            Error::FailedPrecondition(format!("{uri}: {message}"))
        });
    }
    if error.is_builder() {
        return Failure::Final(Error::InvalidArgument(format!("{uri}: {message}")));
    }
    // Refused, reset, DNS, TLS, timeouts: worth another attempt.
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

/// The resource READY, with what the transfer measured; or why the image is refused.
fn ready_resource(resource: Resource, fetched: &Fetched) -> Result<Resource, Error> {
    let recognized = fetched.recognized;
    let virtual_size = i64::try_from(recognized.virtual_size).unwrap_or(i64::MAX);
    let file_size = i64::try_from(recognized.file_size).unwrap_or(i64::MAX);
    let mut resource = match resource {
        Resource::ComputeImage(mut image) => {
            if recognized.format == Format::Iso9660 {
                return Err(Error::InvalidArgument(
                    "compute images must be qcow2, VMDK, VHD or raw; this is an ISO 9660 image \
                     (ISO images are for bare metal)"
                        .into(),
                ));
            }
            if recognized.virtual_size > MAX_DISK_SIZE {
                return Err(Error::InvalidArgument(format!(
                    "the image's virtual size, {virtual_size} bytes ({}), is larger than the \
                     largest disk, {MAX_DISK_SIZE} bytes",
                    recognized.format
                )));
            }
            if image.min_disk_size != 0 && image.min_disk_size < virtual_size {
                return Err(Error::InvalidArgument(format!(
                    "min_disk_size: {} is less than the virtual size of the image, {virtual_size} bytes ({})",
                    image.min_disk_size, recognized.format
                )));
            }
            if image.min_disk_size == 0 {
                image.min_disk_size = virtual_size.max(MIN_DISK_SIZE as i64);
            }
            image.size = virtual_size;
            image.storage_size = file_size;
            Resource::ComputeImage(image)
        }
        Resource::BaremetalImage(mut image) => {
            if recognized.format != Format::Iso9660 {
                return Err(Error::InvalidArgument(format!(
                    "bare-metal images must be ISO 9660; this is {}",
                    recognized.format
                )));
            }
            image.checksum = fetched.md5_hex.clone();
            Resource::BaremetalImage(image)
        }
        other => {
            return Err(Error::Internal(format!(
                "an import targets a {}",
                other.kind().display_name()
            )))
        }
    };
    resource.set_ready();
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{baremetal, compute};

    fn fetched(format: Format, virtual_size: u64, file_size: u64) -> Fetched {
        Fetched {
            recognized: Recognized {
                format,
                virtual_size,
                file_size,
            },
            md5_hex: "d41d8cd98f00b204e9800998ecf8427e".into(),
        }
    }

    fn compute_image(min_disk_size: i64) -> Resource {
        Resource::ComputeImage(compute::Image {
            min_disk_size,
            status: compute::image::Status::Creating as i32,
            ..Default::default()
        })
    }

    #[test]
    fn compute_sizes_follow_the_image() {
        let Resource::ComputeImage(image) = ready_resource(
            compute_image(0),
            &fetched(Format::Qcow2 { version: 3 }, 10 << 30, 5000),
        )
        .unwrap() else {
            unreachable!()
        };
        assert_eq!(
            (image.size, image.storage_size, image.min_disk_size),
            (10 << 30, 5000, 10 << 30)
        );
        assert_eq!(image.status, compute::image::Status::Ready as i32);

        let Resource::ComputeImage(tiny) =
            ready_resource(compute_image(0), &fetched(Format::Raw, 512, 512)).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(tiny.min_disk_size, MIN_DISK_SIZE as i64);

        let error =
            ready_resource(compute_image(0), &fetched(Format::Raw, 5 << 40, 5 << 40)).unwrap_err();
        assert!(error.message().contains("largest disk"), "{error}");

        let error = ready_resource(
            compute_image(1 << 30),
            &fetched(Format::Raw, 2 << 30, 2 << 30),
        )
        .unwrap_err();
        assert!(
            error.message().contains(&(1i64 << 30).to_string()),
            "{error}"
        );
        assert!(
            error.message().contains(&(2i64 << 30).to_string()),
            "{error}"
        );
    }

    #[test]
    fn each_kind_takes_only_its_formats() {
        let error = ready_resource(
            compute_image(0),
            &fetched(Format::Iso9660, 1 << 20, 1 << 20),
        )
        .unwrap_err();
        assert_eq!(error.code(), crate::error::code::INVALID_ARGUMENT);
        let bare = Resource::BaremetalImage(baremetal::Image::default());
        let error = ready_resource(bare.clone(), &fetched(Format::Raw, 1, 1)).unwrap_err();
        assert!(error.message().contains("ISO 9660"), "{error}");
        let Resource::BaremetalImage(image) =
            ready_resource(bare, &fetched(Format::Iso9660, 1 << 20, 1 << 20)).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(image.checksum, "d41d8cd98f00b204e9800998ecf8427e");
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
        assert_eq!(error.code(), crate::error::code::PERMISSION_DENIED);
    }
}

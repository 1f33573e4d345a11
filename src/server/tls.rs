//! TLS on the one port: `--tls-cert`/`--tls-key`, or `--tls-self-signed`.
//!
//! The acceptor offers ALPN h2 and http/1.1, so gRPC clients (which insist on h2) and REST
//! clients share the port as they do in plaintext; the connection's protocol is still told
//! by hyper-util's auto builder from the bytes that follow. A self-signed certificate is
//! made once, for `localhost`, `127.0.0.1` and `::1`, and kept in the data directory, so
//! that a client that trusts it keeps trusting it across restarts. Any file that cannot be
//! read or used stops the start with a message naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Where the certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// `--tls-cert` and `--tls-key`.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls-self-signed`: made in (or read from) this directory.
    SelfSigned { dir: PathBuf },
}

/// A usable TLS setup: the acceptor, and the certificate it presents (to log).
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub cert: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Tls")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads (or makes) the source's files and builds the acceptor.
    pub fn load(source: &TlsSource) -> Result<Tls, String> {
        let (cert, key) = files(source)?;
        Ok(Tls {
            acceptor: acceptor(&cert, &key)?,
            cert,
        })
    }
}

/// The file names of a self-signed certificate and its key in their directory.
pub const SELF_SIGNED_CERT: &str = "cert.pem";
pub const SELF_SIGNED_KEY: &str = "key.pem";

/// The names a self-signed certificate is for.
const SELF_SIGNED_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The certificate and key files of a source, making a self-signed pair first if its
/// directory has none.
pub fn files(source: &TlsSource) -> Result<(PathBuf, PathBuf), String> {
    match source {
        TlsSource::Files { cert, key } => Ok((cert.clone(), key.clone())),
        TlsSource::SelfSigned { dir } => {
            let cert = dir.join(SELF_SIGNED_CERT);
            let key = dir.join(SELF_SIGNED_KEY);
            if !cert.exists() || !key.exists() {
                make_self_signed(dir, &cert, &key)?;
            }
            Ok((cert, key))
        }
    }
}

/// Writes a new self-signed certificate and its key (readable by the owner only).
fn make_self_signed(dir: &Path, cert: &Path, key: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let names: Vec<String> = SELF_SIGNED_NAMES
        .iter()
        .map(|name| name.to_string())
        .collect();
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|error| format!("cannot make a self-signed certificate: {error}"))?;
    write_private(key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, made.cert.pem())
        .map_err(|error| format!("cannot write {}: {error}", cert.display()))?;
    Ok(())
}

/// Writes a file that only its owner may read.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    file.write_all(contents)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// The acceptor for a certificate chain and key file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path)
            .map_err(|error| format!("{what} {}: cannot read it: {error}", path.display()))
    };
    let cert_pem = read(cert, "TLS certificate")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("TLS certificate {}: not PEM: {error}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {}: no CERTIFICATE block in it",
            cert.display()
        ));
    }
    let key_pem = read(key, "TLS key")?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
        format!(
            "TLS key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {error}",
            key.display()
        )
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| {
            format!(
                "TLS certificate {} and key {} do not make a usable pair: {error}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source = TlsSource::SelfSigned {
            dir: dir.path().join("tls"),
        };
        let (cert, key) = files(&source).unwrap();
        let first = std::fs::read(&cert).unwrap();
        acceptor(&cert, &key).unwrap();
        let (cert_again, _) = files(&source).unwrap();
        assert_eq!(std::fs::read(cert_again).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is the owner's only: {mode:o}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let (cert, key) = files(&TlsSource::SelfSigned {
            dir: dir.path().to_path_buf(),
        })
        .unwrap();
        let message = |result: Result<TlsAcceptor, String>| result.err().unwrap();
        let error = message(acceptor(&missing, &key));
        assert!(
            error.starts_with(&format!(
                "TLS certificate {}: cannot read",
                missing.display()
            )),
            "{error}"
        );
        let error = message(acceptor(&garbage, &key));
        assert!(error.contains(&garbage.display().to_string()), "{error}");
        let error = message(acceptor(&cert, &garbage));
        assert!(
            error.starts_with(&format!("TLS key {}", garbage.display())),
            "{error}"
        );
        let error = message(acceptor(&cert, &missing));
        assert!(
            error.starts_with(&format!("TLS key {}: cannot read", missing.display())),
            "{error}"
        );
    }
}

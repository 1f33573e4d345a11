//! Who a token stands for, and the tokens IamTokenService.Create issues.
//!
//! Without `--auth-tokens` every call is the anonymous caller of every folder (local
//! development). With it, a token is a line of the file (`TOKEN SUBJECT_ID
//! [FOLDER_ID,...]`) or an IAM token issued for one; the caller is that subject, limited
//! to those folders when the line names some.
//!
//! Tokens are compared by their SHA-256 and never logged or stored as they are: the store
//! keeps issued tokens by digest, with their subject, folders and expiry, so they are
//! verified by every replica and after a restart. Verified issued tokens are remembered
//! in memory until they expire. Reading the token off a call (and which calls need none)
//! is the RPC layer's part (`rpc::auth`).

use super::call::{Caller, Folders};
use super::idempotency::hex;
use crate::error::{excerpt, Error};
use crate::pb::yandex::cloud::iam::v1::create_iam_token_request::Identity;
use crate::store::codec::unix_ms;
use crate::store::{IssuedToken, Store};
use base64::Engine;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long an issued IAM token lives, as in Yandex Cloud: 12 hours.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The most verified issued tokens remembered at once (then the memory starts over).
const MAX_REMEMBERED: usize = 10_000;

/// The tokens of an `--auth-tokens` file, by the SHA-256 (hex) of each token.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    callers: HashMap<String, Caller>,
}

impl TokenFile {
    /// Reads the file's text: one `TOKEN SUBJECT_ID [FOLDER_ID,...]` per line; blank lines
    /// and lines starting with `#` are skipped. An error names the line (`source:N`), never
    /// the token.
    pub fn parse(text: &str, source: &str) -> Result<TokenFile, String> {
        let mut callers = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{source}:{}", index + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (token, subject, folders) = match fields.as_slice() {
                [token, subject] => (*token, *subject, Folders::All),
                [token, subject, folders] => {
                    let folders: BTreeSet<String> =
                        folders.split(',').map(str::to_string).collect();
                    if folders.iter().any(String::is_empty) {
                        return Err(format!("{at}: a folder id is empty (FOLDER_ID,... without spaces or empty items)"));
                    }
                    if let Some(bad) = folders.iter().find(|folder| !is_folder_id(folder)) {
                        return Err(format!(
                            "{at}: {} is not a folder id (at most 50 letters, digits and -_.)",
                            excerpt(bad)
                        ));
                    }
                    (*token, *subject, Folders::Only(folders))
                }
                _ => {
                    return Err(format!(
                        "{at}: expected TOKEN SUBJECT_ID [FOLDER_ID,...], found {} fields",
                        fields.len()
                    ))
                }
            };
            if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
                return Err(format!(
                    "{at}: the token has characters other than visible ASCII"
                ));
            }
            let caller = Caller {
                subject: subject.to_string(),
                folders,
            };
            if callers.insert(digest(token), caller).is_some() {
                return Err(format!("{at}: the token is listed twice"));
            }
        }
        if callers.is_empty() {
            return Err(format!(
                "{source}: no tokens (one TOKEN SUBJECT_ID [FOLDER_ID,...] per line)"
            ));
        }
        Ok(TokenFile { callers })
    }

    /// How many tokens the file lists.
    pub fn len(&self) -> usize {
        self.callers.len()
    }

    /// Whether the file lists no tokens (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }
}

/// Whether a folder id of the token file has the shape of one (which keeps `*` and `,`,
/// the stored form's separators, out).
fn is_folder_id(folder: &str) -> bool {
    folder.len() <= 50
        && folder
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))
}

/// Whether a bearer token has the shape of one this server issues (`t1.` and 43
/// base64url characters): only those are looked up in the store, so a flood of unknown
/// tokens costs no database reads.
fn is_issued_shape(token: &str) -> bool {
    token.len() == 46
        && token.starts_with("t1.")
        && token[3..]
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The SHA-256 of a token, as hex: how tokens are compared and stored.
pub fn digest(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Knows the callers of tokens, and issues IAM tokens (see the module documentation).
pub struct Identities {
    /// `None`: authentication is off.
    file: Option<TokenFile>,
    store: Arc<dyn Store>,
    token_lifetime: Duration,
    /// Verified issued tokens: digest → (caller, expiry in ms).
    remembered: Mutex<HashMap<String, (Caller, i64)>>,
}

impl Identities {
    pub fn new(
        file: Option<TokenFile>,
        store: Arc<dyn Store>,
        token_lifetime: Duration,
    ) -> Identities {
        Identities {
            file,
            store,
            token_lifetime,
            remembered: Mutex::new(HashMap::new()),
        }
    }

    /// Whether calls need a token.
    pub fn is_on(&self) -> bool {
        self.file.is_some()
    }

    /// The caller a bearer token stands for (authentication on), or UNAUTHENTICATED.
    pub async fn caller(&self, token: &str) -> Result<Caller, Error> {
        let Some(file) = &self.file else {
            return Ok(Caller::anonymous());
        };
        let digest = digest(token);
        if let Some(caller) = file.callers.get(&digest) {
            return Ok(caller.clone());
        }
        if !is_issued_shape(token) {
            return Err(not_valid());
        }
        self.issued(&digest).await
    }

    /// The caller of an issued token, or UNAUTHENTICATED if it is unknown or expired.
    async fn issued(&self, digest: &str) -> Result<Caller, Error> {
        let now = unix_ms(SystemTime::now());
        let remembered = self.remembered().get(digest).cloned();
        let (caller, expires_at_ms) = match remembered {
            Some(found) => found,
            None => {
                let token = self.store.token(digest).await?.ok_or_else(not_valid)?;
                let caller = Caller {
                    subject: token.subject,
                    folders: match token.folders {
                        None => Folders::All,
                        Some(folders) => Folders::Only(folders.into_iter().collect()),
                    },
                };
                let mut remembered = self.remembered();
                if remembered.len() >= MAX_REMEMBERED {
                    remembered.clear();
                }
                remembered.insert(digest.to_string(), (caller.clone(), token.expires_at_ms));
                (caller, token.expires_at_ms)
            }
        };
        if expires_at_ms <= now {
            self.remembered().remove(digest);
            let expired = SystemTime::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(expires_at_ms).unwrap_or(0));
            return Err(Error::Unauthenticated(format!(
                "the IAM token expired at {}; get a new one from IamTokenService.Create",
                humantime::format_rfc3339_seconds(expired)
            )));
        }
        Ok(caller)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, i64)>> {
        self.remembered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// IamTokenService.Create: a new IAM token for the identity and when it expires.
    ///
    /// With authentication on, an OAuth token must be a token of `--auth-tokens`, and a
    /// JWT (a service account's) must name such a token as its key id (`kid`) and that
    /// token's subject as its issuer (`iss`): its signature is not checked. The IAM token
    /// has the subject and folders of that token, and is stored. With authentication off,
    /// every identity gets a token of the anonymous caller, which is not stored (every
    /// call is accepted anyway).
    pub async fn issue(&self, identity: &Identity) -> Result<(String, SystemTime), Error> {
        let expires_at = SystemTime::now()
            .checked_add(self.token_lifetime)
            .ok_or_else(|| Error::Internal("--iam-token-lifetime is too long".into()))?;
        let mut random = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut random);
        let token = format!(
            "t1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
        );
        let Some(file) = &self.file else {
            return Ok((token, expires_at));
        };
        let caller = match identity {
            Identity::YandexPassportOauthToken(oauth) => {
                file.callers.get(&digest(oauth)).cloned().ok_or_else(|| {
                    Error::Unauthenticated("the OAuth token is not in --auth-tokens".into())
                })?
            }
            Identity::Jwt(jwt) => {
                let (key_id, issuer) = jwt_key_and_issuer(jwt)?;
                file.callers
                    .get(&digest(&key_id))
                    .filter(|caller| caller.subject == issuer)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Unauthenticated(format!(
                            "the JWT's key id and issuer {} are not a token and its subject \
                             in --auth-tokens",
                            excerpt(&issuer)
                        ))
                    })?
            }
        };
        self.store
            .put_token(&IssuedToken {
                sha256: digest(&token),
                subject: caller.subject.clone(),
                folders: match &caller.folders {
                    Folders::All => None,
                    Folders::Only(folders) => Some(folders.iter().cloned().collect()),
                },
                expires_at_ms: unix_ms(expires_at),
            })
            .await?;
        Ok((token, expires_at))
    }
}

/// UNAUTHENTICATED for a token nobody knows.
fn not_valid() -> Error {
    Error::Unauthenticated(
        "the IAM token is not valid: it is neither in --auth-tokens nor issued by this server"
            .into(),
    )
}

/// The key id (header `kid`) and issuer (claim `iss`) of a JWT, unverified.
fn jwt_key_and_issuer(jwt: &str) -> Result<(String, String), Error> {
    let malformed = |why: &str| Error::invalid_field("jwt", format!("is not a JWT: {why}"));
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| -> Result<serde_json::Value, Error> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| malformed(&format!("its {what} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| malformed(&format!("its {what} is not JSON")))
    };
    let text = |value: &serde_json::Value, name: &str, what: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| malformed(&format!("its {what} has no {name}")))
    };
    let header = decode(header, "header")?;
    let payload = decode(payload, "payload")?;
    Ok((
        text(&header, "kid", "header")?,
        text(&payload, "iss", "payload")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_is_read_line_by_line_and_errors_name_the_line_not_the_token() {
        let file = TokenFile::parse(
            "# comment\n\nsecret-a alice\n  secret-b bob f1,f2  \n",
            "tokens.txt",
        )
        .unwrap();
        assert_eq!(file.len(), 2);
        assert_eq!(
            file.callers[&digest("secret-a")],
            Caller {
                subject: "alice".into(),
                folders: Folders::All,
            }
        );
        assert_eq!(
            file.callers[&digest("secret-b")].folders,
            Folders::Only(["f1".to_string(), "f2".to_string()].into())
        );
        for (text, expected) in [
            (
                "only-a-token\n",
                "tokens.txt:1: expected TOKEN SUBJECT_ID [FOLDER_ID,...], found 1 fields",
            ),
            (
                "a b c d\n",
                "tokens.txt:1: expected TOKEN SUBJECT_ID [FOLDER_ID,...], found 4 fields",
            ),
            ("t s f1,,f2\n", "tokens.txt:1: a folder id is empty"),
            ("t s f1,*\n", "tokens.txt:1: \"*\" is not a folder id"),
            ("dup s\ndup t\n", "tokens.txt:2: the token is listed twice"),
            ("# nothing\n", "tokens.txt: no tokens"),
        ] {
            let error = TokenFile::parse(text, "tokens.txt").unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
            assert!(
                !error.contains("dup") && !error.contains("only-a-token"),
                "{error}"
            );
        }
    }

    #[test]
    fn only_tokens_shaped_like_issued_ones_are_looked_up() {
        let issued = format!(
            "t1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32])
        );
        assert!(is_issued_shape(&issued));
        assert!(!is_issued_shape("t1.short"));
        assert!(!is_issued_shape(&issued.replace("t1.", "t2.")));
        assert!(!is_issued_shape(&format!("{}!", &issued[..45])));
    }

    #[test]
    fn a_jwt_gives_its_key_id_and_issuer() {
        let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let jwt = format!(
            "{}.{}.signature",
            part(r#"{"typ":"JWT","alg":"PS256","kid":"key-1"}"#),
            part(r#"{"iss":"sa-1","aud":"https://iam.api.cloud.yandex.net/iam/v1/tokens"}"#)
        );
        assert_eq!(
            jwt_key_and_issuer(&jwt).unwrap(),
            ("key-1".to_string(), "sa-1".to_string())
        );
        assert!(jwt_key_and_issuer("not-a-jwt").is_err());
    }
}

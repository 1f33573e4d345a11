//! Who a token stands for, and the tokens IamTokenService issues (Create,
//! CreateForServiceAccount) and revokes.
//!
//! Without `--auth-tokens` every call is the anonymous caller of every folder (local
//! development). With it, a token is a line of the file (`TOKEN SUBJECT_ID
//! [FOLDER_ID,...] [@admin]`) or an IAM token issued for one; the caller is that subject,
//! limited to those folders when the line names some. Only a line marked `@admin` may use
//! the admin API; an IAM token issued for its subject may not.
//!
//! Tokens are compared by their SHA-256 and never logged or stored as they are: the store
//! keeps issued tokens by digest, with their subject, folders and expiry, so they are
//! verified by every replica and after a restart. A verified issued token is remembered
//! in memory for [`REMEMBER_FOR`] (so a revocation reaches every replica within it).
//! Reading the token off a call (and which calls need none)
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
use std::time::{Duration, Instant, SystemTime};

/// The mark, last on a token file's line, of a token that may use the admin API.
pub const ADMIN_MARK: &str = "@admin";

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
    /// Reads the file's text: one `TOKEN SUBJECT_ID [FOLDER_ID,...] [@admin]` per line;
    /// blank lines and lines starting with `#` are skipped. An error names the line
    /// (`source:N`), never the token.
    pub fn parse(text: &str, source: &str) -> Result<TokenFile, String> {
        let mut callers = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{source}:{}", index + 1);
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            let admin = match fields.last() {
                Some(&ADMIN_MARK) if fields.len() > 2 => {
                    fields.pop();
                    true
                }
                Some(&ADMIN_MARK) => {
                    return Err(format!(
                        "{at}: expected TOKEN SUBJECT_ID [FOLDER_ID,...] {ADMIN_MARK}, found no subject"
                    ))
                }
                Some(mark) if mark.starts_with('@') => {
                    return Err(format!(
                        "{at}: {} is not a mark (the one mark is {ADMIN_MARK}, last on its line)",
                        excerpt(mark)
                    ))
                }
                _ => false,
            };
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
                        "{at}: expected TOKEN SUBJECT_ID [FOLDER_ID,...] [@admin], found {} fields",
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
                admin,
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

    /// The caller a subject of the file is: the folders of all its lines (every folder if
    /// one line has no list); `None` if no line names it.
    fn subject(&self, subject: &str) -> Option<Caller> {
        let mut lines = self
            .callers
            .values()
            .filter(|caller| caller.subject == subject)
            .peekable();
        lines.peek()?;
        let folders = lines.try_fold(BTreeSet::new(), |mut all, caller| match &caller.folders {
            Folders::All => None,
            Folders::Only(folders) => {
                all.extend(folders.iter().cloned());
                Some(all)
            }
        });
        Some(Caller {
            subject: subject.to_string(),
            folders: folders.map_or(Folders::All, Folders::Only),
            admin: false,
        })
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

/// How long a verified issued token is trusted without reading the store again: the
/// longest a revocation made through another replica takes to reach this one.
pub const REMEMBER_FOR: Duration = Duration::from_secs(10);

/// A verified issued token: its caller, when it expires (ms), and when it was read.
#[derive(Debug, Clone)]
struct Remembered {
    caller: Caller,
    expires_at_ms: i64,
    read_at: Instant,
}

/// Knows the callers of tokens, and issues IAM tokens (see the module documentation).
pub struct Identities {
    /// `None`: authentication is off.
    file: Option<TokenFile>,
    store: Arc<dyn Store>,
    token_lifetime: Duration,
    /// Verified issued tokens, by digest.
    remembered: Mutex<HashMap<String, Remembered>>,
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

    /// The caller of an issued token, or UNAUTHENTICATED if it is unknown, expired or
    /// revoked.
    async fn issued(&self, digest: &str) -> Result<Caller, Error> {
        let now = unix_ms(SystemTime::now());
        let remembered = self
            .remembered()
            .get(digest)
            .filter(|remembered| remembered.read_at.elapsed() < REMEMBER_FOR)
            .cloned();
        let Remembered {
            caller,
            expires_at_ms,
            ..
        } = match remembered {
            Some(found) => found,
            None => {
                let token = self.store.token(digest).await?.ok_or_else(not_valid)?;
                let found = Remembered {
                    caller: caller_of(&token),
                    expires_at_ms: token.expires_at_ms,
                    read_at: Instant::now(),
                };
                let mut remembered = self.remembered();
                if remembered.len() >= MAX_REMEMBERED {
                    remembered.clear();
                }
                remembered.insert(digest.to_string(), found.clone());
                found
            }
        };
        if expires_at_ms <= now {
            self.remembered().remove(digest);
            return Err(Error::Unauthenticated(format!(
                "the IAM token expired or was revoked at {}; get a new one from \
                 IamTokenService.Create",
                humantime::format_rfc3339_seconds(time_of_ms(expires_at_ms))
            )));
        }
        Ok(caller)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.remembered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// IamTokenService.Create: a new IAM token for the identity and when it expires.
    ///
    /// With authentication on, an OAuth token must be a token of `--auth-tokens`, and a
    /// JWT (a service account's) must name such a token as its key id (`kid`) and that
    /// token's subject as its issuer (`iss`), and be valid now (`exp`, `iat`, `nbf`; see
    /// [`JWT_CLOCK_SKEW`]): its signature is not checked. The IAM token has the subject and
    /// folders of that token, and is stored. With authentication off, every identity gets
    /// a token of the anonymous caller, which is not stored (every call is accepted
    /// anyway).
    pub async fn issue(&self, identity: &Identity) -> Result<(String, SystemTime), Error> {
        let Some(file) = &self.file else {
            return self.mint(None).await;
        };
        let caller = match identity {
            Identity::YandexPassportOauthToken(oauth) => {
                file.callers.get(&digest(oauth)).cloned().ok_or_else(|| {
                    Error::Unauthenticated("the OAuth token is not in --auth-tokens".into())
                })?
            }
            Identity::Jwt(jwt) => {
                let claims = jwt_claims(jwt)?;
                claims.check_times(seconds_since_epoch(SystemTime::now()))?;
                let JwtClaims { key_id, issuer, .. } = claims;
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
        self.mint(Some(&caller)).await
    }

    /// IamTokenService.CreateForServiceAccount: a new IAM token for the service account
    /// `service_account_id`, asked for by `caller`.
    ///
    /// A service account is a subject of `--auth-tokens`; its token may use the folders of
    /// all its lines. The caller may have it only if it may use every one of those
    /// folders, so a token never reaches further than its maker's; an unknown account
    /// is refused with the same PERMISSION_DENIED, so the answer does not tell which
    /// subjects exist. With authentication off every caller gets an unstored token.
    pub async fn issue_for_service_account(
        &self,
        caller: &Caller,
        service_account_id: &str,
    ) -> Result<(String, SystemTime), Error> {
        let Some(file) = &self.file else {
            return self.mint(None).await;
        };
        let account = file.subject(service_account_id);
        let allowed =
            account
                .as_ref()
                .is_some_and(|account| match (&caller.folders, &account.folders) {
                    (Folders::All, _) => true,
                    (Folders::Only(_), Folders::All) => false,
                    (Folders::Only(mine), Folders::Only(theirs)) => theirs.is_subset(mine),
                });
        match account {
            Some(account) if allowed => self.mint(Some(&account)).await,
            _ => Err(Error::PermissionDenied(format!(
                "subject {} may not create IAM tokens for service account {}: it must be a \
                 subject of --auth-tokens whose folders the caller may all use",
                excerpt(&caller.subject),
                excerpt(service_account_id)
            ))),
        }
    }

    /// IamTokenService.Revoke: ends an issued IAM token at once and answers its subject.
    /// Holding the token is the right to revoke it. Revoking a revoked or expired token
    /// answers its subject again (until it is purged); tokens of `--auth-tokens` are
    /// revoked by removing their line. With authentication off nothing is stored, and
    /// every token is the anonymous caller's.
    pub async fn revoke(&self, token: &str) -> Result<String, Error> {
        let Some(file) = &self.file else {
            return Ok(super::call::ANONYMOUS_SUBJECT.to_string());
        };
        let digest = digest(token);
        if file.callers.contains_key(&digest) {
            return Err(Error::FailedPrecondition(
                "the token is one of --auth-tokens: remove its line from the file to revoke it"
                    .into(),
            ));
        }
        if !is_issued_shape(token) {
            return Err(not_valid());
        }
        let revoked = self
            .store
            .expire_token(&digest, unix_ms(SystemTime::now()))
            .await?
            .ok_or_else(not_valid)?;
        self.remembered().remove(&digest);
        Ok(revoked.subject)
    }

    /// A new IAM token of `caller` (stored) or of nobody (authentication off: not stored),
    /// and when it expires.
    async fn mint(&self, caller: Option<&Caller>) -> Result<(String, SystemTime), Error> {
        let expires_at = SystemTime::now()
            .checked_add(self.token_lifetime)
            .ok_or_else(|| Error::Internal("--iam-token-lifetime is too long".into()))?;
        let mut random = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut random);
        let token = format!(
            "t1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
        );
        if let Some(caller) = caller {
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
        }
        Ok((token, expires_at))
    }
}

/// The caller of a stored token.
fn caller_of(token: &IssuedToken) -> Caller {
    Caller {
        subject: token.subject.clone(),
        folders: match &token.folders {
            None => Folders::All,
            Some(folders) => Folders::Only(folders.iter().cloned().collect()),
        },
        admin: false,
    }
}

/// A time in milliseconds since the epoch (the epoch itself for one before it).
fn time_of_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn seconds_since_epoch(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// UNAUTHENTICATED for a token nobody knows.
fn not_valid() -> Error {
    Error::Unauthenticated(
        "the IAM token is not valid: it is neither in --auth-tokens nor issued by this server"
            .into(),
    )
}

/// How far a JWT's times may disagree with this server's clock.
pub const JWT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The longest a JWT may be valid for (`exp` after `iat`), as in Yandex Cloud: one hour.
pub const JWT_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// What this server reads of a JWT, unverified: the key id (header `kid`), the issuer
/// (`iss`) and its times in seconds since the epoch (`exp` required, `iat` and `nbf`
/// optional).
#[derive(Debug, Clone, PartialEq)]
struct JwtClaims {
    key_id: String,
    issuer: String,
    expires_at: f64,
    issued_at: Option<f64>,
    not_before: Option<f64>,
}

impl JwtClaims {
    /// UNAUTHENTICATED unless the JWT is valid at `now` (seconds since the epoch), within
    /// [`JWT_CLOCK_SKEW`]: not expired, not issued or valid only in the future, and valid
    /// for at most [`JWT_MAX_LIFETIME`].
    fn check_times(&self, now: f64) -> Result<(), Error> {
        let skew = JWT_CLOCK_SKEW.as_secs_f64();
        let refuse = |why: String| Err(Error::Unauthenticated(format!("the JWT {why}")));
        if self.expires_at + skew < now {
            return refuse(format!(
                "expired at {} (its exp); sign a new one",
                rfc3339(self.expires_at)
            ));
        }
        if let Some(issued_at) = self.issued_at {
            if issued_at - skew > now {
                return refuse(format!(
                    "is issued in the future, at {} (its iat); check the clock",
                    rfc3339(issued_at)
                ));
            }
            if self.expires_at < issued_at {
                return refuse("expires (exp) before it is issued (iat)".into());
            }
            if self.expires_at - issued_at > JWT_MAX_LIFETIME.as_secs_f64() {
                return refuse(format!(
                    "is valid for more than {} seconds (exp - iat)",
                    JWT_MAX_LIFETIME.as_secs()
                ));
            }
        }
        if let Some(not_before) = self.not_before {
            if not_before - skew > now {
                return refuse(format!(
                    "is not valid before {} (its nbf)",
                    rfc3339(not_before)
                ));
            }
        }
        Ok(())
    }
}

/// Seconds since the epoch as an RFC 3339 time (the epoch itself for nonsense).
fn rfc3339(seconds: f64) -> String {
    let since_epoch = Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default();
    let time = SystemTime::UNIX_EPOCH
        .checked_add(since_epoch)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Reads a JWT's key id, issuer and times, unverified; INVALID_ARGUMENT if it is not a
/// JWT or lacks one of them.
fn jwt_claims(jwt: &str) -> Result<JwtClaims, Error> {
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
    let time = |name: &str| -> Result<Option<f64>, Error> {
        match payload.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .filter(|seconds| seconds.is_finite())
                .map(Some)
                .ok_or_else(|| malformed(&format!("its {name} is not a number of seconds"))),
        }
    };
    Ok(JwtClaims {
        key_id: text(&header, "kid", "header")?,
        issuer: text(&payload, "iss", "payload")?,
        expires_at: time("exp")?
            .ok_or_else(|| malformed("its payload has no exp (when it expires)"))?,
        issued_at: time("iat")?,
        not_before: time("nbf")?,
    })
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
                admin: false,
            }
        );
        assert_eq!(
            file.callers[&digest("secret-b")].folders,
            Folders::Only(["f1".to_string(), "f2".to_string()].into())
        );
        let marked = TokenFile::parse("t-all ops @admin\nt-some ops f1 @admin\n", "t").unwrap();
        assert!(marked.callers.values().all(|caller| caller.admin));
        assert_eq!(
            marked.callers[&digest("t-some")].folders,
            Folders::Only(["f1".to_string()].into())
        );
        for (text, expected) in [
            (
                "only-a-token\n",
                "tokens.txt:1: expected TOKEN SUBJECT_ID [FOLDER_ID,...] [@admin], found 1 fields",
            ),
            (
                "a b c d\n",
                "tokens.txt:1: expected TOKEN SUBJECT_ID [FOLDER_ID,...] [@admin], found 4 fields",
            ),
            ("t s @root\n", "tokens.txt:1: \"@root\" is not a mark"),
            (
                "t @admin\n",
                "tokens.txt:1: expected TOKEN SUBJECT_ID [FOLDER_ID,...] @admin, found no subject",
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
    fn a_jwt_gives_its_key_id_issuer_and_times() {
        let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let jwt = format!(
            "{}.{}.signature",
            part(r#"{"typ":"JWT","alg":"PS256","kid":"key-1"}"#),
            part(
                r#"{"iss":"sa-1","aud":"https://iam.api.cloud.yandex.net/iam/v1/tokens","iat":1000,"exp":1360}"#
            )
        );
        assert_eq!(
            jwt_claims(&jwt).unwrap(),
            JwtClaims {
                key_id: "key-1".into(),
                issuer: "sa-1".into(),
                expires_at: 1360.0,
                issued_at: Some(1000.0),
                not_before: None,
            }
        );
        assert!(jwt_claims("not-a-jwt").is_err());
        let without_exp = format!(
            "{}.{}.signature",
            part(r#"{"kid":"key-1"}"#),
            part(r#"{"iss":"sa-1"}"#)
        );
        let error = jwt_claims(&without_exp).unwrap_err();
        assert!(error.message().contains("no exp"), "{error}");
    }

    fn claims(issued_at: Option<f64>, expires_at: f64, not_before: Option<f64>) -> JwtClaims {
        JwtClaims {
            key_id: "key-1".into(),
            issuer: "sa-1".into(),
            expires_at,
            issued_at,
            not_before,
        }
    }

    #[test]
    fn a_jwt_is_refused_outside_its_times_with_a_little_clock_skew() {
        let now = 1_700_000_000.0;
        let skew = JWT_CLOCK_SKEW.as_secs_f64();
        let accepted = [
            claims(Some(now - 10.0), now + 300.0, None),
            // within the skew either way
            claims(Some(now + skew - 1.0), now + 300.0, Some(now + skew - 1.0)),
            claims(Some(now - 3000.0), now - skew + 1.0, None),
            claims(None, now + 10.0, None),
        ];
        for claims in accepted {
            assert_eq!(claims.check_times(now), Ok(()), "{claims:?}");
        }
        let refused = [
            (claims(Some(now - 7200.0), now - 3600.0, None), "expired at"),
            (claims(None, now - skew - 1.0, None), "expired at"),
            (
                claims(Some(now + skew + 1.0), now + 600.0, None),
                "issued in the future",
            ),
            (claims(Some(now), now - 1.0, None), "before it is issued"),
            (
                claims(Some(now), now + 7200.0, None),
                "more than 3600 seconds",
            ),
            (
                claims(None, now + 600.0, Some(now + skew + 1.0)),
                "not valid before",
            ),
        ];
        for (claims, why) in refused {
            let error = claims.check_times(now).unwrap_err();
            assert!(
                matches!(&error, Error::Unauthenticated(message) if message.contains(why)),
                "{claims:?}: {error}"
            );
        }
    }
}

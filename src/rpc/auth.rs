//! Who makes a call: the RPC layer's part of authentication. A call needs
//! `authorization: Bearer TOKEN`, which [`Identities`] turns into a caller, unless its
//! service is open (health, reflection, endpoint discovery and the token exchange: the
//! server's service table says which). With authentication off every call is anonymous.

use crate::domain::call::Caller;
use crate::domain::identity::Identities;
use crate::error::Error;
use http::HeaderMap;
use std::sync::Arc;

/// Decides who calls (see the module documentation).
pub struct Authenticator {
    identities: Arc<Identities>,
    /// The gRPC paths that need no token: a service's (`/package.Service/`, a prefix) or
    /// one method's (`/package.Service/Method`, exactly).
    open_paths: Vec<String>,
}

impl Authenticator {
    /// `open_paths`: the gRPC paths that need no token (see the field).
    pub fn new(identities: Arc<Identities>, open_paths: Vec<String>) -> Authenticator {
        Authenticator {
            identities,
            open_paths,
        }
    }

    /// Whether a call at `path` needs no token.
    fn is_open(&self, path: &str) -> bool {
        self.open_paths.iter().any(|open| {
            if open.ends_with('/') {
                path.starts_with(open.as_str())
            } else {
                path == open
            }
        })
    }

    /// The caller of an RPC at `path` with these headers, or UNAUTHENTICATED.
    pub async fn caller(&self, path: &str, headers: &HeaderMap) -> Result<Caller, Error> {
        if !self.identities.is_on() || self.is_open(path) {
            return Ok(Caller::anonymous());
        }
        self.identities.caller(bearer_token(headers)?).await
    }
}

/// The token of an `authorization: Bearer TOKEN` header, or UNAUTHENTICATED.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
        Error::Unauthenticated(
            "the call has no IAM token: send the header `authorization: Bearer <token>`".into(),
        )
    })?;
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Error::Unauthenticated(
            "the authorization header is not `Bearer <token>`".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            bearer_token(&headers),
            Err(Error::Unauthenticated(_))
        ));
        headers.insert("authorization", "Bearer t1.abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), "t1.abc");
        headers.insert("authorization", "bearer  t1.abc ".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), "t1.abc");
        headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert!(matches!(
            bearer_token(&headers),
            Err(Error::Unauthenticated(_))
        ));
    }
}

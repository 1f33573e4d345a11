//! Keeping secrets out of messages and logs: source URIs carry credentials
//! (`https://user:password@host/...`) and presigned tokens in their query strings
//! (`?X-Amz-Signature=...`, `?sig=...`).
//!
//! [`url`] shows a URI without them, and at most [`MAX_SHOWN_CHARS`] long. [`urls_in`]
//! does the same to every URI inside a text, for messages that come from libraries (reqwest
//! puts the whole URL in its errors, hyper's DNS errors name it too). Every message and log
//! line of an import goes through one of them.

/// The longest a redacted URI is shown.
pub const MAX_SHOWN_CHARS: usize = 256;

/// The URI without userinfo and query, cut to [`MAX_SHOWN_CHARS`].
pub fn url(uri: &str) -> String {
    let shown = match url::Url::parse(uri) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let had_query = parsed.query().is_some();
            parsed.set_query(None);
            parsed.set_fragment(None);
            if had_query {
                format!("{parsed}?…")
            } else {
                parsed.to_string()
            }
        }
        Err(_) => return "(unparsable URI)".into(),
    };
    if shown.chars().count() <= MAX_SHOWN_CHARS {
        return shown;
    }
    let start: String = shown.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{start}…")
}

/// `text` with every http(s) URI in it redacted by [`url`].
pub fn urls_in(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_scheme(rest) {
        result.push_str(&rest[..start]);
        let candidate = &rest[start..];
        // A URI ends at whitespace, or at what quotes or brackets it in a message.
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ']' | '`'))
            .unwrap_or(candidate.len());
        result.push_str(&url(&candidate[..end]));
        rest = &candidate[end..];
    }
    result.push_str(rest);
    result
}

/// Where the next `http://` or `https://` starts (any case).
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_queries_are_removed() {
        let shown = url("https://user:s3cret@host.example/a.qcow2?X-Amz-Signature=t0p#frag");
        assert_eq!(shown, "https://host.example/a.qcow2?…");
        assert_eq!(url("not a uri"), "(unparsable URI)");
        let long = format!("http://h/{}", "a".repeat(10_000));
        assert!(url(&long).chars().count() <= MAX_SHOWN_CHARS + 1);
    }

    #[test]
    fn every_uri_inside_a_text_is_redacted() {
        let text = "error sending request for url (http://u:s3cret@h:1/x?sig=t0psecret): \
                    dns error; also HTTPS://a:b@c/d?e=f and \"https://x/y?z=1\"";
        let redacted = urls_in(text);
        for secret in ["s3cret", "t0psecret", "a:b", "e=f", "z=1"] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
        assert!(redacted.starts_with("error sending request for url (http://h:1/x?…): dns error"));
        assert_eq!(urls_in("no uri here"), "no uri here");
    }
}

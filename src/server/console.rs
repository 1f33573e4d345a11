//! The web console's files, embedded in the binary from `console/` at the repository's
//! root (hand-written HTML, CSS and JavaScript: no build step, no network). The console
//! is a client of the public REST API, the admin API and the introspection API with the
//! caller's token; this module only hands out its files, with headers that keep it to
//! this origin.

use http::{HeaderMap, HeaderValue};

/// Where the console is served.
pub const PATH: &str = "/console";

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../../console/index.html"),
};

/// The files under [`PATH`], by the rest of their path.
const FILES: &[(&str, Asset)] = &[
    (
        "/console.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../../console/console.js"),
        },
    ),
    (
        "/console.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("../../console/console.css"),
        },
    ),
];

/// The file at `path`: the page at `/console` and `/console/`, its scripts and styles
/// beside it; `None` for any other path.
pub fn asset(path: &str) -> Option<Asset> {
    let rest = path.strip_prefix(PATH)?;
    if rest.is_empty() || rest == "/" {
        return Some(INDEX);
    }
    FILES
        .iter()
        .find(|(name, _)| *name == rest)
        .map(|(_, asset)| *asset)
}

/// What a console response carries besides its body: it may load and call only this
/// origin, may not be framed, and is checked again on every load (a new binary brings new
/// files).
pub fn protect(headers: &mut HeaderMap) {
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_found_and_nothing_else() {
        assert_eq!(asset("/console").unwrap().content_type, INDEX.content_type);
        assert_eq!(asset("/console/").unwrap().content_type, INDEX.content_type);
        assert!(asset("/console/console.js").is_some());
        assert!(asset("/console/console.css").is_some());
        assert!(asset("/console/../Cargo.toml").is_none());
        assert!(asset("/consoles").is_none());
        assert!(asset("/console/missing.js").is_none());
    }
}

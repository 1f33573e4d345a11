//! google.api.http path templates: parsed once at start, matched against every request.
//!
//! The grammar served is the part of google.api.http's that Yandex Cloud's rules use:
//! literal segments, `{field}` and `{field=*}` variables that take one whole segment
//! (`field` may be a dotted path such as `a.b`), and a custom verb after the last
//! segment (`/operations/{operation_id}:cancel`, `/compute/v1/images:latestByFamily`).
//! Anything else (`**`, multi-segment variables) is refused when the routes are built,
//! so an unsupported rule stops the server at start instead of misrouting.

use percent_encoding::percent_decode_str;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A variable: the field path it sets, as written (`image_id`, `a.b`).
    Variable(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    verb: Option<String>,
    source: String,
}

/// What a match captured: each variable's field path and its percent-decoded value.
pub type Bindings = Vec<(String, String)>;

/// Why a request path that matched a template's shape is still unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSegment(pub String);

impl Template {
    /// Parses a template such as `/compute/v1/images/{image_id}:cancel`.
    pub fn parse(source: &str) -> Result<Template, String> {
        let fail = |why: &str| Err(format!("path template {source:?}: {why}"));
        let Some(rest) = source.strip_prefix('/') else {
            return fail("must start with /");
        };
        // A verb is a `:` after the last `}` and the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
        let last_brace = rest.rfind('}').map_or(0, |at| at + 1);
        let verb_from = rest[last_slash.max(last_brace)..]
            .find(':')
            .map(|at| last_slash.max(last_brace) + at);
        let (path, verb) = match verb_from {
            Some(at) => (&rest[..at], Some(rest[at + 1..].to_string())),
            None => (rest, None),
        };
        if verb.as_deref().is_some_and(|verb| {
            verb.is_empty() || !verb.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }) {
            return fail("the custom verb must be letters, digits or _");
        }
        let mut segments = Vec::new();
        for segment in path.split('/') {
            if let Some(inner) = segment.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return fail("a variable must be a whole segment");
                };
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if pattern != "*" {
                    return fail("only single-segment variables ({field} or {field=*}) are served");
                }
                let is_field_path = !field.is_empty()
                    && field.split('.').all(|part| {
                        !part.is_empty()
                            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                if !is_field_path {
                    return fail("a variable must name a field");
                }
                segments.push(Segment::Variable(field.to_string()));
            } else if segment.is_empty() || segment.contains(['{', '}', '*', ':']) {
                return fail("segments must be non-empty literals or {variables}");
            } else {
                segments.push(Segment::Literal(segment.to_string()));
            }
        }
        Ok(Template {
            segments,
            verb,
            source: source.to_string(),
        })
    }

    /// The template as written in the proto.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The field paths of the variables, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Variable(field) => Some(field.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// How specific a match with this template is: a custom verb first, then the
    /// number of literal segments. Among templates that match one path, only the most
    /// specific ones count (`/disks/{disk_id}:move` over `/disks/{disk_id}`).
    pub fn specificity(&self) -> (bool, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count();
        (self.verb.is_some(), literals)
    }

    /// Matches a request path (as sent, percent-encoded). `None`: another shape (another
    /// custom verb included).
    /// `Some(Err)`: the shape fits but a variable's value is not UTF-8.
    pub fn matches(&self, path: &str) -> Option<Result<Bindings, BadSegment>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => {
                let without = rest.strip_suffix(verb.as_str())?.strip_suffix(':')?;
                // The verb belongs to the last segment, never to the middle of the path.
                if without.ends_with('/') {
                    return None;
                }
                without
            }
            // A `:` in the last segment starts a custom verb: a template without one does
            // not take it as part of a variable (`/operations/x:frobnicate` is no Get).
            None if rest
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':')) =>
            {
                return None
            }
            None => rest,
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut bindings = Vec::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(literal) => {
                    if literal != part {
                        return None;
                    }
                }
                Segment::Variable(field) => {
                    if part.is_empty() {
                        return None;
                    }
                    match percent_decode_str(part).decode_utf8() {
                        Ok(value) => bindings.push((field.clone(), value.into_owned())),
                        Err(_) => {
                            return Some(Err(BadSegment(format!(
                                "path segment for {field} is not UTF-8 once percent-decoded"
                            ))))
                        }
                    }
                }
            }
        }
        Some(Ok(bindings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(template: &str, path: &str) -> Option<Bindings> {
        Template::parse(template)
            .unwrap()
            .matches(path)
            .map(Result::unwrap)
    }

    #[test]
    fn literals_variables_and_verbs_match() {
        let pair = |field: &str, value: &str| vec![(field.to_string(), value.to_string())];
        assert_eq!(
            bind("/compute/v1/images", "/compute/v1/images"),
            Some(vec![])
        );
        assert_eq!(
            bind("/compute/v1/images/{image_id}", "/compute/v1/images/fd8abc"),
            Some(pair("image_id", "fd8abc"))
        );
        assert_eq!(
            bind(
                "/operations/{operation_id}:cancel",
                "/operations/opr1:cancel"
            ),
            Some(pair("operation_id", "opr1"))
        );
        assert_eq!(
            bind(
                "/compute/v1/images:latestByFamily",
                "/compute/v1/images:latestByFamily"
            ),
            Some(vec![])
        );
        assert_eq!(
            bind("/x/{a.b=*}", "/x/caf%C3%A9%2Fslash"),
            Some(pair("a.b", "café/slash"))
        );
        assert_eq!(bind("/compute/v1/images", "/compute/v1/images/"), None);
        assert_eq!(
            bind("/compute/v1/images/{image_id}", "/compute/v1/images/"),
            None
        );
        assert_eq!(
            bind("/compute/v1/images/{image_id}", "/compute/v1/images/a/b"),
            None
        );
        assert_eq!(
            bind("/operations/{operation_id}:cancel", "/operations/opr1"),
            None
        );
        assert_eq!(
            bind("/operations/{operation_id}:cancel", "/operations/:cancel"),
            None
        );
        assert_eq!(bind("/images:latestByFamily", "/images:latest"), None);
        assert_eq!(
            bind("/operations/{operation_id}", "/operations/x:frobnicate"),
            None
        );
        assert_eq!(bind("/operations/{operation_id}", "/operations/x:"), None);
        assert_eq!(
            bind("/operations/{operation_id}", "/operations/a%3Ab"),
            Some(pair("operation_id", "a:b"))
        );
        assert!(Template::parse("/x/{id}")
            .unwrap()
            .matches("/x/%FF")
            .unwrap()
            .is_err());
    }

    #[test]
    fn unsupported_templates_are_refused() {
        for bad in [
            "x",
            "/a/**",
            "/a/{b=c/*}",
            "/a/{}",
            "/a//b",
            "/a/b:",
            "/a/pre{b}",
            "/a:b:c",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let template = Template::parse("/compute/v1/disks/{disk_id}:move").unwrap();
        assert_eq!(template.variables().collect::<Vec<_>>(), ["disk_id"]);
        assert_eq!(template.specificity(), (true, 3));
    }
}

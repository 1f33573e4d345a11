//! JSON read strictly: a key given twice in one object is refused, naming it. serde_json
//! keeps the last of two equal keys (protojson, grpc-gateway's, refuses them); a reader
//! that keeps the first would see another document than imageplane acts on. The REST
//! gateway reads request bodies with it, and state snapshots their lines.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};
use std::cell::RefCell;
use std::fmt;

/// Why a document was refused.
#[derive(Debug)]
pub enum Refusal {
    /// A key is given twice in one object: its path (`labels.env`, `x[1].y`) and the key.
    Twice { path: String, key: String },
    /// It is not JSON, or not one document.
    Invalid(serde_json::Error),
}

/// One JSON document, each object's keys given once, at any depth.
pub fn parse(bytes: &[u8]) -> Result<Json, Refusal> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Unique {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|json| deserializer.end().map(|()| json));
    parsed.map_err(|error| match duplicate.into_inner() {
        Some((path, key)) => Refusal::Twice { path, key },
        None => Refusal::Invalid(error),
    })
}

/// The path of `key` inside `path` (`labels.env`).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Deserializes a JSON value, refusing a key given twice in one object; the path and the
/// key of the second go into `duplicate`.
struct Unique<'a> {
    path: String,
    duplicate: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Json;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(Json::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Unique {
                path: format!("{}[{}]", self.path, items.len()),
                duplicate: self.duplicate,
            };
            match sequence.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Json::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some((path, key));
                return Err(A::Error::custom("a key is given twice"));
            }
            let value = map.next_value_seed(Unique {
                path,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Json::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_named_by_its_path_at_any_depth() {
        let twice = |body: &str| match parse(body.as_bytes()) {
            Err(Refusal::Twice { path, key }) => (path, key),
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(twice(r#"{"a": 1, "a": 2}"#), ("a".into(), "a".into()));
        assert_eq!(
            twice(r#"{"x": [{}, {"y": 1, "y": 2}]}"#),
            ("x[1].y".into(), "y".into())
        );
        assert!(matches!(parse(b"{} {}"), Err(Refusal::Invalid(_))));
        let json = parse(br#"{"a": [1, -2, 3.5, null, true, "s"], "b": {"c": {}}}"#).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"a": [1, -2, 3.5, null, true, "s"], "b": {"c": {}}})
        );
    }
}

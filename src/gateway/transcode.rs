//! From an HTTP request to the protobuf request of its RPC: the JSON body, the path's
//! variables and the query parameters, in the canonical proto3 JSON mapping
//! (prost-reflect's serde support), never hand-written serde.
//!
//! - The body is read strictly (`json`: a key given twice, two keys for one field or two
//!   members of one oneof are refused) and decoded into the request message (or the
//!   `body:` field's message). Field names are lowerCamelCase or the proto names; int64 as
//!   strings or numbers; enums as names or numbers; Timestamp in RFC 3339; FieldMask as a
//!   comma-separated string whose paths pass as written. A field the message does not
//!   have is refused (400 naming it): a typo must not silently do something else.
//!   Malformed JSON is refused with its line and column, a value of the wrong type with
//!   the field's path. A route without a body takes an empty body or `{}` (clients that
//!   always send JSON), nothing else.
//! - Path variables and query parameters become one more JSON object of the same message,
//!   decoded the same way. Query keys are field paths (`pageSize` or `page_size`, `a.b`
//!   for nested fields); a repeated field takes repeated keys; a FieldMask takes
//!   `updateMask=name,minDiskSize`. A key that names no field, a field given twice, a
//!   field the path or the body already carries, or a key or value that is not UTF-8 once
//!   percent-decoded is refused.
//! - The two encodings are concatenated: protobuf merges them, so a path variable wins
//!   over the same field in the body.

use super::json;
use super::routes::{BodyRule, Route};
use super::template::Bindings;
use crate::error::Error;
use percent_encoding::percent_decode_str;
use prost::Message;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use serde_json::{Map, Value as Json};

/// The encoded protobuf request for `route`.
pub fn request_bytes(
    route: &Route,
    bindings: Bindings,
    query: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    let input = route.rpc.input();
    let mut encoded = match &route.body {
        BodyRule::None => {
            if !is_blank(body) && !is_empty_object(body) {
                return Err(Error::InvalidArgument(format!(
                    "{} takes no request body (an empty one or {{}} is ignored): send its \
                     fields as query parameters",
                    route.display
                )));
            }
            Vec::new()
        }
        BodyRule::Whole => decode_body(&input, body)?.encode_to_vec(),
        BodyRule::Field(field) => {
            let Kind::Message(descriptor) = field.kind() else {
                unreachable!("routes only take message fields as bodies")
            };
            let inner = decode_body(&descriptor, body)?;
            let mut outer = DynamicMessage::new(input.clone());
            outer.set_field(field, Value::Message(inner));
            outer.encode_to_vec()
        }
    };
    let mut parameters = Parameters::default();
    for (path, value) in bindings {
        let fields = resolve(&input, &path).map_err(|why| {
            Error::Internal(format!("path variable {path} of {}: {why}", route.display))
        })?;
        parameters.set(&fields, &path, &value, Origin::Path)?;
    }
    for (key, value) in query_pairs(query.unwrap_or(""))? {
        if matches!(route.body, BodyRule::Whole) {
            return Err(Error::invalid_field(
                key,
                format!(
                    "{} takes every field in its JSON body, not as query parameters",
                    route.display
                ),
            ));
        }
        let fields = resolve(&input, &key).map_err(|why| {
            Error::invalid_field(key.as_str(), format!("not a query parameter: {why}"))
        })?;
        if let BodyRule::Field(body_field) = &route.body {
            if fields[0] == *body_field {
                return Err(Error::invalid_field(
                    key,
                    format!("is carried by the request body in {}", route.display),
                ));
            }
        }
        parameters.set(&fields, &key, &value, Origin::Query)?;
    }
    if !parameters.json.is_empty() {
        let message = decode_object(&input, parameters.json)?;
        encoded.extend(message.encode_to_vec());
    }
    Ok(encoded)
}

/// The query's keys and values, percent-decoded (`+` is a space); one that is not UTF-8
/// is refused, not mended.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, Error> {
    let decode = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_decode_str(&spaced)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| {
                String::from_utf8_lossy(&percent_decode_str(&spaced).collect::<Vec<u8>>())
                    .into_owned()
            })
    };
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key).map_err(|lossy| {
            Error::invalid_field(
                lossy,
                "this query parameter's name is not UTF-8 once percent-decoded",
            )
        })?;
        let value = decode(value).map_err(|_| {
            Error::invalid_field(
                key.as_str(),
                "the query parameter's value is not UTF-8 once percent-decoded",
            )
        })?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// `{}`, with any whitespace.
fn is_empty_object(body: &[u8]) -> bool {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    text == b"{}"
}

fn options() -> DeserializeOptions {
    DeserializeOptions::new().deny_unknown_fields(true)
}

/// A JSON body as a message of `descriptor`; an empty body is the empty message.
fn decode_body(descriptor: &MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, Error> {
    if is_blank(body) {
        return Ok(DynamicMessage::new(descriptor.clone()));
    }
    match json::parse(body)? {
        Json::Object(object) => decode_object(descriptor, object),
        _ => Err(Error::InvalidArgument(format!(
            "request body: a JSON object of {} is expected",
            descriptor.full_name()
        ))),
    }
}

/// A JSON object (a body, or the path variables and query parameters) as a message of
/// `descriptor`: checked (`json::check_fields`), decoded, its masks put back as written.
fn decode_object(
    descriptor: &MessageDescriptor,
    mut object: Map<String, Json>,
) -> Result<DynamicMessage, Error> {
    let masks = json::check_fields(descriptor, &mut object)?;
    let mut message = decode_tracked(descriptor, Json::Object(object))?;
    json::put_masks(&mut message, masks);
    Ok(message)
}

/// Decodes with the path of the field that failed, when one did.
fn decode_tracked(descriptor: &MessageDescriptor, value: Json) -> Result<DynamicMessage, Error> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(value, &mut track);
    DynamicMessage::deserialize_with_options(descriptor.clone(), tracked, &options()).map_err(
        |error| {
            let path = track.path().to_string();
            // serde_path_to_error writes "." for the top level and "?" where it could
            // not tell: no field to name then.
            if path.is_empty() || path == "." || path.contains('?') {
                Error::InvalidArgument(format!("request body: {error}"))
            } else {
                Error::invalid_field(path, error.to_string())
            }
        },
    )
}

/// The fields a dotted key names, outermost first: each part by its lowerCamelCase
/// (JSON) name or its proto name, through singular message fields.
fn resolve(message: &MessageDescriptor, key: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    let parts: Vec<&str> = key.split('.').collect();
    for (index, part) in parts.iter().enumerate() {
        let field = current
            .get_field_by_json_name(part)
            .or_else(|| current.get_field_by_name(part))
            .ok_or_else(|| format!("{} has no field {part:?}", current.full_name()))?;
        let last = index + 1 == parts.len();
        match field.kind() {
            Kind::Message(next)
                if !last
                    && !field.is_list()
                    && !field.is_map()
                    && !is_single_value_message(&next) =>
            {
                current = next;
            }
            _ if !last => return Err(format!("{part} has no fields to set")),
            _ => {}
        }
        fields.push(field);
    }
    Ok(fields)
}

/// Messages that proto3 JSON writes as one scalar value, so a parameter can carry them.
pub fn is_single_value_message(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Path,
    Query,
}

/// Path variables and query parameters gathered into one JSON object by field.
#[derive(Default)]
struct Parameters {
    json: Map<String, Json>,
    /// Which fields were set, and how, to refuse a second value.
    set_by: Vec<(String, Origin)>,
}

impl Parameters {
    fn set(
        &mut self,
        fields: &[FieldDescriptor],
        key: &str,
        text: &str,
        origin: Origin,
    ) -> Result<(), Error> {
        let leaf = fields.last().expect("a resolved key names a field");
        let value = json_of(leaf, text).map_err(|why| Error::invalid_field(key, why))?;
        let full_path: Vec<&str> = fields.iter().map(FieldDescriptor::json_name).collect();
        let identity = full_path.join(".");
        if !leaf.is_list() {
            if let Some((_, earlier)) = self.set_by.iter().find(|(path, _)| *path == identity) {
                let why = match (earlier, origin) {
                    (Origin::Path, _) => "is set by the path; it cannot be a query parameter too",
                    _ => "is given more than once",
                };
                return Err(Error::invalid_field(key, why));
            }
        }
        self.set_by.push((identity, origin));
        let mut object = &mut self.json;
        for name in &full_path[..full_path.len() - 1] {
            object = object
                .entry(name.to_string())
                .or_insert_with(|| Json::Object(Map::new()))
                .as_object_mut()
                .expect("intermediate fields are objects");
        }
        let name = full_path[full_path.len() - 1].to_string();
        if leaf.is_list() {
            match object
                .entry(name)
                .or_insert_with(|| Json::Array(Vec::new()))
            {
                Json::Array(values) => values.push(value),
                _ => unreachable!("repeated fields are arrays"),
            }
        } else {
            object.insert(name, value);
        }
        Ok(())
    }
}

/// A parameter's text as the JSON value proto3 JSON expects for `field`.
fn json_of(field: &FieldDescriptor, text: &str) -> Result<Json, String> {
    if field.is_map() {
        return Err("a map cannot be a query parameter: send it in a JSON body".into());
    }
    Ok(match field.kind() {
        Kind::Bool => json_of_bool(text)?,
        Kind::Enum(_) => match text.parse::<i64>() {
            Ok(number) => Json::from(number),
            Err(_) => Json::String(text.to_string()),
        },
        Kind::Message(message) if message.full_name() == "google.protobuf.FieldMask" => {
            Json::String(text.to_string())
        }
        Kind::Message(message) if message.full_name() == "google.protobuf.BoolValue" => {
            json_of_bool(text)?
        }
        Kind::Message(message) if !is_single_value_message(&message) => {
            return Err(format!(
                "a message cannot be a query parameter: set its fields as {}.FIELD",
                field.json_name()
            ))
        }
        // Numbers, strings, bytes (base64), Timestamp, Duration and wrappers: proto3
        // JSON takes them all as strings.
        _ => Json::String(text.to_string()),
    })
}

fn json_of_bool(text: &str) -> Result<Json, String> {
    match text {
        "true" => Ok(Json::Bool(true)),
        "false" => Ok(Json::Bool(false)),
        other => Err(format!("{other:?} is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::template::Template;
    use super::*;
    use crate::pb::compute::{hardware_generation, CreateImageRequest, UpdateImageRequest};
    use http::Method;

    /// A route of the real descriptors with a template and body of the test's choosing.
    fn route(rpc: &str, template: &str, body: BodyRule) -> Route {
        let pool = crate::pb::descriptor_pool().clone();
        let (service, method) = rpc.rsplit_once('.').unwrap();
        let rpc = pool
            .get_service_by_name(service)
            .unwrap()
            .methods()
            .find(|candidate| candidate.name() == method)
            .unwrap();
        Route {
            method: Method::GET,
            template: Template::parse(template).unwrap(),
            body,
            grpc_path: String::new(),
            display: format!("GET {template}"),
            rpc,
        }
    }

    fn transcode<M: Message + Default>(
        route: &Route,
        path: &str,
        query: &str,
        body: &str,
    ) -> Result<M, Error> {
        let bindings = route.template.matches(path).unwrap().unwrap();
        let bytes = request_bytes(route, bindings, Some(query), body.as_bytes())?;
        Ok(M::decode(bytes.as_slice()).unwrap())
    }

    const CREATE_IMAGE: &str = "yandex.cloud.compute.v1.ImageService.Create";
    const UPDATE_IMAGE: &str = "yandex.cloud.compute.v1.ImageService.Update";

    #[test]
    fn query_parameters_set_scalars_repeated_nested_and_enum_fields() {
        let route = route(CREATE_IMAGE, "/x/{folder_id}", BodyRule::None);
        let request: CreateImageRequest = transcode(
            &route,
            "/x/fld1",
            "name=n&product_ids=a&productIds=b&os.type=WINDOWS\
             &hardware_generation.legacyFeatures.pciTopology=2&minDiskSize=5&pooled=true\
             &uri=http%3A%2F%2Fh%2Fx%3Fa%3D1%26b",
            "",
        )
        .unwrap();
        assert_eq!(request.folder_id, "fld1");
        assert_eq!(request.name, "n");
        assert_eq!(request.product_ids, ["a", "b"]);
        assert_eq!(request.os.unwrap().r#type, 2);
        match request.hardware_generation.unwrap().features.unwrap() {
            hardware_generation::Features::LegacyFeatures(legacy) => {
                assert_eq!(legacy.pci_topology, 2)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(request.min_disk_size, 5);
        assert!(request.pooled);
        assert_eq!(
            request.source,
            Some(crate::pb::compute::create_image_request::Source::Uri(
                "http://h/x?a=1&b".into()
            ))
        );
    }

    #[test]
    fn a_field_mask_parameter_passes_as_written() {
        let route = route(UPDATE_IMAGE, "/images/{image_id}", BodyRule::None);
        let request: UpdateImageRequest = transcode(
            &route,
            "/images/fd8x",
            "updateMask=name,min_disk_size,minDiskSize&name=n",
            "",
        )
        .unwrap();
        assert_eq!(request.image_id, "fd8x");
        assert_eq!(
            request.update_mask.unwrap().paths,
            ["name", "min_disk_size", "minDiskSize"],
            "paths pass as written: the domain reads either spelling"
        );
    }

    #[test]
    fn bad_parameters_are_refused_naming_them() {
        let route = route(UPDATE_IMAGE, "/images/{image_id}", BodyRule::None);
        let refused = |query: &str| {
            transcode::<UpdateImageRequest>(&route, "/images/fd8x", query, "")
                .unwrap_err()
                .message()
        };
        assert!(refused("name=a&name=b").contains("more than once"));
        assert!(refused("imageId=y").contains("set by the path"));
        assert!(refused("labels.env=x").starts_with("labels.env: "));
        assert!(refused("labels=x").contains("map"));
        assert!(refused("colour=red").starts_with("colour: "));
        assert!(refused("minDiskSize=lots").starts_with("minDiskSize: "));
        assert!(refused("updateMask.paths=x").starts_with("updateMask.paths: "));
        let create = route_create_none();
        let refused = transcode::<CreateImageRequest>(&create, "/x", "pooled=yes", "")
            .unwrap_err()
            .message();
        assert!(refused.starts_with("pooled: "), "{refused}");
        let refused = transcode::<CreateImageRequest>(&create, "/x", "os=LINUX", "")
            .unwrap_err()
            .message();
        assert!(refused.contains("os.FIELD"), "{refused}");
        let refused = transcode::<CreateImageRequest>(&create, "/x", "", r#"{"name": "n"}"#)
            .unwrap_err()
            .message();
        assert!(refused.contains("takes no request body"), "{refused}");
        let refused = transcode::<CreateImageRequest>(&create, "/x", "folderId=f%FF1", "")
            .unwrap_err()
            .message();
        assert!(refused.starts_with("folderId: "), "{refused}");
        assert!(refused.contains("not UTF-8"), "{refused}");
        let refused = transcode::<CreateImageRequest>(&create, "/x", "fo%FFlder=f", "")
            .unwrap_err()
            .message();
        assert!(refused.contains("not UTF-8"), "{refused}");
    }

    #[test]
    fn a_route_without_a_body_ignores_an_empty_one_or_an_empty_object() {
        let create = route_create_none();
        for body in ["", " \n", "{}", " { } "] {
            let request: CreateImageRequest =
                transcode(&create, "/x", "folderId=f&name=a+b%20c", body).unwrap();
            assert_eq!(
                (request.folder_id.as_str(), request.name.as_str()),
                ("f", "a b c")
            );
        }
    }

    #[test]
    fn masks_in_a_body_pass_as_written_and_duplicates_are_refused() {
        let route = route(UPDATE_IMAGE, "/images/{image_id}", BodyRule::Whole);
        let request: UpdateImageRequest = transcode(
            &route,
            "/images/fd8x",
            "",
            r#"{"updateMask": "Name,min_disk_size,disk_placement_policy.placement_group_id"}"#,
        )
        .unwrap();
        assert_eq!(
            request.update_mask.unwrap().paths,
            [
                "Name",
                "min_disk_size",
                "disk_placement_policy.placement_group_id"
            ]
        );
        let request: UpdateImageRequest =
            transcode(&route, "/images/fd8x", "", r#"{"name": "n"}"#).unwrap();
        assert_eq!(request.update_mask, None);
        let refused = transcode::<UpdateImageRequest>(
            &route,
            "/images/fd8x",
            "",
            r#"{"name": "a", "name": "b"}"#,
        )
        .unwrap_err()
        .message();
        assert!(refused.starts_with("name: is given twice"), "{refused}");
        let refused = transcode::<UpdateImageRequest>(
            &route,
            "/images/fd8x",
            "",
            r#"{"minDiskSize": "1", "min_disk_size": "2"}"#,
        )
        .unwrap_err()
        .message();
        assert!(refused.contains("names the same field"), "{refused}");
    }

    fn route_create_none() -> Route {
        route(CREATE_IMAGE, "/x", BodyRule::None)
    }

    #[test]
    fn a_path_variable_wins_over_the_same_field_in_the_body() {
        let route = route(UPDATE_IMAGE, "/images/{image_id}", BodyRule::Whole);
        let request: UpdateImageRequest = transcode(
            &route,
            "/images/from-path",
            "",
            r#"{"imageId": "from-body", "name": "n", "updateMask": "name,minDiskSize"}"#,
        )
        .unwrap();
        assert_eq!(request.image_id, "from-path");
        assert_eq!(request.name, "n");
        assert_eq!(request.update_mask.unwrap().paths, ["name", "minDiskSize"]);
        let refused = transcode::<UpdateImageRequest>(&route, "/images/x", "name=n", "{}")
            .unwrap_err()
            .message();
        assert!(refused.contains("JSON body"), "{refused}");
    }
}

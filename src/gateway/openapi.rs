//! The OpenAPI 3.1 document of the REST gateway, generated at start from the same route
//! table and descriptors the gateway serves, and from the validator's rules, so it cannot
//! drift from what is served. `GET /openapi.json` returns it.
//!
//! - One operation per route: path variables as path parameters, the remaining fields as
//!   query parameters (dotted lowerCamelCase names for nested fields; repeated keys for
//!   repeated fields) or as the JSON request body (`body: "*"`, minus the path's fields).
//! - Schemas say exactly what the gateway accepts, as proto3 JSON parsing does: int64 as
//!   a number or a decimal string (`+` and leading zeros allowed), an enum as its name or
//!   its number, `null` for a field left unset, Timestamp as a date-time string, FieldMask
//!   as a string, Any as an object with "@type". Every message schema refuses properties
//!   it does not have, as the gateway does.
//! - Every validation rule of the protos is JSON Schema: `required` (a required string is
//!   non-empty, a required number or enum non-zero, a required message present),
//!   `length` and `pattern` (minLength, maxLength, pattern; on map values and list items
//!   too), `map_key` (propertyNames), `size` (minItems/maxItems, minProperties/
//!   maxProperties), `value` (minimum/maximum on numbers, the same range as a pattern on
//!   decimal strings; zero, "not set", is allowed unless the field is required),
//!   `exactly_one` and plain oneofs (at most one member set; `null` is unset). So are the
//!   domain's own rules about single fields (offered zones and disk types, block sizes,
//!   subject types, role and subject id shapes).
//! - What JSON Schema cannot say is in the descriptions and listed in docs/api.md: a
//!   filter's and an order's grammar, a page token's signature, which update-mask paths
//!   a kind has, a source URI's reachability, rules between resources (a disk at least its
//!   source's size).
//! - Each route that answers an Operation links to the routes of its service whose path
//!   variables its metadata carries (a create's to the new resource's Get, Update, Delete,
//!   ...), and to OperationService.Get and Cancel by the operation's id.
//! - `200` is the RPC's response message; every other status is a google.rpc.Status.

use super::routes::{BodyRule, Route, RouteTable};
use super::transcode::is_single_value_message;
use crate::domain::validation::{Constraints, Validator};
use prost_reflect::{
    DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

/// How deep query parameters go into nested messages.
const MAX_PARAMETER_DEPTH: usize = 3;

/// The service whose routes every operation links to by the operation's id.
const OPERATION_SERVICE: &str = "yandex.cloud.operation.OperationService";

/// An inclusive range of integers.
type Interval = (i128, i128);

/// The document, as JSON bytes.
pub fn document(pool: &DescriptorPool, routes: &RouteTable, validator: &Validator) -> Vec<u8> {
    let mut schemas = Schemas {
        components: BTreeMap::new(),
        validator,
    };
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    for route in routes.routes() {
        let mut operation = operation(route, &operation_id(routes, route), &mut schemas);
        let links = links(pool, routes, route);
        if !links.is_empty() {
            operation["responses"]["200"]["links"] = Json::Object(links);
        }
        paths
            .entry(route.template.source().to_string())
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), operation);
    }
    let status = schemas.reference(
        &pool
            .get_message_by_name("google.rpc.Status")
            .expect("google.rpc.Status is in the descriptor set"),
    );
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "imageplane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Yandex Cloud's image APIs (compute.v1 images, snapshots and disks, \
                baremetal.v1alpha images, operations) over REST/JSON, derived from the \
                google.api.http rules of the protos. JSON is proto3 JSON: int64 values are \
                strings (numbers are accepted too), enums are names (numbers are accepted \
                too), null is a field left unset. Errors are google.rpc.Status objects.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "responses": {
                "Error": {
                    "description": "The call failed: a google.rpc.Status; its code gives the \
                        HTTP status (3, 9, 11: 400; 16: 401; 7: 403; 5: 404; 6, 10: 409; 8: \
                        429; 1: 499; 12: 501; 14: 503; 4: 504; others 500).",
                    "content": {"application/json": {"schema": status}},
                },
            },
        },
    });
    serde_json::to_vec_pretty(&document).expect("JSON values serialize")
}

/// A route's operation id: the RPC's full name, with the HTTP method when the RPC has
/// several routes (Cancel: GET and POST).
fn operation_id(routes: &RouteTable, route: &Route) -> String {
    let routes_of_rpc = routes
        .routes()
        .iter()
        .filter(|other| other.rpc == route.rpc)
        .count();
    if routes_of_rpc > 1 {
        format!("{}_{}", route.rpc.full_name(), route.method)
    } else {
        route.rpc.full_name().to_string()
    }
}

/// The links of a route that answers an Operation: to every route of its service whose
/// path variables are all fields of the operation's metadata (by
/// `yandex.cloud.api.operation`), and to the operation's own routes by its id.
fn links(pool: &DescriptorPool, routes: &RouteTable, route: &Route) -> Map<String, Json> {
    let mut links = Map::new();
    if route.rpc.output().full_name() != "yandex.cloud.operation.Operation" {
        return links;
    }
    let metadata = operation_metadata(pool, &route.rpc);
    for target in routes.routes() {
        let variables: Vec<&str> = target.template.variables().collect();
        if variables.is_empty() || std::ptr::eq(target, route) {
            continue;
        }
        let service = target.rpc.parent_service();
        let parameters: Option<Map<String, Json>> = if service.full_name() == OPERATION_SERVICE {
            (variables == ["operation_id"]).then(|| {
                Map::from_iter([("operation_id".to_string(), json!("$response.body#/id"))])
            })
        } else if service == route.rpc.parent_service() {
            metadata.as_ref().and_then(|metadata| {
                variables
                    .iter()
                    .map(|variable| {
                        let field = metadata.get_field_by_name(variable)?;
                        Some((
                            variable.to_string(),
                            json!(format!("$response.body#/metadata/{}", field.json_name())),
                        ))
                    })
                    .collect()
            })
        } else {
            None
        };
        if let Some(parameters) = parameters {
            let id = operation_id(routes, target);
            links.insert(
                id.replace(['/', ' '], "_"),
                json!({"operationId": id, "parameters": parameters}),
            );
        }
    }
    links
}

/// The metadata message of an RPC's Operation, from its `yandex.cloud.api.operation`
/// option (a name relative to the RPC's package, as protobuf resolves names).
fn operation_metadata(pool: &DescriptorPool, rpc: &MethodDescriptor) -> Option<MessageDescriptor> {
    let extension = pool.get_extension_by_name("yandex.cloud.api.operation")?;
    let options = rpc.options();
    if !options.has_extension(&extension) {
        return None;
    }
    let option = options.get_extension(&extension);
    let name = match option.as_ref() {
        Value::Message(message) => message.get_field_by_name("metadata")?.as_str()?.to_string(),
        _ => return None,
    };
    let package = rpc.parent_service().package_name().to_string();
    let mut scope: Vec<&str> = package.split('.').collect();
    loop {
        let candidate = if scope.is_empty() {
            name.clone()
        } else {
            format!("{}.{name}", scope.join("."))
        };
        if let Some(message) = pool.get_message_by_name(&candidate) {
            return Some(message);
        }
        scope.pop()?;
    }
}

/// The operation object of one route.
fn operation(route: &Route, operation_id: &str, schemas: &mut Schemas<'_>) -> Json {
    let input = route.rpc.input();
    let path_fields: Vec<&str> = route.template.variables().collect();
    let mut parameters = Vec::new();
    for variable in &path_fields {
        let field = super::routes::field_at(&input, variable).expect("checked when built");
        let constraints = schemas.constraints(&field);
        let mut schema = schemas.value(&field, &constraints, true);
        if let Some(object) = schema.as_object_mut() {
            if object.get("type") == Some(&json!("string")) {
                let min = object.get("minLength").and_then(Json::as_i64).unwrap_or(0);
                object.insert("minLength".into(), json!(min.max(1)));
            }
        }
        parameters.push(json!({
            "name": variable,
            "in": "path",
            "required": true,
            "schema": schema,
            "description": describe(&field, &constraints),
        }));
    }
    let mut body = None;
    match &route.body {
        BodyRule::Whole => body = Some(schemas.message_schema(&input, &path_fields)),
        BodyRule::Field(field) => {
            let Kind::Message(message) = field.kind() else {
                unreachable!("routes only take message fields as bodies")
            };
            body = Some(schemas.reference(&message));
            query_parameters(
                &input,
                "",
                &path_fields,
                Some(field),
                0,
                schemas,
                &mut parameters,
            );
        }
        BodyRule::None => {
            query_parameters(&input, "", &path_fields, None, 0, schemas, &mut parameters);
        }
    }
    let mut operation = json!({
        "operationId": operation_id,
        "tags": [route.rpc.parent_service().full_name()],
        "summary": format!("{} ({})", route.rpc.name(), route.grpc_path),
        "parameters": parameters,
        "responses": {
            "200": {
                "description": format!("{}", route.rpc.output().full_name()),
                "content": {"application/json": {"schema": schemas.reference(&route.rpc.output())}},
            },
            "default": {"$ref": "#/components/responses/Error"},
        },
    });
    // A body that is not JSON (google.api.HttpBody) goes as it is, of any media type.
    let raw = json!({"*/*": {"schema": {"description": "google.api.HttpBody: the body as it is"}}});
    if super::is_raw(&route.rpc.output()) {
        operation["responses"]["200"]["content"] = raw.clone();
    }
    if super::is_raw(&input) {
        operation["requestBody"] = json!({"required": true, "content": raw});
        return operation;
    }
    if let Some(schema) = body {
        // Without a body the request is `{}`: the body is required when `{}` is not valid.
        let empty_is_invalid = schema.get("required").is_some()
            || schema
                .get("allOf")
                .and_then(Json::as_array)
                .is_some_and(|groups| groups.iter().any(|group| group.get("oneOf").is_some()));
        operation["requestBody"] = json!({
            "required": empty_is_invalid,
            "content": {"application/json": {"schema": schema}},
        });
    }
    operation
}

/// Query parameters for every settable field of `message` below `prefix`.
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &str,
    path_fields: &[&str],
    body_field: Option<&FieldDescriptor>,
    depth: usize,
    schemas: &mut Schemas<'_>,
    parameters: &mut Vec<Json>,
) {
    for field in message.fields() {
        if depth == 0 && (path_fields.contains(&field.name()) || body_field == Some(&field)) {
            continue;
        }
        let name = format!("{prefix}{}", field.json_name());
        let constraints = schemas.constraints(&field);
        match field.kind() {
            Kind::Message(nested) if !field.is_map() && !is_single_value_message(&nested) => {
                if !field.is_list() && depth + 1 < MAX_PARAMETER_DEPTH {
                    let prefix = format!("{name}.");
                    query_parameters(&nested, &prefix, &[], None, depth + 1, schemas, parameters);
                }
            }
            _ if field.is_map() => {}
            _ => {
                let item = schemas.value(&field, &constraints, false);
                let schema = if field.is_list() {
                    let mut array = json!({"type": "array", "items": item});
                    size_keywords(&constraints, &mut array);
                    array
                } else {
                    item
                };
                let mut parameter = json!({
                    "name": name,
                    "in": "query",
                    "required": must_be_set(&constraints) && depth == 0,
                    "schema": schema,
                    "description": describe(&field, &constraints),
                });
                if field.is_list() {
                    parameter["style"] = json!("form");
                    parameter["explode"] = json!(true);
                }
                parameters.push(parameter);
            }
        }
    }
}

/// Whether a field must be set: `required`, or its unset value breaks its rules.
fn must_be_set(constraints: &Option<Constraints>) -> bool {
    constraints.as_ref().is_some_and(|c| c.must_be_set)
}

fn is_required(constraints: &Option<Constraints>) -> bool {
    constraints.as_ref().is_some_and(|c| c.required)
}

/// A field's description: its proto name and kind.
fn describe(field: &FieldDescriptor, constraints: &Option<Constraints>) -> String {
    let mut text = format!("{} ({})", field.full_name(), kind_name(field));
    if let Some(oneof) = field.containing_oneof() {
        text.push_str(&format!("; one of the {} group", oneof.name()));
    }
    if let Some(Constraints {
        value: Some((min, max)),
        required,
        ..
    }) = constraints
    {
        let bound = |bound: &Option<i128>| bound.map_or("any".to_string(), |n| n.to_string());
        text.push_str(&format!("; value {}..{}", bound(min), bound(max)));
        if !required {
            text.push_str(" (0 means not set)");
        }
    }
    text
}

fn kind_name(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(message) => message.full_name().to_string(),
        Kind::Enum(enumeration) => enumeration.full_name().to_string(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// `minItems`/`maxItems` (arrays) or `minProperties`/`maxProperties` (maps) from `size`.
fn size_keywords(constraints: &Option<Constraints>, schema: &mut Json) {
    let Some((min, max)) = constraints.as_ref().and_then(|c| c.size) else {
        return;
    };
    let (min_key, max_key) = if schema["type"] == "array" {
        ("minItems", "maxItems")
    } else {
        ("minProperties", "maxProperties")
    };
    if let Some(min) = min {
        schema[min_key] = json!(min);
    }
    if let Some(max) = max {
        schema[max_key] = json!(max);
    }
}

/// `length` and `pattern` as string keywords; a required string is non-empty.
fn string_keywords(
    length: Option<(Option<i128>, Option<i128>)>,
    pattern: Option<&str>,
    required: bool,
    schema: &mut Json,
) {
    let (min, max) = length.unwrap_or((None, None));
    let min = if required {
        Some(min.unwrap_or(0).max(1))
    } else {
        min.filter(|min| *min > 0)
    };
    if let Some(min) = min {
        schema["minLength"] = json!(min);
    }
    if let Some(max) = max {
        schema["maxLength"] = json!(max);
    }
    if let Some(pattern) = pattern {
        schema["pattern"] = json!(format!("^(?:{pattern})$"));
    }
}

/// The integers a field accepts: its `value` range (zero too, unless required) or its
/// domain values, within `full`.
fn accepted_integers(constraints: &Option<Constraints>, full: Interval) -> Vec<Interval> {
    let clip = |(low, high): Interval| (low.max(full.0), high.min(full.1));
    let mut intervals = match constraints {
        Some(Constraints {
            values: Some(values),
            ..
        }) => values
            .iter()
            .filter_map(|value| value.parse::<i128>().ok())
            .map(|value| (value, value))
            .collect(),
        Some(Constraints {
            value: Some((min, max)),
            required,
            ..
        }) => {
            let range = clip((min.unwrap_or(full.0), max.unwrap_or(full.1)));
            if *required {
                vec![range]
            } else {
                vec![(0, 0), range]
            }
        }
        Some(Constraints { required: true, .. }) => vec![(full.0, -1), (1, full.1)],
        _ => vec![full],
    };
    intervals = intervals
        .into_iter()
        .map(clip)
        .filter(|(low, high)| low <= high)
        .collect();
    merge(intervals)
}

/// Sorted, overlapping and adjacent intervals joined.
fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort_unstable();
    let mut merged: Vec<Interval> = Vec::new();
    for (low, high) in intervals {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

/// A schema for JSON numbers that are integers in the intervals.
fn integer_schema(intervals: &[Interval], format: &str) -> Json {
    let ranges: Vec<Json> = intervals
        .iter()
        .map(|(low, high)| {
            if low == high {
                json!({"type": "integer", "format": format, "const": i64::try_from(*low).unwrap_or_default()})
            } else {
                json!({"type": "integer", "format": format, "minimum": low, "maximum": high})
            }
        })
        .collect();
    match <[Json; 1]>::try_from(ranges) {
        Ok([single]) => single,
        Err(ranges) => json!({"anyOf": ranges}),
    }
}

/// A regular expression for the decimal strings whose values are in the intervals, as
/// Rust's integer parsing reads them: an optional sign (`+` or `-`), then digits,
/// leading zeros allowed (`-0` is zero).
fn decimal_pattern(intervals: &[Interval]) -> String {
    let mut positive = Vec::new();
    let mut negative = Vec::new();
    for &(low, high) in intervals {
        if high >= 0 {
            positive.push((low.max(0) as u128, high as u128));
        }
        if low <= 0 {
            negative.push(((-high).max(0) as u128, low.unsigned_abs()));
        }
    }
    let alternatives = |magnitudes: &[(u128, u128)]| {
        magnitudes
            .iter()
            .flat_map(|(low, high)| magnitude_alternatives(*low, *high))
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut forms = Vec::new();
    if !positive.is_empty() {
        forms.push(format!("\\+?0*(?:{})", alternatives(&positive)));
    }
    if !negative.is_empty() {
        forms.push(format!("-0*(?:{})", alternatives(&negative)));
    }
    format!("^(?:{})$", forms.join("|"))
}

/// Alternatives that match the numbers from `low` to `high`, written without leading
/// zeros.
fn magnitude_alternatives(low: u128, high: u128) -> Vec<String> {
    let mut alternatives = Vec::new();
    let digits = |n: u128| n.to_string().len();
    for width in digits(low)..=digits(high) {
        let smallest = if width == 1 {
            0
        } else {
            10u128.pow(width as u32 - 1)
        };
        let largest = 10u128.pow(width as u32) - 1;
        let (from, to) = (low.max(smallest), high.min(largest));
        if from <= to {
            alternatives.extend(same_width(&from.to_string(), &to.to_string()));
        }
    }
    alternatives
}

/// Alternatives that match the numbers from `low` to `high`, both of the same width.
fn same_width(low: &str, high: &str) -> Vec<String> {
    if low.is_empty() {
        return vec![String::new()];
    }
    let (first_low, rest_low) = low.split_at(1);
    let (first_high, rest_high) = high.split_at(1);
    if first_low == first_high {
        return same_width(rest_low, rest_high)
            .into_iter()
            .map(|rest| format!("{first_low}{rest}"))
            .collect();
    }
    let rest_width = rest_low.len();
    let mut start = first_low.as_bytes()[0];
    let mut end = first_high.as_bytes()[0];
    let mut alternatives = Vec::new();
    let mut last = Vec::new();
    if rest_low.bytes().any(|digit| digit != b'0') {
        alternatives.extend(
            same_width(rest_low, &"9".repeat(rest_width))
                .into_iter()
                .map(|rest| format!("{first_low}{rest}")),
        );
        start += 1;
    }
    if rest_high.bytes().any(|digit| digit != b'9') {
        last.extend(
            same_width(&"0".repeat(rest_width), rest_high)
                .into_iter()
                .map(|rest| format!("{first_high}{rest}")),
        );
        end -= 1;
    }
    if start <= end {
        let first = if start == end {
            (start as char).to_string()
        } else {
            format!("[{}-{}]", start as char, end as char)
        };
        let rest = match rest_width {
            0 => String::new(),
            1 => "[0-9]".to_string(),
            width => format!("[0-9]{{{width}}}"),
        };
        alternatives.push(format!("{first}{rest}"));
    }
    alternatives.extend(last);
    alternatives
}

/// The JSON schema that also accepts `null` (a field left unset).
fn or_null(schema: Json) -> Json {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// The schema of a set member of a oneof (present and not null).
fn set_member(json_name: &str) -> Json {
    json!({"required": [json_name], "properties": {json_name: {"not": {"type": "null"}}}})
}

/// The component schemas made so far, and the rules they show.
struct Schemas<'a> {
    components: BTreeMap<String, Json>,
    validator: &'a Validator,
}

impl Schemas<'_> {
    fn constraints(&self, field: &FieldDescriptor) -> Option<Constraints> {
        self.validator
            .constraints(field.parent_message().full_name(), field.name())
    }

    /// `{"$ref": ...}` to the message's schema, made on first use.
    fn reference(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_string();
        if !self.components.contains_key(&name) {
            // A placeholder first: messages may refer to themselves.
            self.components.insert(name.clone(), json!({}));
            let schema = self.message_schema(message, &[]);
            self.components.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// A message's schema without the fields in `skip`: its properties (null for a field
    /// left unset, unless it is required), the required ones, and its oneofs.
    fn message_schema(&mut self, message: &MessageDescriptor, skip: &[&str]) -> Json {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if skip.contains(&field.name()) {
                continue;
            }
            let constraints = self.constraints(&field);
            let mut schema = self.field_schema(&field, &constraints);
            if let Some(object) = schema.as_object_mut() {
                if !object.contains_key("$ref") && !object.contains_key("anyOf") {
                    object.insert("description".into(), json!(describe(&field, &constraints)));
                }
            }
            if must_be_set(&constraints) && field.containing_oneof().is_none() {
                required.push(json!(field.json_name()));
            } else {
                schema = or_null(schema);
            }
            properties.insert(field.json_name().to_string(), schema);
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty() {
            schema["required"] = Json::Array(required);
        }
        let oneofs: Vec<Json> = message
            .oneofs()
            .filter(|oneof| !oneof.is_synthetic())
            .filter_map(|oneof| {
                let members: Vec<String> = oneof
                    .fields()
                    .filter(|member| !skip.contains(&member.name()))
                    .map(|member| member.json_name().to_string())
                    .collect();
                let exactly_one = oneof.fields().next().is_some_and(|member| {
                    self.validator
                        .exactly_one(message.full_name(), oneof.name())
                        .unwrap_or(false)
                        && !skip.contains(&member.name())
                });
                if exactly_one {
                    Some(
                        json!({"oneOf": members.iter().map(|m| set_member(m)).collect::<Vec<_>>()}),
                    )
                } else if members.len() > 1 {
                    let pairs: Vec<Json> = members
                        .iter()
                        .enumerate()
                        .flat_map(|(index, first)| {
                            members[index + 1..].iter().map(move |second| {
                                json!({"allOf": [set_member(first), set_member(second)]})
                            })
                        })
                        .collect();
                    Some(json!({"not": {"anyOf": pairs}}))
                } else {
                    None
                }
            })
            .collect();
        if !oneofs.is_empty() {
            schema["allOf"] = Json::Array(oneofs);
        }
        schema
    }

    /// The schema of a field's JSON value (not null): a map, an array, or one value.
    fn field_schema(&mut self, field: &FieldDescriptor, constraints: &Option<Constraints>) -> Json {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map fields are entries")
            };
            let value = entry.map_entry_value_field();
            let mut schema = json!({
                "type": "object",
                "additionalProperties": self.item(&value, constraints),
            });
            if let Some(c) = constraints {
                let mut names = json!({"type": "string"});
                string_keywords(c.key_length, c.key_pattern.as_deref(), false, &mut names);
                if names.as_object().is_some_and(|names| names.len() > 1) {
                    schema["propertyNames"] = names;
                }
            }
            size_keywords(constraints, &mut schema);
            return schema;
        }
        if field.is_list() {
            let mut schema = json!({"type": "array", "items": self.item(field, constraints)});
            size_keywords(constraints, &mut schema);
            return schema;
        }
        self.value(field, constraints, true)
    }

    /// One element of a list or a map's value: the field's rules on each value apply
    /// (never `required`, which is about the field).
    fn item(&mut self, field: &FieldDescriptor, constraints: &Option<Constraints>) -> Json {
        let element = constraints.clone().map(|c| Constraints {
            required: false,
            ..c
        });
        self.value(field, &element, true)
    }

    /// One value of a field, with its rules: a message, or a scalar as JSON (`in_json`)
    /// or as a query parameter (numbers only as numbers).
    fn value(
        &mut self,
        field: &FieldDescriptor,
        constraints: &Option<Constraints>,
        in_json: bool,
    ) -> Json {
        let required = is_required(constraints);
        let integers = |full: Interval, format: &str| {
            let accepted = accepted_integers(constraints, full);
            let number = integer_schema(&accepted, format);
            if in_json && format == "int64" {
                json!({"anyOf": [number, {"type": "string", "pattern": decimal_pattern(&accepted)}]})
            } else {
                number
            }
        };
        match field.kind() {
            Kind::Message(message) => self.reference(&message),
            Kind::String => {
                let mut schema = json!({"type": "string"});
                let (length, pattern, values) = constraints
                    .as_ref()
                    .map(|c| (c.length, c.pattern.clone(), c.values.clone()))
                    .unwrap_or_default();
                string_keywords(length, pattern.as_deref(), required, &mut schema);
                if let Some(values) = values {
                    schema["enum"] = json!(values);
                }
                schema
            }
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                integers((i32::MIN.into(), i32::MAX.into()), "int32")
            }
            Kind::Uint32 | Kind::Fixed32 => integers((0, u32::MAX.into()), "int64"),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                integers((i64::MIN.into(), i64::MAX.into()), "int64")
            }
            Kind::Uint64 | Kind::Fixed64 => integers((0, u64::MAX.into()), "int64"),
            Kind::Float | Kind::Double => json!({"type": "number"}),
            Kind::Enum(enumeration) => {
                let values: Vec<_> = enumeration
                    .values()
                    .filter(|value| !(required && value.number() == 0))
                    .collect();
                let names: Vec<&str> = values.iter().map(|value| value.name()).collect();
                let numbers: Vec<i32> = values.iter().map(|value| value.number()).collect();
                if in_json {
                    json!({"anyOf": [
                        {"type": "string", "enum": names},
                        {"type": "integer", "enum": numbers},
                    ]})
                } else {
                    json!({"type": "string", "enum": names})
                }
            }
        }
    }
}

/// The proto3 JSON form of the well-known types; `None` for any other message.
fn well_known(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"})
        }
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "description": "comma-separated lowerCamelCase field paths"})
        }
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.Empty" => json!({"type": "object", "additionalProperties": false}),
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "contentEncoding": "base64"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": ["string", "integer"]})
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => json!({"type": "number"}),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(intervals: &[Interval], text: &str) -> bool {
        regex::Regex::new(&decimal_pattern(intervals))
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn decimal_patterns_match_exactly_the_numbers_of_their_intervals() {
        let cases: &[&[Interval]] = &[
            &[(0, 0), (4194304, 28587302322176)],
            &[(0, 1000)],
            &[(i64::MIN.into(), i64::MAX.into())],
            &[(i64::MIN.into(), -1), (1, i64::MAX.into())],
            &[(15, 23), (97, 1203)],
        ];
        for intervals in cases {
            let inside = |n: i128| {
                intervals
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&n))
            };
            let mut probes: Vec<i128> = vec![0, 1, -1, 9, 10, 99, 100, 1000, 1001];
            for (low, high) in intervals.iter() {
                probes.extend([*low - 1, *low, *low + 1, *high - 1, *high, *high + 1]);
            }
            for n in probes {
                assert_eq!(
                    matches(intervals, &n.to_string()),
                    inside(n),
                    "{n} in {intervals:?}"
                );
                if n >= 0 {
                    assert_eq!(matches(intervals, &format!("+00{n}")), inside(n), "+00{n}");
                }
            }
            assert!(
                !matches(intervals, "1.0") && !matches(intervals, " 1") && !matches(intervals, "+")
            );
        }
        assert!(matches(&[(0, 5)], "-0"));
        assert!(!matches(
            &[(i64::MIN.into(), i64::MAX.into())],
            "9223372036854775808"
        ));
    }
}

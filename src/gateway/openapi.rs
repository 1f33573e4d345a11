//! The OpenAPI 3 document of the REST gateway, generated at start from the same route
//! table and descriptors the gateway serves, and from the validator's rules, so it cannot
//! drift from what is served. `GET /openapi.json` returns it.
//!
//! - One operation per route: path variables as path parameters, the remaining fields as
//!   query parameters (dotted lowerCamelCase names for nested fields; repeated keys for
//!   repeated fields) or as the JSON request body (`body: "*"`, minus the path's fields).
//! - Schemas are proto3 JSON: int64 as strings, enums as their names, Timestamp as a
//!   date-time string, FieldMask as a string, Any as an object with "@type". Every message
//!   schema refuses properties it does not have, as the gateway does.
//! - Validation rules become JSON Schema where JSON Schema says the same thing (required
//!   fields of a request body, lengths, patterns, sizes); a value range, which exempts
//!   zero ("not set"), is in the field's description.
//! - `200` is the RPC's response message; every other status is a google.rpc.Status.

use super::routes::{BodyRule, Route, RouteTable};
use super::transcode::is_single_value_message;
use crate::domain::validation::{Constraints, Validator};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

/// How deep query parameters go into nested messages.
const MAX_PARAMETER_DEPTH: usize = 3;

/// The document, as JSON bytes.
pub fn document(pool: &DescriptorPool, routes: &RouteTable, validator: &Validator) -> Vec<u8> {
    let mut schemas = Schemas {
        components: BTreeMap::new(),
        validator,
    };
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    for route in routes.routes() {
        // An RPC with several routes (Cancel: GET and POST) needs one id per route.
        let routes_of_rpc = routes
            .routes()
            .iter()
            .filter(|other| other.rpc == route.rpc)
            .count();
        let operation = operation(route, routes_of_rpc > 1, &mut schemas);
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
        "openapi": "3.0.3",
        "info": {
            "title": "imageplane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Yandex Cloud's image APIs (compute.v1 images, snapshots and disks, \
                baremetal.v1alpha images, operations) over REST/JSON, derived from the \
                google.api.http rules of the protos. JSON is proto3 JSON: int64 values are \
                strings (numbers are accepted too), enums are names. Errors are \
                google.rpc.Status objects.",
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

/// The operation object of one route.
fn operation(route: &Route, id_with_method: bool, schemas: &mut Schemas<'_>) -> Json {
    let input = route.rpc.input();
    let path_fields: Vec<&str> = route.template.variables().collect();
    let mut parameters = Vec::new();
    for variable in &path_fields {
        let field = super::routes::field_at(&input, variable).expect("checked when built");
        let mut schema = schemas.scalar(&field);
        if let Some(object) = schema.as_object_mut() {
            object.entry("minLength").or_insert(json!(1));
        }
        parameters.push(json!({
            "name": variable,
            "in": "path",
            "required": true,
            "schema": schema,
        }));
    }
    let mut body = None;
    match &route.body {
        BodyRule::Whole => body = Some(schemas.request_body(&input, &path_fields)),
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
    let suffix = if id_with_method {
        format!("_{}", route.method)
    } else {
        String::new()
    };
    let mut operation = json!({
        "operationId": format!("{}{suffix}", route.rpc.full_name()),
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
    if let Some(schema) = body {
        operation["requestBody"] = json!({
            "required": false,
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
                let item = query_schema(&field, schemas);
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
                    "required": constraints.as_ref().is_some_and(|c| c.required) && depth == 0,
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

/// A query parameter's schema: as in JSON, but 64-bit integers as integers (a query
/// string has no types; the digits are the same).
fn query_schema(field: &FieldDescriptor, schemas: &mut Schemas<'_>) -> Json {
    match field.kind() {
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "integer", "format": "int64"})
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "integer", "format": "int64", "minimum": 0})
        }
        _ => schemas.scalar(field),
    }
}

/// A field's description: its proto name and the rules JSON Schema does not carry.
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
    if let Some(Constraints {
        key_pattern: Some(pattern),
        ..
    }) = constraints
    {
        text.push_str(&format!("; keys match {pattern}"));
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
        let name = message.full_name().to_string();
        if !self.components.contains_key(&name) {
            // A placeholder first: messages may refer to themselves.
            self.components.insert(name.clone(), json!({}));
            let schema = self.message_schema(message, &[], false);
            self.components.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// A request body: the message's schema inline, without the path's fields, with the
    /// required ones listed.
    fn request_body(&mut self, message: &MessageDescriptor, path_fields: &[&str]) -> Json {
        self.message_schema(message, path_fields, true)
    }

    fn message_schema(
        &mut self,
        message: &MessageDescriptor,
        skip: &[&str],
        list_required: bool,
    ) -> Json {
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
            let mut schema = self.field_schema(&field);
            if let Some(object) = schema.as_object_mut() {
                if !object.contains_key("$ref") {
                    object.insert("description".into(), json!(describe(&field, &constraints)));
                }
            }
            if list_required && constraints.as_ref().is_some_and(|c| c.required) {
                required.push(json!(field.json_name()));
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
        schema
    }

    /// The schema of a field's JSON value: a map, an array, or one value.
    fn field_schema(&mut self, field: &FieldDescriptor) -> Json {
        let constraints = self.constraints(field);
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map fields are entries")
            };
            let value = entry.map_entry_value_field();
            let mut schema = json!({
                "type": "object",
                "additionalProperties": self.value_schema(&value),
            });
            size_keywords(&constraints, &mut schema);
            return schema;
        }
        let item = self.value_schema(field);
        if field.is_list() {
            let mut schema = json!({"type": "array", "items": item});
            size_keywords(&constraints, &mut schema);
            schema
        } else {
            item
        }
    }

    /// One value of a field: a message reference or a scalar.
    fn value_schema(&mut self, field: &FieldDescriptor) -> Json {
        match field.kind() {
            Kind::Message(message) => match well_known(&message) {
                Some(schema) => schema,
                None => self.reference(&message),
            },
            _ => self.scalar(field),
        }
    }

    /// A scalar's schema, with the length and pattern rules of its field.
    fn scalar(&mut self, field: &FieldDescriptor) -> Json {
        let mut schema = match field.kind() {
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
            }
            Kind::Float | Kind::Double => json!({"type": "number"}),
            Kind::Enum(enumeration) => json!({
                "type": "string",
                "enum": enumeration.values().map(|value| value.name().to_string()).collect::<Vec<_>>(),
            }),
            Kind::Message(message) => {
                return well_known(&message).unwrap_or_else(|| self.reference(&message))
            }
        };
        let is_string = matches!(field.kind(), Kind::String);
        if let (true, Some(constraints)) = (is_string, self.constraints(field)) {
            if let Some((min, max)) = constraints.length {
                if let Some(min) = min {
                    schema["minLength"] = json!(min);
                }
                if let Some(max) = max {
                    schema["maxLength"] = json!(max);
                }
            }
            if let Some(pattern) = constraints.pattern {
                schema["pattern"] = json!(format!("^(?:{pattern})$"));
            }
        }
        schema
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
        "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": "string", "format": "int64"})
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => json!({"type": "number"}),
        _ => return None,
    })
}

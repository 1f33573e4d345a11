//! Reading a request's JSON strictly, before it becomes a message.
//!
//! A serde map keeps the last of two equal keys; protojson (grpc-gateway's) refuses them.
//! A proxy that reads the first key would then see another request than the server runs,
//! so here a key given twice in one object (`{"folderId": "a", "folderId": "b"}`), two
//! keys that name one field (`folderId` beside `folder_id`) and two members of one oneof
//! are refused, at any depth, naming the key.
//!
//! FieldMask values are taken out of the JSON as written (a comma-separated string) and
//! put into the message afterwards path by path, unchanged: the domain reads either
//! spelling (`min_disk_size`, `minDiskSize`) and names a path in its errors as the caller
//! wrote it. (prost-reflect would turn `Name` into `_name` and refuse `min_disk_size`.)

use crate::error::Error;
use crate::strict_json::{self, join, Refusal};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

const FIELD_MASK: &str = "google.protobuf.FieldMask";

/// A JSON document; a key given twice in one object is refused naming it.
pub fn parse(body: &[u8]) -> Result<Json, Error> {
    strict_json::parse(body).map_err(|refusal| match refusal {
        Refusal::Twice { path, .. } => Error::invalid_field(
            path,
            "is given twice in the request body: give each field once",
        ),
        Refusal::Invalid(error) => Error::InvalidArgument(format!("request body: {error}")),
    })
}

/// A FieldMask taken out of the JSON: the singular message fields that lead to it
/// (outermost first, the mask field last) and its paths as written.
#[derive(Debug)]
pub struct TakenMask {
    fields: Vec<FieldDescriptor>,
    paths: Vec<String>,
}

/// Checks that no two keys of an object of `descriptor` name one field or one oneof,
/// at any depth, and takes out the FieldMask values of singular fields (see
/// [`put_masks`]).
pub fn check_fields(
    descriptor: &MessageDescriptor,
    object: &mut Map<String, Json>,
) -> Result<Vec<TakenMask>, Error> {
    let mut masks = Vec::new();
    check_message(descriptor, object, "", &[], &mut masks)?;
    Ok(masks)
}

/// Puts the taken masks into the decoded message.
pub fn put_masks(message: &mut DynamicMessage, masks: Vec<TakenMask>) {
    for mask in masks {
        let (last, outer) = mask.fields.split_last().expect("a mask has its field");
        let mut target = &mut *message;
        for field in outer {
            target = target
                .get_field_mut(field)
                .as_message_mut()
                .expect("the fields leading to a mask are singular messages");
        }
        let Kind::Message(descriptor) = last.kind() else {
            unreachable!("a mask field is a message")
        };
        let mut value = DynamicMessage::new(descriptor);
        value.set_field_by_name(
            "paths",
            Value::List(mask.paths.into_iter().map(Value::String).collect()),
        );
        target.set_field(last, Value::Message(value));
    }
}

/// Messages whose JSON is not an object of their fields (or whose keys are free).
fn is_well_known(descriptor: &MessageDescriptor) -> bool {
    descriptor.full_name().starts_with("google.protobuf.")
}

fn check_message(
    descriptor: &MessageDescriptor,
    object: &mut Map<String, Json>,
    path: &str,
    outer: &[FieldDescriptor],
    masks: &mut Vec<TakenMask>,
) -> Result<(), Error> {
    let mut fields: HashMap<u32, String> = HashMap::new();
    let mut oneofs: HashMap<String, String> = HashMap::new();
    let mut taken = Vec::new();
    for (key, value) in object.iter_mut() {
        // A key that names no field is refused when the message is decoded.
        let Some(field) = descriptor
            .get_field_by_json_name(key)
            .or_else(|| descriptor.get_field_by_name(key))
        else {
            continue;
        };
        let here = join(path, key);
        if let Some(earlier) = fields.insert(field.number(), key.clone()) {
            return Err(Error::invalid_field(
                here,
                format!(
                    "names the same field as {earlier:?} ({}): give each field once",
                    field.name()
                ),
            ));
        }
        let oneof = field
            .containing_oneof()
            .filter(|oneof| !oneof.is_synthetic());
        if let (Some(oneof), false) = (oneof, value.is_null()) {
            if let Some(earlier) = oneofs.insert(oneof.name().to_string(), key.clone()) {
                return Err(Error::invalid_field(
                    here,
                    format!(
                        "and {earlier:?} are both members of the oneof {}: set at most one",
                        oneof.name()
                    ),
                ));
            }
        }
        let Kind::Message(inner) = field.kind() else {
            continue;
        };
        if field.is_map() {
            let value_kind = inner.map_entry_value_field().kind();
            if let (Kind::Message(entry), Json::Object(entries)) = (value_kind, value) {
                if !is_well_known(&entry) {
                    for (name, entry_value) in entries.iter_mut() {
                        if let Json::Object(entry_object) = entry_value {
                            let at = join(&here, name);
                            check_message(&entry, entry_object, &at, &[], &mut Vec::new())?;
                        }
                    }
                }
            }
        } else if field.is_list() {
            if let (false, Json::Array(items)) = (is_well_known(&inner), value) {
                for (index, item) in items.iter_mut().enumerate() {
                    if let Json::Object(item_object) = item {
                        let at = format!("{here}[{index}]");
                        check_message(&inner, item_object, &at, &[], &mut Vec::new())?;
                    }
                }
            }
        } else if inner.full_name() == FIELD_MASK {
            if let Json::String(text) = value {
                let paths = if text.is_empty() {
                    Vec::new()
                } else {
                    text.split(',').map(str::to_string).collect()
                };
                let mut fields = outer.to_vec();
                fields.push(field.clone());
                masks.push(TakenMask { fields, paths });
                taken.push(key.clone());
            }
        } else if let (false, Json::Object(inner_object)) = (is_well_known(&inner), value) {
            let mut leading = outer.to_vec();
            leading.push(field.clone());
            check_message(&inner, inner_object, &here, &leading, masks)?;
        }
    }
    for key in taken {
        object.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().message()
    }

    #[test]
    fn a_key_twice_in_one_object_is_refused_at_any_depth() {
        assert_eq!(
            refused(r#"{"folderId": "a", "folderId": "b"}"#),
            "folderId: is given twice in the request body: give each field once"
        );
        assert!(refused(r#"{"labels": {"env": "a", "env": "b"}}"#).starts_with("labels.env: "));
        assert!(refused(r#"{"x": [{}, {"y": 1, "y": 2}]}"#).starts_with("x[1].y: "));
        assert!(refused(r#"{"a": 1"#).contains("line 1 column"));
        assert!(refused(r#"{} {}"#).starts_with("request body: trailing"));
        let json = parse(br#"{"a": [1, -2, 3.5, null, true, "s"], "b": {"c": {}}}"#).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"a": [1, -2, 3.5, null, true, "s"], "b": {"c": {}}})
        );
    }

    fn check(message: &str, body: &str) -> Result<Vec<TakenMask>, String> {
        let descriptor = crate::pb::descriptor_pool()
            .get_message_by_name(message)
            .unwrap();
        let Json::Object(mut object) = parse(body.as_bytes()).unwrap() else {
            panic!("{body}")
        };
        check_fields(&descriptor, &mut object).map_err(|error| error.message())
    }

    #[test]
    fn two_keys_for_one_field_or_one_oneof_are_refused() {
        const CREATE_IMAGE: &str = "yandex.cloud.compute.v1.CreateImageRequest";
        let refused = check(CREATE_IMAGE, r#"{"folderId": "a", "folder_id": "b"}"#).unwrap_err();
        assert!(refused.contains("names the same field as"), "{refused}");
        assert!(refused.contains("folder_id"), "{refused}");
        let refused = check(CREATE_IMAGE, r#"{"diskId": "a", "uri": "b"}"#).unwrap_err();
        assert!(refused.contains("oneof source"), "{refused}");
        let refused = check(
            CREATE_IMAGE,
            r#"{"hardwareGeneration": {"legacyFeatures": {"pciTopology": 1, "pci_topology": 2}}}"#,
        )
        .unwrap_err();
        assert!(
            refused.starts_with("hardwareGeneration.legacyFeatures."),
            "{refused}"
        );
        assert!(check(CREATE_IMAGE, r#"{"diskId": null, "uri": "b"}"#).is_ok());
    }

    #[test]
    fn masks_are_taken_out_as_written() {
        let masks = check(
            "yandex.cloud.compute.v1.UpdateImageRequest",
            r#"{"updateMask": "Name,min_disk_size,minDiskSize"}"#,
        )
        .unwrap();
        assert_eq!(masks.len(), 1);
        assert_eq!(masks[0].paths, ["Name", "min_disk_size", "minDiskSize"]);
        let masks = check(
            "yandex.cloud.compute.v1.UpdateImageRequest",
            r#"{"updateMask": ""}"#,
        )
        .unwrap();
        assert!(masks[0].paths.is_empty());
    }
}

//! Enforces the validation options of `yandex/cloud/validation.proto` on every request.
//!
//! The rules (required, length, pattern, value, size, map_key, exactly_one) are written
//! once, as options on the fields in proto/, exactly as Yandex Cloud writes them. At start
//! the validator reads them from the descriptor set into a plan per message; a request is
//! checked against its plan, nested messages included. The first violation is reported
//! with the field's path and the rule it broke, e.g.
//! `description: length must be <=256 characters, got 300`.
//!
//! Semantics, as in Yandex Cloud: `length` and `pattern` apply to every value, the empty
//! string included (a pattern that allows empty starts with `|`); `value` applies to
//! non-zero numbers, zero meaning "not set" unless the field is `required`; members of a
//! oneof are checked only when set.

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MapKey,
    MessageDescriptor, ReflectMessage, Value,
};
use regex::Regex;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A broken rule: the path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// An inclusive numeric range parsed from a rule such as `<=50`, `1-63`, `20` or `>0`.
#[derive(Debug, Clone)]
struct Bounds {
    min: Option<i128>,
    max: Option<i128>,
    spec: String,
}

impl Bounds {
    fn parse(spec: &str) -> Result<Bounds, String> {
        let number = |text: &str| {
            text.trim()
                .parse::<i128>()
                .map_err(|_| format!("bad bound {spec:?}"))
        };
        let spec_trimmed = spec.trim();
        let (min, max) = if let Some(rest) = spec_trimmed.strip_prefix("<=") {
            (None, Some(number(rest)?))
        } else if let Some(rest) = spec_trimmed.strip_prefix(">=") {
            (Some(number(rest)?), None)
        } else if let Some(rest) = spec_trimmed.strip_prefix('<') {
            (None, Some(number(rest)? - 1))
        } else if let Some(rest) = spec_trimmed.strip_prefix('>') {
            (Some(number(rest)? + 1), None)
        } else if let Some((low, high)) = spec_trimmed.split_once('-') {
            (Some(number(low)?), Some(number(high)?))
        } else {
            let exact = number(spec_trimmed)?;
            (Some(exact), Some(exact))
        };
        Ok(Bounds {
            min,
            max,
            spec: spec_trimmed.to_string(),
        })
    }

    fn contains(&self, n: i128) -> bool {
        self.min.is_none_or(|min| n >= min) && self.max.is_none_or(|max| n <= max)
    }
}

/// A regular expression that must match a whole value.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    source: String,
}

impl Pattern {
    fn parse(source: &str) -> Result<Pattern, String> {
        let regex = Regex::new(&format!("^(?:{source})$"))
            .map_err(|error| format!("bad pattern {source:?}: {error}"))?;
        Ok(Pattern {
            regex,
            source: source.to_string(),
        })
    }
}

/// The rules of one field, read from its options.
#[derive(Debug, Clone)]
struct FieldRules {
    field: FieldDescriptor,
    required: bool,
    length: Option<Bounds>,
    pattern: Option<Pattern>,
    value: Option<Bounds>,
    size: Option<Bounds>,
    key_length: Option<Bounds>,
    key_pattern: Option<Pattern>,
    /// The verdict on the field's default value, computed once.
    unset_violation: Option<String>,
}

/// The rules of one message: its fields and its `exactly_one` oneofs.
#[derive(Debug, Clone, Default)]
struct MessagePlan {
    fields: Vec<FieldRules>,
    exactly_one: Vec<(String, Vec<FieldDescriptor>)>,
}

/// Checks messages against the validation options of their descriptors.
#[derive(Debug, Clone)]
pub struct Validator {
    pool: DescriptorPool,
    plans: Arc<HashMap<String, MessagePlan, foldhash::fast::RandomState>>,
}

struct Extensions {
    required: ExtensionDescriptor,
    pattern: ExtensionDescriptor,
    value: ExtensionDescriptor,
    size: ExtensionDescriptor,
    length: ExtensionDescriptor,
    map_key: ExtensionDescriptor,
    exactly_one: ExtensionDescriptor,
}

impl Validator {
    /// Builds the plans of every message in an encoded `FileDescriptorSet`.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Validator, String> {
        let pool = DescriptorPool::decode(bytes).map_err(|error| error.to_string())?;
        let extension = |name: &str| {
            pool.get_extension_by_name(name)
                .ok_or_else(|| format!("descriptor set lacks extension {name}"))
        };
        let extensions = Extensions {
            required: extension("yandex.cloud.required")?,
            pattern: extension("yandex.cloud.pattern")?,
            value: extension("yandex.cloud.value")?,
            size: extension("yandex.cloud.size")?,
            length: extension("yandex.cloud.length")?,
            map_key: extension("yandex.cloud.map_key")?,
            exactly_one: extension("yandex.cloud.exactly_one")?,
        };
        let mut plans = HashMap::with_hasher(foldhash::fast::RandomState::default());
        for message in pool.all_messages() {
            plans.insert(
                message.full_name().to_string(),
                plan_message(&message, &extensions)?,
            );
        }
        Ok(Validator {
            pool,
            plans: Arc::new(plans),
        })
    }

    /// The validator of imageplane's own API.
    pub fn for_api() -> Validator {
        Validator::from_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("proto/ carries valid validation options")
    }

    /// Checks a generated message; `full_name` is its protobuf name.
    pub fn check<M: Message>(&self, full_name: &str, message: &M) -> Result<(), Violation> {
        let descriptor = self
            .pool
            .get_message_by_name(full_name)
            .unwrap_or_else(|| panic!("message {full_name} is not in the descriptor set"));
        let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .map_err(|error| Violation {
                field: full_name.to_string(),
                message: format!("cannot be decoded: {error}"),
            })?;
        self.check_dynamic(&dynamic, "")
    }

    fn check_dynamic(&self, message: &DynamicMessage, prefix: &str) -> Result<(), Violation> {
        let Some(plan) = self.plans.get(message.descriptor().full_name()) else {
            return Ok(());
        };
        for (oneof, members) in &plan.exactly_one {
            let set = members
                .iter()
                .filter(|member| message.has_field(member))
                .count();
            if set != 1 {
                let names: Vec<&str> = members.iter().map(|member| member.name()).collect();
                return Err(Violation {
                    field: join(prefix, oneof),
                    message: format!("exactly one of {} is required", names.join(", ")),
                });
            }
        }
        for rules in &plan.fields {
            let field = &rules.field;
            if !message.has_field(field) {
                // Unset: the value is the field's default, whose verdict the plan holds.
                if field.containing_oneof().is_none() {
                    if let Some(problem) = &rules.unset_violation {
                        return Err(Violation {
                            field: join(prefix, field.name()),
                            message: problem.clone(),
                        });
                    }
                }
                continue;
            }
            let path = join(prefix, field.name());
            let value = message.get_field(field);
            if rules.required && is_empty(&value, true) {
                return Err(Violation {
                    field: path,
                    message: "is required".to_string(),
                });
            }
            self.check_value(rules, &path, &value)?;
        }
        Ok(())
    }

    fn check_value(&self, rules: &FieldRules, path: &str, value: &Value) -> Result<(), Violation> {
        match value {
            Value::List(items) => {
                check_size(rules, path, items.len())?;
                for (index, item) in items.iter().enumerate() {
                    self.check_scalar(rules, &format!("{path}[{index}]"), item)?;
                }
            }
            Value::Map(entries) => {
                check_size(rules, path, entries.len())?;
                let mut keys: Vec<&MapKey> = entries.keys().collect();
                keys.sort_by_key(|key| map_key_text(key));
                for key in keys {
                    let text = map_key_text(key);
                    check_map_key(rules, path, &text)?;
                    self.check_scalar(rules, &format!("{path}[\"{text}\"]"), &entries[key])?;
                }
            }
            other => self.check_scalar(rules, path, other)?,
        }
        Ok(())
    }

    fn check_scalar(&self, rules: &FieldRules, path: &str, value: &Value) -> Result<(), Violation> {
        match value {
            Value::Message(nested) => self.check_dynamic(nested, path),
            other => check_plain(rules, path, other),
        }
    }
}

/// Checks a value that is not a message against the field's rules.
fn check_plain(rules: &FieldRules, path: &str, value: &Value) -> Result<(), Violation> {
    let violation = |message: String| Violation {
        field: path.to_string(),
        message,
    };
    match value {
        Value::String(text) => {
            if let Some(bounds) = &rules.length {
                let length = text.chars().count();
                if !bounds.contains(length as i128) {
                    return Err(violation(format!(
                        "length must be {} characters, got {length}",
                        bounds.spec
                    )));
                }
            }
            if let Some(pattern) = &rules.pattern {
                if !pattern.regex.is_match(text) {
                    return Err(violation(format!(
                        "value {text:?} does not match the pattern {}",
                        pattern.source
                    )));
                }
            }
        }
        Value::I32(_) | Value::I64(_) | Value::U32(_) | Value::U64(_) => {
            let number = integer(value);
            if let Some(bounds) = &rules.value {
                if (number != 0 || rules.required) && !bounds.contains(number) {
                    return Err(violation(format!(
                        "value must be in range {}, got {number}",
                        bounds.spec
                    )));
                }
            }
        }
        Value::EnumNumber(number) => {
            if let Kind::Enum(descriptor) = rules.field.kind() {
                if descriptor.get_value(*number).is_none() {
                    return Err(violation(format!(
                        "unknown value {number} of enum {}",
                        descriptor.full_name()
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// What is wrong with a field left unset (holding its default), if anything.
fn unset_violation(rules: &FieldRules) -> Option<String> {
    let field = &rules.field;
    if rules.required {
        return Some("is required".to_string());
    }
    let verdict = if field.is_list() || field.is_map() {
        check_size(rules, "", 0)
    } else if matches!(field.kind(), Kind::Message(_)) {
        Ok(())
    } else {
        check_plain(rules, "", &Value::default_value_for_field(field))
    };
    verdict.err().map(|violation| violation.message)
}

fn plan_message(
    message: &MessageDescriptor,
    extensions: &Extensions,
) -> Result<MessagePlan, String> {
    let mut plan = MessagePlan::default();
    for oneof in message.oneofs() {
        let options = oneof.options();
        if options.get_extension(&extensions.exactly_one).as_bool() == Some(true) {
            plan.exactly_one
                .push((oneof.name().to_string(), oneof.fields().collect()));
        }
    }
    for field in message.fields() {
        let options = field.options();
        let text = |extension: &ExtensionDescriptor| {
            options
                .has_extension(extension)
                .then(|| {
                    options
                        .get_extension(extension)
                        .as_str()
                        .map(str::to_string)
                })
                .flatten()
        };
        let bounds = |extension: &ExtensionDescriptor| text(extension).map(|s| Bounds::parse(&s));
        let map_key = options
            .has_extension(&extensions.map_key)
            .then(|| options.get_extension(&extensions.map_key).into_owned());
        let key_text = |name: &str| {
            map_key.as_ref().and_then(|spec| match spec {
                Value::Message(spec) => spec
                    .get_field_by_name(name)
                    .and_then(|value| value.as_str().map(str::to_string))
                    .filter(|text| !text.is_empty()),
                _ => None,
            })
        };
        let rules = FieldRules {
            required: options.get_extension(&extensions.required).as_bool() == Some(true),
            length: bounds(&extensions.length).transpose()?,
            pattern: text(&extensions.pattern)
                .map(|s| Pattern::parse(&s))
                .transpose()?,
            value: bounds(&extensions.value).transpose()?,
            size: bounds(&extensions.size).transpose()?,
            key_length: key_text("length").map(|s| Bounds::parse(&s)).transpose()?,
            key_pattern: key_text("pattern")
                .map(|s| Pattern::parse(&s))
                .transpose()?,
            field,
            unset_violation: None,
        };
        let rules = FieldRules {
            unset_violation: unset_violation(&rules),
            ..rules
        };
        plan.fields.push(rules);
    }
    Ok(plan)
}

fn check_size(rules: &FieldRules, path: &str, count: usize) -> Result<(), Violation> {
    if let Some(bounds) = &rules.size {
        if !bounds.contains(count as i128) {
            return Err(Violation {
                field: path.to_string(),
                message: format!("number of entries must be {}, got {count}", bounds.spec),
            });
        }
    }
    Ok(())
}

fn check_map_key(rules: &FieldRules, path: &str, key: &str) -> Result<(), Violation> {
    let violation = |message: String| Violation {
        field: path.to_string(),
        message,
    };
    if let Some(bounds) = &rules.key_length {
        let length = key.chars().count();
        if !bounds.contains(length as i128) {
            return Err(violation(format!(
                "key {key:?}: length must be {} characters, got {length}",
                bounds.spec
            )));
        }
    }
    if let Some(pattern) = &rules.key_pattern {
        if !pattern.regex.is_match(key) {
            return Err(violation(format!(
                "key {key:?} does not match the pattern {}",
                pattern.source
            )));
        }
    }
    Ok(())
}

fn is_empty(value: &Value, present: bool) -> bool {
    match value {
        Value::String(text) => text.is_empty(),
        Value::Bytes(bytes) => bytes.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
        Value::EnumNumber(number) => *number == 0,
        Value::Message(_) => !present,
        Value::Bool(flag) => !flag,
        other => integer(other) == 0,
    }
}

fn integer(value: &Value) -> i128 {
    match value {
        Value::I32(n) => i128::from(*n),
        Value::I64(n) => i128::from(*n),
        Value::U32(n) => i128::from(*n),
        Value::U64(n) => i128::from(*n),
        _ => 0,
    }
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::String(text) => text.clone(),
        MapKey::Bool(flag) => flag.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_every_form() {
        let cases = [
            ("<=50", 50, 51),
            ("1-63", 63, 64),
            ("20", 20, 21),
            (">=1", 1, 0),
            ("<5", 4, 5),
            (">0", 1, 0),
        ];
        for (spec, inside, outside) in cases {
            let bounds = Bounds::parse(spec).unwrap();
            assert!(bounds.contains(inside), "{spec} should contain {inside}");
            assert!(
                !bounds.contains(outside),
                "{spec} should not contain {outside}"
            );
        }
        assert!(Bounds::parse("abc").is_err());
    }

    #[test]
    fn patterns_match_whole_values() {
        let pattern = Pattern::parse("|[a-z]([-a-z0-9]{0,61}[a-z0-9])?").unwrap();
        assert!(pattern.regex.is_match(""));
        assert!(pattern.regex.is_match("my-image"));
        assert!(!pattern.regex.is_match("my-image-"));
        assert!(!pattern.regex.is_match("x My"));
        let labels = Pattern::parse(r"[-_./\@0-9a-z]*").unwrap();
        assert!(labels.regex.is_match("a/b@c.d"));
        assert!(!labels.regex.is_match("A"));
    }

    #[test]
    fn every_message_of_the_api_has_a_plan() {
        let validator = Validator::for_api();
        let plan = &validator.plans["yandex.cloud.compute.v1.CreateImageRequest"];
        let folder = plan
            .fields
            .iter()
            .find(|rules| rules.field.name() == "folder_id")
            .unwrap();
        assert!(folder.required);
        assert_eq!(folder.length.as_ref().unwrap().spec, "<=50");
        assert_eq!(plan.exactly_one[0].0, "source");
        let labels = plan
            .fields
            .iter()
            .find(|rules| rules.field.name() == "labels")
            .unwrap();
        assert_eq!(labels.key_length.as_ref().unwrap().spec, "1-63");
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;
    use crate::pb::compute::CreateDiskRequest;

    #[test]
    fn empty_required_field_is_reported() {
        let validator = Validator::for_api();
        let request = CreateDiskRequest {
            zone_id: "ru-central1-a".into(),
            size: 4194304,
            ..Default::default()
        };
        let violation = validator
            .check("yandex.cloud.compute.v1.CreateDiskRequest", &request)
            .unwrap_err();
        assert_eq!(violation.to_string(), "folder_id: is required");
    }
}

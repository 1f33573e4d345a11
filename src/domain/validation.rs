//! Enforces the validation options of `yandex/cloud/validation.proto` on every request.
//!
//! The rules (required, length, pattern, value, size, map_key, exactly_one) are written
//! once, as options on the fields in proto/, exactly as Yandex Cloud writes them. At start
//! the validator reads them from the descriptor set into a plan per message; a request is
//! checked against its plan, nested messages included. The first violation is reported
//! with the field's path and the rule it broke, e.g.
//! `description: length must be <=256 characters, got 300`.
//!
//! Checking walks the request's protobuf encoding directly (prost's wire primitives), with
//! a plan per message: no dynamic message is built, so a check costs about as much as
//! encoding the request. Fields are reported in declaration order, oneofs first.
//!
//! Semantics, as in Yandex Cloud: `length` and `pattern` apply to every value, the empty
//! string included (a pattern that allows empty starts with `|`); `value` applies to
//! non-zero numbers, zero meaning "not set" unless the field is `required`; members of a
//! oneof are checked only when set.

use crate::error::{excerpt, Error};
use prost::encoding::{decode_key, decode_varint, WireType};
use prost::Message;
use prost_reflect::{
    DescriptorPool, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    Value,
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

impl From<Violation> for Error {
    fn from(violation: Violation) -> Error {
        Error::InvalidField {
            field: violation.field,
            description: violation.message,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A field's rules as data: inclusive ranges as (min, max), patterns as written (they must
/// match the whole value). See [`Validator::constraints`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    pub required: bool,
    pub length: Option<(Option<i128>, Option<i128>)>,
    pub pattern: Option<String>,
    /// Applies to non-zero values; zero means "not set" unless the field is required.
    pub value: Option<(Option<i128>, Option<i128>)>,
    /// Entries of a repeated field or a map.
    pub size: Option<(Option<i128>, Option<i128>)>,
    pub key_length: Option<(Option<i128>, Option<i128>)>,
    pub key_pattern: Option<String>,
    /// The only values the domain accepts (see [`DomainRule`]), as text.
    pub values: Option<Vec<String>>,
    /// Whether the field left unset breaks a rule: it is `required`, or its default
    /// value (empty, zero, no entries) is outside its length, pattern, value or size.
    pub must_be_set: bool,
}

/// A rule about one field that the domain checks itself rather than a proto option states
/// (a value list of the server's settings, an id's shape), so that documents describing
/// the API state it too: [`Validator::with_domain_rules`] adds it to the field's
/// [`Constraints`]. The validator does not check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRule {
    /// The message's full name and the field's proto name.
    pub message: &'static str,
    pub field: &'static str,
    /// The only values accepted, as text (numbers in decimal).
    pub values: Option<Vec<String>>,
    /// A pattern every value matches (for a field whose proto states none).
    pub pattern: Option<String>,
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

/// How a field's values look on the wire, as far as checking them needs.
#[derive(Debug, Clone)]
enum Shape {
    /// A string.
    Text,
    /// A varint integer: int32 (sign-extended), int64, uint32/uint64, sint32/sint64.
    Integer {
        signed32: bool,
        unsigned: bool,
        zigzag: bool,
    },
    /// A varint enum number.
    Enum(EnumDescriptor),
    /// A nested message, by full name.
    Message(String),
    /// `map<string, V>`: entries with the key as field 1 and the value as field 2.
    Map { value: Box<Shape> },
    /// Anything no rule applies to (bool, bytes, fixed-width numbers).
    Other,
}

impl Shape {
    fn of(kind: &Kind) -> Shape {
        match kind {
            Kind::String => Shape::Text,
            Kind::Int32 => Shape::Integer {
                signed32: true,
                unsigned: false,
                zigzag: false,
            },
            Kind::Int64 => Shape::Integer {
                signed32: false,
                unsigned: false,
                zigzag: false,
            },
            Kind::Uint32 | Kind::Uint64 => Shape::Integer {
                signed32: false,
                unsigned: true,
                zigzag: false,
            },
            Kind::Sint32 | Kind::Sint64 => Shape::Integer {
                signed32: false,
                unsigned: false,
                zigzag: true,
            },
            Kind::Enum(descriptor) => Shape::Enum(descriptor.clone()),
            Kind::Message(descriptor) => Shape::Message(descriptor.full_name().to_string()),
            _ => Shape::Other,
        }
    }
}

/// The rules of one field, read from its options.
#[derive(Debug, Clone)]
struct FieldRules {
    name: String,
    number: u32,
    shape: Shape,
    /// A repeated field or a map: `size` counts its entries.
    many: bool,
    in_oneof: bool,
    required: bool,
    length: Option<Bounds>,
    pattern: Option<Pattern>,
    value: Option<Bounds>,
    size: Option<Bounds>,
    key_length: Option<Bounds>,
    key_pattern: Option<Pattern>,
    /// The verdict on the field left unset (its default value), computed once.
    unset_violation: Option<String>,
}

/// An `exactly_one` oneof: its name and its members (indexes into the fields).
#[derive(Debug, Clone)]
struct ExactlyOne {
    name: String,
    members: Vec<usize>,
    member_names: String,
}

/// The rules of one message: its fields in declaration order and its `exactly_one` oneofs.
#[derive(Debug, Clone, Default)]
struct MessagePlan {
    fields: Vec<FieldRules>,
    /// (field number, index into `fields`), sorted by number.
    by_number: Vec<(u32, usize)>,
    exactly_one: Vec<ExactlyOne>,
}

impl MessagePlan {
    fn index_of(&self, number: u32) -> Option<usize> {
        self.by_number
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|position| self.by_number[position].1)
    }
}

/// Checks messages against the validation options of their descriptors.
#[derive(Debug, Clone)]
pub struct Validator {
    plans: Arc<HashMap<String, MessagePlan, foldhash::fast::RandomState>>,
    /// The domain's rules, by `message.field`: documented, not checked here.
    domain_rules: Arc<HashMap<String, DomainRule>>,
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
            plans: Arc::new(plans),
            domain_rules: Arc::default(),
        })
    }

    /// The validator with the domain's own rules added to the constraints it reports (see
    /// [`DomainRule`]).
    pub fn with_domain_rules(self, rules: Vec<DomainRule>) -> Validator {
        Validator {
            domain_rules: Arc::new(
                rules
                    .into_iter()
                    .map(|rule| (format!("{}.{}", rule.message, rule.field), rule))
                    .collect(),
            ),
            ..self
        }
    }

    /// The rules of one field as data, for documents that describe the API (the
    /// OpenAPI schema): its proto options and the domain's rules about it; `None` for a
    /// field without rules.
    pub fn constraints(&self, message: &str, field: &str) -> Option<Constraints> {
        let rules = self
            .plans
            .get(message)?
            .fields
            .iter()
            .find(|rules| rules.name == field)?;
        let range = |bounds: &Option<Bounds>| bounds.as_ref().map(|b| (b.min, b.max));
        let domain = self.domain_rules.get(&format!("{message}.{field}"));
        let constraints = Constraints {
            required: rules.required,
            length: range(&rules.length),
            pattern: rules
                .pattern
                .as_ref()
                .map(|pattern| pattern.source.clone())
                .or_else(|| domain.and_then(|rule| rule.pattern.clone())),
            value: range(&rules.value),
            size: range(&rules.size),
            key_length: range(&rules.key_length),
            key_pattern: rules
                .key_pattern
                .as_ref()
                .map(|pattern| pattern.source.clone()),
            values: domain.and_then(|rule| rule.values.clone()),
            must_be_set: rules.unset_violation.is_some(),
        };
        (constraints != Constraints::default()).then_some(constraints)
    }

    /// Whether the oneof `oneof` of `message` is `exactly_one`; `None` for an unknown
    /// message.
    pub fn exactly_one(&self, message: &str, oneof: &str) -> Option<bool> {
        let plan = self.plans.get(message)?;
        Some(plan.exactly_one.iter().any(|group| group.name == oneof))
    }

    /// The validator of imageplane's own API.
    pub fn for_api() -> Validator {
        Validator::from_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("proto/ carries valid validation options")
    }

    /// Checks a generated message; `full_name` is its protobuf name.
    pub fn check<M: Message>(&self, full_name: &str, message: &M) -> Result<(), Violation> {
        self.check_except(full_name, message, &[])
    }

    /// Checks a message whose fields and oneofs at the dotted paths `unset` (proto names,
    /// such as `disk_placement_policy.placement_group_id`) were left unset on purpose:
    /// being unset breaks no `required` or `exactly_one` rule of theirs (an update's fields
    /// outside its mask; a seed line, which has no create request's source). A value they
    /// hold is still checked.
    pub fn check_except<M: Message>(
        &self,
        full_name: &str,
        message: &M,
        unset: &[String],
    ) -> Result<(), Violation> {
        let Some(plan) = self.plans.get(full_name) else {
            return Err(Violation {
                field: full_name.to_string(),
                message: "is not a message of this API".to_string(),
            });
        };
        self.check_encoded(plan, &message.encode_to_vec(), "", unset)
    }

    /// Checks one encoded message against its plan (see [`Validator::check_except`] for
    /// `unset`).
    fn check_encoded(
        &self,
        plan: &MessagePlan,
        mut bytes: &[u8],
        prefix: &str,
        unset: &[String],
    ) -> Result<(), Violation> {
        let mut counts = vec![0usize; plan.fields.len()];
        // The violation of the earliest declared field wins, whatever the wire order.
        let mut first: Option<(usize, Violation)> = None;
        while !bytes.is_empty() {
            let (number, wire_type) =
                decode_key(&mut bytes).map_err(|error| malformed(prefix, error))?;
            let Some(index) = plan.index_of(number) else {
                skip(wire_type, &mut bytes, prefix)?;
                continue;
            };
            let rules = &plan.fields[index];
            if first.as_ref().is_some_and(|(earlier, _)| *earlier <= index) {
                counts[index] += 1;
                skip(wire_type, &mut bytes, prefix)?;
                continue;
            }
            match self.check_field_value(rules, wire_type, &mut bytes, prefix, counts[index], unset)
            {
                Ok(elements) => counts[index] += elements,
                Err(violation) => {
                    counts[index] += 1;
                    first = Some((index, violation));
                }
            }
        }
        for oneof in &plan.exactly_one {
            if unset.contains(&join(prefix, &oneof.name)) {
                continue;
            }
            let set = oneof
                .members
                .iter()
                .filter(|index| counts[**index] > 0)
                .count();
            if set != 1 {
                return Err(Violation {
                    field: join(prefix, &oneof.name),
                    message: format!("exactly one of {} is required", oneof.member_names),
                });
            }
        }
        for (index, rules) in plan.fields.iter().enumerate() {
            if first.as_ref().is_some_and(|(earlier, _)| *earlier <= index) {
                break;
            }
            if counts[index] == 0 {
                if let (false, Some(problem)) = (rules.in_oneof, &rules.unset_violation) {
                    let field = join(prefix, &rules.name);
                    if unset.contains(&field) {
                        continue;
                    }
                    return Err(Violation {
                        field,
                        message: problem.clone(),
                    });
                }
            } else if rules.many {
                check_size(rules, &join(prefix, &rules.name), counts[index])?;
            }
        }
        match first {
            Some((_, violation)) => Err(violation),
            None => Ok(()),
        }
    }

    /// Checks one occurrence of a field on the wire; returns how many elements it held
    /// (a packed repeated field holds several).
    fn check_field_value(
        &self,
        rules: &FieldRules,
        wire_type: WireType,
        bytes: &mut &[u8],
        prefix: &str,
        ordinal: usize,
        unset: &[String],
    ) -> Result<usize, Violation> {
        let path = || {
            let path = join(prefix, &rules.name);
            if rules.many && !matches!(rules.shape, Shape::Map { .. }) {
                format!("{path}[{ordinal}]")
            } else {
                path
            }
        };
        match (&rules.shape, wire_type) {
            (Shape::Text, WireType::LengthDelimited) => {
                let text = take_text(bytes, prefix)?;
                check_text(rules, &path(), text)?;
                Ok(1)
            }
            (Shape::Integer { .. } | Shape::Enum(_), WireType::Varint) => {
                let raw = decode_varint(bytes).map_err(|error| malformed(prefix, error))?;
                check_number(rules, &path(), raw)?;
                Ok(1)
            }
            (Shape::Integer { .. } | Shape::Enum(_), WireType::LengthDelimited) => {
                let mut packed = take_slice(bytes, prefix)?;
                let mut elements = 0;
                while !packed.is_empty() {
                    let raw =
                        decode_varint(&mut packed).map_err(|error| malformed(prefix, error))?;
                    check_number(
                        rules,
                        &format!("{}[{}]", join(prefix, &rules.name), ordinal + elements),
                        raw,
                    )?;
                    elements += 1;
                }
                Ok(elements)
            }
            (Shape::Message(name), WireType::LengthDelimited) => {
                let nested = take_slice(bytes, prefix)?;
                if let Some(plan) = self.plans.get(name) {
                    self.check_encoded(plan, nested, &path(), unset)?;
                }
                Ok(1)
            }
            (Shape::Map { value }, WireType::LengthDelimited) => {
                let entry = take_slice(bytes, prefix)?;
                self.check_map_entry(rules, value, entry, prefix, unset)?;
                Ok(1)
            }
            (_, wire_type) => {
                skip(wire_type, bytes, prefix)?;
                Ok(1)
            }
        }
    }

    /// Checks one `map<string, V>` entry: its key against `map_key`, its value against
    /// the field's rules.
    fn check_map_entry(
        &self,
        rules: &FieldRules,
        value_shape: &Shape,
        mut entry: &[u8],
        prefix: &str,
        unset: &[String],
    ) -> Result<(), Violation> {
        let mut key = "";
        let mut value: Option<(WireType, &[u8])> = None;
        while !entry.is_empty() {
            let (number, wire_type) =
                decode_key(&mut entry).map_err(|error| malformed(prefix, error))?;
            match (number, wire_type) {
                (1, WireType::LengthDelimited) => key = take_text(&mut entry, prefix)?,
                (2, _) => {
                    let start = entry;
                    skip(wire_type, &mut entry, prefix)?;
                    value = Some((wire_type, &start[..start.len() - entry.len()]));
                }
                (_, wire_type) => skip(wire_type, &mut entry, prefix)?,
            }
        }
        let path = join(prefix, &rules.name);
        check_map_key(rules, &path, key)?;
        let value_path = format!("{path}[{}]", excerpt(key));
        match (value_shape, value) {
            (Shape::Text, None) => check_text(rules, &value_path, ""),
            (Shape::Text, Some((_, mut raw))) => {
                let text = take_text(&mut raw, prefix)?;
                check_text(rules, &value_path, text)
            }
            (Shape::Message(name), Some((_, mut raw))) => {
                let nested = take_slice(&mut raw, prefix)?;
                match self.plans.get(name) {
                    Some(plan) => self.check_encoded(plan, nested, &value_path, unset),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

fn malformed(prefix: &str, error: impl fmt::Display) -> Violation {
    Violation {
        field: if prefix.is_empty() {
            "request".to_string()
        } else {
            prefix.to_string()
        },
        message: format!("is not a valid protobuf message: {error}"),
    }
}

fn take_slice<'a>(bytes: &mut &'a [u8], prefix: &str) -> Result<&'a [u8], Violation> {
    let length = decode_varint(bytes).map_err(|error| malformed(prefix, error))?;
    let length = usize::try_from(length)
        .ok()
        .filter(|length| *length <= bytes.len())
        .ok_or_else(|| malformed(prefix, "length beyond the message"))?;
    let (taken, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(taken)
}

fn take_text<'a>(bytes: &mut &'a [u8], prefix: &str) -> Result<&'a str, Violation> {
    let raw = take_slice(bytes, prefix)?;
    std::str::from_utf8(raw).map_err(|_| malformed(prefix, "a string is not UTF-8"))
}

fn skip(wire_type: WireType, bytes: &mut &[u8], prefix: &str) -> Result<(), Violation> {
    let width = match wire_type {
        WireType::Varint => {
            decode_varint(bytes).map_err(|error| malformed(prefix, error))?;
            return Ok(());
        }
        WireType::LengthDelimited => {
            take_slice(bytes, prefix)?;
            return Ok(());
        }
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::StartGroup | WireType::EndGroup => {
            return Err(malformed(prefix, "groups are not supported"));
        }
    };
    if bytes.len() < width {
        return Err(malformed(prefix, "truncated field"));
    }
    *bytes = &bytes[width..];
    Ok(())
}

/// Checks a string value against the field's `length` and `pattern`.
fn check_text(rules: &FieldRules, path: &str, text: &str) -> Result<(), Violation> {
    check_string(
        path,
        text,
        StringRole::Value,
        rules.length.as_ref(),
        rules.pattern.as_ref(),
    )
}

/// Checks a map key against the field's `map_key` rules.
fn check_map_key(rules: &FieldRules, path: &str, key: &str) -> Result<(), Violation> {
    check_string(
        path,
        key,
        StringRole::MapKey,
        rules.key_length.as_ref(),
        rules.key_pattern.as_ref(),
    )
}

/// What a checked string is, for the wording of a violation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StringRole {
    Value,
    MapKey,
}

fn check_string(
    path: &str,
    text: &str,
    role: StringRole,
    length: Option<&Bounds>,
    pattern: Option<&Pattern>,
) -> Result<(), Violation> {
    let violation = |message: String| Violation {
        field: path.to_string(),
        message,
    };
    if let Some(bounds) = length {
        let count = text.chars().count();
        if !bounds.contains(count as i128) {
            let subject = match role {
                StringRole::Value => String::new(),
                StringRole::MapKey => format!("key {}: ", excerpt(text)),
            };
            return Err(violation(format!(
                "{subject}length must be {} characters, got {count}",
                bounds.spec
            )));
        }
    }
    if let Some(pattern) = pattern {
        if !pattern.regex.is_match(text) {
            let noun = match role {
                StringRole::Value => "value",
                StringRole::MapKey => "key",
            };
            return Err(violation(format!(
                "{noun} {} does not match the pattern {}",
                excerpt(text),
                pattern.source
            )));
        }
    }
    Ok(())
}

/// Checks a varint against `value` (integers) or the enum's known numbers.
fn check_number(rules: &FieldRules, path: &str, raw: u64) -> Result<(), Violation> {
    let violation = |message: String| Violation {
        field: path.to_string(),
        message,
    };
    match &rules.shape {
        Shape::Enum(descriptor) => {
            let number = raw as i64 as i32;
            if descriptor.get_value(number).is_none() {
                return Err(violation(format!(
                    "unknown value {number} of enum {}",
                    descriptor.full_name()
                )));
            }
        }
        Shape::Integer {
            signed32,
            unsigned,
            zigzag,
        } => {
            let number: i128 = if *zigzag {
                i128::from((raw >> 1) as i64 ^ -((raw & 1) as i64))
            } else if *signed32 {
                i128::from(raw as i64 as i32)
            } else if *unsigned {
                i128::from(raw)
            } else {
                i128::from(raw as i64)
            };
            if let Some(bounds) = &rules.value {
                if (number != 0 || rules.required) && !bounds.contains(number) {
                    return Err(violation(format!(
                        "value must be in range {}, got {number}",
                        bounds.spec
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
    if rules.required {
        return Some("is required".to_string());
    }
    let verdict = if rules.many {
        check_size(rules, "", 0)
    } else {
        match rules.shape {
            Shape::Text => check_text(rules, "", ""),
            Shape::Integer { .. } => check_number(rules, "", 0),
            _ => Ok(()),
        }
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
            let members: Vec<FieldDescriptor> = oneof.fields().collect();
            let names: Vec<&str> = members.iter().map(|member| member.name()).collect();
            plan.exactly_one.push(ExactlyOne {
                name: oneof.name().to_string(),
                members: members
                    .iter()
                    .map(|member| {
                        message
                            .fields()
                            .position(|field| field.number() == member.number())
                            .expect("a oneof member is a field of its message")
                    })
                    .collect(),
                member_names: names.join(", "),
            });
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
        let shape = if field.is_map() {
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            Shape::Map {
                value: Box::new(Shape::of(&value_kind)),
            }
        } else {
            Shape::of(&field.kind())
        };
        let rules = FieldRules {
            name: field.name().to_string(),
            number: field.number(),
            shape,
            many: field.is_list() || field.is_map(),
            in_oneof: field.containing_oneof().is_some(),
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
            unset_violation: None,
        };
        let rules = FieldRules {
            unset_violation: unset_violation(&rules),
            ..rules
        };
        plan.by_number.push((rules.number, plan.fields.len()));
        plan.fields.push(rules);
    }
    plan.by_number.sort_unstable();
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
            .find(|rules| rules.name == "folder_id")
            .unwrap();
        assert!(folder.required);
        assert_eq!(folder.length.as_ref().unwrap().spec, "<=50");
        assert_eq!(plan.exactly_one[0].name, "source");
        let labels = plan
            .fields
            .iter()
            .find(|rules| rules.name == "labels")
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

    fn check(request: &CreateDiskRequest) -> Result<(), String> {
        Validator::for_api()
            .check("yandex.cloud.compute.v1.CreateDiskRequest", request)
            .map_err(|violation| violation.to_string())
    }

    fn valid() -> CreateDiskRequest {
        CreateDiskRequest {
            folder_id: "folder".into(),
            zone_id: "ru-central1-a".into(),
            size: 4194304,
            ..Default::default()
        }
    }

    #[test]
    fn negative_numbers_are_reported_as_such() {
        let request = CreateDiskRequest {
            size: -5,
            ..valid()
        };
        assert_eq!(
            check(&request).unwrap_err(),
            "size: value must be in range 4194304-28587302322176, got -5"
        );
    }

    #[test]
    fn the_first_declared_field_is_reported_whatever_the_order() {
        let request = CreateDiskRequest {
            folder_id: String::new(),
            name: "Bad".into(),
            ..valid()
        };
        assert_eq!(check(&request).unwrap_err(), "folder_id: is required");
        let request = CreateDiskRequest {
            name: "Bad".into(),
            description: "d".repeat(257),
            ..valid()
        };
        assert!(check(&request).unwrap_err().starts_with("name: "));
    }

    #[test]
    fn map_keys_values_and_repeated_elements_are_checked() {
        let mut request = valid();
        request.labels.insert("ok".into(), "Bad Value".into());
        assert!(check(&request)
            .unwrap_err()
            .starts_with("labels[\"ok\"]: value \"Bad Value\" does not match"));
        let mut request = valid();
        request.labels.insert(String::new(), "v".into());
        assert!(check(&request)
            .unwrap_err()
            .starts_with("labels: key \"\": length"));
        let mut request = valid();
        for index in 0..65 {
            request.labels.insert(format!("k{index}"), "v".into());
        }
        assert_eq!(
            check(&request).unwrap_err(),
            "labels: number of entries must be <=64, got 65"
        );
        let request = CreateDiskRequest {
            snapshot_schedule_ids: vec!["a".into(), "b".into()],
            ..valid()
        };
        assert_eq!(
            check(&request).unwrap_err(),
            "snapshot_schedule_ids: number of entries must be <=1, got 2"
        );
        let request = CreateDiskRequest {
            snapshot_schedule_ids: vec!["s".repeat(51)],
            ..valid()
        };
        assert_eq!(
            check(&request).unwrap_err(),
            "snapshot_schedule_ids[0]: length must be <=50 characters, got 51"
        );
        assert!(check(&valid()).is_ok());
    }

    #[test]
    fn nested_messages_and_enums_are_checked() {
        use crate::pb::compute::{create_image_request::Source, CreateImageRequest, Os};
        let request = CreateImageRequest {
            folder_id: "folder".into(),
            source: Some(Source::DiskId(String::new())),
            os: Some(Os {
                r#type: 7,
                nvidia: None,
            }),
            ..Default::default()
        };
        let violation = Validator::for_api()
            .check("yandex.cloud.compute.v1.CreateImageRequest", &request)
            .unwrap_err();
        assert_eq!(
            violation.to_string(),
            "os.type: unknown value 7 of enum yandex.cloud.compute.v1.Os.Type"
        );
    }

    #[test]
    fn fields_left_unset_by_name_skip_only_their_required_rules() {
        use crate::pb::compute::{create_image_request::Source, CreateImageRequest};
        let validator = Validator::for_api();
        let full_name = "yandex.cloud.compute.v1.CreateImageRequest";
        let sourceless = CreateImageRequest {
            folder_id: "folder".into(),
            ..Default::default()
        };
        assert!(validator.check(full_name, &sourceless).is_err());
        assert!(validator
            .check_except(full_name, &sourceless, &["source".to_string()])
            .is_ok());
        let unnamed_folder = CreateImageRequest {
            source: Some(Source::ImageId("i".repeat(51))),
            ..Default::default()
        };
        assert_eq!(
            validator
                .check_except(full_name, &unnamed_folder, &["source".to_string()])
                .unwrap_err()
                .to_string(),
            "folder_id: is required"
        );
        let long_source = CreateImageRequest {
            folder_id: "folder".into(),
            ..unnamed_folder
        };
        assert_eq!(
            validator
                .check_except(full_name, &long_source, &["source".to_string()])
                .unwrap_err()
                .to_string(),
            "image_id: length must be <=50 characters, got 51"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let validator = Validator::for_api();
        let plan = &validator.plans["yandex.cloud.compute.v1.CreateImageRequest"];
        let mut seed = 0x9e3779b97f4a7c15u64;
        for length in 0..2000 {
            let bytes: Vec<u8> = (0..length % 64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = validator.check_encoded(plan, &bytes, "", &[]);
        }
    }
}

//! Every string and every repeated field or map that a request can carry has a limit in
//! proto/, so no request can store an unbounded record (issue [harden] 2): a string has a
//! `length` rule or a pattern that bounds its length; a repeated field or map a `size`
//! rule. The limits are the README's "Field limits".
//!
//! `google.api.HttpBody` is not a record: it is a part of a state snapshot's upload, each
//! part within the gRPC message limit and all of them joined to at most
//! `store::snapshot::MAX_SNAPSHOT_BYTES`, whose rows the import checks one by one.

use imageplane::domain::validation::Validator;
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};
use std::collections::BTreeSet;

/// The longest value a pattern matches whole, if it is bounded.
fn pattern_bound(pattern: &str) -> Option<usize> {
    let hir = regex_syntax::Parser::new()
        .parse(&format!("^(?:{pattern})$"))
        .ok()?;
    hir.properties().maximum_len()
}

/// Every message a request of some RPC can contain, the request included.
fn request_messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    let mut seen = BTreeSet::new();
    let mut queue: Vec<MessageDescriptor> = pool
        .services()
        .flat_map(|service| {
            service
                .methods()
                .map(|method| method.input())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut found = Vec::new();
    while let Some(message) = queue.pop() {
        if !seen.insert(message.full_name().to_string()) {
            continue;
        }
        for field in message.fields() {
            if let Kind::Message(nested) = field.kind() {
                queue.push(nested);
            }
        }
        found.push(message);
    }
    found
}

#[test]
fn every_string_and_list_a_request_carries_is_bounded() {
    let pool = DescriptorPool::decode(imageplane::pb::FILE_DESCRIPTOR_SET).unwrap();
    let validator = Validator::for_api();
    let mut unbounded = Vec::new();
    for message in request_messages(&pool) {
        if message.is_map_entry()
            || message.full_name().starts_with("google.protobuf.")
            || message.full_name() == "google.api.HttpBody"
        {
            continue;
        }
        for field in message.fields() {
            let rules = validator.constraints(message.full_name(), field.name());
            let name = field.full_name().to_string();
            let size_bounded = rules
                .as_ref()
                .and_then(|rules| rules.size)
                .is_some_and(|(_, max)| max.is_some());
            if (field.is_list() || field.is_map()) && !size_bounded {
                unbounded.push(format!("{name}: no size limit"));
            }
            let is_text = matches!(field.kind(), Kind::String)
                || (field.is_map()
                    && matches!(field.kind(), Kind::Message(entry)
                        if matches!(entry.map_entry_value_field().kind(), Kind::String)));
            if is_text {
                let by_length = rules
                    .as_ref()
                    .and_then(|rules| rules.length)
                    .is_some_and(|(_, max)| max.is_some());
                let by_pattern = rules
                    .as_ref()
                    .and_then(|rules| rules.pattern.as_deref())
                    .and_then(pattern_bound)
                    .is_some();
                if !by_length && !by_pattern {
                    unbounded.push(format!("{name}: no length limit"));
                }
            }
            if field.is_map() {
                let key_bounded = rules
                    .as_ref()
                    .is_some_and(|rules| rules.key_length.is_some_and(|(_, max)| max.is_some()));
                if !key_bounded {
                    unbounded.push(format!("{name}: map keys have no length limit"));
                }
            }
        }
    }
    assert!(
        unbounded.is_empty(),
        "unbounded request fields:\n{}",
        unbounded.join("\n")
    );
}

#[test]
fn patterns_are_measured() {
    assert_eq!(pattern_bound("|[a-z]([-a-z0-9]{0,61}[a-z0-9])?"), Some(63));
    assert_eq!(pattern_bound("[a-z]*"), None);
}

//! Access bindings of images, snapshots and disks: ListAccessBindings,
//! SetAccessBindings (replaces them all) and UpdateAccessBindings (ADD and REMOVE deltas).
//!
//! They are kept with the resource and checked for shape only (imageplane does not
//! authorize by them): a role id and a subject id of letters, digits and `.-_:@`, and a
//! subject type Yandex Cloud knows. Both changes are done when stored; their operations
//! answer the deltas that took effect (`AccessBindingsOperationResult`).

use super::page_token::Position;
use super::Catalog;
use crate::domain::call::CallContext;
use crate::error::{excerpt, Error};
use crate::model::operations;
use crate::model::resource::{pack, ChangeKind, OperationRecord, ResourceKind, Work};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::{
    AccessBinding, AccessBindingAction, AccessBindingDelta, AccessBindingsOperationResult,
    SetAccessBindingsMetadata, UpdateAccessBindingsMetadata,
};
use crate::store::Changed;

/// The most bindings one resource keeps: as many as one SetAccessBindings may carry (the
/// API's limit), so that deltas cannot grow a record without bound.
pub const MAX_BINDINGS: usize = 1000;

/// The subject types bindings may name.
pub const SUBJECT_TYPES: &[&str] = &[
    "userAccount",
    "serviceAccount",
    "federatedUser",
    "group",
    "system",
];

/// The shape of a role id and a subject id: letters, digits and `.-_:@`.
pub const ID_PATTERN: &str = "[a-zA-Z0-9._:@-]+";

/// Refuses a binding whose role or subject is not of the right shape.
fn check_binding(binding: &AccessBinding, field: &str) -> Result<(), Error> {
    static SHAPE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(&format!("^(?:{ID_PATTERN})$")).expect("ID_PATTERN is a pattern")
    });
    let shaped = |text: &str| SHAPE.is_match(text);
    if !shaped(&binding.role_id) {
        return Err(Error::invalid_field(
            format!("{field}.role_id"),
            format!(
                "{} is not a role id (letters, digits and .-_:@)",
                excerpt(&binding.role_id)
            ),
        ));
    }
    let subject = binding.subject.clone().unwrap_or_default();
    if !shaped(&subject.id) {
        return Err(Error::invalid_field(
            format!("{field}.subject.id"),
            format!(
                "{} is not a subject id (letters, digits and .-_:@)",
                excerpt(&subject.id)
            ),
        ));
    }
    if !SUBJECT_TYPES.contains(&subject.r#type.as_str()) {
        return Err(Error::invalid_field(
            format!("{field}.subject.type"),
            format!(
                "unknown subject type {}; one of {}",
                excerpt(&subject.r#type),
                SUBJECT_TYPES.join(", ")
            ),
        ));
    }
    Ok(())
}

fn delta(action: AccessBindingAction, binding: &AccessBinding) -> AccessBindingDelta {
    AccessBindingDelta {
        action: action as i32,
        access_binding: Some(binding.clone()),
    }
}

/// The change of the bindings from `before` to `after`, as deltas.
fn deltas(before: &[AccessBinding], after: &[AccessBinding]) -> Vec<AccessBindingDelta> {
    let mut deltas: Vec<AccessBindingDelta> = after
        .iter()
        .filter(|binding| !before.contains(binding))
        .map(|binding| delta(AccessBindingAction::Add, binding))
        .collect();
    deltas.extend(
        before
            .iter()
            .filter(|binding| !after.contains(binding))
            .map(|binding| delta(AccessBindingAction::Remove, binding)),
    );
    deltas
}

/// Bindings without repeats, in order of first appearance.
fn distinct(bindings: Vec<AccessBinding>) -> Vec<AccessBinding> {
    let mut kept: Vec<AccessBinding> = Vec::new();
    for binding in bindings {
        if !kept.contains(&binding) {
            kept.push(binding);
        }
    }
    kept
}

impl Catalog {
    /// ListAccessBindings: a page of the resource's bindings.
    pub async fn list_access_bindings(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        id: &str,
        page_size: i64,
        page_token: &str,
    ) -> Result<(Vec<AccessBinding>, String), Error> {
        let size = super::listing::page_size(page_size, 100)?;
        let scope = format!("access|{id}");
        let offset = if page_token.is_empty() {
            0
        } else {
            match self.page_tokens.read(&scope, page_token)? {
                Position::Offset(offset) => offset as usize,
                _ => return Err(Error::invalid_field("page_token", "is damaged")),
            }
        };
        self.get(call, kind, id).await?;
        let bindings = self
            .store
            .access_bindings(kind, id)
            .await?
            .ok_or_else(|| super::not_found(kind, id))?;
        let page: Vec<AccessBinding> = bindings.iter().skip(offset).take(size).cloned().collect();
        let next = if offset + page.len() < bindings.len() {
            let end = u32::try_from(offset + page.len()).unwrap_or(u32::MAX);
            self.page_tokens.issue(&scope, &Position::Offset(end))
        } else {
            String::new()
        };
        Ok((page, next))
    }

    /// SetAccessBindings (`replace`: all of them) or UpdateAccessBindings (deltas).
    pub async fn change_access_bindings(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        id: &str,
        change: AccessChange,
    ) -> Result<Operation, Error> {
        match &change {
            AccessChange::Set(bindings) => {
                for (index, binding) in bindings.iter().enumerate() {
                    check_binding(binding, &format!("access_bindings[{index}]"))?;
                }
            }
            AccessChange::Update(deltas) => {
                for (index, delta) in deltas.iter().enumerate() {
                    let field = format!("access_binding_deltas[{index}]");
                    if ![
                        AccessBindingAction::Add as i32,
                        AccessBindingAction::Remove as i32,
                    ]
                    .contains(&delta.action)
                    {
                        return Err(Error::invalid_field(
                            format!("{field}.action"),
                            "must be ADD or REMOVE",
                        ));
                    }
                    let binding = delta.access_binding.clone().ok_or_else(|| {
                        Error::invalid_field(format!("{field}.access_binding"), "is required")
                    })?;
                    check_binding(&binding, &format!("{field}.access_binding"))?;
                }
            }
        }
        let target = id.to_string();
        let caller = call.caller.clone();
        let record = self
            .store
            .change(
                kind,
                id,
                Box::new(move |current| {
                    let current = super::lifecycle::changeable(&caller, kind, &target, current)?;
                    let before = current.access_bindings;
                    let (after, metadata) = match change {
                        AccessChange::Set(bindings) => (
                            distinct(bindings),
                            pack(&SetAccessBindingsMetadata {
                                resource_id: target.clone(),
                            }),
                        ),
                        AccessChange::Update(changes) => {
                            let mut after = before.clone();
                            for change in changes {
                                let binding = change.access_binding.unwrap_or_default();
                                if change.action == AccessBindingAction::Add as i32 {
                                    if !after.contains(&binding) {
                                        after.push(binding);
                                    }
                                } else {
                                    after.retain(|kept| *kept != binding);
                                }
                            }
                            if after.len() > MAX_BINDINGS {
                                return Err(Error::invalid_field(
                                    "access_binding_deltas",
                                    format!(
                                        "would give the {} {} bindings; it may hold at most \
                                         {MAX_BINDINGS}",
                                        kind.display_name().to_lowercase(),
                                        after.len()
                                    ),
                                ));
                            }
                            (
                                after,
                                pack(&UpdateAccessBindingsMetadata {
                                    resource_id: target.clone(),
                                }),
                            )
                        }
                    };
                    let result = AccessBindingsOperationResult {
                        effective_deltas: deltas(&before, &after),
                    };
                    let mut operation =
                        operations::start("Change access bindings", &caller.subject, metadata);
                    operations::succeed(&mut operation, pack(&result));
                    Ok(Changed {
                        record: OperationRecord {
                            operation,
                            target: current.resource.reference(),
                            work: Work::Change(ChangeKind::AccessBindings),
                        },
                        resource: current.resource,
                        access_bindings: Some(after),
                    })
                }),
                call.claim.as_ref(),
            )
            .await?;
        Ok(record.operation)
    }
}

/// What a bindings change asks.
#[derive(Debug, Clone)]
pub enum AccessChange {
    Set(Vec<AccessBinding>),
    Update(Vec<AccessBindingDelta>),
}

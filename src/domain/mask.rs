//! Update masks, read one way whichever transport a call came by.
//!
//! A path is a dotted list of field names, each in the proto's snake_case or in
//! lowerCamelCase (`min_disk_size`, `minDiskSize`): the first names a field the kind lets
//! an update change (`lifecycle::updatable`), the next ones fields of the message below it
//! (`disk_placement_policy.placement_group_id`: just that subfield). A map or a scalar has
//! no fields below it. Errors name a path as the caller wrote it.
//!
//! Only what the mask names is validated and changed: [`keep_masked`] clears the rest of a
//! request before its validation, so an invalid name beside a mask of `description` does
//! not refuse the call.

use crate::error::{excerpt, Error};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage};

/// The field errors about a mask name.
const MASK_FIELD: &str = "update_mask";

/// One path of a mask: the fields it names, outermost first, and how the caller wrote it.
#[derive(Debug, Clone)]
pub struct MaskPath {
    pub written: String,
    pub fields: Vec<FieldDescriptor>,
}

impl MaskPath {
    /// The proto name of the outermost field (`disk_placement_policy`).
    pub fn top(&self) -> &str {
        self.fields[0].name()
    }

    /// The fields below the outermost one; empty when the path names a whole field.
    pub fn below(&self) -> &[FieldDescriptor] {
        &self.fields[1..]
    }
}

/// The field of `message` a path part names, in either spelling.
fn field_named(message: &MessageDescriptor, part: &str) -> Option<FieldDescriptor> {
    message.get_field_by_name(part).or_else(|| {
        let lower_camel = part.starts_with(|c: char| c.is_ascii_lowercase()) && !part.contains('_');
        lower_camel
            .then(|| message.get_field_by_json_name(part))
            .flatten()
    })
}

/// Reads `paths` against the update request `request`, whose fields in `updatable` a
/// mask may name. An empty mask, or a path that names no field or one that cannot
/// change, is INVALID_ARGUMENT naming it.
pub fn resolve(
    request: &MessageDescriptor,
    updatable: &[&str],
    paths: &[String],
) -> Result<Vec<MaskPath>, Error> {
    let refuse = |why: String| Err(Error::invalid_field(MASK_FIELD, why));
    if paths.is_empty() {
        return refuse(format!(
            "is empty: name the fields to change ({})",
            updatable.join(", ")
        ));
    }
    let mut resolved = Vec::with_capacity(paths.len());
    for written in paths {
        let mut parts = written.split('.');
        let first = parts.next().unwrap_or_default();
        let top = field_named(request, first).filter(|field| updatable.contains(&field.name()));
        let Some(top) = top else {
            return refuse(format!(
                "{} cannot be changed; these can: {}",
                excerpt(written),
                updatable.join(", ")
            ));
        };
        let mut fields = vec![top];
        for part in parts {
            let parent = fields.last().expect("a path starts with a field");
            let below = match parent.kind() {
                Kind::Message(message) if !parent.is_map() && !parent.is_list() => message,
                _ => {
                    return refuse(format!(
                        "{}: {} has no fields to name; name it whole",
                        excerpt(written),
                        parent.name()
                    ))
                }
            };
            let Some(field) = field_named(&below, part) else {
                return refuse(format!(
                    "{}: {} has no field {}",
                    excerpt(written),
                    below.name(),
                    excerpt(part)
                ));
            };
            fields.push(field);
        }
        resolved.push(MaskPath {
            written: written.clone(),
            fields,
        });
    }
    Ok(resolved)
}

/// Clears the fields of an update request that a mask may name but `mask` does not;
/// below a field the mask names only in part, the fields it does not name. Returns the
/// dotted paths of what it cleared, which validation then takes as unset on purpose
/// (`Validator::check_except`).
pub fn keep_masked(
    request: &mut DynamicMessage,
    updatable: &[&str],
    mask: &[MaskPath],
) -> Vec<String> {
    let paths: Vec<&[FieldDescriptor]> = mask.iter().map(|path| path.fields.as_slice()).collect();
    let candidates: Vec<FieldDescriptor> = request
        .descriptor()
        .fields()
        .filter(|field| updatable.contains(&field.name()))
        .collect();
    let mut cleared = Vec::new();
    keep(request, &candidates, &paths, "", &mut cleared);
    cleared
}

fn keep(
    message: &mut DynamicMessage,
    candidates: &[FieldDescriptor],
    paths: &[&[FieldDescriptor]],
    prefix: &str,
    cleared: &mut Vec<String>,
) {
    for field in candidates {
        let here = if prefix.is_empty() {
            field.name().to_string()
        } else {
            format!("{prefix}.{}", field.name())
        };
        let below: Vec<&[FieldDescriptor]> = paths
            .iter()
            .filter(|path| path.first() == Some(field))
            .map(|path| &path[1..])
            .collect();
        if below.is_empty() {
            message.clear_field(field);
            cleared.push(here);
        } else if below.iter().all(|rest| !rest.is_empty()) && message.has_field(field) {
            if let Some(inner) = message.get_field_mut(field).as_message_mut() {
                let fields: Vec<FieldDescriptor> = inner.descriptor().fields().collect();
                keep(inner, &fields, &below, &here, cleared);
            }
        }
    }
}

/// `target` with the field at `path` (below the message) as `source` has it.
pub fn with_field_from<M>(target: &M, source: &M, path: &[FieldDescriptor]) -> Result<M, Error>
where
    M: prost::Message + prost::Name + Default,
{
    let dynamic = |message: &M| {
        let descriptor = crate::pb::descriptor_pool()
            .get_message_by_name(&M::full_name())
            .ok_or_else(|| Error::Internal(format!("no descriptor for {}", M::full_name())))?;
        DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .map_err(|error| Error::Internal(format!("re-reading {}: {error}", M::full_name())))
    };
    let mut changed = dynamic(target)?;
    copy(&mut changed, &dynamic(source)?, path);
    changed
        .transcode_to::<M>()
        .map_err(|error| Error::Internal(format!("writing {}: {error}", M::full_name())))
}

fn copy(target: &mut DynamicMessage, source: &DynamicMessage, path: &[FieldDescriptor]) {
    let Some((field, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if source.has_field(field) {
            target.set_field(field, source.get_field(field).into_owned());
        } else {
            target.clear_field(field);
        }
        return;
    }
    let Kind::Message(inner) = field.kind() else {
        return;
    };
    let from = source
        .get_field(field)
        .as_message()
        .cloned()
        .unwrap_or_else(|| DynamicMessage::new(inner));
    if let Some(into) = target.get_field_mut(field).as_message_mut() {
        copy(into, &from, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::compute::{DiskPlacementPolicy, UpdateDiskRequest};
    use prost::Name;

    const DISK: &[&str] = &["name", "labels", "disk_placement_policy"];

    fn request() -> MessageDescriptor {
        crate::pb::descriptor_pool()
            .get_message_by_name(&UpdateDiskRequest::full_name())
            .unwrap()
    }

    fn resolved(paths: &[&str]) -> Result<Vec<Vec<String>>, String> {
        let paths: Vec<String> = paths.iter().map(|path| path.to_string()).collect();
        resolve(&request(), DISK, &paths)
            .map(|mask| {
                mask.iter()
                    .map(|path| path.fields.iter().map(|f| f.name().to_string()).collect())
                    .collect()
            })
            .map_err(|error| error.message())
    }

    #[test]
    fn paths_are_read_in_either_spelling_and_nested() {
        assert_eq!(
            resolved(&[
                "name",
                "diskPlacementPolicy.placementGroupId",
                "disk_placement_policy.placement_group_partition"
            ])
            .unwrap(),
            [
                vec!["name"],
                vec!["disk_placement_policy", "placement_group_id"],
                vec!["disk_placement_policy", "placement_group_partition"]
            ]
        );
    }

    #[test]
    fn errors_name_the_path_as_written() {
        let refused = |paths: &[&str]| resolved(paths).unwrap_err();
        assert_eq!(
            refused(&["Name"]),
            "update_mask: \"Name\" cannot be changed; these can: name, labels, disk_placement_policy"
        );
        assert!(refused(&[]).starts_with("update_mask: is empty"));
        assert!(refused(&[""]).contains("\"\" cannot be changed"));
        assert!(refused(&["size"]).contains("\"size\" cannot be changed"));
        assert!(refused(&["min_disk_Size"]).contains("\"min_disk_Size\""));
        assert_eq!(
            refused(&["labels.env"]),
            "update_mask: \"labels.env\": labels has no fields to name; name it whole"
        );
        assert_eq!(
            refused(&["disk_placement_policy.group"]),
            "update_mask: \"disk_placement_policy.group\": DiskPlacementPolicy has no field \"group\""
        );
        assert!(refused(&["disk_placement_policy."]).contains("no field \"\""));
    }

    #[test]
    fn only_what_the_mask_names_is_kept() {
        let policy = DiskPlacementPolicy {
            placement_group_id: "group".into(),
            placement_group_partition: 3,
        };
        let full = UpdateDiskRequest {
            disk_id: "d".into(),
            name: "Bad Name".into(),
            labels: [("K".to_string(), "v".to_string())].into(),
            disk_placement_policy: Some(policy.clone()),
            ..Default::default()
        };
        let kept = |paths: &[&str]| {
            let paths: Vec<String> = paths.iter().map(|path| path.to_string()).collect();
            let mask = resolve(&request(), DISK, &paths).unwrap();
            let mut dynamic = DynamicMessage::new(request());
            dynamic.transcode_from(&full).unwrap();
            let cleared = keep_masked(&mut dynamic, DISK, &mask);
            (
                dynamic.transcode_to::<UpdateDiskRequest>().unwrap(),
                cleared,
            )
        };
        let (only_id, cleared) = kept(&["disk_placement_policy.placement_group_id"]);
        assert_eq!(
            cleared,
            [
                "name",
                "labels",
                "disk_placement_policy.placement_group_partition"
            ]
        );
        assert_eq!(only_id.disk_id, "d", "fields a mask cannot name are kept");
        assert_eq!((only_id.name.as_str(), only_id.labels.len()), ("", 0));
        assert_eq!(
            only_id.disk_placement_policy,
            Some(DiskPlacementPolicy {
                placement_group_id: "group".into(),
                placement_group_partition: 0,
            })
        );
        let (whole, _) = kept(&[
            "diskPlacementPolicy.placementGroupId",
            "disk_placement_policy",
        ]);
        assert_eq!(whole.disk_placement_policy, Some(policy));
        assert_eq!(kept(&["name"]).0.name, "Bad Name");
    }

    #[test]
    fn one_subfield_is_copied() {
        let target = DiskPlacementPolicy {
            placement_group_id: "old".into(),
            placement_group_partition: 7,
        };
        let source = DiskPlacementPolicy {
            placement_group_id: "new".into(),
            placement_group_partition: 1,
        };
        let mask = resolve(
            &request(),
            DISK,
            &["disk_placement_policy.placement_group_id".to_string()],
        )
        .unwrap();
        let changed = with_field_from(&target, &source, mask[0].below()).unwrap();
        assert_eq!(
            changed,
            DiskPlacementPolicy {
                placement_group_id: "new".into(),
                placement_group_partition: 7,
            }
        );
    }
}

//! Seed files: resources to have at every start, such as the public image catalogue
//! (`seeds/standard-images.jsonl`, built in) or a user's own folders (`--seed FILE`).
//!
//! One resource a line: a JSON object with one key, its kind (`image`, `snapshot`,
//! `disk` or `baremetalImage`), holding the API message in proto3 JSON (the same JSON as
//! the REST API). Blank lines and lines starting with `#` are skipped. Every resource is
//! stored READY; `id` and `folderId` are required, `createdAt` defaults to the time it is
//! first stored. Loading is idempotent: a resource whose id exists is left as it is. A
//! line that is not a resource stops the start with a message naming the file and the line.

use crate::error::Error;
use crate::model::resource::{status, Resource};
use crate::store::Store;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};

/// The built-in public image catalogue.
pub const PUBLIC_IMAGES: &str = include_str!("../../seeds/standard-images.jsonl");

/// The message type of each kind key.
const KINDS: &[(&str, &str)] = &[
    ("image", "yandex.cloud.compute.v1.Image"),
    ("snapshot", "yandex.cloud.compute.v1.Snapshot"),
    ("disk", "yandex.cloud.compute.v1.Disk"),
    ("baremetalImage", "yandex.cloud.baremetal.v1alpha.Image"),
];

/// The resources of a seed file's text; `source` names the file in errors.
pub fn parse(source: &str, text: &str) -> Result<Vec<Resource>, String> {
    let pool = crate::pb::descriptor_pool();
    let mut resources = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |why: String| format!("{source} line {}: {why}", index + 1);
        resources.push(parse_line(pool, line).map_err(at)?);
    }
    Ok(resources)
}

fn parse_line(pool: &DescriptorPool, line: &str) -> Result<Resource, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let object = value
        .as_object()
        .filter(|object| object.len() == 1)
        .ok_or("expected an object with one key: image, snapshot, disk or baremetalImage")?;
    let (key, message) = object.iter().next().expect("one key");
    let full_name = KINDS
        .iter()
        .find(|(kind, _)| kind == key)
        .map(|(_, full_name)| *full_name)
        .ok_or_else(|| {
            format!("unknown kind {key:?}: one of image, snapshot, disk, baremetalImage")
        })?;
    let descriptor = pool
        .get_message_by_name(full_name)
        .ok_or("a missing type")?;
    let dynamic = DynamicMessage::deserialize_with_options(
        descriptor,
        message,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|error| error.to_string())?;
    let mut resource = match key.as_str() {
        "image" => Resource::ComputeImage(dynamic.transcode_to().map_err(|e| e.to_string())?),
        "snapshot" => Resource::Snapshot {
            snapshot: dynamic.transcode_to().map_err(|e| e.to_string())?,
            os: None,
        },
        "disk" => Resource::Disk {
            disk: dynamic.transcode_to().map_err(|e| e.to_string())?,
            os: None,
        },
        _ => Resource::BaremetalImage(dynamic.transcode_to().map_err(|e| e.to_string())?),
    };
    check(&resource)?;
    resource.set_status(status::READY);
    if resource.created_at_ms() == 0 {
        set_created_now(&mut resource);
    }
    Ok(resource)
}

/// What every seeded resource needs: an id and a folder of the API's shapes, and a name
/// the API would take.
fn check(resource: &Resource) -> Result<(), String> {
    let shaped = |text: &str| {
        !text.is_empty()
            && text.len() <= 50
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !shaped(resource.id()) {
        return Err("id: 1-50 lowercase letters, digits or - are required".into());
    }
    if !shaped(resource.folder_id()) {
        return Err("folderId: 1-50 lowercase letters, digits or - are required".into());
    }
    let name = resource.name();
    let name_ok = name.is_empty()
        || (name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    if !name_ok {
        return Err(format!(
            "name {name:?} does not match |[a-z]([-a-z0-9]{{0,61}}[a-z0-9])?"
        ));
    }
    Ok(())
}

fn set_created_now(resource: &mut Resource) {
    let now = Some(crate::model::operations::now());
    match resource {
        Resource::ComputeImage(image) => image.created_at = now,
        Resource::Snapshot { snapshot, .. } => snapshot.created_at = now,
        Resource::Disk { disk, .. } => disk.created_at = now,
        Resource::BaremetalImage(image) => image.created_at = now,
    }
}

/// Stores the resources of the given seed texts (`(source, text)`): the ones that do not
/// exist yet. Returns how many were new.
pub async fn load(store: &dyn Store, seeds: &[(String, String)]) -> Result<usize, String> {
    let mut new = 0;
    for (source, text) in seeds {
        let resources = parse(source, text)?;
        new += store
            .seed(resources)
            .await
            .map_err(|error| format!("{source}: {}", Error::from(error)))?;
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_catalogue_parses() {
        let resources = parse("standard-images.jsonl", PUBLIC_IMAGES).unwrap();
        assert!(resources.len() >= 5);
        for resource in &resources {
            assert_eq!(resource.folder_id(), crate::domain::PUBLIC_FOLDER);
            assert_eq!(resource.status(), status::READY);
            assert!(resource.created_at_ms() > 0);
        }
        for family in [
            "ubuntu-2204-lts",
            "ubuntu-2404-lts",
            "debian-12",
            "centos-stream-9",
            "windows-2022-dc",
        ] {
            assert!(
                resources.iter().any(|resource| resource.family() == family),
                "{family}"
            );
        }
    }

    #[test]
    fn a_bad_line_is_named() {
        let text = "# a comment\n\n{\"image\": {\"id\": \"fd8a\", \"folderId\": \"f\"}}\n{\"image\": {\"id\": \"fd8b\", \"folderId\": \"f\", \"colour\": 1}}\n";
        let error = parse("mine.jsonl", text).unwrap_err();
        assert!(error.starts_with("mine.jsonl line 4: "), "{error}");
        assert!(error.contains("colour"), "{error}");
        for (line, expected) in [
            ("nonsense", "not JSON"),
            ("{\"volume\": {}}", "unknown kind"),
            ("{\"disk\": {\"folderId\": \"f\"}}", "id:"),
            (
                "{\"disk\": {\"id\": \"fhm1\", \"folderId\": \"f\", \"name\": \"Bad\"}}",
                "name",
            ),
        ] {
            let error = parse("x", line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}

//! Seed files: resources to have at every start, such as the public image catalogue
//! (`seeds/standard-images.jsonl`, built in) or a user's own folders (`--seed FILE`).
//!
//! One resource a line: a JSON object with one key, its kind (`image`, `snapshot`,
//! `disk` or `baremetalImage`), holding the API message in proto3 JSON (the same JSON as
//! the REST API). Blank lines and lines starting with `#` are skipped, and so is a UTF-8
//! byte-order mark. A line passes the rules of the create request it stands for (the
//! same checks and messages as the API's, in `image.rs`, `disk.rs`, `snapshot.rs` and
//! `baremetal.rs`) and gets the defaults a create gives; its id has the shape of its
//! kind's ids, and no earlier line has its id or, in its kind and folder, its name. Only
//! the built-in catalogue writes into the catalogue's folder. Every resource is stored
//! READY; `createdAt` defaults to the time it is first stored.
//!
//! Loading is idempotent: a resource whose id exists is left as it is. All the files are
//! checked before anything is stored, and stored in one transaction; a bad line stops the
//! start with a message naming its file and line.

use super::validation::Validator;
use super::Offerings;
use crate::error::{excerpt, Error};
use crate::model::resource::{status, Resource, ResourceKind};
use crate::store::{Store, StoreError};
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};
use std::collections::HashMap;

/// The built-in public image catalogue.
pub const PUBLIC_IMAGES: &str = include_str!("../../seeds/standard-images.jsonl");

/// How errors name the built-in catalogue.
pub const PUBLIC_IMAGES_SOURCE: &str = "the public image catalogue (seeds/standard-images.jsonl)";

/// The kind keys of a line: the message type and the kind each stands for.
const KINDS: &[(&str, &str, ResourceKind)] = &[
    (
        "image",
        "yandex.cloud.compute.v1.Image",
        ResourceKind::ComputeImage,
    ),
    (
        "snapshot",
        "yandex.cloud.compute.v1.Snapshot",
        ResourceKind::Snapshot,
    ),
    ("disk", "yandex.cloud.compute.v1.Disk", ResourceKind::Disk),
    (
        "baremetalImage",
        "yandex.cloud.baremetal.v1alpha.Image",
        ResourceKind::BaremetalImage,
    ),
];

/// Where a seed file comes from: the built-in catalogue may write into the catalogue's
/// folder, a user's file may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    PublicCatalogue,
    User,
}

/// What seed lines are checked against: the API's rules and what this server offers.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    pub validator: &'a Validator,
    pub offerings: &'a Offerings,
}

/// The resources of a seed file's text, with their line numbers; `source` names the file
/// in errors. Lines are checked on their own, not against each other (see [`load`]).
pub fn parse(
    source: &str,
    text: &str,
    origin: Origin,
    rules: Rules<'_>,
) -> Result<Vec<(usize, Resource)>, String> {
    let pool = crate::pb::descriptor_pool();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut resources = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = index + 1;
        let resource = parse_line(pool, line)
            .and_then(|resource| checked(resource, origin, rules).map_err(|e| e.message()))
            .map_err(|why| format!("{source} line {number}: {why}"))?;
        resources.push((number, resource));
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
    let (_, full_name, kind) = KINDS
        .iter()
        .find(|(name, _, _)| name == key)
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
    let transcoded = |error: prost::DecodeError| error.to_string();
    Ok(match kind {
        ResourceKind::ComputeImage => {
            Resource::ComputeImage(dynamic.transcode_to().map_err(transcoded)?)
        }
        ResourceKind::Snapshot => Resource::Snapshot {
            snapshot: dynamic.transcode_to().map_err(transcoded)?,
            os: None,
        },
        ResourceKind::Disk => Resource::Disk {
            disk: dynamic.transcode_to().map_err(transcoded)?,
            os: None,
        },
        ResourceKind::BaremetalImage => {
            Resource::BaremetalImage(dynamic.transcode_to().map_err(transcoded)?)
        }
    })
}

/// A seeded resource as the API would have it: an id of its kind's shape, a folder its
/// file may write, the rules and defaults of its create, READY, created now unless it
/// says when.
fn checked(resource: Resource, origin: Origin, rules: Rules<'_>) -> Result<Resource, Error> {
    check_id(&resource)?;
    if origin == Origin::User {
        super::lifecycle::check_not_public(resource.folder_id())?;
    }
    let mut resource = match resource {
        Resource::ComputeImage(image) => {
            Resource::ComputeImage(super::image::seeded_image(image, rules.validator)?)
        }
        Resource::Snapshot { snapshot, os } => Resource::Snapshot {
            snapshot: super::snapshot::seeded_snapshot(snapshot, rules.validator)?,
            os,
        },
        Resource::Disk { disk, os } => Resource::Disk {
            disk: super::disk::seeded_disk(disk, rules.validator, rules.offerings)?,
            os,
        },
        Resource::BaremetalImage(image) => Resource::BaremetalImage(
            super::baremetal::seeded_baremetal_image(image, rules.validator)?,
        ),
    };
    resource.set_status(status::READY);
    if resource.created_at_ms() == 0 {
        set_created_now(&mut resource);
    }
    Ok(resource)
}

/// An id as the API makes them for the resource's kind: its prefix, then 17 lowercase
/// letters or digits.
fn check_id(resource: &Resource) -> Result<(), Error> {
    let kind = resource.kind();
    if crate::ids::is_shaped(kind.id_prefix(), resource.id()) {
        return Ok(());
    }
    let noun = KINDS
        .iter()
        .find(|(_, _, of)| *of == kind)
        .map_or("resource", |(name, _, _)| name);
    Err(Error::invalid_field(
        "id",
        format!(
            "the id of a {noun} is {:?} and 17 lowercase letters or digits, got {}",
            kind.id_prefix(),
            excerpt(resource.id())
        ),
    ))
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

/// A line of a seed file, for messages: the file's name and the line's number.
#[derive(Debug, Clone)]
struct Place<'a> {
    source: &'a str,
    line: usize,
}

impl Place<'_> {
    /// This line, named from `here`: "line 3" in the same file, else with its file.
    fn seen_from(&self, here: &Place<'_>) -> String {
        if self.source == here.source {
            format!("line {}", self.line)
        } else {
            format!("{} line {}", self.source, self.line)
        }
    }
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} line {}", self.source, self.line)
    }
}

/// A name's key: names are unique per kind and folder.
type NameKey = (ResourceKind, String, String);

/// Stores the resources of the public catalogue (if `public_images`) and of the given seed
/// files (`(source, text)`): the ones whose ids do not exist yet, all in one transaction.
/// Every line is checked first, on its own and against the lines before it (ids, and
/// names in their kind and folder); a name that a stored resource holds is refused by
/// the store. Returns how many were new; an error names the file and the line.
pub async fn load(
    store: &dyn Store,
    rules: Rules<'_>,
    public_images: bool,
    seeds: &[(String, String)],
) -> Result<usize, String> {
    let catalogue =
        public_images.then_some((PUBLIC_IMAGES_SOURCE, PUBLIC_IMAGES, Origin::PublicCatalogue));
    let files = catalogue.into_iter().chain(
        seeds
            .iter()
            .map(|(source, text)| (source.as_str(), text.as_str(), Origin::User)),
    );
    let mut ids: HashMap<String, Place<'_>> = HashMap::new();
    let mut names: HashMap<NameKey, Place<'_>> = HashMap::new();
    let mut resources = Vec::new();
    for (source, text, origin) in files {
        for (line, resource) in parse(source, text, origin, rules)? {
            let here = Place { source, line };
            if let Some(earlier) = ids.insert(resource.id().to_string(), here.clone()) {
                return Err(format!(
                    "{here}: id: {} is the id of {} already",
                    excerpt(resource.id()),
                    earlier.seen_from(&here)
                ));
            }
            if !resource.name().is_empty() {
                let key = (
                    resource.kind(),
                    resource.folder_id().to_string(),
                    resource.name().to_string(),
                );
                if let Some(earlier) = names.insert(key, here.clone()) {
                    return Err(format!(
                        "{here}: {}, on {}",
                        Error::from(StoreError::name_taken(&resource)),
                        earlier.seen_from(&here)
                    ));
                }
            }
            resources.push(resource);
        }
    }
    if resources.is_empty() {
        return Ok(0);
    }
    store.seed(resources).await.map_err(|error| {
        let line = match &error {
            StoreError::NameTaken {
                kind,
                folder_id,
                name,
            } => names.get(&(*kind, folder_id.clone(), name.clone())),
            _ => None,
        };
        match line {
            Some(place) => format!("{place}: {}", Error::from(error)),
            None => Error::from(error).to_string(),
        }
    })
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

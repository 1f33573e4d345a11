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
//! start with a message naming its file and line. The checked resources are kept
//! ([`Seeds`]): a reset stores them again as they were at start.

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

/// The kind keys of a line: the message type and the kind each stands for, and how
/// messages name one of the kind.
const KINDS: &[(&str, &str, ResourceKind, &str)] = &[
    (
        "image",
        "yandex.cloud.compute.v1.Image",
        ResourceKind::ComputeImage,
        "an image",
    ),
    (
        "snapshot",
        "yandex.cloud.compute.v1.Snapshot",
        ResourceKind::Snapshot,
        "a snapshot",
    ),
    (
        "disk",
        "yandex.cloud.compute.v1.Disk",
        ResourceKind::Disk,
        "a disk",
    ),
    (
        "baremetalImage",
        "yandex.cloud.baremetal.v1alpha.Image",
        ResourceKind::BaremetalImage,
        "a bare-metal image",
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
    let (_, full_name, kind, _) = KINDS
        .iter()
        .find(|(name, _, _, _)| name == key)
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
    let one_of_the_kind = KINDS
        .iter()
        .find(|(_, _, of, _)| *of == kind)
        .map_or("a resource", |(_, _, _, noun)| noun);
    Err(Error::invalid_field(
        "id",
        format!(
            "the id of {one_of_the_kind} is {:?} followed by 17 lowercase letters or digits, got {}",
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

/// The checked resources of the public catalogue and the seed files, in file order: what
/// the store gets at start ([`Seeds::store`]) and again at each reset.
#[derive(Debug, Clone, Default)]
pub struct Seeds {
    resources: Vec<Resource>,
    /// The line of each name, to name it when the store finds the name taken.
    names: HashMap<NameKey, String>,
}

impl Seeds {
    /// Reads the public catalogue (if `public_images`) and the given seed files
    /// (`(source, text)`): every line checked on its own and against the lines before it
    /// (ids, and names in their kind and folder). An error names the file and the line.
    pub fn read(
        rules: Rules<'_>,
        public_images: bool,
        seeds: &[(String, String)],
    ) -> Result<Seeds, String> {
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
        let names = names
            .into_iter()
            .map(|(key, place)| (key, place.to_string()))
            .collect();
        Ok(Seeds { resources, names })
    }

    /// The resources, in file order.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// Stores the resources whose ids do not exist yet, all in one transaction; a name
    /// that a stored resource holds is refused by the store, naming the line. Returns how
    /// many were new.
    pub async fn store(&self, store: &dyn Store) -> Result<usize, String> {
        if self.resources.is_empty() {
            return Ok(0);
        }
        store.seed(self.resources.clone()).await.map_err(|error| {
            let line = match &error {
                StoreError::NameTaken {
                    kind,
                    folder_id,
                    name,
                } => self.names.get(&(*kind, folder_id.clone(), name.clone())),
                _ => None,
            };
            match line {
                Some(place) => format!("{place}: {}", Error::from(error)),
                None => Error::from(error).to_string(),
            }
        })
    }
}

/// Reads the seeds ([`Seeds::read`]) and stores them ([`Seeds::store`]).
pub async fn load(
    store: &dyn Store,
    rules: Rules<'_>,
    public_images: bool,
    seeds: &[(String, String)],
) -> Result<usize, String> {
    Seeds::read(rules, public_images, seeds)?.store(store).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PUBLIC_FOLDER;
    use crate::pb::compute::create_image_request::Source;
    use crate::pb::compute::{os, CreateDiskRequest, CreateImageRequest};
    use crate::store::{DatabaseUrl, Replica};
    use prost::Name;
    use std::time::Duration;

    const GIB: i64 = 1 << 30;

    /// Checks `text` as a user's seed file on this server's default rules.
    fn parse_user(text: &str) -> Result<Vec<(usize, Resource)>, String> {
        let validator = Validator::for_api();
        let offerings = Offerings::default();
        let rules = Rules {
            validator: &validator,
            offerings: &offerings,
        };
        parse("mine.jsonl", text, Origin::User, rules)
    }

    /// The one resource of a one-line seed file.
    fn seeded(line: &str) -> Resource {
        let mut resources = parse_user(line).unwrap_or_else(|error| panic!("{line}: {error}"));
        assert_eq!(resources.len(), 1);
        resources.remove(0).1
    }

    /// What the API answers to a create request that breaks a proto rule.
    fn api_message<M: prost::Message + Name>(request: &M) -> String {
        Validator::for_api()
            .check(&M::full_name(), request)
            .unwrap_err()
            .to_string()
    }

    fn disk_line(fields: &str) -> String {
        format!(
            r#"{{"disk": {{"id": "fhmseeded00000000001", "folderId": "team", "zoneId": "ru-central1-a", "size": "{GIB}"{fields}}}}}"#
        )
    }

    fn image_line(fields: &str) -> String {
        format!(r#"{{"image": {{"id": "fd8seeded00000000001", "folderId": "team"{fields}}}}}"#)
    }

    /// Loads user seed files on this server's default rules, without the catalogue.
    async fn load_with_defaults(
        store: &dyn Store,
        seeds: &[(String, String)],
    ) -> Result<usize, String> {
        let validator = Validator::for_api();
        let offerings = Offerings::default();
        let rules = Rules {
            validator: &validator,
            offerings: &offerings,
        };
        load(store, rules, false, seeds).await
    }

    async fn memory_store() -> std::sync::Arc<dyn Store> {
        crate::store::open(&DatabaseUrl::Memory, Replica::new(Duration::from_secs(10)))
            .await
            .unwrap()
    }

    #[test]
    fn the_public_catalogue_parses_with_realistic_sizes() {
        let validator = Validator::for_api();
        let offerings = Offerings::default();
        let rules = Rules {
            validator: &validator,
            offerings: &offerings,
        };
        let resources = parse(
            PUBLIC_IMAGES_SOURCE,
            PUBLIC_IMAGES,
            Origin::PublicCatalogue,
            rules,
        )
        .unwrap();
        assert!(resources.len() >= 5);
        for (line, resource) in &resources {
            assert_eq!(resource.folder_id(), PUBLIC_FOLDER);
            assert_eq!(resource.status(), status::READY);
            assert!(resource.created_at_ms() > 0);
            let Resource::ComputeImage(image) = resource else {
                panic!("line {line}: the catalogue holds compute images");
            };
            // A few GiB of disk, less of storage (compressed), a disk that holds it.
            assert!(image.size >= GIB, "line {line}: size {}", image.size);
            assert!(
                (GIB / 4..=image.size).contains(&image.storage_size),
                "line {line}: storage size {}",
                image.storage_size
            );
            assert!(image.min_disk_size >= image.size, "line {line}");
        }
        for family in [
            "ubuntu-2204-lts",
            "ubuntu-2404-lts",
            "debian-12",
            "centos-stream-9",
            "windows-2022-dc",
        ] {
            assert!(
                resources
                    .iter()
                    .any(|(_, resource)| resource.family() == family),
                "{family}"
            );
        }
    }

    #[test]
    fn a_bad_line_is_named() {
        let text = format!(
            "# a comment\n\n{}\n{}\n",
            image_line(""),
            r#"{"image": {"id": "fd8seeded00000000002", "folderId": "f", "colour": 1}}"#
        );
        let error = parse_user(&text).unwrap_err();
        assert!(error.starts_with("mine.jsonl line 4: "), "{error}");
        assert!(error.contains("colour"), "{error}");
        for (line, expected) in [
            ("nonsense", "not JSON"),
            ("{\"volume\": {}}", "unknown kind"),
            ("{\"disk\": {\"folderId\": \"f\"}}", "id:"),
        ] {
            let error = parse_user(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let text = format!("\u{feff}{}\n", image_line(r#", "name": "base""#));
        let resources = parse_user(&text).unwrap();
        assert_eq!(resources[0].1.name(), "base");
        let text = format!("\u{feff}# a comment\n{}\n", image_line(""));
        assert_eq!(parse_user(&text).unwrap()[0].0, 2);
    }

    #[test]
    fn seed_lines_break_the_rules_of_the_api_with_its_messages() {
        let offered = "this server offers";
        let cases: Vec<(String, String)> = vec![
            (
                disk_line(r#", "zoneId": "mars-1""#).replace(r#""zoneId": "ru-central1-a", "#, ""),
                format!(r#"zone_id: unknown zone "mars-1"; {offered} ru-central1-a, ru-central1-b, ru-central1-d"#),
            ),
            (
                disk_line(r#", "typeId": "evil-type""#),
                format!(r#"type_id: unknown disk type "evil-type"; {offered} network-hdd, network-ssd, network-ssd-nonreplicated, network-ssd-io-m3"#),
            ),
            (
                disk_line(r#", "blockSize": "3""#),
                "block_size: must be a power of two from 4096 to 131072 bytes, got 3".into(),
            ),
            (
                disk_line("").replace(&format!(r#""size": "{GIB}""#), r#""size": "-5""#),
                api_message(&CreateDiskRequest {
                    folder_id: "team".into(),
                    zone_id: "ru-central1-a".into(),
                    size: -5,
                    ..Default::default()
                }),
            ),
            (
                image_line(r#", "labels": {"BAD KEY": "v"}"#),
                api_message(&CreateImageRequest {
                    folder_id: "team".into(),
                    labels: [("BAD KEY".to_string(), "v".to_string())].into(),
                    source: Some(Source::ImageId("fd8source0000000001".into())),
                    ..Default::default()
                }),
            ),
            (
                image_line(&format!(r#", "description": "{}""#, "d".repeat(300))),
                "description: length must be <=256 characters, got 300".into(),
            ),
            (
                image_line(&format!(
                    r#", "labels": {{{}}}"#,
                    (0..100)
                        .map(|index| format!(r#""k{index}": "v""#))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                "labels: number of entries must be <=64, got 100".into(),
            ),
            (
                image_line(r#", "name": "Bad_Name""#),
                r#"name: value "Bad_Name" does not match the pattern |[a-z]([-a-z0-9]{0,61}[a-z0-9])?"#.into(),
            ),
            (
                image_line(r#", "minDiskSize": "5""#),
                "min_disk_size: value must be in range 4194304-4398046511104, got 5".into(),
            ),
            (
                image_line(r#", "size": "-5""#),
                "size: value must be in range 0-4398046511104, got -5".into(),
            ),
            (
                image_line(&format!(r#", "size": "{}", "minDiskSize": "{GIB}""#, 2 * GIB)),
                format!("min_disk_size: {GIB} is less than the size of the image ({} bytes)", 2 * GIB),
            ),
            (
                r#"{"disk": {"folderId": "team", "zoneId": "ru-central1-a", "size": "1073741824"}}"#.into(),
                r#"id: the id of a disk is "fhm" followed by 17 lowercase letters or digits, got """#.into(),
            ),
            (
                image_line("").replace("fd8seeded", "fhmseeded"),
                r#"id: the id of an image is "fd8" followed by 17 lowercase letters or digits, got "fhmseeded00000000001""#.into(),
            ),
            (
                r#"{"disk": {"id": "fhmseeded00000000001", "zoneId": "ru-central1-a", "size": "1073741824"}}"#.into(),
                "folder_id: is required".into(),
            ),
            (
                image_line(r#", "createdAt": "2099-01-01T00:00:00Z", "family": "ubuntu-2204-lts""#)
                    .replace("\"team\"", "\"standard-images\""),
                "folder standard-images is the public image catalogue: it is read-only".into(),
            ),
            (
                r#"{"snapshot": {"id": "fd9seeded00000000001", "folderId": "team", "diskSize": "-1"}}"#.into(),
                "disk_size: value must be in range 4194304-28587302322176, got -1".into(),
            ),
            (
                r#"{"baremetalImage": {"id": "ly5seeded00000000001", "folderId": "team", "name": "x"}}"#.into(),
                "name: length must be 2-63 characters, got 1".into(),
            ),
        ];
        let mut wrong = Vec::new();
        for (line, expected) in cases {
            let expected = format!("mine.jsonl line 2: {expected}");
            match parse_user(&format!("# first\n{line}\n")) {
                Err(error) if error == expected => {}
                outcome => wrong.push(format!("{line}\n  expected {expected}\n  got {outcome:?}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn seed_lines_get_the_defaults_of_the_api() {
        let Resource::Disk { disk, .. } = seeded(&disk_line("")) else {
            panic!("a disk");
        };
        assert_eq!(
            (disk.block_size, disk.type_id.as_str()),
            (4096, "network-hdd")
        );
        let Resource::ComputeImage(image) = seeded(&image_line("")) else {
            panic!("an image");
        };
        let four_mib = crate::domain::MIN_DISK_SIZE;
        assert_eq!(
            (image.size, image.storage_size, image.min_disk_size),
            (four_mib, four_mib, four_mib)
        );
        assert_eq!(image.os.unwrap().r#type, os::Type::Linux as i32);
        let Resource::ComputeImage(image) = seeded(&image_line(&format!(
            r#", "minDiskSize": "{}", "os": {{"type": "WINDOWS"}}"#,
            10 * GIB
        ))) else {
            panic!("an image");
        };
        assert_eq!(
            (image.size, image.storage_size, image.min_disk_size),
            (10 * GIB, 10 * GIB, 10 * GIB)
        );
        assert_eq!(image.os.unwrap().r#type, os::Type::Windows as i32);
        let Resource::ComputeImage(image) = seeded(&image_line(&format!(
            r#", "size": "{}", "storageSize": "{GIB}""#,
            3 * GIB
        ))) else {
            panic!("an image");
        };
        assert_eq!(
            (image.size, image.storage_size, image.min_disk_size),
            (3 * GIB, GIB, 3 * GIB)
        );
        let Resource::Snapshot { snapshot, .. } = seeded(&format!(
            r#"{{"snapshot": {{"id": "fd9seeded00000000001", "folderId": "team", "storageSize": "{GIB}"}}}}"#
        )) else {
            panic!("a snapshot");
        };
        assert_eq!((snapshot.disk_size, snapshot.storage_size), (GIB, GIB));
    }

    #[test]
    fn only_the_public_catalogue_writes_into_its_folder() {
        let line = image_line("").replace("\"team\"", "\"standard-images\"");
        assert!(parse_user(&line).is_err());
        let validator = Validator::for_api();
        let offerings = Offerings::default();
        let rules = Rules {
            validator: &validator,
            offerings: &offerings,
        };
        assert!(parse("catalogue", &line, Origin::PublicCatalogue, rules).is_ok());
    }

    #[tokio::test]
    async fn ids_and_names_are_checked_against_earlier_lines_and_files() {
        let store = memory_store().await;
        let first = image_line(r#", "name": "base""#);
        let same_id = image_line(r#", "name": "other""#);
        let same_name = image_line(r#", "name": "base""#).replace("00001", "00002");
        let seeds = |lines: &[&str]| vec![("mine.jsonl".to_string(), lines.join("\n"))];
        let error = load_with_defaults(store.as_ref(), &seeds(&[&first, "", &same_id]))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            r#"mine.jsonl line 3: id: "fd8seeded00000000001" is the id of line 1 already"#
        );
        let error = load_with_defaults(store.as_ref(), &seeds(&[&first, &same_name]))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            r#"mine.jsonl line 2: Image with name "base" already exists in folder "team", on line 1"#
        );
        let two_files = vec![
            ("one.jsonl".to_string(), first.clone()),
            ("two.jsonl".to_string(), same_name.clone()),
        ];
        let error = load_with_defaults(store.as_ref(), &two_files)
            .await
            .unwrap_err();
        assert!(
            error.starts_with("two.jsonl line 1: ") && error.ends_with(", on one.jsonl line 1"),
            "{error}"
        );
        // A disk may have an image's name: names are unique per kind.
        let disk = disk_line(r#", "name": "base""#);
        assert_eq!(
            load_with_defaults(store.as_ref(), &seeds(&[&first, &disk]))
                .await
                .unwrap(),
            2
        );
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_start_again_with_the_same_seeds_stores_nothing_new_and_a_stored_name_names_the_line()
    {
        let store = memory_store().await;
        let text = format!(
            "{}\n{}\n",
            image_line(r#", "name": "base""#),
            disk_line(r#", "name": "data""#)
        );
        let seeds = vec![("mine.jsonl".to_string(), text)];
        assert_eq!(load_with_defaults(store.as_ref(), &seeds).await.unwrap(), 2);
        assert_eq!(load_with_defaults(store.as_ref(), &seeds).await.unwrap(), 0);
        // A new line wants a name a stored image holds: the start stops at that line and
        // stores nothing of the seeds, the lines before it included.
        let clash = vec![(
            "more.jsonl".to_string(),
            format!(
                "{}\n{}\n",
                disk_line(r#", "name": "fresh""#).replace("00001", "00002"),
                image_line(r#", "name": "base""#).replace("00001", "00003")
            ),
        )];
        let error = load_with_defaults(store.as_ref(), &clash)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            r#"more.jsonl line 2: Image with name "base" already exists in folder "team""#
        );
        let fresh = store
            .resource(ResourceKind::Disk, "fhmseeded00000000002")
            .await
            .unwrap();
        assert!(fresh.is_none(), "{fresh:?}");
        store.close().await.unwrap();
    }
}

//! The records imageplane keeps: the four kinds of resource, and the operation that
//! creates or changes one. The store persists them; the domain and the executor change them.

use crate::pb::compute::{self, Os};
use crate::pb::operation::Operation;
use crate::pb::{baremetal, compute::Disk, compute::Snapshot};

/// The kinds of resource. Names are unique per kind and folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    ComputeImage,
    Snapshot,
    Disk,
    BaremetalImage,
}

impl ResourceKind {
    /// How the API names this kind in messages ("Image", "Disk", ...).
    pub fn display_name(self) -> &'static str {
        match self {
            ResourceKind::ComputeImage | ResourceKind::BaremetalImage => "Image",
            ResourceKind::Snapshot => "Snapshot",
            ResourceKind::Disk => "Disk",
        }
    }

    /// The prefix of this kind's ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            ResourceKind::ComputeImage => crate::ids::prefix::COMPUTE_IMAGE,
            ResourceKind::Snapshot => crate::ids::prefix::SNAPSHOT,
            ResourceKind::Disk => crate::ids::prefix::DISK,
            ResourceKind::BaremetalImage => crate::ids::prefix::BAREMETAL_IMAGE,
        }
    }

    /// The number that stands for this kind in the database (never reuse or renumber).
    pub fn code(self) -> i32 {
        match self {
            ResourceKind::ComputeImage => 1,
            ResourceKind::Snapshot => 2,
            ResourceKind::Disk => 3,
            ResourceKind::BaremetalImage => 4,
        }
    }

    /// The kind a database number stands for.
    pub fn from_code(code: i32) -> Option<ResourceKind> {
        match code {
            1 => Some(ResourceKind::ComputeImage),
            2 => Some(ResourceKind::Snapshot),
            3 => Some(ResourceKind::Disk),
            4 => Some(ResourceKind::BaremetalImage),
            _ => None,
        }
    }
}

/// A resource as stored. Disks and snapshots also remember the operating system of the
/// image they descend from (the API has no field for it), so that an image made from
/// them can inherit it.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    ComputeImage(compute::Image),
    Snapshot { snapshot: Snapshot, os: Option<Os> },
    Disk { disk: Disk, os: Option<Os> },
    BaremetalImage(baremetal::Image),
}

/// Status numbers, the same in every kind's Status enum.
pub mod status {
    pub const CREATING: i32 = 1;
    pub const READY: i32 = 2;
    pub const DELETING: i32 = 4;
}

/// Whether a resource can be used (as a source) or is still being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Creating,
    Ready,
    Other,
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::ComputeImage(_) => ResourceKind::ComputeImage,
            Resource::Snapshot { .. } => ResourceKind::Snapshot,
            Resource::Disk { .. } => ResourceKind::Disk,
            Resource::BaremetalImage(_) => ResourceKind::BaremetalImage,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Resource::ComputeImage(image) => &image.id,
            Resource::Snapshot { snapshot, .. } => &snapshot.id,
            Resource::Disk { disk, .. } => &disk.id,
            Resource::BaremetalImage(image) => &image.id,
        }
    }

    pub fn folder_id(&self) -> &str {
        match self {
            Resource::ComputeImage(image) => &image.folder_id,
            Resource::Snapshot { snapshot, .. } => &snapshot.folder_id,
            Resource::Disk { disk, .. } => &disk.folder_id,
            Resource::BaremetalImage(image) => &image.folder_id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Resource::ComputeImage(image) => &image.name,
            Resource::Snapshot { snapshot, .. } => &snapshot.name,
            Resource::Disk { disk, .. } => &disk.name,
            Resource::BaremetalImage(image) => &image.name,
        }
    }

    pub fn reference(&self) -> ResourceRef {
        ResourceRef {
            kind: self.kind(),
            id: self.id().to_string(),
            folder_id: self.folder_id().to_string(),
        }
    }

    pub fn readiness(&self) -> Readiness {
        use compute::{disk, image, snapshot};
        let (creating, ready) = match self {
            Resource::ComputeImage(image) => (
                image.status == image::Status::Creating as i32,
                image.status == image::Status::Ready as i32,
            ),
            Resource::Snapshot { snapshot, .. } => (
                snapshot.status == snapshot::Status::Creating as i32,
                snapshot.status == snapshot::Status::Ready as i32,
            ),
            Resource::Disk { disk, .. } => (
                disk.status == disk::Status::Creating as i32,
                disk.status == disk::Status::Ready as i32,
            ),
            Resource::BaremetalImage(image) => (
                image.status == baremetal::image::Status::Creating as i32,
                image.status == baremetal::image::Status::Ready as i32,
            ),
        };
        match (creating, ready) {
            (true, _) => Readiness::Creating,
            (_, true) => Readiness::Ready,
            _ => Readiness::Other,
        }
    }

    /// The status number (the same for every kind: 1 CREATING, 2 READY, 3 ERROR,
    /// 4 DELETING; bare metal adds 5 UPDATING).
    pub fn status(&self) -> i32 {
        match self {
            Resource::ComputeImage(image) => image.status,
            Resource::Snapshot { snapshot, .. } => snapshot.status,
            Resource::Disk { disk, .. } => disk.status,
            Resource::BaremetalImage(image) => image.status,
        }
    }

    /// Sets the status number (see [`Resource::status`]).
    pub fn set_status(&mut self, status: i32) {
        match self {
            Resource::ComputeImage(image) => image.status = status,
            Resource::Snapshot { snapshot, .. } => snapshot.status = status,
            Resource::Disk { disk, .. } => disk.status = status,
            Resource::BaremetalImage(image) => image.status = status,
        }
    }

    /// The image family (compute images; empty for the others).
    pub fn family(&self) -> &str {
        match self {
            Resource::ComputeImage(image) => &image.family,
            _ => "",
        }
    }

    /// When the resource was created, in milliseconds since the Unix epoch.
    pub fn created_at_ms(&self) -> i64 {
        let created = match self {
            Resource::ComputeImage(image) => image.created_at,
            Resource::Snapshot { snapshot, .. } => snapshot.created_at,
            Resource::Disk { disk, .. } => disk.created_at,
            Resource::BaremetalImage(image) => image.created_at,
        };
        created.map_or(0, |at| {
            at.seconds
                .saturating_mul(1000)
                .saturating_add(i64::from(at.nanos) / 1_000_000)
        })
    }

    /// The name, description and labels every kind has, to change in place.
    pub fn common_mut(
        &mut self,
    ) -> (
        &mut String,
        &mut String,
        &mut std::collections::HashMap<String, String>,
    ) {
        match self {
            Resource::ComputeImage(image) => {
                (&mut image.name, &mut image.description, &mut image.labels)
            }
            Resource::Snapshot { snapshot, .. } => (
                &mut snapshot.name,
                &mut snapshot.description,
                &mut snapshot.labels,
            ),
            Resource::Disk { disk, .. } => {
                (&mut disk.name, &mut disk.description, &mut disk.labels)
            }
            Resource::BaremetalImage(image) => {
                (&mut image.name, &mut image.description, &mut image.labels)
            }
        }
    }

    /// Sets the status to READY.
    pub fn set_ready(&mut self) {
        use compute::{disk, image, snapshot};
        match self {
            Resource::ComputeImage(image) => image.status = image::Status::Ready as i32,
            Resource::Snapshot { snapshot, .. } => {
                snapshot.status = snapshot::Status::Ready as i32;
            }
            Resource::Disk { disk, .. } => disk.status = disk::Status::Ready as i32,
            Resource::BaremetalImage(image) => {
                image.status = baremetal::image::Status::Ready as i32;
            }
        }
    }

    /// The size of the resource's message, encoded.
    pub fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Resource::ComputeImage(image) => image.encoded_len(),
            Resource::Snapshot { snapshot, .. } => snapshot.encoded_len(),
            Resource::Disk { disk, .. } => disk.encoded_len(),
            Resource::BaremetalImage(image) => image.encoded_len(),
        }
    }

    /// The resource as the API shows it (see [`Kind::from_resource`]), packed in
    /// `google.protobuf.Any`.
    pub fn to_any(&self) -> prost_types::Any {
        match self {
            // Cloned only to add what is missing.
            Resource::ComputeImage(image) if image.os.is_none() => {
                pack(&shown_image(image.clone()))
            }
            Resource::ComputeImage(image) => pack(image),
            Resource::Snapshot { snapshot, .. } => pack(snapshot),
            Resource::Disk { disk, .. } if disk.disk_placement_policy.is_none() => {
                pack(&shown_disk(disk.clone()))
            }
            Resource::Disk { disk, .. } => pack(disk),
            Resource::BaremetalImage(image) => pack(image),
        }
    }
}

/// An image as the API shows it: `os` is always there, as the real API always returns it
/// (clients read `image.os.type` without a check); a record without one (a seed that names
/// none) shows an empty `Os`, TYPE_UNSPECIFIED.
fn shown_image(mut image: compute::Image) -> compute::Image {
    image.os.get_or_insert_with(Os::default);
    image
}

/// A disk as the API shows it: `disk_placement_policy` is always there, empty for a disk
/// in no placement group, as the real API returns it (clients read its
/// `placement_group_id` without a check).
fn shown_disk(mut disk: Disk) -> Disk {
    disk.disk_placement_policy
        .get_or_insert_with(compute::DiskPlacementPolicy::default);
    disk
}

/// A message type of a resource kind, so that reads are typed: `Catalog::get::<Image>`.
pub trait Kind: Sized {
    const KIND: ResourceKind;
    /// The message as the API shows it, if the resource is of this kind. Every message the
    /// API returns passes here or through [`Resource::to_any`], which add the message
    /// fields the real API always sets when a record lacks them.
    fn from_resource(resource: Resource) -> Option<Self>;
}

impl Kind for compute::Image {
    const KIND: ResourceKind = ResourceKind::ComputeImage;
    fn from_resource(resource: Resource) -> Option<Self> {
        match resource {
            Resource::ComputeImage(image) => Some(shown_image(image)),
            _ => None,
        }
    }
}

impl Kind for Snapshot {
    const KIND: ResourceKind = ResourceKind::Snapshot;
    fn from_resource(resource: Resource) -> Option<Self> {
        match resource {
            Resource::Snapshot { snapshot, .. } => Some(snapshot),
            _ => None,
        }
    }
}

impl Kind for Disk {
    const KIND: ResourceKind = ResourceKind::Disk;
    fn from_resource(resource: Resource) -> Option<Self> {
        match resource {
            Resource::Disk { disk, .. } => Some(shown_disk(disk)),
            _ => None,
        }
    }
}

impl Kind for baremetal::Image {
    const KIND: ResourceKind = ResourceKind::BaremetalImage;
    fn from_resource(resource: Resource) -> Option<Self> {
        match resource {
            Resource::BaremetalImage(image) => Some(image),
            _ => None,
        }
    }
}

/// Names one resource, and its folder as the operation that names it left it (a disk
/// Move's operation records the destination): callers of that folder may see the
/// operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    pub id: String,
    pub folder_id: String,
}

/// What an operation does, and so how it ends and what undoing it means (see
/// `domain::transitions`). Stored with the operation (`work`, `source_id`, `import_uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Make the resource, empty or from `source` (a copy); its result was fixed at create
    /// time and it takes `--operation-delay`.
    Copy { source: Option<String> },
    /// Fetch the content of a URI and make the image from it.
    ImportUri { uri: String },
    /// Remove the resource, after `--operation-delay`; meanwhile it is DELETING.
    Delete,
    /// A change stored with its operation already done: nothing runs in the background.
    Change(ChangeKind),
}

/// The changes that are done when stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Update,
    Move,
    Relocate,
    AccessBindings,
}

impl Work {
    /// The name stored in the `work` column.
    pub fn name(&self) -> &'static str {
        match self {
            Work::Copy { .. } => "copy",
            Work::ImportUri { .. } => "import",
            Work::Delete => "delete",
            Work::Change(ChangeKind::Update) => "update",
            Work::Change(ChangeKind::Move) => "move",
            Work::Change(ChangeKind::Relocate) => "relocate",
            Work::Change(ChangeKind::AccessBindings) => "access-bindings",
        }
    }

    /// The work from its stored columns; `None` for an unknown name or a missing URI.
    pub fn from_columns(
        name: &str,
        import_uri: Option<String>,
        source_id: Option<String>,
    ) -> Option<Work> {
        Some(match name {
            "copy" => Work::Copy { source: source_id },
            "import" => Work::ImportUri { uri: import_uri? },
            "delete" => Work::Delete,
            "update" => Work::Change(ChangeKind::Update),
            "move" => Work::Change(ChangeKind::Move),
            "relocate" => Work::Change(ChangeKind::Relocate),
            "access-bindings" => Work::Change(ChangeKind::AccessBindings),
            _ => return None,
        })
    }

    /// The resource the work reads, which must not be deleted while it runs.
    pub fn source(&self) -> Option<&str> {
        match self {
            Work::Copy { source } => source.as_deref(),
            _ => None,
        }
    }

    /// The URI of an import.
    pub fn import_uri(&self) -> Option<&str> {
        match self {
            Work::ImportUri { uri } => Some(uri),
            _ => None,
        }
    }
}

/// An operation and what it works on.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    pub operation: Operation,
    pub target: ResourceRef,
    pub work: Work,
}

/// Packs a message into `Any` with the type URL `type.googleapis.com/<full name>`.
pub fn pack<M: prost::Name>(message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: M::type_url(),
        value: prost::Message::encode_to_vec(message),
    }
}

/// Every kind of work that runs in the background, by the kebab-case name delays, fault
/// rules and metrics give it.
pub const WORK_KINDS: &[&str] = &[
    "create-image",
    "create-snapshot",
    "create-disk",
    "import-image",
    "import-baremetal-image",
    "delete-image",
    "delete-snapshot",
    "delete-disk",
    "delete-baremetal-image",
    "update-image",
    "update-snapshot",
    "update-disk",
    "update-baremetal-image",
    "move-disk",
    "relocate-disk",
];

/// The kind of an operation's work ([`WORK_KINDS`]); `None` for work no kind names: a
/// change of access bindings, which is done when stored (its answer is what changed at
/// that moment), or work the API has no method for on that kind of resource.
pub fn work_kind(work: &Work, resource: ResourceKind) -> Option<&'static str> {
    let noun = match resource {
        ResourceKind::ComputeImage => "image",
        ResourceKind::Snapshot => "snapshot",
        ResourceKind::Disk => "disk",
        ResourceKind::BaremetalImage => "baremetal-image",
    };
    let verb = match work {
        Work::Copy { .. } => "create",
        Work::ImportUri { .. } => "import",
        Work::Delete => "delete",
        Work::Change(ChangeKind::Update) => "update",
        Work::Change(ChangeKind::Move) => "move",
        Work::Change(ChangeKind::Relocate) => "relocate",
        Work::Change(ChangeKind::AccessBindings) => return None,
    };
    WORK_KINDS.iter().copied().find(|kind| {
        kind.strip_prefix(verb)
            .and_then(|rest| rest.strip_prefix('-'))
            == Some(noun)
    })
}

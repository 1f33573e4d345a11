//! Changing and deleting resources: Update (every kind), Delete (every kind), and disk
//! Move and Relocate.
//!
//! A change is decided inside the store's transaction from the resource as stored then
//! (`Store::change`), so concurrent changes never overwrite each other, and is done when
//! stored: its operation is returned done, with the changed resource as its response.
//! A delete marks the resource DELETING and runs for `--operation-delay` in the
//! background; it ends with `google.protobuf.Empty` and the resource gone (or, cancelled,
//! READY again: `transitions`).
//!
//! Rules: only a READY resource changes or goes (FAILED_PRECONDITION otherwise); a
//! resource that a running operation creates, deletes or copies from cannot be deleted,
//! moved or relocated (FAILED_PRECONDITION naming that operation); a new name must be
//! free in the folder (ALREADY_EXISTS); the public catalogue's folder is read-only
//! (PERMISSION_DENIED). An update names its fields in `update_mask` (either spelling,
//! nested paths: `mask`): an empty mask is INVALID_ARGUMENT listing what can change (a
//! mask that changes nothing by accident is worse than an error), and so is a field that
//! cannot change. Only the masked fields are validated (`Catalog::validate_update`) and
//! changed.

use super::{mask, Catalog, PUBLIC_FOLDER};
use crate::domain::call::{CallContext, Caller};
use crate::error::{excerpt, Error};
use crate::model::operations;
use crate::model::resource::{
    pack, status, ChangeKind, OperationRecord, Resource, ResourceKind, Work,
};
use crate::pb::baremetal;
use crate::pb::compute::{
    DeleteDiskMetadata, DeleteImageMetadata, DeleteSnapshotMetadata, Disk, DiskPlacementPolicy,
    MoveDiskMetadata, RelocateDiskMetadata, UpdateDiskMetadata, UpdateDiskRequest,
    UpdateImageMetadata, UpdateImageRequest, UpdateSnapshotMetadata, UpdateSnapshotRequest,
};
use crate::pb::operation::Operation;
use crate::store::{Changed, Current};
use prost::Name;
use std::collections::HashMap;

/// An Update request of any kind, as the adapters read it.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub id: String,
    /// The mask's paths as the caller wrote them.
    pub mask: Vec<String>,
    pub name: String,
    pub description: String,
    pub labels: HashMap<String, String>,
    /// Compute images.
    pub min_disk_size: i64,
    /// Disks.
    pub size: i64,
    pub disk_placement_policy: Option<DiskPlacementPolicy>,
}

/// The fields an update of `kind` may change, as `update_mask` names them.
pub fn updatable(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::ComputeImage => &["name", "description", "labels", "min_disk_size"],
        ResourceKind::Snapshot => &["name", "description", "labels"],
        ResourceKind::Disk => &[
            "name",
            "description",
            "labels",
            "size",
            "disk_placement_policy",
        ],
        ResourceKind::BaremetalImage => &["name", "description", "labels"],
    }
}

/// How the API names a kind in operation descriptions ("image", "disk", ...).
fn noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::ComputeImage | ResourceKind::BaremetalImage => "image",
        ResourceKind::Snapshot => "snapshot",
        ResourceKind::Disk => "disk",
    }
}

/// The resource of a change: NOT_FOUND if it does not exist or is in a folder the caller
/// may not use (as `Catalog::get`), PERMISSION_DENIED if its folder is read-only (see
/// [`check_changeable`]).
pub(super) fn changeable(
    caller: &Caller,
    kind: ResourceKind,
    id: &str,
    current: Option<Current>,
) -> Result<Current, Error> {
    let current = current
        .filter(|current| caller.may_use(current.resource.folder_id()))
        .ok_or_else(|| super::not_found(kind, id))?;
    check_changeable(caller, current.resource.folder_id())?;
    Ok(current)
}

/// Refuses changes in a folder the caller may not use, and in the public catalogue's
/// (read-only to everyone).
pub(super) fn check_changeable(caller: &Caller, folder_id: &str) -> Result<(), Error> {
    caller.check_folder(folder_id)?;
    check_not_public(folder_id)
}

/// Refuses the public catalogue's folder: only the built-in catalogue writes into it.
pub(super) fn check_not_public(folder_id: &str) -> Result<(), Error> {
    if folder_id == PUBLIC_FOLDER {
        return Err(Error::PermissionDenied(format!(
            "folder {PUBLIC_FOLDER} is the public image catalogue: it is read-only"
        )));
    }
    Ok(())
}

/// Refuses a resource that is not READY.
fn check_ready(current: &Current, id: &str) -> Result<(), Error> {
    let state = match current.resource.status() {
        status::READY => return Ok(()),
        status::CREATING => "still being created",
        status::DELETING => "being deleted",
        _ => "not ready",
    };
    Err(Error::FailedPrecondition(format!(
        "{} {} is {state}",
        current.resource.kind().display_name(),
        excerpt(id)
    )))
}

/// Refuses a resource that a running operation creates, deletes or copies from.
fn check_idle(current: &Current, id: &str) -> Result<(), Error> {
    match &current.busy_with {
        None => Ok(()),
        Some(operation) => Err(Error::FailedPrecondition(format!(
            "{} {} is in use by running operation {operation}",
            current.resource.kind().display_name(),
            excerpt(id)
        ))),
    }
}

/// A change and its operation: done, with the resource as response, when `instant`;
/// else running, to be ended done by the executor after its delay.
fn stored_change(
    caller: &Caller,
    resource: Resource,
    description: String,
    metadata: prost_types::Any,
    (kind, instant): (ChangeKind, bool),
) -> Changed {
    let mut operation = operations::start(&description, &caller.subject, metadata);
    if instant {
        operations::succeed(&mut operation, resource.to_any());
    }
    Changed {
        record: OperationRecord {
            operation,
            target: resource.reference(),
            work: Work::Change(kind),
        },
        resource,
        access_bindings: None,
    }
}

impl Catalog {
    /// An operation stored running (a delete, a change whose kind has a delay) starts on
    /// the executor, which ends it; answers the operation as stored.
    fn start_if_running(&self, record: OperationRecord) -> Operation {
        let operation = record.operation.clone();
        if !operation.done {
            self.executor.start(record);
        }
        operation
    }
}

/// The Update request message of `kind`, whose fields a mask names.
pub fn update_request(kind: ResourceKind) -> prost_reflect::MessageDescriptor {
    let name = match kind {
        ResourceKind::ComputeImage => UpdateImageRequest::full_name(),
        ResourceKind::Snapshot => UpdateSnapshotRequest::full_name(),
        ResourceKind::Disk => UpdateDiskRequest::full_name(),
        ResourceKind::BaremetalImage => baremetal::UpdateImageRequest::full_name(),
    };
    crate::pb::descriptor_pool()
        .get_message_by_name(&name)
        .expect("every update request is in the descriptor set")
}

/// Applies the masked fields of `update` to `resource` (see `mask`).
fn apply(resource: &mut Resource, update: &Update) -> Result<(), Error> {
    let kind = resource.kind();
    let mask = mask::resolve(&update_request(kind), updatable(kind), &update.mask)?;
    for path in &mask {
        let field = path.written.as_str();
        match (path.top(), &mut *resource) {
            ("name", _) => *resource.common_mut().0 = update.name.clone(),
            ("description", _) => *resource.common_mut().1 = update.description.clone(),
            ("labels", _) => *resource.common_mut().2 = update.labels.clone(),
            ("min_disk_size", Resource::ComputeImage(image)) => {
                if update.min_disk_size != 0 && update.min_disk_size < image.size {
                    return Err(Error::invalid_field(
                        field,
                        format!(
                            "{} is less than the image's size, {} bytes",
                            update.min_disk_size, image.size
                        ),
                    ));
                }
                image.min_disk_size = if update.min_disk_size == 0 {
                    image.size.max(super::MIN_DISK_SIZE)
                } else {
                    update.min_disk_size
                };
            }
            ("size", Resource::Disk { disk, .. }) => {
                if update.size < disk.size {
                    return Err(Error::invalid_field(
                        field,
                        format!(
                            "a disk can only grow: {} is less than its size, {} bytes",
                            update.size, disk.size
                        ),
                    ));
                }
                disk.size = update.size;
            }
            ("disk_placement_policy", Resource::Disk { disk, .. }) if path.below().is_empty() => {
                disk.disk_placement_policy = update.disk_placement_policy.clone();
            }
            ("disk_placement_policy", Resource::Disk { disk, .. }) => {
                let current = disk.disk_placement_policy.clone().unwrap_or_default();
                let asked = update.disk_placement_policy.clone().unwrap_or_default();
                disk.disk_placement_policy =
                    Some(mask::with_field_from(&current, &asked, path.below())?);
            }
            _ => unreachable!("the mask was read against the kind's fields"),
        }
    }
    Ok(())
}

/// The metadata of an update of `kind`.
fn update_metadata(kind: ResourceKind, id: &str) -> prost_types::Any {
    let id = id.to_string();
    match kind {
        ResourceKind::ComputeImage => pack(&UpdateImageMetadata { image_id: id }),
        ResourceKind::Snapshot => pack(&UpdateSnapshotMetadata { snapshot_id: id }),
        ResourceKind::Disk => pack(&UpdateDiskMetadata { disk_id: id }),
        ResourceKind::BaremetalImage => pack(&baremetal::UpdateImageMetadata { image_id: id }),
    }
}

/// The metadata of a delete of `kind`.
fn delete_metadata(kind: ResourceKind, id: &str) -> prost_types::Any {
    let id = id.to_string();
    match kind {
        ResourceKind::ComputeImage => pack(&DeleteImageMetadata { image_id: id }),
        ResourceKind::Snapshot => pack(&DeleteSnapshotMetadata { snapshot_id: id }),
        ResourceKind::Disk => pack(&DeleteDiskMetadata { disk_id: id }),
        ResourceKind::BaremetalImage => pack(&baremetal::DeleteImageMetadata { image_id: id }),
    }
}

impl Catalog {
    /// Update of any kind: the masked fields change when stored; its operation is done
    /// then, or after its kind's delay (`update-image`, ...).
    pub async fn update(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        update: Update,
    ) -> Result<Operation, Error> {
        let id = update.id.clone();
        let caller = call.caller.clone();
        let instant = self.executor.is_instant_change(ChangeKind::Update, kind);
        let record = self
            .store
            .change(
                kind,
                &id,
                Box::new(move |current| {
                    let current = changeable(&caller, kind, &update.id, current)?;
                    check_ready(&current, &update.id)?;
                    let mut resource = current.resource;
                    apply(&mut resource, &update)?;
                    Ok(stored_change(
                        &caller,
                        resource,
                        format!("Update {}", noun(kind)),
                        update_metadata(kind, &update.id),
                        (ChangeKind::Update, instant),
                    ))
                }),
                call.claim.as_ref(),
            )
            .await?;
        Ok(self.start_if_running(record))
    }

    /// Delete of any kind: the resource is DELETING until the operation ends.
    pub async fn delete(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Operation, Error> {
        let target = id.to_string();
        let caller = call.caller.clone();
        let record = self
            .store
            .change(
                kind,
                id,
                Box::new(move |current| {
                    let current = changeable(&caller, kind, &target, current)?;
                    check_idle(&current, &target)?;
                    check_ready(&current, &target)?;
                    let mut resource = current.resource;
                    resource.set_status(status::DELETING);
                    let operation = operations::start(
                        &format!("Delete {}", noun(kind)),
                        &caller.subject,
                        delete_metadata(kind, &target),
                    );
                    Ok(Changed {
                        record: OperationRecord {
                            operation,
                            target: resource.reference(),
                            work: Work::Delete,
                        },
                        resource,
                        access_bindings: None,
                    })
                }),
                call.claim.as_ref(),
            )
            .await?;
        Ok(self.start_if_running(record))
    }

    /// DiskService.Move: the disk to another folder; done when stored, or after the delay
    /// of `move-disk`.
    pub async fn move_disk(
        &self,
        call: &CallContext,
        disk_id: &str,
        destination: &str,
    ) -> Result<Operation, Error> {
        check_changeable(&call.caller, destination)?;
        let destination = destination.to_string();
        self.change_placement(call, disk_id, ChangeKind::Move, move |id, disk| {
            let metadata = pack(&MoveDiskMetadata {
                disk_id: id.to_string(),
                source_folder_id: disk.folder_id.clone(),
                destination_folder_id: destination.clone(),
            });
            disk.folder_id = destination;
            ("Move disk", metadata)
        })
        .await
    }

    /// DiskService.Relocate: the disk to another zone (one this server offers); done
    /// when stored, or after the delay of `relocate-disk`.
    pub async fn relocate_disk(
        &self,
        call: &CallContext,
        disk_id: &str,
        zone: &str,
        placement: Option<DiskPlacementPolicy>,
    ) -> Result<Operation, Error> {
        if !self.offerings.zones.iter().any(|offered| offered == zone) {
            return Err(Error::invalid_field(
                "destination_zone_id",
                format!(
                    "unknown zone {}; this server offers {}",
                    excerpt(zone),
                    self.offerings.zones.join(", ")
                ),
            ));
        }
        let zone = zone.to_string();
        self.change_placement(call, disk_id, ChangeKind::Relocate, move |id, disk| {
            let metadata = pack(&RelocateDiskMetadata {
                disk_id: id.to_string(),
                source_zone_id: disk.zone_id.clone(),
                destination_zone_id: zone.clone(),
            });
            disk.zone_id = zone;
            if placement.is_some() {
                disk.disk_placement_policy = placement;
            }
            ("Relocate disk", metadata)
        })
        .await
    }

    /// Move and Relocate (`kind`): a READY disk outside the public folder that no running
    /// operation uses is changed by `place`, which also describes the operation; done when
    /// stored, or after its kind's delay.
    async fn change_placement(
        &self,
        call: &CallContext,
        disk_id: &str,
        kind: ChangeKind,
        place: impl FnOnce(&str, &mut Disk) -> (&'static str, prost_types::Any) + Send + 'static,
    ) -> Result<Operation, Error> {
        let id = disk_id.to_string();
        let caller = call.caller.clone();
        let instant = self.executor.is_instant_change(kind, ResourceKind::Disk);
        let record = self
            .store
            .change(
                ResourceKind::Disk,
                disk_id,
                Box::new(move |current| {
                    let current = changeable(&caller, ResourceKind::Disk, &id, current)?;
                    check_idle(&current, &id)?;
                    check_ready(&current, &id)?;
                    let Resource::Disk { mut disk, os } = current.resource else {
                        unreachable!("the store reads the kind asked for")
                    };
                    let (description, metadata) = place(&id, &mut disk);
                    Ok(stored_change(
                        &caller,
                        Resource::Disk { disk, os },
                        description.into(),
                        metadata,
                        (kind, instant),
                    ))
                }),
                call.claim.as_ref(),
            )
            .await?;
        Ok(self.start_if_running(record))
    }
}

//! compute SnapshotService.Create: a snapshot of a READY disk. It records the disk
//! (source_disk_id, disk_size) and takes its product_ids and hardware generation.

use super::{check_byte_count, Catalog, MIN_DISK_SIZE};
use crate::domain::call::CallContext;
use crate::domain::validation::Validator;
use crate::error::Error;
use crate::ids;
use crate::model::operations;
use crate::model::resource::{pack, Resource, ResourceKind, Work};
use crate::pb::compute::{self, CreateSnapshotMetadata, CreateSnapshotRequest, Snapshot};
use crate::pb::operation::Operation;
use crate::store::Reading;
use prost::Name;

impl Catalog {
    pub async fn create_snapshot(
        &self,
        call: &CallContext,
        request: CreateSnapshotRequest,
    ) -> Result<Operation, Error> {
        self.reading_source(request, true, |request, reading| {
            self.create_snapshot_reading(call, request, reading)
        })
        .await
    }

    async fn create_snapshot_reading(
        &self,
        call: &CallContext,
        request: CreateSnapshotRequest,
        reading: Reading,
    ) -> Result<Operation, Error> {
        let (Resource::Disk { disk, os }, seen) = self
            .ready_source(call, ResourceKind::Disk, &request.disk_id, reading)
            .await?
        else {
            return Err(Error::Internal("disk has the wrong kind".into()));
        };
        let snapshot = Snapshot {
            id: ids::new_id(ids::prefix::SNAPSHOT),
            folder_id: request.folder_id,
            created_at: Some(operations::now()),
            name: request.name,
            description: request.description,
            labels: request.labels,
            storage_size: disk.size,
            disk_size: disk.size,
            product_ids: disk.product_ids,
            status: compute::snapshot::Status::Creating as i32,
            source_disk_id: disk.id.clone(),
            hardware_generation: request.hardware_generation.or(disk.hardware_generation),
            kms_key: disk.kms_key,
        };
        let metadata = pack(&CreateSnapshotMetadata {
            snapshot_id: snapshot.id.clone(),
            disk_id: disk.id,
        });
        let work = Work::Copy {
            source: Some(snapshot.source_disk_id.clone()),
        };
        self.launch(
            call,
            Resource::Snapshot { snapshot, os },
            "Create snapshot",
            metadata,
            work,
            Some(seen),
        )
        .await
    }
}

/// A snapshot of a seed file: checked as the create request it stands for (the same rules
/// and messages as [`Catalog::create_snapshot`]; its `source_disk_id` is the request's
/// `disk_id`, which may be left out, and is recorded as written). Its `disk_size` is a
/// disk's size (the storage size, at least 4 MiB, if left out); a storage size left out
/// is the disk size, as a snapshot of a disk has them.
pub(super) fn seeded_snapshot(
    mut snapshot: Snapshot,
    validator: &Validator,
) -> Result<Snapshot, Error> {
    let request = CreateSnapshotRequest {
        folder_id: snapshot.folder_id.clone(),
        disk_id: snapshot.source_disk_id.clone(),
        name: snapshot.name.clone(),
        description: snapshot.description.clone(),
        labels: snapshot.labels.clone(),
        hardware_generation: snapshot.hardware_generation.clone(),
    };
    validator.check_except(
        &CreateSnapshotRequest::full_name(),
        &request,
        &["disk_id".to_string()],
    )?;
    check_byte_count("storage_size", snapshot.storage_size, i64::MAX)?;
    if snapshot.disk_size == 0 {
        snapshot.disk_size = snapshot.storage_size.max(MIN_DISK_SIZE);
    }
    super::disk::check_disk_size("disk_size", snapshot.disk_size, validator)?;
    if snapshot.storage_size == 0 {
        snapshot.storage_size = snapshot.disk_size;
    }
    Ok(snapshot)
}

//! compute SnapshotService.Create: a snapshot of a READY disk. It records the disk
//! (source_disk_id, disk_size) and takes its product_ids and hardware generation.

use super::Catalog;
use crate::domain::call::CallContext;
use crate::error::Error;
use crate::ids;
use crate::model::operations;
use crate::model::resource::{pack, Resource, ResourceKind, Work};
use crate::pb::compute::{self, CreateSnapshotMetadata, CreateSnapshotRequest, Snapshot};
use crate::pb::operation::Operation;

impl Catalog {
    pub async fn create_snapshot(
        &self,
        call: &CallContext,
        request: CreateSnapshotRequest,
    ) -> Result<Operation, Error> {
        let Resource::Disk { disk, os } = self
            .ready_source(call, ResourceKind::Disk, &request.disk_id)
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
        )
        .await
    }
}

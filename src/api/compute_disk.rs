//! compute.v1 DiskService: Create, Get, and ListSnapshotSchedules (always empty: no
//! snapshot schedules are served).

use crate::domain::Catalog;
use crate::pb::compute::disk_service_server::DiskService;
use crate::pb::compute::{
    CreateDiskRequest, Disk, GetDiskRequest, ListDiskSnapshotSchedulesRequest,
    ListDiskSnapshotSchedulesResponse,
};
use crate::pb::operation::Operation;
use crate::resource::{Resource, ResourceKind};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ComputeDiskApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl DiskService for ComputeDiskApi {
    async fn get(&self, request: Request<GetDiskRequest>) -> Result<Response<Disk>, Status> {
        let request = request.into_inner();
        super::respond(
            async {
                self.catalog.validate(&request)?;
                let extract = |resource| match resource {
                    Resource::Disk { disk, .. } => Some(disk),
                    _ => None,
                };
                let kind = ResourceKind::Disk;
                self.catalog.get_as(kind, &request.disk_id, extract).await
            }
            .await,
        )
    }

    async fn create(
        &self,
        request: Request<CreateDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::respond(self.catalog.create_disk(request.into_inner()).await)
    }

    async fn list_snapshot_schedules(
        &self,
        request: Request<ListDiskSnapshotSchedulesRequest>,
    ) -> Result<Response<ListDiskSnapshotSchedulesResponse>, Status> {
        let request = request.into_inner();
        super::respond(
            async {
                self.catalog.validate(&request)?;
                self.catalog
                    .get(ResourceKind::Disk, &request.disk_id)
                    .await?;
                Ok(ListDiskSnapshotSchedulesResponse::default())
            }
            .await,
        )
    }
}

//! compute.v1 SnapshotService: Create and Get.

use crate::domain::Catalog;
use crate::pb::compute::snapshot_service_server::SnapshotService;
use crate::pb::compute::{CreateSnapshotRequest, GetSnapshotRequest, Snapshot};
use crate::pb::operation::Operation;
use crate::resource::{Resource, ResourceKind};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ComputeSnapshotApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl SnapshotService for ComputeSnapshotApi {
    async fn get(
        &self,
        request: Request<GetSnapshotRequest>,
    ) -> Result<Response<Snapshot>, Status> {
        let request = request.into_inner();
        super::respond(
            async {
                self.catalog.validate(&request)?;
                let extract = |resource| match resource {
                    Resource::Snapshot { snapshot, .. } => Some(snapshot),
                    _ => None,
                };
                let kind = ResourceKind::Snapshot;
                self.catalog
                    .get_as(kind, &request.snapshot_id, extract)
                    .await
            }
            .await,
        )
    }

    async fn create(
        &self,
        request: Request<CreateSnapshotRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::respond(self.catalog.create_snapshot(request.into_inner()).await)
    }
}

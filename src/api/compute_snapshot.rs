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
                match self
                    .catalog
                    .get(ResourceKind::Snapshot, &request.snapshot_id)
                    .await?
                {
                    Resource::Snapshot { snapshot, .. } => Ok(snapshot),
                    _ => unreachable!("the store returns the kind it was asked for"),
                }
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

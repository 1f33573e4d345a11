//! compute.v1 SnapshotService: every method.

use super::mask_paths;
use crate::domain::lifecycle::Update;
use crate::domain::listing::ListArgs;
use crate::domain::Catalog;
use crate::model::resource::ResourceKind;
use crate::pb::compute::snapshot_service_server::SnapshotService;
use crate::pb::compute::{
    CreateSnapshotRequest, DeleteSnapshotRequest, GetSnapshotRequest,
    ListSnapshotOperationsRequest, ListSnapshotOperationsResponse, ListSnapshotsRequest,
    ListSnapshotsResponse, Snapshot, UpdateSnapshotRequest,
};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

const KIND: ResourceKind = ResourceKind::Snapshot;

pub struct ComputeSnapshotApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl SnapshotService for ComputeSnapshotApi {
    async fn get(
        &self,
        request: Request<GetSnapshotRequest>,
    ) -> Result<Response<Snapshot>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            self.catalog
                .get_typed::<Snapshot>(&call, &request.snapshot_id)
                .await
        })
        .await
    }

    async fn list(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            let args = ListArgs {
                folder_id: request.folder_id,
                page_size: request.page_size,
                page_token: request.page_token,
                filter: request.filter,
                order_by: request.order_by,
            };
            let (snapshots, next_page_token) =
                self.catalog.list_typed::<Snapshot>(&call, args).await?;
            Ok(ListSnapshotsResponse {
                snapshots,
                next_page_token,
            })
        })
        .await
    }

    async fn create(
        &self,
        request: Request<CreateSnapshotRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::start(&self.catalog, request, |call, request| async move {
            self.catalog.create_snapshot(&call, request).await
        })
        .await
    }

    async fn update(
        &self,
        request: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            let update = Update {
                id: request.snapshot_id,
                mask: mask_paths(request.update_mask),
                name: request.name,
                description: request.description,
                labels: request.labels,
                ..Update::default()
            };
            self.catalog.update(&call, KIND, update).await
        })
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            self.catalog.delete(&call, KIND, &request.snapshot_id).await
        })
        .await
    }

    async fn list_operations(
        &self,
        request: Request<ListSnapshotOperationsRequest>,
    ) -> Result<Response<ListSnapshotOperationsResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            let (operations, next_page_token) = self
                .catalog
                .list_operations(
                    &call,
                    KIND,
                    &request.snapshot_id,
                    request.page_size,
                    &request.page_token,
                )
                .await?;
            Ok(ListSnapshotOperationsResponse {
                operations,
                next_page_token,
            })
        })
        .await
    }

    async fn list_access_bindings(
        &self,
        request: Request<ListAccessBindingsRequest>,
    ) -> Result<Response<ListAccessBindingsResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            super::access::list(&self.catalog, &call, KIND, request).await
        })
        .await
    }

    async fn set_access_bindings(
        &self,
        request: Request<SetAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            super::access::set(&self.catalog, &call, KIND, request).await
        })
        .await
    }

    async fn update_access_bindings(
        &self,
        request: Request<UpdateAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            super::access::update(&self.catalog, &call, KIND, request).await
        })
        .await
    }
}

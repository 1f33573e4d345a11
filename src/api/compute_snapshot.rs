//! compute.v1 SnapshotService: every method.

use super::kinds::{self, mask_paths, ListRequest, OperationsRequest, Page, Target, UpdateRequest};
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
        kinds::get(&self.catalog, request).await
    }

    async fn list(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        kinds::list(&self.catalog, request).await
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
        kinds::update(&self.catalog, KIND, request).await
    }

    async fn delete(
        &self,
        request: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<Operation>, Status> {
        kinds::delete(&self.catalog, KIND, request).await
    }

    async fn list_operations(
        &self,
        request: Request<ListSnapshotOperationsRequest>,
    ) -> Result<Response<ListSnapshotOperationsResponse>, Status> {
        kinds::list_operations(&self.catalog, KIND, request).await
    }

    async fn list_access_bindings(
        &self,
        request: Request<ListAccessBindingsRequest>,
    ) -> Result<Response<ListAccessBindingsResponse>, Status> {
        kinds::list_access_bindings(&self.catalog, KIND, request).await
    }

    async fn set_access_bindings(
        &self,
        request: Request<SetAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        kinds::set_access_bindings(&self.catalog, KIND, request).await
    }

    async fn update_access_bindings(
        &self,
        request: Request<UpdateAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        kinds::update_access_bindings(&self.catalog, KIND, request).await
    }
}

impl Target for GetSnapshotRequest {
    fn target(&self) -> &str {
        &self.snapshot_id
    }
}

impl Target for DeleteSnapshotRequest {
    fn target(&self) -> &str {
        &self.snapshot_id
    }
}

impl ListRequest for ListSnapshotsRequest {
    fn list_args(self) -> ListArgs {
        ListArgs {
            folder_id: self.folder_id,
            page_size: self.page_size,
            page_token: self.page_token,
            filter: self.filter,
            order_by: self.order_by,
        }
    }
}

impl Page<Snapshot> for ListSnapshotsResponse {
    fn page(snapshots: Vec<Snapshot>, next_page_token: String) -> Self {
        ListSnapshotsResponse {
            snapshots,
            next_page_token,
        }
    }
}

impl UpdateRequest for UpdateSnapshotRequest {
    fn mask(&self) -> &[String] {
        kinds::mask_of(&self.update_mask)
    }

    fn into_update(self) -> Update {
        Update {
            id: self.snapshot_id,
            mask: mask_paths(self.update_mask),
            name: self.name,
            description: self.description,
            labels: self.labels,
            ..Update::default()
        }
    }
}

impl Target for ListSnapshotOperationsRequest {
    fn target(&self) -> &str {
        &self.snapshot_id
    }
}

impl OperationsRequest for ListSnapshotOperationsRequest {
    fn page_size(&self) -> i64 {
        self.page_size
    }
    fn page_token(&self) -> &str {
        &self.page_token
    }
}

impl Page<Operation> for ListSnapshotOperationsResponse {
    fn page(operations: Vec<Operation>, next_page_token: String) -> Self {
        ListSnapshotOperationsResponse {
            operations,
            next_page_token,
        }
    }
}

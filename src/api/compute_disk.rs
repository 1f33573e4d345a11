//! compute.v1 DiskService: every method. ListSnapshotSchedules answers an empty list: no
//! snapshot schedules are served.

use super::kinds::{self, mask_paths, ListRequest, OperationsRequest, Page, Target, UpdateRequest};
use crate::domain::lifecycle::Update;
use crate::domain::listing::ListArgs;
use crate::domain::Catalog;
use crate::model::resource::ResourceKind;
use crate::pb::compute::disk_service_server::DiskService;
use crate::pb::compute::{
    CreateDiskRequest, DeleteDiskRequest, Disk, GetDiskRequest, ListDiskOperationsRequest,
    ListDiskOperationsResponse, ListDiskSnapshotSchedulesRequest,
    ListDiskSnapshotSchedulesResponse, ListDisksRequest, ListDisksResponse, MoveDiskRequest,
    RelocateDiskRequest, UpdateDiskRequest,
};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

const KIND: ResourceKind = ResourceKind::Disk;

pub struct ComputeDiskApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl DiskService for ComputeDiskApi {
    async fn get(&self, request: Request<GetDiskRequest>) -> Result<Response<Disk>, Status> {
        kinds::get(&self.catalog, request).await
    }

    async fn list(
        &self,
        request: Request<ListDisksRequest>,
    ) -> Result<Response<ListDisksResponse>, Status> {
        kinds::list(&self.catalog, request).await
    }

    async fn create(
        &self,
        request: Request<CreateDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::start(&self.catalog, request, |call, request| async move {
            self.catalog.create_disk(&call, request).await
        })
        .await
    }

    async fn update(
        &self,
        request: Request<UpdateDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        kinds::update(&self.catalog, KIND, request).await
    }

    async fn delete(
        &self,
        request: Request<DeleteDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        kinds::delete(&self.catalog, KIND, request).await
    }

    async fn list_operations(
        &self,
        request: Request<ListDiskOperationsRequest>,
    ) -> Result<Response<ListDiskOperationsResponse>, Status> {
        kinds::list_operations(&self.catalog, KIND, request).await
    }

    async fn r#move(
        &self,
        request: Request<MoveDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::start(&self.catalog, request, |call, request| async move {
            self.catalog
                .move_disk(&call, &request.disk_id, &request.destination_folder_id)
                .await
        })
        .await
    }

    async fn relocate(
        &self,
        request: Request<RelocateDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::start(&self.catalog, request, |call, request| async move {
            self.catalog
                .relocate_disk(
                    &call,
                    &request.disk_id,
                    &request.destination_zone_id,
                    request.disk_placement_policy,
                )
                .await
        })
        .await
    }

    async fn list_snapshot_schedules(
        &self,
        request: Request<ListDiskSnapshotSchedulesRequest>,
    ) -> Result<Response<ListDiskSnapshotSchedulesResponse>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            self.catalog.get(&call, KIND, &request.disk_id).await?;
            Ok(ListDiskSnapshotSchedulesResponse::default())
        })
        .await
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

impl Target for GetDiskRequest {
    fn target(&self) -> &str {
        &self.disk_id
    }
}

impl Target for DeleteDiskRequest {
    fn target(&self) -> &str {
        &self.disk_id
    }
}

impl ListRequest for ListDisksRequest {
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

impl Page<Disk> for ListDisksResponse {
    fn page(disks: Vec<Disk>, next_page_token: String) -> Self {
        ListDisksResponse {
            disks,
            next_page_token,
        }
    }
}

impl UpdateRequest for UpdateDiskRequest {
    fn mask(&self) -> &[String] {
        kinds::mask_of(&self.update_mask)
    }

    fn into_update(self) -> Update {
        Update {
            id: self.disk_id,
            mask: mask_paths(self.update_mask),
            name: self.name,
            description: self.description,
            labels: self.labels,
            size: self.size,
            disk_placement_policy: self.disk_placement_policy,
            ..Update::default()
        }
    }
}

impl Target for ListDiskOperationsRequest {
    fn target(&self) -> &str {
        &self.disk_id
    }
}

impl OperationsRequest for ListDiskOperationsRequest {
    fn page_size(&self) -> i64 {
        self.page_size
    }
    fn page_token(&self) -> &str {
        &self.page_token
    }
}

impl Page<Operation> for ListDiskOperationsResponse {
    fn page(operations: Vec<Operation>, next_page_token: String) -> Self {
        ListDiskOperationsResponse {
            operations,
            next_page_token,
        }
    }
}

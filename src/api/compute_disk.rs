//! compute.v1 DiskService: every method. ListSnapshotSchedules answers an empty list:
//! no snapshot schedules are served.

use super::mask_paths;
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
        super::validated(&self.catalog, request, |call, request| async move {
            self.catalog
                .get_typed::<Disk>(&call, &request.disk_id)
                .await
        })
        .await
    }

    async fn list(
        &self,
        request: Request<ListDisksRequest>,
    ) -> Result<Response<ListDisksResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            let args = ListArgs {
                folder_id: request.folder_id,
                page_size: request.page_size,
                page_token: request.page_token,
                filter: request.filter,
                order_by: request.order_by,
            };
            let (disks, next_page_token) = self.catalog.list_typed::<Disk>(&call, args).await?;
            Ok(ListDisksResponse {
                disks,
                next_page_token,
            })
        })
        .await
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
        super::validated_start(&self.catalog, request, |call, request| async move {
            let update = Update {
                id: request.disk_id,
                mask: mask_paths(request.update_mask),
                name: request.name,
                description: request.description,
                labels: request.labels,
                size: request.size,
                disk_placement_policy: request.disk_placement_policy,
                ..Update::default()
            };
            self.catalog.update(&call, KIND, update).await
        })
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            self.catalog.delete(&call, KIND, &request.disk_id).await
        })
        .await
    }

    async fn list_operations(
        &self,
        request: Request<ListDiskOperationsRequest>,
    ) -> Result<Response<ListDiskOperationsResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            let (operations, next_page_token) = self
                .catalog
                .list_operations(
                    &call,
                    KIND,
                    &request.disk_id,
                    request.page_size,
                    &request.page_token,
                )
                .await?;
            Ok(ListDiskOperationsResponse {
                operations,
                next_page_token,
            })
        })
        .await
    }

    async fn r#move(
        &self,
        request: Request<MoveDiskRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
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
        super::validated_start(&self.catalog, request, |call, request| async move {
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
        super::validated(&self.catalog, request, |call, request| async move {
            self.catalog.get(&call, KIND, &request.disk_id).await?;
            Ok(ListDiskSnapshotSchedulesResponse::default())
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

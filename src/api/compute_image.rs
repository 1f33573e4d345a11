//! compute.v1 ImageService: every method.

use super::mask_paths;
use crate::domain::lifecycle::Update;
use crate::domain::listing::ListArgs;
use crate::domain::Catalog;
use crate::model::resource::ResourceKind;
use crate::pb::compute::image_service_server::ImageService;
use crate::pb::compute::{
    CreateImageRequest, DeleteImageRequest, GetImageLatestByFamilyRequest, GetImageRequest, Image,
    ListImageOperationsRequest, ListImageOperationsResponse, ListImagesRequest, ListImagesResponse,
    UpdateImageRequest,
};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

const KIND: ResourceKind = ResourceKind::ComputeImage;

pub struct ComputeImageApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl ImageService for ComputeImageApi {
    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            self.catalog
                .get_typed::<Image>(&call, &request.image_id)
                .await
        })
        .await
    }

    async fn get_latest_by_family(
        &self,
        request: Request<GetImageLatestByFamilyRequest>,
    ) -> Result<Response<Image>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            self.catalog
                .latest_by_family(&call, &request.folder_id, &request.family)
                .await
        })
        .await
    }

    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            let args = ListArgs {
                folder_id: request.folder_id,
                page_size: request.page_size,
                page_token: request.page_token,
                filter: request.filter,
                order_by: request.order_by,
            };
            let (images, next_page_token) = self.catalog.list_typed::<Image>(&call, args).await?;
            Ok(ListImagesResponse {
                images,
                next_page_token,
            })
        })
        .await
    }

    async fn create(
        &self,
        request: Request<CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::start(&self.catalog, request, |call, request| async move {
            self.catalog.create_image(&call, request).await
        })
        .await
    }

    async fn update(
        &self,
        request: Request<UpdateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            let update = Update {
                id: request.image_id,
                mask: mask_paths(request.update_mask),
                name: request.name,
                description: request.description,
                labels: request.labels,
                min_disk_size: request.min_disk_size,
                ..Update::default()
            };
            self.catalog.update(&call, KIND, update).await
        })
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated_start(&self.catalog, request, |call, request| async move {
            self.catalog.delete(&call, KIND, &request.image_id).await
        })
        .await
    }

    async fn list_operations(
        &self,
        request: Request<ListImageOperationsRequest>,
    ) -> Result<Response<ListImageOperationsResponse>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            let (operations, next_page_token) = self
                .catalog
                .list_operations(
                    &call,
                    KIND,
                    &request.image_id,
                    request.page_size,
                    &request.page_token,
                )
                .await?;
            Ok(ListImageOperationsResponse {
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

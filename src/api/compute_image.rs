//! compute.v1 ImageService: every method.

use super::{mask_paths, respond};
use crate::domain::lifecycle::Update;
use crate::domain::listing::ListArgs;
use crate::domain::Catalog;
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
use crate::resource::ResourceKind;
use std::sync::Arc;
use tonic::{Request, Response, Status};

const KIND: ResourceKind = ResourceKind::ComputeImage;

pub struct ComputeImageApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl ImageService for ComputeImageApi {
    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        super::validated(&self.catalog, request, |request| async move {
            self.catalog.get_typed::<Image>(&request.image_id).await
        })
        .await
    }

    async fn get_latest_by_family(
        &self,
        request: Request<GetImageLatestByFamilyRequest>,
    ) -> Result<Response<Image>, Status> {
        super::validated(&self.catalog, request, |request| async move {
            self.catalog
                .latest_by_family(&request.folder_id, &request.family)
                .await
        })
        .await
    }

    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        super::validated(&self.catalog, request, |request| async move {
            let args = ListArgs {
                folder_id: request.folder_id,
                page_size: request.page_size,
                page_token: request.page_token,
                filter: request.filter,
                order_by: request.order_by,
            };
            let (images, next_page_token) = self.catalog.list_typed::<Image>(args).await?;
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
        respond(self.catalog.create_image(request.into_inner()).await)
    }

    async fn update(
        &self,
        request: Request<UpdateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated(&self.catalog, request, |request| async move {
            let update = Update {
                id: request.image_id,
                mask: mask_paths(request.update_mask),
                name: request.name,
                description: request.description,
                labels: request.labels,
                min_disk_size: request.min_disk_size,
                ..Update::default()
            };
            self.catalog.update(KIND, update).await
        })
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::validated(&self.catalog, request, |request| async move {
            self.catalog.delete(KIND, &request.image_id).await
        })
        .await
    }

    async fn list_operations(
        &self,
        request: Request<ListImageOperationsRequest>,
    ) -> Result<Response<ListImageOperationsResponse>, Status> {
        super::validated(&self.catalog, request, |request| async move {
            let (operations, next_page_token) = self
                .catalog
                .list_operations(
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
        respond(super::access::list(&self.catalog, KIND, request.into_inner()).await)
    }

    async fn set_access_bindings(
        &self,
        request: Request<SetAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        respond(super::access::set(&self.catalog, KIND, request.into_inner()).await)
    }

    async fn update_access_bindings(
        &self,
        request: Request<UpdateAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        respond(super::access::update(&self.catalog, KIND, request.into_inner()).await)
    }
}

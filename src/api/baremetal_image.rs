//! baremetal.v1alpha ImageService: every method.

use super::mask_paths;
use crate::domain::lifecycle::Update;
use crate::domain::listing::ListArgs;
use crate::domain::Catalog;
use crate::model::resource::ResourceKind;
use crate::pb::baremetal::image_service_server::ImageService;
use crate::pb::baremetal::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImageOperationsRequest,
    ListImageOperationsResponse, ListImagesRequest, ListImagesResponse, UpdateImageRequest,
};
use crate::pb::operation::Operation;
use std::sync::Arc;
use tonic::{Request, Response, Status};

const KIND: ResourceKind = ResourceKind::BaremetalImage;

pub struct BaremetalImageApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl ImageService for BaremetalImageApi {
    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        super::validated(&self.catalog, request, |call, request| async move {
            self.catalog
                .get_typed::<Image>(&call, &request.image_id)
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
            self.catalog.create_baremetal_image(&call, request).await
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
}

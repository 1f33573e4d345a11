//! baremetal.v1alpha ImageService: every method.

use super::kinds::{self, mask_paths, ListRequest, OperationsRequest, Page, Target, UpdateRequest};
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
        kinds::get(&self.catalog, request).await
    }

    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        kinds::list(&self.catalog, request).await
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
        kinds::update(&self.catalog, KIND, request).await
    }

    async fn delete(
        &self,
        request: Request<DeleteImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        kinds::delete(&self.catalog, KIND, request).await
    }

    async fn list_operations(
        &self,
        request: Request<ListImageOperationsRequest>,
    ) -> Result<Response<ListImageOperationsResponse>, Status> {
        kinds::list_operations(&self.catalog, KIND, request).await
    }
}

impl Target for GetImageRequest {
    fn target(&self) -> &str {
        &self.image_id
    }
}

impl Target for DeleteImageRequest {
    fn target(&self) -> &str {
        &self.image_id
    }
}

impl ListRequest for ListImagesRequest {
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

impl Page<Image> for ListImagesResponse {
    fn page(images: Vec<Image>, next_page_token: String) -> Self {
        ListImagesResponse {
            images,
            next_page_token,
        }
    }
}

impl UpdateRequest for UpdateImageRequest {
    fn mask(&self) -> &[String] {
        kinds::mask_of(&self.update_mask)
    }

    fn into_update(self) -> Update {
        Update {
            id: self.image_id,
            mask: mask_paths(self.update_mask),
            name: self.name,
            description: self.description,
            labels: self.labels,
            ..Update::default()
        }
    }
}

impl Target for ListImageOperationsRequest {
    fn target(&self) -> &str {
        &self.image_id
    }
}

impl OperationsRequest for ListImageOperationsRequest {
    fn page_size(&self) -> i64 {
        self.page_size
    }
    fn page_token(&self) -> &str {
        &self.page_token
    }
}

impl Page<Operation> for ListImageOperationsResponse {
    fn page(operations: Vec<Operation>, next_page_token: String) -> Self {
        ListImageOperationsResponse {
            operations,
            next_page_token,
        }
    }
}

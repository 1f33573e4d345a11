//! compute.v1 ImageService: Create and Get.

use crate::domain::Catalog;
use crate::pb::compute::image_service_server::ImageService;
use crate::pb::compute::{CreateImageRequest, GetImageRequest, Image};
use crate::pb::operation::Operation;
use crate::resource::{Resource, ResourceKind};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ComputeImageApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl ImageService for ComputeImageApi {
    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        let request = request.into_inner();
        super::respond(
            async {
                self.catalog.validate(&request)?;
                let extract = |resource| match resource {
                    Resource::ComputeImage(image) => Some(image),
                    _ => None,
                };
                let kind = ResourceKind::ComputeImage;
                self.catalog.get_as(kind, &request.image_id, extract).await
            }
            .await,
        )
    }

    async fn create(
        &self,
        request: Request<CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::respond(self.catalog.create_image(request.into_inner()).await)
    }
}

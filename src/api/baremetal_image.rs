//! baremetal.v1alpha ImageService: Create and Get.

use crate::domain::Catalog;
use crate::pb::baremetal::image_service_server::ImageService;
use crate::pb::baremetal::{CreateImageRequest, GetImageRequest, Image};
use crate::pb::operation::Operation;
use crate::resource::{Resource, ResourceKind};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct BaremetalImageApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl ImageService for BaremetalImageApi {
    async fn get(&self, request: Request<GetImageRequest>) -> Result<Response<Image>, Status> {
        let request = request.into_inner();
        super::respond(
            async {
                self.catalog.validate(&request)?;
                let extract = |resource| match resource {
                    Resource::BaremetalImage(image) => Some(image),
                    _ => None,
                };
                let kind = ResourceKind::BaremetalImage;
                self.catalog.get_as(kind, &request.image_id, extract).await
            }
            .await,
        )
    }

    async fn create(
        &self,
        request: Request<CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::respond(
            self.catalog
                .create_baremetal_image(request.into_inner())
                .await,
        )
    }
}

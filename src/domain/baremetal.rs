//! baremetal ImageService.Create: an image imported from a URI (an ISO). The request is
//! recorded; the import itself is the executor's work.

use super::{check_source_uri, Catalog};
use crate::domain::call::CallContext;
use crate::error::Error;
use crate::ids;
use crate::model::operations;
use crate::model::resource::{pack, Resource, Work};
use crate::pb::baremetal::{self, CreateImageMetadata, CreateImageRequest, Image};
use crate::pb::operation::Operation;

impl Catalog {
    pub async fn create_baremetal_image(
        &self,
        call: &CallContext,
        request: CreateImageRequest,
    ) -> Result<Operation, Error> {
        check_source_uri(&request.uri)?;
        self.executor.check_import_host(&request.uri)?;
        let image = Image {
            id: ids::new_id(ids::prefix::BAREMETAL_IMAGE),
            folder_id: request.folder_id,
            name: request.name,
            description: request.description,
            checksum: String::new(),
            status: baremetal::image::Status::Creating as i32,
            created_at: Some(operations::now()),
            labels: request.labels,
        };
        let metadata = pack(&CreateImageMetadata {
            image_id: image.id.clone(),
        });
        self.launch(
            call,
            Resource::BaremetalImage(image),
            "Create image",
            metadata,
            Work::ImportUri { uri: request.uri },
        )
        .await
    }
}

//! baremetal ImageService.Create: an image imported from a URI (an ISO). The request is
//! recorded; the import itself is the executor's work.

use super::{check_source_uri, Catalog};
use crate::domain::call::CallContext;
use crate::domain::validation::Validator;
use crate::error::Error;
use crate::ids;
use crate::model::operations;
use crate::model::resource::{pack, Resource, Work};
use crate::pb::baremetal::{self, CreateImageMetadata, CreateImageRequest, Image};
use crate::pb::operation::Operation;
use prost::Name;

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
            None,
        )
        .await
    }
}

/// A bare-metal image of a seed file: checked as the create request it stands for (the
/// same rules and messages as [`Catalog::create_baremetal_image`], its `uri` aside).
pub(super) fn seeded_baremetal_image(image: Image, validator: &Validator) -> Result<Image, Error> {
    let request = CreateImageRequest {
        folder_id: image.folder_id.clone(),
        name: image.name.clone(),
        description: image.description.clone(),
        uri: String::new(),
        labels: image.labels.clone(),
    };
    validator.check_except(
        &CreateImageRequest::full_name(),
        &request,
        &["uri".to_string()],
    )?;
    Ok(image)
}

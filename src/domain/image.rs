//! compute ImageService.Create: an image from another image, a disk, a snapshot or a URI.
//!
//! What the new image inherits where the request leaves a field empty: os (default
//! LINUX), product_ids, hardware_generation, size, storage_size and min_disk_size. A
//! requested min_disk_size below the source's size is refused.

use super::{check_byte_count, check_source_uri, Catalog, MIN_DISK_SIZE};
use crate::domain::call::CallContext;
use crate::domain::validation::Validator;
use crate::error::Error;
use crate::ids;
use crate::model::operations;
use crate::model::resource::{pack, Resource, ResourceKind, Work};
use crate::pb::compute::{
    self, create_image_request::Source, os, CreateImageMetadata, CreateImageRequest,
    HardwareGeneration, Image, Os,
};
use crate::pb::operation::Operation;
use crate::store::{Reading, SourceSeen};
use prost::Name;

/// What an image takes from its source.
#[derive(Default)]
struct Inherited {
    os: Option<Os>,
    product_ids: Vec<String>,
    hardware_generation: Option<HardwareGeneration>,
    size: i64,
    storage_size: i64,
    min_disk_size: i64,
    described_as: String,
    /// The source as the create read it, for the write to confirm.
    seen: Option<SourceSeen>,
}

impl Catalog {
    pub async fn create_image(
        &self,
        call: &CallContext,
        request: CreateImageRequest,
    ) -> Result<Operation, Error> {
        let copies = !matches!(request.source, None | Some(Source::Uri(_)));
        self.reading_source(request, copies, |request, reading| {
            self.create_image_reading(call, request, reading)
        })
        .await
    }

    async fn create_image_reading(
        &self,
        call: &CallContext,
        request: CreateImageRequest,
        reading: Reading,
    ) -> Result<Operation, Error> {
        let source = request
            .source
            .clone()
            .ok_or_else(|| Error::invalid_field("source", "a source is required"))?;
        let (inherited, work) = match &source {
            Source::ImageId(id) => (
                self.inherit_from_image(call, id, reading).await?,
                copy_of(id),
            ),
            Source::DiskId(id) => (
                self.inherit_from_disk(call, id, reading).await?,
                copy_of(id),
            ),
            Source::SnapshotId(id) => (
                self.inherit_from_snapshot(call, id, reading).await?,
                copy_of(id),
            ),
            Source::Uri(uri) => {
                check_source_uri(uri)?;
                self.executor.check_import_host(uri)?;
                (Inherited::default(), Work::ImportUri { uri: uri.clone() })
            }
        };
        if request.min_disk_size != 0 {
            check_min_disk_size(
                request.min_disk_size,
                inherited.min_disk_size,
                &format!("the source {}", inherited.described_as),
            )?;
        }
        let image = Image {
            id: ids::new_id(ids::prefix::COMPUTE_IMAGE),
            folder_id: request.folder_id,
            created_at: Some(operations::now()),
            name: request.name,
            description: request.description,
            labels: request.labels,
            family: request.family,
            size: inherited.size,
            storage_size: inherited.storage_size,
            min_disk_size: if request.min_disk_size != 0 {
                request.min_disk_size
            } else {
                inherited.min_disk_size
            },
            product_ids: if request.product_ids.is_empty() {
                inherited.product_ids
            } else {
                request.product_ids
            },
            status: compute::image::Status::Creating as i32,
            os: Some(choose_os(request.os, inherited.os)),
            pooled: request.pooled,
            hardware_generation: request
                .hardware_generation
                .or(inherited.hardware_generation),
            kms_key: None,
        };
        let metadata = pack(&CreateImageMetadata {
            image_id: image.id.clone(),
        });
        self.launch(
            call,
            Resource::ComputeImage(image),
            "Create image",
            metadata,
            work,
            inherited.seen,
        )
        .await
    }

    async fn inherit_from_image(
        &self,
        call: &CallContext,
        id: &str,
        reading: Reading,
    ) -> Result<Inherited, Error> {
        let (Resource::ComputeImage(image), seen) = self
            .ready_source(call, ResourceKind::ComputeImage, id, reading)
            .await?
        else {
            return Err(Error::Internal(format!("image {id} has the wrong kind")));
        };
        Ok(Inherited {
            os: image.os,
            product_ids: image.product_ids,
            hardware_generation: image.hardware_generation,
            size: image.size,
            storage_size: image.storage_size,
            min_disk_size: image.min_disk_size,
            described_as: format!("image {id}"),
            seen: Some(seen),
        })
    }

    async fn inherit_from_disk(
        &self,
        call: &CallContext,
        id: &str,
        reading: Reading,
    ) -> Result<Inherited, Error> {
        let (Resource::Disk { disk, os }, seen) = self
            .ready_source(call, ResourceKind::Disk, id, reading)
            .await?
        else {
            return Err(Error::Internal(format!("disk {id} has the wrong kind")));
        };
        check_image_size("disk_id", &format!("disk {id}"), disk.size)?;
        Ok(Inherited {
            os,
            product_ids: disk.product_ids,
            hardware_generation: disk.hardware_generation,
            size: disk.size,
            storage_size: disk.size,
            min_disk_size: disk.size,
            described_as: format!("disk {id}"),
            seen: Some(seen),
        })
    }

    async fn inherit_from_snapshot(
        &self,
        call: &CallContext,
        id: &str,
        reading: Reading,
    ) -> Result<Inherited, Error> {
        let (Resource::Snapshot { snapshot, os }, seen) = self
            .ready_source(call, ResourceKind::Snapshot, id, reading)
            .await?
        else {
            return Err(Error::Internal(format!("snapshot {id} has the wrong kind")));
        };
        check_image_size("snapshot_id", &format!("snapshot {id}"), snapshot.disk_size)?;
        Ok(Inherited {
            os,
            product_ids: snapshot.product_ids,
            hardware_generation: snapshot.hardware_generation,
            size: snapshot.disk_size,
            storage_size: snapshot.storage_size,
            min_disk_size: snapshot.disk_size,
            described_as: format!("snapshot {id}"),
            seen: Some(seen),
        })
    }
}

/// An image of a seed file: checked as the create request it stands for (the same rules
/// and messages as [`Catalog::create_image`], its source aside), with `size`,
/// `storage_size` and `min_disk_size` as an image made from a disk has them: a size left
/// out is the `min_disk_size` (4 MiB if that is left out too), a storage size left out is
/// the size, a `min_disk_size` left out is the size; os LINUX unless it names one.
pub(super) fn seeded_image(mut image: Image, validator: &Validator) -> Result<Image, Error> {
    let request = CreateImageRequest {
        folder_id: image.folder_id.clone(),
        name: image.name.clone(),
        description: image.description.clone(),
        labels: image.labels.clone(),
        family: image.family.clone(),
        min_disk_size: image.min_disk_size,
        product_ids: image.product_ids.clone(),
        source: None,
        os: image.os.clone(),
        pooled: image.pooled,
        hardware_generation: image.hardware_generation.clone(),
    };
    validator.check_except(
        &CreateImageRequest::full_name(),
        &request,
        &["source".to_string()],
    )?;
    check_byte_count("size", image.size, super::MAX_DISK_SIZE)?;
    check_byte_count("storage_size", image.storage_size, i64::MAX)?;
    if image.size == 0 {
        image.size = match image.min_disk_size {
            0 => MIN_DISK_SIZE,
            min_disk_size => min_disk_size,
        };
    }
    if image.min_disk_size == 0 {
        image.min_disk_size = image.size.max(MIN_DISK_SIZE);
    }
    if image.storage_size == 0 {
        image.storage_size = image.size;
    }
    check_min_disk_size(image.min_disk_size, image.size, "the image")?;
    image.os = Some(choose_os(image.os, None));
    Ok(image)
}

/// An image's `min_disk_size` holds what it is made of: at least `size`, the size of
/// `what`.
fn check_min_disk_size(min_disk_size: i64, size: i64, what: &str) -> Result<(), Error> {
    if min_disk_size >= size {
        return Ok(());
    }
    Err(Error::invalid_field(
        "min_disk_size",
        format!("{min_disk_size} is less than the size of {what} ({size} bytes)"),
    ))
}

/// An image holds at most [`MAX_DISK_SIZE`](super::MAX_DISK_SIZE) (the API's bound for `min_disk_size`), so a
/// larger disk or snapshot cannot become one.
fn check_image_size(field: &str, source: &str, size: i64) -> Result<(), Error> {
    if size <= super::MAX_DISK_SIZE {
        return Ok(());
    }
    Err(Error::invalid_field(
        field,
        format!(
            "{source} is {size} bytes; an image holds at most {} bytes (4 TiB)",
            super::MAX_DISK_SIZE
        ),
    ))
}

/// The work of a copy from `source`.
fn copy_of(source: &str) -> Work {
    Work::Copy {
        source: Some(source.to_string()),
    }
}

/// The requested os if it names a type, else the inherited one, else LINUX.
fn choose_os(requested: Option<Os>, inherited: Option<Os>) -> Os {
    match (requested, inherited) {
        (Some(requested), _) if requested.r#type != os::Type::Unspecified as i32 => requested,
        (_, Some(inherited)) if inherited.r#type != os::Type::Unspecified as i32 => inherited,
        (requested, _) => Os {
            r#type: os::Type::Linux as i32,
            ..requested.unwrap_or_default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_of(kind: os::Type) -> Option<Os> {
        Some(Os {
            r#type: kind as i32,
            nvidia: None,
        })
    }

    #[test]
    fn os_comes_from_the_request_then_the_source_then_linux() {
        let windows = os::Type::Windows as i32;
        let linux = os::Type::Linux as i32;
        assert_eq!(
            choose_os(os_of(os::Type::Windows), os_of(os::Type::Linux)).r#type,
            windows
        );
        assert_eq!(choose_os(None, os_of(os::Type::Windows)).r#type, windows);
        assert_eq!(
            choose_os(os_of(os::Type::Unspecified), os_of(os::Type::Windows)).r#type,
            windows
        );
        assert_eq!(choose_os(None, None).r#type, linux);
        assert_eq!(choose_os(os_of(os::Type::Unspecified), None).r#type, linux);
    }
}

//! compute DiskService.Create: an empty disk of a given size, or a disk from a READY
//! image or snapshot, at least as large as the source needs.

use super::{Catalog, Offerings};
use crate::domain::call::CallContext;
use crate::domain::validation::Validator;
use crate::error::Error;
use crate::ids;
use crate::model::operations;
use crate::model::resource::{pack, Resource, ResourceKind, Work};
use crate::pb::compute::{
    self, create_disk_request::Source, disk, CreateDiskMetadata, CreateDiskRequest, Disk, KmsKey,
};
use crate::pb::operation::Operation;
use crate::store::Reading;
use prost::Name;

/// The disk type of a disk whose request names none.
pub const DEFAULT_DISK_TYPE: &str = "network-hdd";
/// The block size of a disk whose request names none.
pub const DEFAULT_BLOCK_SIZE: i64 = 4096;
/// Block sizes are powers of two from 4 KiB to 128 KiB.
pub const BLOCK_SIZES: std::ops::RangeInclusive<i64> = 4096..=131072;

impl Catalog {
    pub async fn create_disk(
        &self,
        call: &CallContext,
        request: CreateDiskRequest,
    ) -> Result<Operation, Error> {
        check_disk_request(&request, &self.offerings)?;
        let copies = request.source.is_some();
        self.reading_source(request, copies, |request, reading| {
            self.create_disk_reading(call, request, reading)
        })
        .await
    }

    async fn create_disk_reading(
        &self,
        call: &CallContext,
        request: CreateDiskRequest,
        reading: Reading,
    ) -> Result<Operation, Error> {
        let mut os = None;
        let mut product_ids = Vec::new();
        let mut hardware_generation = None;
        let mut source = None;
        let mut seen = None;
        match &request.source {
            Some(Source::ImageId(id)) => {
                let (Resource::ComputeImage(image), image_seen) = self
                    .ready_source(call, ResourceKind::ComputeImage, id, reading)
                    .await?
                else {
                    return Err(Error::Internal(format!("image {id} has the wrong kind")));
                };
                check_fits(request.size, image.min_disk_size, &format!("image {id}"))?;
                seen = Some(image_seen);
                os = image.os;
                product_ids = image.product_ids;
                hardware_generation = image.hardware_generation;
                source = Some(disk::Source::SourceImageId(id.clone()));
            }
            Some(Source::SnapshotId(id)) => {
                let (
                    Resource::Snapshot {
                        snapshot,
                        os: snapshot_os,
                    },
                    snapshot_seen,
                ) = self
                    .ready_source(call, ResourceKind::Snapshot, id, reading)
                    .await?
                else {
                    return Err(Error::Internal(format!("snapshot {id} has the wrong kind")));
                };
                check_fits(request.size, snapshot.disk_size, &format!("snapshot {id}"))?;
                seen = Some(snapshot_seen);
                os = snapshot_os;
                product_ids = snapshot.product_ids;
                hardware_generation = snapshot.hardware_generation;
                source = Some(disk::Source::SourceSnapshotId(id.clone()));
            }
            None => {}
        }
        let mut disk = Disk {
            id: ids::new_id(ids::prefix::DISK),
            folder_id: request.folder_id,
            created_at: Some(operations::now()),
            name: request.name,
            description: request.description,
            labels: request.labels,
            type_id: request.type_id,
            zone_id: request.zone_id,
            size: request.size,
            block_size: request.block_size,
            product_ids,
            status: compute::disk::Status::Creating as i32,
            source,
            instance_ids: Vec::new(),
            disk_placement_policy: request.disk_placement_policy,
            hardware_generation: request.hardware_generation.or(hardware_generation),
            kms_key: (!request.kms_key_id.is_empty()).then(|| KmsKey {
                key_id: request.kms_key_id,
                version_id: String::new(),
            }),
        };
        fill_disk_defaults(&mut disk);
        let metadata = pack(&CreateDiskMetadata {
            disk_id: disk.id.clone(),
        });
        let work = Work::Copy {
            source: match &disk.source {
                Some(disk::Source::SourceImageId(id) | disk::Source::SourceSnapshotId(id)) => {
                    Some(id.clone())
                }
                None => None,
            },
        };
        self.launch(
            call,
            Resource::Disk { disk, os },
            "Create disk",
            metadata,
            work,
            seen,
        )
        .await
    }
}

/// A disk of a seed file: checked as the create request it stands for (the same rules
/// and messages as [`Catalog::create_disk`]), and given the defaults a create gives. Its
/// source, if it names one, is recorded as written.
pub(super) fn seeded_disk(
    mut disk: Disk,
    validator: &Validator,
    offerings: &Offerings,
) -> Result<Disk, Error> {
    let request = CreateDiskRequest {
        folder_id: disk.folder_id.clone(),
        name: disk.name.clone(),
        description: disk.description.clone(),
        labels: disk.labels.clone(),
        type_id: disk.type_id.clone(),
        zone_id: disk.zone_id.clone(),
        size: disk.size,
        block_size: disk.block_size,
        source: disk.source.clone().map(|source| match source {
            disk::Source::SourceImageId(id) => Source::ImageId(id),
            disk::Source::SourceSnapshotId(id) => Source::SnapshotId(id),
        }),
        disk_placement_policy: disk.disk_placement_policy.clone(),
        snapshot_schedule_ids: Vec::new(),
        hardware_generation: disk.hardware_generation.clone(),
        kms_key_id: disk
            .kms_key
            .as_ref()
            .map_or_else(String::new, |key| key.key_id.clone()),
    };
    validator.check(&CreateDiskRequest::full_name(), &request)?;
    check_disk_request(&request, offerings)?;
    fill_disk_defaults(&mut disk);
    Ok(disk)
}

/// A size a disk may have, as `CreateDiskRequest.size` states it: for a size the API
/// computes from a disk (a snapshot's `disk_size`).
pub(super) fn check_disk_size(field: &str, size: i64, validator: &Validator) -> Result<(), Error> {
    let range = validator
        .constraints(&CreateDiskRequest::full_name(), "size")
        .and_then(|constraints| constraints.value);
    let Some((min, max)) = range else {
        return Ok(());
    };
    let size_wide = i128::from(size);
    if min.is_none_or(|min| size_wide >= min) && max.is_none_or(|max| size_wide <= max) {
        return Ok(());
    }
    let bound = |bound: Option<i128>| bound.map_or_else(String::new, |bound| bound.to_string());
    Err(Error::invalid_field(
        field,
        format!(
            "value must be in range {}-{}, got {size}",
            bound(min),
            bound(max)
        ),
    ))
}

/// The rules of a disk's request beyond its proto's: a block size the API allows, and a
/// zone and a disk type this server offers.
fn check_disk_request(request: &CreateDiskRequest, offerings: &Offerings) -> Result<(), Error> {
    check_block_size(request.block_size)?;
    check_offered("zone_id", "zone", &request.zone_id, &offerings.zones)?;
    if !request.type_id.is_empty() {
        check_offered(
            "type_id",
            "disk type",
            &request.type_id,
            &offerings.disk_types,
        )?;
    }
    Ok(())
}

/// What a disk whose request left them out gets: [`DEFAULT_DISK_TYPE`] and
/// [`DEFAULT_BLOCK_SIZE`].
fn fill_disk_defaults(disk: &mut Disk) {
    if disk.type_id.is_empty() {
        disk.type_id = DEFAULT_DISK_TYPE.to_string();
    }
    if disk.block_size == 0 {
        disk.block_size = DEFAULT_BLOCK_SIZE;
    }
}

/// The block sizes a disk may have: 0 (the default, 4096) or a power of two in
/// [`BLOCK_SIZES`].
pub fn block_sizes() -> impl Iterator<Item = i64> {
    std::iter::once(0).chain(BLOCK_SIZES.filter(|size| size.count_ones() == 1))
}

/// Refuses a block size other than [`block_sizes`].
fn check_block_size(block_size: i64) -> Result<(), Error> {
    if block_size == 0 || (BLOCK_SIZES.contains(&block_size) && block_size.count_ones() == 1) {
        return Ok(());
    }
    Err(Error::invalid_field(
        "block_size",
        format!(
            "must be a power of two from {} to {} bytes, got {block_size}",
            BLOCK_SIZES.start(),
            BLOCK_SIZES.end()
        ),
    ))
}

/// `value` must be one of what is `offered`.
fn check_offered(field: &str, what: &str, value: &str, offered: &[String]) -> Result<(), Error> {
    if offered.iter().any(|known| known == value) {
        return Ok(());
    }
    Err(Error::invalid_field(
        field,
        format!(
            "unknown {what} {}; this server offers {}",
            crate::error::excerpt(value),
            offered.join(", ")
        ),
    ))
}

/// A disk must hold its source: `size` at least the source's minimum.
fn check_fits(size: i64, minimum: i64, source: &str) -> Result<(), Error> {
    if size < minimum {
        return Err(Error::invalid_field(
            "size",
            format!(
                "{size} is less than the minimum disk size of the source {source} ({minimum} bytes)"
            ),
        ));
    }
    Ok(())
}

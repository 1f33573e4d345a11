//! How every operation ends, decided once: from its kind of work and how the work came
//! out, what its resource becomes and what the operation ends with. The stores apply
//! [`conclude`] inside the transaction that ends the operation (`Store::conclude`), to the
//! resource as stored at that moment, so that no backend repeats these rules.
//!
//! | work | done | failed or cancelled |
//! |---|---|---|
//! | copy | the resource READY; the response is the resource | the resource is removed |
//! | import | the resource READY with what the import measured ([`ready_resource`]; a refused image fails instead) | the resource is removed |
//! | delete | the resource is removed; the response is `google.protobuf.Empty` | the resource is READY again |
//! | a change (update, move, relocate) with a delay | the resource as it is now is the response | refused (FAILED_PRECONDITION): it was stored when asked |
//! | a change whose resource is gone (a reset or an import removed it) | failed NOT_FOUND | the same |
//!
//! A change without a delay, and any change of access bindings, is done when stored and
//! never runs.

use super::{MAX_DISK_SIZE, MIN_DISK_SIZE};
use crate::error::Error;
use crate::model::image_file::{Format, Measured};
use crate::model::operations;
use crate::model::resource::{pack, status, OperationRecord, Resource, Work};
use crate::pb::operation::Operation;
use crate::store::{Outcome, ResourceChange, StoreError};

/// The transition of `Store::conclude`: see the module documentation.
pub fn conclude(
    record: &OperationRecord,
    resource: Option<Resource>,
    outcome: Outcome,
) -> Result<(Operation, ResourceChange), StoreError> {
    let running = &record.operation;
    let missing = || {
        StoreError::Corrupt(format!(
            "{} {} of running operation {} is missing",
            record.target.kind.display_name(),
            record.target.id,
            running.id
        ))
    };
    let failed = |error: crate::pb::google::rpc::Status, change: ResourceChange| {
        Ok((operations::failed(running, error), change))
    };
    match (&record.work, outcome) {
        (Work::Copy { .. }, Outcome::Done) => {
            let mut resource = resource.ok_or_else(missing)?;
            resource.set_ready();
            let response = resource.to_any();
            Ok((
                operations::succeeded(running, response),
                ResourceChange::Put(Box::new(resource)),
            ))
        }
        (Work::ImportUri { .. }, Outcome::Imported(measured)) => {
            let resource = resource.ok_or_else(missing)?;
            match ready_resource(resource, &measured) {
                Ok(ready) => Ok((
                    operations::succeeded(running, ready.to_any()),
                    ResourceChange::Put(Box::new(ready)),
                )),
                Err(error) => failed(
                    error.to_rpc_status(),
                    ResourceChange::Remove(record.target.clone()),
                ),
            }
        }
        (Work::Copy { .. } | Work::ImportUri { .. }, Outcome::Failed(error)) => {
            failed(error, ResourceChange::Remove(record.target.clone()))
        }
        (Work::Delete, Outcome::Done) => Ok((
            operations::succeeded(running, pack(&())),
            ResourceChange::Remove(record.target.clone()),
        )),
        (Work::Delete, Outcome::Failed(error)) => {
            let change = match resource {
                Some(mut resource) => {
                    resource.set_status(status::READY);
                    ResourceChange::Put(Box::new(resource))
                }
                None => ResourceChange::Keep,
            };
            failed(error, change)
        }
        // A change was stored when asked; its operation only waited for its delay. A
        // resource removed meanwhile (by a reset or an import; a delete waits for the
        // change) leaves nothing to answer: it ends failed, so that it ends at all.
        (Work::Change(_), _) if resource.is_none() => failed(
            Error::NotFound(format!(
                "{} {} was removed before the change's operation ended",
                record.target.kind.display_name(),
                record.target.id
            ))
            .to_rpc_status(),
            ResourceChange::Keep,
        ),
        (Work::Change(_), Outcome::Done) => {
            let resource = resource.ok_or_else(missing)?;
            Ok((
                operations::succeeded(running, resource.to_any()),
                ResourceChange::Keep,
            ))
        }
        (Work::Change(_), Outcome::Failed(_)) => {
            Err(StoreError::Refused(Error::FailedPrecondition(format!(
                "operation {} is a change of {} {}, stored when it was asked: it cannot be \
                 cancelled or fail; it ends done after its delay, or when finished \
                 through the admin API",
                running.id,
                record.target.kind.display_name(),
                record.target.id
            ))))
        }
        (work, outcome) => Err(StoreError::Corrupt(format!(
            "operation {} ({}) cannot end with {outcome:?}",
            running.id,
            work.name()
        ))),
    }
}

/// The resource READY, with what the transfer measured; or why the image is refused.
pub fn ready_resource(resource: Resource, fetched: &Measured) -> Result<Resource, Error> {
    let recognized = fetched.recognized;
    let virtual_size = i64::try_from(recognized.virtual_size).unwrap_or(i64::MAX);
    let file_size = i64::try_from(recognized.file_size).unwrap_or(i64::MAX);
    let mut resource = match resource {
        Resource::ComputeImage(mut image) => {
            if recognized.format == Format::Iso9660 {
                return Err(Error::InvalidArgument(
                    "compute images must be qcow2, VMDK, VHD or raw; this is an ISO 9660 image \
                     (ISO images are for bare metal)"
                        .into(),
                ));
            }
            if virtual_size > MAX_DISK_SIZE {
                return Err(Error::InvalidArgument(format!(
                    "the image's virtual size, {virtual_size} bytes ({}), is larger than the \
                     largest disk, {MAX_DISK_SIZE} bytes",
                    recognized.format
                )));
            }
            if image.min_disk_size != 0 && image.min_disk_size < virtual_size {
                return Err(Error::InvalidArgument(format!(
                    "min_disk_size: {} is less than the virtual size of the image, {virtual_size} bytes ({})",
                    image.min_disk_size, recognized.format
                )));
            }
            if image.min_disk_size == 0 {
                image.min_disk_size = virtual_size.max(MIN_DISK_SIZE);
            }
            image.size = virtual_size;
            image.storage_size = file_size;
            Resource::ComputeImage(image)
        }
        Resource::BaremetalImage(mut image) => {
            if recognized.format != Format::Iso9660 {
                return Err(Error::InvalidArgument(format!(
                    "bare-metal images must be ISO 9660; this is {}",
                    recognized.format
                )));
            }
            if recognized.file_size < recognized.virtual_size {
                return Err(Error::InvalidArgument(format!(
                    "the ISO image is truncated: its volume is {} bytes, the file {} bytes",
                    recognized.virtual_size, recognized.file_size
                )));
            }
            image.checksum = fetched.md5_hex.clone();
            Resource::BaremetalImage(image)
        }
        other => {
            return Err(Error::Internal(format!(
                "an import targets a {}",
                other.kind().display_name()
            )))
        }
    };
    resource.set_ready();
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::image_file::Recognized;
    use crate::model::resource::{ResourceKind, ResourceRef};
    use crate::pb::{baremetal, compute};

    fn fetched(format: Format, virtual_size: u64, file_size: u64) -> Measured {
        Measured {
            recognized: Recognized {
                format,
                virtual_size,
                file_size,
            },
            md5_hex: "d41d8cd98f00b204e9800998ecf8427e".into(),
        }
    }

    fn compute_image(min_disk_size: i64) -> Resource {
        Resource::ComputeImage(compute::Image {
            min_disk_size,
            status: compute::image::Status::Creating as i32,
            ..Default::default()
        })
    }

    #[test]
    fn a_change_ends_done_with_its_resource_or_failed_when_it_is_gone() {
        use crate::model::resource::ChangeKind;
        let resource = compute_image(0);
        let record = OperationRecord {
            operation: operations::start("Update image", "tester", Default::default()),
            target: resource.reference(),
            work: Work::Change(ChangeKind::Update),
        };
        let (done, change) = conclude(&record, Some(resource.clone()), Outcome::Done).unwrap();
        assert!(done.done && change == ResourceChange::Keep);
        assert!(matches!(
            done.result,
            Some(crate::pb::operation::operation::Result::Response(_))
        ));
        let cancelled = Outcome::Failed(Error::Cancelled("stop".into()).to_rpc_status());
        assert!(matches!(
            conclude(&record, Some(resource), cancelled.clone()),
            Err(StoreError::Refused(Error::FailedPrecondition(_)))
        ));
        for outcome in [Outcome::Done, cancelled] {
            let (ended, change) = conclude(&record, None, outcome).unwrap();
            let Some(crate::pb::operation::operation::Result::Error(status)) = ended.result else {
                panic!("{ended:?}")
            };
            assert_eq!(status.code, crate::error::Code::NotFound.number());
            assert_eq!(change, ResourceChange::Keep);
        }
    }

    #[test]
    fn compute_sizes_follow_the_image() {
        let Resource::ComputeImage(image) = ready_resource(
            compute_image(0),
            &fetched(Format::Qcow2 { version: 3 }, 10 << 30, 5000),
        )
        .unwrap() else {
            unreachable!()
        };
        assert_eq!(
            (image.size, image.storage_size, image.min_disk_size),
            (10 << 30, 5000, 10 << 30)
        );
        assert_eq!(image.status, compute::image::Status::Ready as i32);

        let Resource::ComputeImage(tiny) =
            ready_resource(compute_image(0), &fetched(Format::Raw, 512, 512)).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(tiny.min_disk_size, MIN_DISK_SIZE);

        let error =
            ready_resource(compute_image(0), &fetched(Format::Raw, 5 << 40, 5 << 40)).unwrap_err();
        assert!(error.message().contains("largest disk"), "{error}");

        let error = ready_resource(
            compute_image(1 << 30),
            &fetched(Format::Raw, 2 << 30, 2 << 30),
        )
        .unwrap_err();
        assert!(
            error.message().contains(&(1i64 << 30).to_string()),
            "{error}"
        );
        assert!(
            error.message().contains(&(2i64 << 30).to_string()),
            "{error}"
        );
    }

    #[test]
    fn each_kind_takes_only_its_formats() {
        let error = ready_resource(
            compute_image(0),
            &fetched(Format::Iso9660, 1 << 20, 1 << 20),
        )
        .unwrap_err();
        assert_eq!(error.code(), crate::error::Code::InvalidArgument);
        let bare = Resource::BaremetalImage(baremetal::Image::default());
        let error = ready_resource(bare.clone(), &fetched(Format::Raw, 1, 1)).unwrap_err();
        assert!(error.message().contains("ISO 9660"), "{error}");
        let Resource::BaremetalImage(image) =
            ready_resource(bare, &fetched(Format::Iso9660, 1 << 20, 1 << 20)).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(image.checksum, "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn a_truncated_iso_is_refused() {
        let bare = Resource::BaremetalImage(baremetal::Image::default());
        let error = ready_resource(bare, &fetched(Format::Iso9660, 1 << 20, 1000)).unwrap_err();
        assert!(error.message().contains("truncated"), "{error}");
    }

    fn record(work: Work) -> OperationRecord {
        OperationRecord {
            operation: operations::start("Test", "tester", Default::default()),
            target: ResourceRef {
                kind: ResourceKind::ComputeImage,
                id: "fd8target".into(),
                folder_id: "b1gfolder".into(),
            },
            work,
        }
    }

    fn response_of(operation: &Operation) -> prost_types::Any {
        match &operation.result {
            Some(crate::pb::operation::operation::Result::Response(any)) => any.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_work_ends_as_its_table_says() {
        let copy = record(Work::Copy { source: None });
        let (done, change) = conclude(&copy, Some(compute_image(0)), Outcome::Done).unwrap();
        let ResourceChange::Put(ready) = change else {
            panic!()
        };
        assert_eq!(ready.status(), status::READY);
        assert_eq!(response_of(&done), ready.to_any());
        let error = Error::Cancelled("stop".into()).to_rpc_status();
        let (cancelled, change) =
            conclude(&copy, Some(compute_image(0)), Outcome::Failed(error)).unwrap();
        assert!(cancelled.done && matches!(change, ResourceChange::Remove(_)));
        assert!(
            conclude(&copy, None, Outcome::Done).is_err(),
            "a copy without its resource"
        );

        let delete = record(Work::Delete);
        let mut deleting = compute_image(0);
        deleting.set_status(status::DELETING);
        let (done, change) = conclude(&delete, Some(deleting.clone()), Outcome::Done).unwrap();
        assert!(matches!(change, ResourceChange::Remove(_)));
        assert_eq!(
            response_of(&done).type_url,
            "type.googleapis.com/google.protobuf.Empty"
        );
        let error = Error::Cancelled("stop".into()).to_rpc_status();
        let (_, change) = conclude(&delete, Some(deleting), Outcome::Failed(error)).unwrap();
        let ResourceChange::Put(restored) = change else {
            panic!()
        };
        assert_eq!(restored.status(), status::READY);

        let import = record(Work::ImportUri {
            uri: "http://h/x".into(),
        });
        let measured = Box::new(fetched(Format::Iso9660, 1 << 20, 1 << 20));
        let (refused, change) =
            conclude(&import, Some(compute_image(0)), Outcome::Imported(measured)).unwrap();
        assert!(matches!(
            refused.result,
            Some(crate::pb::operation::operation::Result::Error(_))
        ));
        assert!(matches!(change, ResourceChange::Remove(_)));
    }
}

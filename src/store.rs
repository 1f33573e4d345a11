//! Where resources and operations live. The [`Store`] trait is what the rest of the server
//! sees; backends implement it (today [`memory::MemoryStore`]).
//!
//! Invariants every backend keeps:
//! - a resource is inserted together with the operation that creates it, or not at all;
//! - among resources of one kind in one folder, a non-empty name is held by one resource;
//! - an operation is finished once: [`Store::finish`] applies only to an operation that is
//!   not done yet, together with its resource change.

pub mod memory;

use crate::pb::operation::Operation;
use crate::resource::{OperationRecord, Resource, ResourceKind, ResourceRef};
use async_trait::async_trait;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A non-empty name is taken by another resource of the same kind in the folder.
    NameTaken {
        kind: ResourceKind,
        folder_id: String,
        name: String,
    },
    /// The backend failed.
    Backend(String),
}

impl From<StoreError> for crate::error::Error {
    fn from(error: StoreError) -> crate::error::Error {
        match error {
            StoreError::NameTaken {
                kind,
                folder_id,
                name,
            } => crate::error::Error::AlreadyExists(format!(
                "{} with name \"{name}\" already exists in folder {folder_id}",
                kind.display_name()
            )),
            StoreError::Backend(message) => {
                crate::error::Error::Internal(format!("storage failed: {message}"))
            }
        }
    }
}

/// How finishing an operation changes its resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceChange {
    /// Store this state of the resource (e.g. READY).
    Put(Box<Resource>),
    /// Remove the resource: the operation failed or was cancelled.
    Remove(ResourceRef),
}

/// The result of [`Store::finish`].
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The operation was running and is now done as asked.
    Applied,
    /// The operation was already done; nothing changed. Carries it as it is.
    AlreadyDone(Box<Operation>),
    /// No such operation.
    Unknown,
}

/// The storage of resources and operations.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new resource and the operation that creates it, atomically.
    async fn create(
        &self,
        resource: Resource,
        operation: OperationRecord,
    ) -> Result<(), StoreError>;

    /// The resource of the given kind and id.
    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError>;

    /// The operation with the given id.
    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError>;

    /// Finishes a running copy in one step: its resource becomes READY, and the operation
    /// done (modified now) with that resource as its response. Does nothing to an
    /// operation that is already done. A running operation whose resource is missing is
    /// a `Backend` error.
    async fn finish_ready(
        &self,
        operation_id: &str,
        target: &ResourceRef,
    ) -> Result<Finished, StoreError>;

    /// Replaces a running operation by its finished form (done, with response or error)
    /// and applies the change to its resource, atomically; does nothing to an operation
    /// that is already done.
    async fn finish(
        &self,
        finished: Operation,
        change: ResourceChange,
    ) -> Result<Finished, StoreError>;
}

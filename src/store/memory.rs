//! The in-memory store: everything in hash maps behind one mutex. Fast, and gone when the
//! process exits; for tests, benchmarks and throwaway runs (`--database-url memory:`).
//! One process owns it, so leases are trivial: every running operation is this
//! replica's, and there are never orphans to claim.

use super::{codec, DueCopy, Finished, ResourceChange, Store, StoreError};
use crate::pb::operation::Operation;
use crate::resource::{OperationRecord, Resource, ResourceKind};
use async_trait::async_trait;
use std::collections::HashMap as StdHashMap;
use std::sync::Mutex;

type NameKey = (ResourceKind, String, String);

/// foldhash instead of SipHash: randomly seeded, and several times faster on these short
/// keys; the maps are read and written on every call.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Tables {
    // Boxed: rehashing a growing table then moves pointers, not whole records.
    resources: HashMap<(ResourceKind, String), Box<Resource>>,
    names: HashMap<NameKey, String>,
    operations: HashMap<String, Box<OperationRecord>>,
}

impl Tables {
    fn finish_copy(&mut self, copy: &DueCopy) -> Result<Finished, StoreError> {
        let Some(record) = self.operations.get_mut(&copy.operation_id) else {
            return Ok(Finished::Unknown);
        };
        if record.operation.done {
            return Ok(Finished::AlreadyDone(Box::new(record.operation.clone())));
        }
        let target = &copy.target;
        let Some(resource) = self.resources.get_mut(&(target.kind, target.id.clone())) else {
            return Err(copy.missing_target());
        };
        resource.set_ready();
        crate::operations::succeed(&mut record.operation, resource.to_any());
        Ok(Finished::Applied)
    }

    fn name_key(resource: &Resource) -> Option<NameKey> {
        (!resource.name().is_empty()).then(|| {
            (
                resource.kind(),
                resource.folder_id().to_string(),
                resource.name().to_string(),
            )
        })
    }

    fn remove_resource(&mut self, kind: ResourceKind, id: &str) {
        if let Some(resource) = self.resources.remove(&(kind, id.to_string())) {
            if let Some(key) = Tables::name_key(&resource) {
                if self.names.get(&key).is_some_and(|owner| owner == id) {
                    self.names.remove(&key);
                }
            }
        }
    }
}

/// A [`Store`] that keeps everything in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated: every
        // change below is made after all checks, so a poisoned lock is still consistent.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(
        &self,
        resource: Resource,
        operation: OperationRecord,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let name_key = Tables::name_key(&resource);
        if let Some(key) = &name_key {
            if tables.names.contains_key(key) {
                return Err(StoreError::NameTaken {
                    kind: key.0,
                    folder_id: key.1.clone(),
                    name: key.2.clone(),
                });
            }
        }
        let id = resource.id().to_string();
        if let Some(key) = name_key {
            tables.names.insert(key, id.clone());
        }
        tables
            .resources
            .insert((resource.kind(), id), Box::new(resource));
        tables
            .operations
            .insert(operation.operation.id.clone(), Box::new(operation));
        Ok(())
    }

    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError> {
        Ok(self
            .tables()
            .resources
            .get(&(kind, id.to_string()))
            .map(|resource| resource.as_ref().clone()))
    }

    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        Ok(self
            .tables()
            .operations
            .get(id)
            .map(|record| record.as_ref().clone()))
    }

    async fn finish_copies(&self, copies: &[DueCopy]) -> Vec<Result<Finished, StoreError>> {
        let mut guard = self.tables();
        copies.iter().map(|copy| guard.finish_copy(copy)).collect()
    }

    async fn finish(
        &self,
        finished: Operation,
        change: ResourceChange,
    ) -> Result<Finished, StoreError> {
        let mut tables = self.tables();
        let Some(record) = tables.operations.get_mut(&finished.id) else {
            return Ok(Finished::Unknown);
        };
        if record.operation.done {
            return Ok(Finished::AlreadyDone(Box::new(record.operation.clone())));
        }
        record.operation = finished;
        match change {
            ResourceChange::Put(resource) => {
                tables
                    .resources
                    .insert((resource.kind(), resource.id().to_string()), resource);
            }
            ResourceChange::Remove(target) => tables.remove_resource(target.kind, &target.id),
        }
        Ok(Finished::Applied)
    }

    async fn describe_running(
        &self,
        operation_id: &str,
        description: &str,
    ) -> Result<(), StoreError> {
        if let Some(record) = self.tables().operations.get_mut(operation_id) {
            if !record.operation.done {
                record.operation.description = description.to_string();
            }
        }
        Ok(())
    }

    async fn renew_leases(&self, operation_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let tables = self.tables();
        Ok(operation_ids
            .iter()
            .filter(|id| {
                tables
                    .operations
                    .get(id.as_str())
                    .is_some_and(|record| !record.operation.done)
            })
            .cloned()
            .collect())
    }

    async fn claim_orphans(&self, _limit: usize) -> Result<Vec<OperationRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn release_leases(&self, _operation_ids: &[String]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge_finished(
        &self,
        finished_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut tables = self.tables();
        let expired: Vec<String> = tables
            .operations
            .iter()
            .filter(|(_, record)| {
                record.operation.done
                    && codec::modified_at_ms(&record.operation) < finished_before_ms
            })
            .map(|(id, _)| id.clone())
            .take(limit)
            .collect();
        for id in &expired {
            tables.operations.remove(id);
        }
        Ok(expired.len())
    }
}

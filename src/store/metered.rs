//! The store as the server uses it: every call timed into the metrics
//! (`imageplane_store_call_duration_seconds{call}`), then passed to the store it wraps.

use super::query::ListQuery;
use super::snapshot::{ImportCounts, Prepared};
use super::{
    Change, Ending, Finished, FolderCounts, Inspect, IssuedToken, KeyClaim, Keys, Leases,
    Operations, Reading, RecentOperations, ResetCounts, Resources, Source, SourceSeen, Store,
    StoreError, StoredKey, Transition,
};
use crate::metrics::CallLabel;
use crate::model::resource::{OperationRecord, Resource, ResourceKind};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::AccessBinding;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// See the module documentation.
pub struct Metered(pub Arc<dyn Store>);

/// Runs a store call and records how long it took.
async fn timed<T>(call: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = work.await;
    crate::metrics::global()
        .store_seconds
        .get_or_create(&CallLabel { call })
        .observe(started.elapsed().as_secs_f64());
    result
}

#[async_trait]
impl Resources for Metered {
    async fn create_copy(
        &self,
        resource: Resource,
        operation: OperationRecord,
        claim: Option<&KeyClaim>,
        seen: Option<SourceSeen>,
    ) -> Result<(), StoreError> {
        timed(
            "create",
            self.0.create_copy(resource, operation, claim, seen),
        )
        .await
    }

    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError> {
        timed("resource", self.0.resource(kind, id)).await
    }

    async fn source(
        &self,
        kind: ResourceKind,
        id: &str,
        reading: Reading,
    ) -> Result<Option<Source>, StoreError> {
        timed("source", self.0.source(kind, id, reading)).await
    }

    fn keeps_sources(&self) -> bool {
        self.0.keeps_sources()
    }

    async fn change(
        &self,
        kind: ResourceKind,
        id: &str,
        change: Change,
        claim: Option<&KeyClaim>,
    ) -> Result<OperationRecord, StoreError> {
        timed("change", self.0.change(kind, id, change, claim)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Resource>, StoreError> {
        timed("list", self.0.list(query)).await
    }

    async fn access_bindings(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Vec<AccessBinding>>, StoreError> {
        timed("access_bindings", self.0.access_bindings(kind, id)).await
    }

    async fn seed(&self, resources: Vec<Resource>) -> Result<usize, StoreError> {
        timed("seed", self.0.seed(resources)).await
    }
}

#[async_trait]
impl Operations for Metered {
    async fn operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        timed("operation", self.0.operation(id)).await
    }

    async fn conclude(
        &self,
        endings: Vec<Ending>,
        transition: Transition,
    ) -> Vec<Result<Finished, StoreError>> {
        timed("conclude", self.0.conclude(endings, transition)).await
    }

    async fn describe_running(
        &self,
        operation_id: &str,
        description: &str,
    ) -> Result<(), StoreError> {
        timed(
            "describe_running",
            self.0.describe_running(operation_id, description),
        )
        .await
    }

    async fn operations_of(
        &self,
        target_id: &str,
        folders: Option<&[String]>,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError> {
        timed(
            "operations_of",
            self.0.operations_of(target_id, folders, after, limit),
        )
        .await
    }

    async fn purge_finished(
        &self,
        finished_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        timed(
            "purge_finished",
            self.0.purge_finished(finished_before_ms, limit),
        )
        .await
    }
}

#[async_trait]
impl Leases for Metered {
    async fn renew_leases(&self, operation_ids: &[String]) -> Result<Vec<String>, StoreError> {
        timed("renew_leases", self.0.renew_leases(operation_ids)).await
    }

    async fn claim_orphans(&self, limit: usize) -> Result<Vec<OperationRecord>, StoreError> {
        timed("claim_orphans", self.0.claim_orphans(limit)).await
    }

    async fn release_leases(&self, operation_ids: &[String]) -> Result<(), StoreError> {
        timed("release_leases", self.0.release_leases(operation_ids)).await
    }
}

#[async_trait]
impl Keys for Metered {
    async fn idempotency_key(
        &self,
        subject: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        timed("idempotency_key", self.0.idempotency_key(subject, key)).await
    }

    async fn put_token(&self, token: &IssuedToken) -> Result<(), StoreError> {
        timed("put_token", self.0.put_token(token)).await
    }

    async fn token(&self, sha256: &str) -> Result<Option<IssuedToken>, StoreError> {
        timed("token", self.0.token(sha256)).await
    }

    async fn expire_token(
        &self,
        sha256: &str,
        at_ms: i64,
    ) -> Result<Option<IssuedToken>, StoreError> {
        timed("expire_token", self.0.expire_token(sha256, at_ms)).await
    }

    async fn purge_keys_and_tokens(
        &self,
        keys_before_ms: i64,
        tokens_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        timed(
            "purge_keys_and_tokens",
            self.0
                .purge_keys_and_tokens(keys_before_ms, tokens_before_ms, limit),
        )
        .await
    }

    async fn page_key(&self) -> Result<Vec<u8>, StoreError> {
        timed("page_key", self.0.page_key()).await
    }
}

#[async_trait]
impl Inspect for Metered {
    async fn folder_counts(
        &self,
        folders: Option<&[String]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FolderCounts>, StoreError> {
        timed("folder_counts", self.0.folder_counts(folders, after, limit)).await
    }

    async fn recent_operations(
        &self,
        folders: Option<&[String]>,
        target_id: Option<&str>,
        limit: usize,
    ) -> Result<RecentOperations, StoreError> {
        timed(
            "recent_operations",
            self.0.recent_operations(folders, target_id, limit),
        )
        .await
    }
}

#[async_trait]
impl Store for Metered {
    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.0.ping()).await
    }

    async fn reset(&self, seeds: Vec<Resource>) -> Result<ResetCounts, StoreError> {
        timed("reset", self.0.reset(seeds)).await
    }

    async fn export_state(&self) -> Result<Vec<u8>, StoreError> {
        timed("export_state", self.0.export_state()).await
    }

    async fn import_state(&self, snapshot: Prepared) -> Result<ImportCounts, StoreError> {
        timed("import_state", self.0.import_state(snapshot)).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.0.close().await
    }
}

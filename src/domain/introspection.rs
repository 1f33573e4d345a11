//! The rules of imageplane's introspection API (`imageplane.v1.IntrospectionService`):
//! what the server holds and does, beyond what the cloud's API can tell, for the console
//! and for test suites. Every answer keeps to the caller's folders, as the cloud's lists
//! do; nothing here changes anything.

use super::admin::Admin;
use super::call::CallContext;
use crate::error::Error;
use crate::model::resource::{OperationRecord, ResourceKind, WORK_KINDS};
use crate::pb::imageplane::v1::{
    FolderSummary, ImportProgress, ListOperationsResponse, OperationSummary, ServerInfo,
};
use crate::pb::int64;
use crate::store::Store;
use crate::work::executor::Executor;
use std::sync::Arc;
use std::time::SystemTime;

/// How many folders, or running and ended operations, a list answers when the request
/// does not say.
pub const DEFAULT_PAGE: usize = 100;

/// A request's page size (0: the default; the proto bounds it).
fn page_limit(page_size: i64) -> usize {
    match usize::try_from(page_size) {
        Ok(0) | Err(_) => DEFAULT_PAGE,
        Ok(limit) => limit,
    }
}

/// Facts about the server that do not change while it runs.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub version: &'static str,
    /// "sqlite", "memory" or "postgres".
    pub store: &'static str,
    pub started_at: SystemTime,
    /// Whether calls need a token.
    pub authentication: bool,
}

/// See the module documentation.
pub struct Introspection {
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    admin: Arc<Admin>,
    facts: ServerFacts,
}

/// The API's name of a kind of resource.
fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::ComputeImage => "compute.image",
        ResourceKind::Snapshot => "compute.snapshot",
        ResourceKind::Disk => "compute.disk",
        ResourceKind::BaremetalImage => "baremetal.image",
    }
}

impl Introspection {
    pub fn new(
        store: Arc<dyn Store>,
        executor: Arc<Executor>,
        admin: Arc<Admin>,
        facts: ServerFacts,
    ) -> Introspection {
        Introspection {
            store,
            executor,
            admin,
            facts,
        }
    }

    /// The server, and what this caller may do on it.
    pub fn server(&self, call: &CallContext) -> ServerInfo {
        ServerInfo {
            version: self.facts.version.to_string(),
            store: self.facts.store.to_string(),
            started_at: Some(prost_types::Timestamp::from(self.facts.started_at)),
            authentication: self.facts.authentication,
            admin_enabled: self.admin.enabled(),
            admin: self.admin.check(&call.caller).is_ok(),
            subject: call.caller.subject.clone(),
            folders: call
                .caller
                .folder_list()
                .map(|mut folders| {
                    folders.sort();
                    folders
                })
                .unwrap_or_default(),
            work_kinds: WORK_KINDS.iter().map(|kind| kind.to_string()).collect(),
        }
    }

    /// A page of the folders the caller may use that hold resources, with their counts,
    /// and the token of the next page (empty on the last).
    pub async fn folders(
        &self,
        call: &CallContext,
        page_size: i64,
        page_token: &str,
    ) -> Result<(Vec<FolderSummary>, String), Error> {
        let visible = call.caller.folder_list();
        let limit = page_limit(page_size);
        let after = Some(page_token).filter(|token| !token.is_empty());
        // One more than the page, to know whether another follows.
        let mut counts = self
            .store
            .folder_counts(visible.as_deref(), after, limit + 1)
            .await?;
        let next = match counts.len() > limit {
            true => {
                counts.truncate(limit);
                counts
                    .last()
                    .map(|last| last.folder_id.clone())
                    .unwrap_or_default()
            }
            false => String::new(),
        };
        let folders = counts
            .into_iter()
            .map(|folder| {
                let of = |kind: ResourceKind| {
                    int64(
                        folder
                            .resources
                            .iter()
                            .filter(|(each, _)| *each == kind)
                            .map(|(_, count)| count)
                            .sum(),
                    )
                };
                FolderSummary {
                    images: of(ResourceKind::ComputeImage),
                    snapshots: of(ResourceKind::Snapshot),
                    disks: of(ResourceKind::Disk),
                    baremetal_images: of(ResourceKind::BaremetalImage),
                    running_operations: int64(folder.running_operations),
                    folder_id: folder.folder_id,
                }
            })
            .collect();
        Ok((folders, next))
    }

    /// The newest running operations, with an import's progress when it runs here, and
    /// the ones that ended last, read together: in `folder_id` (which the caller must be
    /// allowed to use), or in every folder the caller may use; of one resource when
    /// `resource_id` is given.
    pub async fn operations(
        &self,
        call: &CallContext,
        folder_id: &str,
        resource_id: &str,
        page_size: i64,
    ) -> Result<ListOperationsResponse, Error> {
        let folders = match folder_id {
            "" => call.caller.folder_list(),
            folder_id => {
                call.caller.check_folder(folder_id)?;
                Some(vec![folder_id.to_string()])
            }
        };
        let resource = Some(resource_id).filter(|id| !id.is_empty());
        let recent = self
            .store
            .recent_operations(folders.as_deref(), resource, page_limit(page_size))
            .await?;
        Ok(ListOperationsResponse {
            running: recent
                .running
                .into_iter()
                .map(|each| self.summary(each))
                .collect(),
            ended: recent
                .ended
                .into_iter()
                .map(|each| self.summary(each))
                .collect(),
        })
    }

    fn summary(&self, record: OperationRecord) -> OperationSummary {
        let import_progress = match record.operation.done {
            true => None,
            false => self
                .executor
                .import_progress(&record.operation.id)
                .map(|reading| ImportProgress {
                    bytes_fetched: int64(reading.received),
                    bytes_total: int64(reading.expected.unwrap_or(0)),
                    bytes_per_second: reading.bytes_per_second(),
                    seconds_left: reading
                        .time_left()
                        .map_or(-1, |left| int64(left.as_secs_f64().ceil() as u64)),
                    started_at: Some(prost_types::Timestamp::from(reading.started_at)),
                }),
        };
        OperationSummary {
            folder_id: record.target.folder_id,
            resource_kind: kind_name(record.target.kind).to_string(),
            resource_id: record.target.id,
            import_progress,
            operation: Some(record.operation),
        }
    }
}

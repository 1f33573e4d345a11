//! The rules of imageplane: what a request may ask, what a new resource inherits from its
//! source, and how a create becomes a stored resource plus a running operation.
//!
//! [`Catalog`] is the one entry point for resources and operations, [`identity::Identities`]
//! for tokens, [`introspection::Introspection`] for summaries of what the server holds;
//! `api` adapts gRPC to them. One submodule per kind of resource holds its create rules;
//! [`validation`] checks requests against their protos; [`call`] is what the RPC layer
//! tells the domain about a call. The domain speaks in [`Error`]s and generated
//! protobuf messages; it knows nothing of tonic or HTTP.
//!
//! Uses `work` (to start and cancel background work), `store`, `model` and the leaves;
//! never `rpc`, `api` or the layers above them.

pub mod access;
pub mod admin;
mod baremetal;
pub mod call;
mod disk;
pub mod filter;
pub mod idempotency;
pub mod identity;
mod image;
pub mod introspection;
pub mod lifecycle;
pub mod listing;
pub mod mask;
pub mod page_token;
pub mod seed;
mod snapshot;
pub mod transitions;
pub mod validation;

use crate::domain::call::CallContext;
use crate::domain::validation::Validator;
use crate::error::{excerpt, Error};
use crate::model::operations;
use crate::model::resource::{OperationRecord, Readiness, Resource, ResourceKind, Work};
use crate::pb::operation::Operation;
use crate::store::{Outcome, Reading, ResourceChange, SourceSeen, Store};
use crate::work::executor::Executor;
use std::sync::Arc;

/// The folder of the public image catalogue (seeded at start): read-only to the API,
/// readable by every caller.
pub const PUBLIC_FOLDER: &str = "standard-images";

/// The largest disk, and so the largest image: the API's upper bound for
/// `min_disk_size`, 4 TiB.
pub const MAX_DISK_SIZE: i64 = 4 << 40;
/// The smallest `min_disk_size` an image gets: the API's lower bound, 4 MiB.
pub const MIN_DISK_SIZE: i64 = 4 << 20;

/// What the cloud offers, which requests must name: zones and disk types
/// (`--zones`, `--disk-types`).
#[derive(Debug, Clone)]
pub struct Offerings {
    pub zones: Vec<String>,
    pub disk_types: Vec<String>,
}

impl Default for Offerings {
    /// Yandex Cloud's zones in ru-central1 and its disk types.
    fn default() -> Offerings {
        Offerings {
            zones: ["ru-central1-a", "ru-central1-b", "ru-central1-d"]
                .map(String::from)
                .to_vec(),
            disk_types: [
                "network-hdd",
                "network-ssd",
                "network-ssd-nonreplicated",
                "network-ssd-io-m3",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// The resources and operations of one imageplane, and the rules that change them.
pub struct Catalog {
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    validator: Validator,
    offerings: Offerings,
    page_tokens: page_token::PageTokens,
}

impl Catalog {
    /// The catalog on a store; reads the store's page-token key.
    pub async fn new(
        store: Arc<dyn Store>,
        executor: Arc<Executor>,
        validator: Validator,
        offerings: Offerings,
    ) -> Result<Catalog, Error> {
        // Deterministic ids: page tokens must repeat from run to run too.
        let key = match crate::ids::deterministic_key("page tokens") {
            Some(key) => key,
            None => store.page_key().await?,
        };
        Ok(Catalog {
            store,
            executor,
            validator: validator.with_domain_rules(domain_rules(&offerings)),
            offerings,
            page_tokens: page_token::PageTokens::new(&key),
        })
    }

    /// Checks a request against the validation options of its proto. Every method's
    /// request is checked once, as it enters (`api::accept`); the domain's methods take
    /// requests that passed.
    pub fn validate<M: prost::Message + prost::Name>(&self, request: &M) -> Result<(), Error> {
        self.validator.check(&M::full_name(), request)?;
        Ok(())
    }

    /// Checks an Update request of `kind` whose mask has `paths`: the mask first read
    /// (`mask::resolve`), then the request against its proto with only the fields the
    /// mask names, so a field outside the mask neither changes nor refuses the call.
    /// A broken rule of the request is reported before a bad mask.
    pub fn validate_update<M: prost::Message + prost::Name>(
        &self,
        kind: ResourceKind,
        request: &M,
        paths: &[String],
    ) -> Result<(), Error> {
        let descriptor = lifecycle::update_request(kind);
        let updatable = lifecycle::updatable(kind);
        let mask = mask::resolve(&descriptor, updatable, paths);
        let mut masked =
            prost_reflect::DynamicMessage::decode(descriptor, request.encode_to_vec().as_slice())
                .map_err(|error| Error::Internal(format!("re-reading the request: {error}")))?;
        let unset = mask::keep_masked(&mut masked, updatable, mask.as_deref().unwrap_or_default());
        self.validator
            .check_except(&M::full_name(), &masked, &unset)?;
        mask.map(|_| ())
    }

    /// The rules requests are validated by (the OpenAPI document states them too).
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The resource of the given kind, or NOT_FOUND: also when it is in a folder the
    /// caller may not use, so that an answer never tells whether an id exists elsewhere.
    pub async fn get(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Resource, Error> {
        self.store
            .resource(kind, id)
            .await?
            .filter(|resource| call.caller.may_use(resource.folder_id()))
            .ok_or_else(|| not_found(kind, id))
    }

    /// The resource of kind `K`, as its message (see [`Catalog::get`]).
    pub async fn get_typed<K: crate::model::resource::Kind>(
        &self,
        call: &CallContext,
        id: &str,
    ) -> Result<K, Error> {
        let resource = self.get(call, K::KIND, id).await?;
        K::from_resource(resource).ok_or_else(|| {
            Error::Internal(format!(
                "the store answered another kind for {} {}",
                K::KIND.display_name(),
                excerpt(id)
            ))
        })
    }

    /// The operation with the given id, or NOT_FOUND: also when its resource is in a
    /// folder the caller may not use (as [`Catalog::get`]).
    pub async fn operation(&self, call: &CallContext, id: &str) -> Result<Operation, Error> {
        self.store
            .operation(id)
            .await?
            .filter(|record| call.caller.may_use(&record.target.folder_id))
            .map(|record| record.operation)
            .ok_or_else(|| Error::NotFound(format!("Operation {} not found", excerpt(id))))
    }

    /// Cancels an operation (see [`Executor::cancel`]), if the caller may see it.
    pub async fn cancel(&self, call: &CallContext, id: &str) -> Result<Operation, Error> {
        let operation = self.operation(call, id).await?;
        self.executor.cancel(operation).await
    }

    /// A source resource: NOT_FOUND if it does not exist, FAILED_PRECONDITION if it is
    /// not READY.
    async fn ready_source(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        id: &str,
        reading: Reading,
    ) -> Result<(Resource, SourceSeen), Error> {
        let source = self
            .store
            .source(kind, id, reading)
            .await?
            .filter(|source| call.caller.may_use(source.resource.folder_id()))
            .ok_or_else(|| not_found(kind, id))?;
        match source.resource.readiness() {
            Readiness::Ready => Ok((source.resource, source.seen)),
            Readiness::Creating => Err(Error::FailedPrecondition(format!(
                "{} {id} is not ready yet: it is still being created",
                kind.display_name()
            ))),
            Readiness::Other => Err(Error::FailedPrecondition(format!(
                "{} {id} is not ready",
                kind.display_name()
            ))),
        }
    }

    /// Runs `create`, a create that copies from a source (`copies`): first with the source
    /// as the store may keep it ([`Reading::MayUseKept`]), then, where the store keeps
    /// sources and the first try was refused as a stale copy could have made it
    /// ([`stale_source_could_refuse`]), once more with the source read from the database.
    /// So neither a write (which confirms the source, `SourceSeen`) nor a refusal is ever
    /// decided by a stale copy.
    async fn reading_source<R, Created>(
        &self,
        request: R,
        copies: bool,
        create: impl Fn(R, Reading) -> Created,
    ) -> Result<Operation, Error>
    where
        R: Clone,
        Created: std::future::Future<Output = Result<Operation, Error>>,
    {
        let again = (copies && self.store.keeps_sources()).then(|| request.clone());
        // Each attempt on the heap: a create's future is large, and two of them inline
        // made the handler's future, which tonic moves into a box, larger still.
        let first = Box::pin(create(request, Reading::MayUseKept)).await;
        match (first, again) {
            (Err(error), Some(request)) if stale_source_could_refuse(&error) => {
                Box::pin(create(request, Reading::Stored)).await
            }
            (result, _) => result,
        }
    }

    /// Stores a new CREATING resource with its running operation and starts the work.
    /// Nothing is created in the public catalogue's folder, nor in one the caller may not
    /// use; the operation is created by the caller's subject. A copy's write confirms
    /// its source as it was read (`seen`).
    async fn launch(
        &self,
        call: &CallContext,
        resource: Resource,
        description: &str,
        metadata: prost_types::Any,
        work: Work,
        seen: Option<SourceSeen>,
    ) -> Result<Operation, Error> {
        lifecycle::check_changeable(&call.caller, resource.folder_id())?;
        let operation = operations::start(description, &call.caller.subject, metadata);
        let record = OperationRecord {
            operation: operation.clone(),
            target: resource.reference(),
            work,
        };
        if self.executor.is_instant(&record) {
            // A copy without a duration has no background part: it is stored finished, as
            // its ending decides, in the create's own transaction (one commit, not two).
            // The caller is still answered with the operation as started, as every create
            // is answered; the next Get finds it done.
            let (finished, change) = transitions::conclude(&record, Some(resource), Outcome::Done)?;
            let ResourceChange::Put(ready) = change else {
                unreachable!("a copy that is done puts its resource")
            };
            let record = OperationRecord {
                operation: finished,
                ..record
            };
            let kind = crate::model::resource::work_kind(&record.work, record.target.kind);
            self.store
                .create_copy(*ready, record, call.claim.as_ref(), seen)
                .await?;
            if let Some(kind) = kind {
                crate::metrics::global().operation_ended(kind, "OK", std::time::Duration::ZERO);
            }
            return Ok(operation);
        }
        self.store
            .create_copy(resource, record.clone(), call.claim.as_ref(), seen)
            .await?;
        self.executor.start(record);
        Ok(operation)
    }
}

/// Whether a copy's create could have been refused so because the source it read was a
/// stale copy: the source missing, not ready or elsewhere (NOT_FOUND, FAILED_PRECONDITION),
/// its sizes (INVALID_ARGUMENT), or changed since (ABORTED). Not a storage error (INTERNAL,
/// UNAVAILABLE): a statement whose answer was lost may have committed, and trying again
/// would store a second resource. Not a taken name either, which no source decides.
fn stale_source_could_refuse(error: &Error) -> bool {
    matches!(
        error,
        Error::NotFound(_)
            | Error::FailedPrecondition(_)
            | Error::InvalidArgument(_)
            | Error::InvalidField { .. }
            | Error::Aborted(_)
    )
}

/// The rules the domain checks itself about single fields, for documents that describe
/// the API (see [`validation::DomainRule`]): the offered zones and disk types, the block
/// sizes, and the shapes of an access binding's role and subject.
fn domain_rules(offerings: &Offerings) -> Vec<validation::DomainRule> {
    use validation::DomainRule;
    let values = |message, field, values: Vec<String>| DomainRule {
        message,
        field,
        values: Some(values),
        pattern: None,
    };
    let pattern = |message, field, pattern: &str| DomainRule {
        message,
        field,
        values: None,
        pattern: Some(pattern.to_string()),
    };
    let disk_types = std::iter::once(String::new())
        .chain(offerings.disk_types.iter().cloned())
        .collect();
    vec![
        values(
            "yandex.cloud.compute.v1.CreateDiskRequest",
            "zone_id",
            offerings.zones.clone(),
        ),
        values(
            "yandex.cloud.compute.v1.RelocateDiskRequest",
            "destination_zone_id",
            offerings.zones.clone(),
        ),
        values(
            "yandex.cloud.compute.v1.CreateDiskRequest",
            "type_id",
            disk_types,
        ),
        values(
            "yandex.cloud.compute.v1.CreateDiskRequest",
            "block_size",
            disk::block_sizes().map(|size| size.to_string()).collect(),
        ),
        values(
            "yandex.cloud.access.Subject",
            "type",
            access::SUBJECT_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
        ),
        pattern(
            "yandex.cloud.access.AccessBinding",
            "role_id",
            access::ID_PATTERN,
        ),
        pattern("yandex.cloud.access.Subject", "id", access::ID_PATTERN),
    ]
}

/// NOT_FOUND for a resource of `kind` that does not exist.
fn not_found(kind: ResourceKind, id: &str) -> Error {
    Error::NotFound(format!("{} {} not found", kind.display_name(), excerpt(id)))
}

/// A number of bytes the API computes (a seed file may give it): from 0 to `max`.
fn check_byte_count(field: &str, bytes: i64, max: i64) -> Result<(), Error> {
    if (0..=max).contains(&bytes) {
        return Ok(());
    }
    Err(Error::invalid_field(
        field,
        format!("value must be in range 0-{max}, got {bytes}"),
    ))
}

/// Checks that `uri` is an absolute http or https URL with a host.
fn check_source_uri(uri: &str) -> Result<(), Error> {
    let invalid = |why: &str| {
        Error::invalid_field(
            "uri",
            format!(
                "{why}; an absolute http:// or https:// URL is required, got {}",
                excerpt(&crate::redact::url(uri))
            ),
        )
    };
    // The URL parser forgives what the API must refuse: `https:///x` (it would take `x`
    // as the host) and `http:host/x`. A valid source spells out `scheme://host`.
    let after_scheme = uri.split_once(':').map_or("", |(_, rest)| rest);
    match after_scheme.strip_prefix("//") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
        _ => return Err(invalid("the URL must start with scheme://host")),
    }
    let parsed = url::Url::parse(uri).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(&format!(
            "scheme {:?} is not supported",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_uris_must_be_http_or_https_with_a_host() {
        assert!(check_source_uri("https://storage.example.com/bucket/image.qcow2").is_ok());
        assert!(check_source_uri("http://127.0.0.1:8080/x.iso").is_ok());
        for bad in [
            "",
            "storage/image.qcow2",
            "ftp://host/x",
            "file:///etc/passwd",
            "http://",
        ] {
            let error = check_source_uri(bad).unwrap_err();
            assert!(error.message().starts_with("uri: "), "{bad}: {error}");
        }
    }
}

//! The gRPC adapters: one per service, each turning a request into a call on the
//! [`Catalog`](crate::domain::Catalog) and its result into a response. No rules live here:
//! an adapter validates the request against its proto (`Catalog::validate`), reads its
//! fields into the domain's arguments, and answers. The access-binding methods of the
//! three compute services share [`access`].

pub mod access;
pub mod baremetal_image;
pub mod compute_disk;
pub mod compute_image;
pub mod compute_snapshot;
pub mod endpoint;
pub mod iam;
pub mod operation;

use crate::domain::call::CallContext;
use crate::domain::Catalog;
use crate::error::Error;
use crate::pb::operation::Operation;
use std::future::Future;

/// Turns a domain result into a gRPC response.
fn respond<T>(result: Result<T, Error>) -> Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}

/// A request's call context (which `rpc_layer` put into its extensions, taken out of
/// them) and message.
pub fn split<R>(request: tonic::Request<R>) -> Result<(CallContext, R), Error> {
    let (_metadata, mut extensions, message) = request.into_parts();
    let call = extensions
        .remove::<CallContext>()
        .ok_or_else(|| Error::Internal("the call bypassed the RPC layer".into()))?;
    Ok((call, message))
}

/// Answers with the operation `method` starts for the call, under the call's idempotency
/// key (`domain::idempotency`): for the creates, whose domain functions validate the
/// request themselves.
async fn start<R, Started>(
    catalog: &Catalog,
    request: tonic::Request<R>,
    method: impl FnOnce(CallContext, R) -> Started,
) -> Result<tonic::Response<Operation>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Started: Future<Output = Result<Operation, Error>>,
{
    let (call, request) = split(request)?;
    respond(started(catalog, call, request, method).await)
}

/// [`start`] for a request that is validated first (updates, deletes, moves, access
/// bindings).
async fn validated_start<R, Started>(
    catalog: &Catalog,
    request: tonic::Request<R>,
    method: impl FnOnce(CallContext, R) -> Started,
) -> Result<tonic::Response<Operation>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Started: Future<Output = Result<Operation, Error>>,
{
    let (call, request) = split(request)?;
    catalog.validate(&request)?;
    respond(started(catalog, call, request, method).await)
}

/// The operation `method` starts, under the call's idempotency key.
async fn started<R, Started>(
    catalog: &Catalog,
    call: CallContext,
    request: R,
    method: impl FnOnce(CallContext, R) -> Started,
) -> Result<Operation, Error>
where
    R: prost::Message + prost::Name,
    Started: Future<Output = Result<Operation, Error>>,
{
    let claim = catalog.key_claim(&call, &request)?;
    catalog
        .idempotent(call, claim, |call| method(call, request))
        .await
}

/// Validates the request, then answers with what `method` makes of it: the first steps
/// of every other method that reaches the domain.
async fn validated<R, T, Answer>(
    catalog: &Catalog,
    request: tonic::Request<R>,
    method: impl FnOnce(CallContext, R) -> Answer,
) -> Result<tonic::Response<T>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Answer: Future<Output = Result<T, Error>>,
{
    let (call, request) = split(request)?;
    catalog.validate(&request)?;
    respond(method(call, request).await)
}

/// The paths of an update mask.
fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

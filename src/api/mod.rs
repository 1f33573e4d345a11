//! The gRPC adapters: one per service, each turning a request into a call on the domain
//! ([`Catalog`], [`Identities`](crate::domain::identity::Identities)) and its result into
//! a response. No rules live here. Every method enters through [`accept`], which takes
//! the call's context out of the request (the RPC layer put it there) and validates the
//! request against its proto (an Update, only what its mask names: [`accept_checked`]); [`answer`] and [`start`] (the latter under the call's
//! idempotency key) are the two ways out. The methods every resource kind shares (Get,
//! List, Update, Delete, ListOperations, access bindings) are written once, in [`kinds`],
//! over small traits of the generated request types.
//!
//! Uses the domain and below; never the RPC layer, the gateway or the server.

pub mod admin;
pub mod baremetal_image;
pub mod compute_disk;
pub mod compute_image;
pub mod compute_snapshot;
pub mod endpoint;
pub mod iam;
pub mod introspection;
pub mod kinds;
pub mod operation;

use crate::domain::call::CallContext;
use crate::domain::Catalog;
use crate::error::Error;
use crate::pb::operation::Operation;
use std::future::Future;

/// The one entry point of every method: the request's call context (which the RPC layer
/// put into its extensions) and its message, validated against its proto.
pub fn accept<R>(catalog: &Catalog, request: tonic::Request<R>) -> Result<(CallContext, R), Error>
where
    R: prost::Message + prost::Name,
{
    accept_checked(request, |message| catalog.validate(message))
}

/// [`accept`] with another check than the whole message against its proto (an Update
/// checks only what its mask names: `Catalog::validate_update`).
pub fn accept_checked<R>(
    request: tonic::Request<R>,
    check: impl FnOnce(&R) -> Result<(), Error>,
) -> Result<(CallContext, R), Error> {
    let (_metadata, mut extensions, message) = request.into_parts();
    let call = extensions
        .remove::<CallContext>()
        .ok_or_else(|| Error::Internal("the call bypassed the RPC layer".into()))?;
    check(&message)?;
    Ok((call, message))
}

/// Accepts the request, then answers with what `method` makes of it.
pub async fn answer<R, T, Answer>(
    catalog: &Catalog,
    request: tonic::Request<R>,
    method: impl FnOnce(CallContext, R) -> Answer,
) -> Result<tonic::Response<T>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Answer: Future<Output = Result<T, Error>>,
{
    let (call, request) = accept(catalog, request)?;
    respond(method(call, request).await)
}

/// Accepts the request, then answers with the operation `method` starts, under the
/// call's idempotency key (`domain::idempotency`): a retried call answers the first
/// one's operation.
pub async fn start<R, Started>(
    catalog: &Catalog,
    request: tonic::Request<R>,
    method: impl FnOnce(CallContext, R) -> Started,
) -> Result<tonic::Response<Operation>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Started: Future<Output = Result<Operation, Error>>,
{
    start_checked(
        catalog,
        request,
        |message| catalog.validate(message),
        method,
    )
    .await
}

/// [`start`] with the check of [`accept_checked`].
pub async fn start_checked<R, Started>(
    catalog: &Catalog,
    request: tonic::Request<R>,
    check: impl FnOnce(&R) -> Result<(), Error>,
    method: impl FnOnce(CallContext, R) -> Started,
) -> Result<tonic::Response<Operation>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Started: Future<Output = Result<Operation, Error>>,
{
    let (call, request) = accept_checked(request, check)?;
    let claim = catalog.key_claim(&call, &request)?;
    respond(
        catalog
            .idempotent(call, claim, |call| method(call, request))
            .await,
    )
}

/// Turns a domain result into a gRPC response.
fn respond<T>(result: Result<T, Error>) -> Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}

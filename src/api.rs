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

use crate::error::Error;

/// Turns a domain result into a gRPC response.
fn respond<T>(result: Result<T, Error>) -> Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}

/// The paths of an update mask.
/// Validates the request, then answers with what `call` makes of it: the first two steps
/// of every method that reaches the domain.
async fn validated<R, T, Answer>(
    catalog: &crate::domain::Catalog,
    request: tonic::Request<R>,
    call: impl FnOnce(R) -> Answer,
) -> Result<tonic::Response<T>, tonic::Status>
where
    R: prost::Message + prost::Name,
    Answer: std::future::Future<Output = Result<T, Error>>,
{
    let request = request.into_inner();
    catalog.validate(&request)?;
    respond(call(request).await)
}

fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

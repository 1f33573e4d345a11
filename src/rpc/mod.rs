//! What every RPC passes through, whether it came over gRPC or through the REST gateway:
//! the layer that authenticates the caller, builds the call's context and keeps the
//! deadline ([`layer`], [`auth`]), and the codec that decodes requests ([`codec`]).
//! Below the gateway, above the API adapters: it knows no service.

pub mod auth;
pub mod codec;
pub mod layer;

use http::{Request, Response};
use std::convert::Infallible;

/// The largest request message accepted, in bytes: larger gRPC messages fail with
/// OUT_OF_RANGE, larger REST bodies with 413.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The gRPC services behind their layers, as one cloneable service: what the server
/// dispatches gRPC requests to and what the gateway calls in-process.
pub type GrpcService = tower::util::BoxCloneSyncService<
    Request<tonic::body::Body>,
    Response<tonic::body::Body>,
    Infallible,
>;

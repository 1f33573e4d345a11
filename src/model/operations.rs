//! Building Operation messages: a new running one, and its finished forms. Every mutating
//! call goes through here, so all operations look alike (id shape, timestamps, metadata).

use crate::ids;
use crate::pb::google::rpc;
use crate::pb::operation::{operation, Operation};
use prost_types::{Any, Timestamp};

/// The current time as a protobuf Timestamp.
pub fn now() -> Timestamp {
    Timestamp::from(ids::now())
}

/// A new running operation (done = false) with its metadata.
pub fn start(description: &str, created_by: &str, metadata: Any) -> Operation {
    let at = now();
    Operation {
        id: ids::new_id(ids::prefix::OPERATION),
        description: description.to_string(),
        created_at: Some(at),
        created_by: created_by.to_string(),
        modified_at: Some(at),
        done: false,
        metadata: Some(metadata),
        result: None,
    }
}

/// The operation finished with a response (the resource, packed in Any).
pub fn succeeded(running: &Operation, response: Any) -> Operation {
    let mut finished = running.clone();
    succeed(&mut finished, response);
    finished
}

/// When a running operation ends: now; with deterministic ids, its creation time, so that
/// an ending, which comes when its work does rather than when a call does, takes nothing
/// from the seeded clock (calls' ids and times stay the same from run to run).
fn ended_at(running: &Operation) -> Timestamp {
    match (ids::is_deterministic(), running.created_at) {
        (true, Some(created)) => created,
        _ => now(),
    }
}

/// Finishes an operation in place with a response.
pub fn succeed(operation: &mut Operation, response: Any) {
    operation.done = true;
    operation.modified_at = Some(ended_at(operation));
    operation.result = Some(operation::Result::Response(response));
}

/// The operation finished with an error.
pub fn failed(running: &Operation, error: rpc::Status) -> Operation {
    Operation {
        done: true,
        modified_at: Some(ended_at(running)),
        result: Some(operation::Result::Error(error)),
        ..running.clone()
    }
}

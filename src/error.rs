//! The one error type of imageplane, and the one table from each error to its gRPC code
//! and its HTTP status.
//!
//! Every layer below the API adapters returns [`Error`]. [`Error::code`] says which
//! google.rpc [`Code`] it is (an exhaustive match), and [`Code::wire`] gives each code its
//! number and the HTTP status the REST gateway answers with (grpc-gateway v2's mapping),
//! side by side. `api` turns an error into a `tonic::Status`, the executor into the
//! `google.rpc.Status` of a failed Operation, the gateway a status into a JSON body: all
//! through this table, so a failure has the same code whichever way it travels. A field
//! violation keeps the field: both ways carry it as a `google.rpc.BadRequest` detail.

use crate::pb::google::rpc::{bad_request::FieldViolation, BadRequest, Status};
use prost::Message;
use std::fmt;

/// The most characters of a value that a message quotes (see [`excerpt`]).
pub const EXCERPT_CHARS: usize = 64;

/// The most bytes of an error message; the rest is cut. gRPC clients refuse a status
/// whose metadata passes 8 KiB (the official Python client then reports
/// RESOURCE_EXHAUSTED instead of the error), so no message may come near it.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A value quoted in a message: whole if short, else its first [`EXCERPT_CHARS`]
/// characters and its size, so a huge bad value never makes a huge message.
pub fn excerpt(value: &str) -> String {
    if value.chars().count() <= EXCERPT_CHARS {
        return format!("{value:?}");
    }
    let start: String = value.chars().take(EXCERPT_CHARS).collect();
    format!("{start:?}... ({} bytes)", value.len())
}

/// `message`, cut (on a character boundary, with a note of its size) to at most
/// [`MAX_MESSAGE_BYTES`] bytes.
pub fn capped(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let note = format!("... (cut: {} bytes in all)", message.len());
    let mut end = MAX_MESSAGE_BYTES - note.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &message[..end])
}

/// What went wrong, in the terms of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request breaks a rule that belongs to no single field.
    InvalidArgument(String),
    /// A field of the request breaks a rule: the field's path (`name`, `os.type`) and what
    /// is wrong with it.
    InvalidField { field: String, description: String },
    /// A resource or operation that the request names does not exist.
    NotFound(String),
    /// A name is taken by another resource of the same kind in the folder.
    AlreadyExists(String),
    /// The caller may not do or reach this (e.g. a host outside `--import-allow-hosts`,
    /// or a folder its token is not for).
    PermissionDenied(String),
    /// The call carries no valid credentials (`--auth-tokens`).
    Unauthenticated(String),
    /// A limit was exceeded (e.g. an image larger than `--import-max-bytes`).
    ResourceExhausted(String),
    /// The request is valid but the state of a resource does not allow it.
    FailedPrecondition(String),
    /// A write met a concurrent change of what it depended on (a copy's source changed
    /// between the read and the write) and wrote nothing: the same call may succeed again.
    Aborted(String),
    /// Something this server depends on did not answer (e.g. the host of an import).
    Unavailable(String),
    /// The operation was cancelled.
    Cancelled(String),
    /// The work took longer than its limit (e.g. an import past `--import-timeout`).
    DeadlineExceeded(String),
    /// The feature is not implemented by this server.
    Unimplemented(String),
    /// The server failed; the message says where.
    Internal(String),
}

/// google.rpc.Code: every code a call can end with, whether imageplane or tonic chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

/// Every code, in number order.
pub const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// The table: each code's number (google.rpc.Code) and its HTTP status.
    pub const fn wire(self) -> (i32, u16) {
        match self {
            Code::Ok => (0, 200),
            Code::Cancelled => (1, 499),
            Code::Unknown => (2, 500),
            Code::InvalidArgument => (3, 400),
            Code::DeadlineExceeded => (4, 504),
            Code::NotFound => (5, 404),
            Code::AlreadyExists => (6, 409),
            Code::PermissionDenied => (7, 403),
            Code::ResourceExhausted => (8, 429),
            Code::FailedPrecondition => (9, 400),
            Code::Aborted => (10, 409),
            Code::OutOfRange => (11, 400),
            Code::Unimplemented => (12, 501),
            Code::Internal => (13, 500),
            Code::Unavailable => (14, 503),
            Code::DataLoss => (15, 500),
            Code::Unauthenticated => (16, 401),
        }
    }

    /// The google.rpc.Code name, as protos and JSON spell it (`UNAVAILABLE`).
    pub const fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code of a google.rpc.Code name.
    pub fn from_name(name: &str) -> Option<Code> {
        ALL_CODES.into_iter().find(|code| code.name() == name)
    }

    /// The google.rpc.Code number.
    pub const fn number(self) -> i32 {
        self.wire().0
    }

    /// The HTTP status a REST response with this code has.
    pub const fn http_status(self) -> u16 {
        self.wire().1
    }

    /// The code with this number; numbers outside google.rpc.Code are UNKNOWN.
    pub fn from_number(number: i32) -> Code {
        ALL_CODES
            .into_iter()
            .find(|code| code.number() == number)
            .unwrap_or(Code::Unknown)
    }
}

impl Error {
    /// A violation of `field`'s rule.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Error {
        Error::InvalidField {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The google.rpc.Code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::Cancelled(_) => Code::Cancelled,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::InvalidArgument(_) | Error::InvalidField { .. } => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Aborted(_) => Code::Aborted,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// The message a person reads, at most [`MAX_MESSAGE_BYTES`]; a field violation starts
    /// with the field's path.
    pub fn message(&self) -> String {
        capped(&self.full_message())
    }

    fn full_message(&self) -> String {
        match self {
            Error::InvalidField { field, description } => format!("{field}: {description}"),
            Error::InvalidArgument(message)
            | Error::NotFound(message)
            | Error::AlreadyExists(message)
            | Error::PermissionDenied(message)
            | Error::Unauthenticated(message)
            | Error::ResourceExhausted(message)
            | Error::FailedPrecondition(message)
            | Error::Aborted(message)
            | Error::Unavailable(message)
            | Error::Cancelled(message)
            | Error::DeadlineExceeded(message)
            | Error::Unimplemented(message)
            | Error::Internal(message) => message.clone(),
        }
    }

    /// The machine-readable details: a `google.rpc.BadRequest` for a field violation.
    fn details(&self) -> Vec<prost_types::Any> {
        match self {
            Error::InvalidField { field, description } => {
                let bad_request = BadRequest {
                    field_violations: vec![FieldViolation {
                        field: capped(field),
                        description: capped(description),
                    }],
                };
                vec![prost_types::Any::from_msg(&bad_request).expect("encoding into a Vec")]
            }
            Error::InvalidArgument(_)
            | Error::NotFound(_)
            | Error::AlreadyExists(_)
            | Error::PermissionDenied(_)
            | Error::Unauthenticated(_)
            | Error::ResourceExhausted(_)
            | Error::FailedPrecondition(_)
            | Error::Aborted(_)
            | Error::Unavailable(_)
            | Error::Cancelled(_)
            | Error::DeadlineExceeded(_)
            | Error::Unimplemented(_)
            | Error::Internal(_) => Vec::new(),
        }
    }

    /// The error as a google.rpc.Status: the error of a failed Operation, and the
    /// details of a failed call.
    pub fn to_rpc_status(&self) -> Status {
        Status {
            code: self.code().number(),
            message: self.message(),
            details: self.details(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> tonic::Status {
        let status = error.to_rpc_status();
        let code = tonic::Code::from_i32(status.code);
        if status.details.is_empty() {
            tonic::Status::new(code, status.message)
        } else {
            // grpc-status-details-bin carries the whole google.rpc.Status, as gRPC's
            // richer error model has it.
            let details = status.encode_to_vec();
            tonic::Status::with_details(code, status.message, details.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_to_its_byte_limit_on_a_character_boundary() {
        for long in [
            "x".repeat(200_000),
            "я".repeat(100_000),
            format!("a{}", "€".repeat(5000)),
        ] {
            let cut = capped(&long);
            assert!(cut.len() <= MAX_MESSAGE_BYTES, "{} bytes", cut.len());
            assert!(
                cut.ends_with(&format!("(cut: {} bytes in all)", long.len())),
                "{cut}"
            );
        }
        assert_eq!(capped("short"), "short");
        let exact = "y".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(capped(&exact), exact);
    }

    #[test]
    fn every_code_has_its_own_number_and_round_trips() {
        for (index, code) in ALL_CODES.into_iter().enumerate() {
            assert_eq!(code.number(), index as i32);
            assert_eq!(Code::from_number(code.number()), code);
        }
        assert_eq!(Code::from_number(99), Code::Unknown);
    }

    #[test]
    fn http_statuses_follow_grpc_gateway() {
        let status = |code: Code| code.http_status();
        assert_eq!(status(Code::InvalidArgument), 400);
        assert_eq!(status(Code::FailedPrecondition), 400);
        assert_eq!(status(Code::OutOfRange), 400);
        assert_eq!(status(Code::Unauthenticated), 401);
        assert_eq!(status(Code::PermissionDenied), 403);
        assert_eq!(status(Code::NotFound), 404);
        assert_eq!(status(Code::AlreadyExists), 409);
        assert_eq!(status(Code::Aborted), 409);
        assert_eq!(status(Code::ResourceExhausted), 429);
        assert_eq!(status(Code::Cancelled), 499);
        assert_eq!(status(Code::Unimplemented), 501);
        assert_eq!(status(Code::Unavailable), 503);
        assert_eq!(status(Code::DeadlineExceeded), 504);
        for code in [Code::Unknown, Code::Internal, Code::DataLoss] {
            assert_eq!(status(code), 500);
        }
    }

    #[test]
    fn a_field_violation_carries_the_field_as_bad_request_details() {
        let status = Error::invalid_field("name", "too long").to_rpc_status();
        assert_eq!(status.code, 3);
        assert_eq!(status.message, "name: too long");
        let bad_request = status.details[0].to_msg::<BadRequest>().unwrap();
        assert_eq!(bad_request.field_violations[0].field, "name");
        assert_eq!(bad_request.field_violations[0].description, "too long");
        assert!(Error::NotFound("x".into())
            .to_rpc_status()
            .details
            .is_empty());
    }
}

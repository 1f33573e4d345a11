//! The one error type of imageplane, and the one table that maps it to gRPC codes.
//!
//! Every layer below the API adapters returns [`Error`]; `api` turns it into a
//! `tonic::Status`, the executor into the `google.rpc.Status` of a failed Operation. Both
//! go through [`Error::code`], so a failure has the same code whichever way it travels.

use std::fmt;

/// What went wrong, in the terms of the API (google.rpc.Code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request breaks a rule; the message names the field and the rule.
    InvalidArgument(String),
    /// A resource or operation that the request names does not exist.
    NotFound(String),
    /// A name is taken by another resource of the same kind in the folder.
    AlreadyExists(String),
    /// The caller may not do or reach this (e.g. a host outside `--import-allow-hosts`).
    PermissionDenied(String),
    /// A limit was exceeded (e.g. an image larger than `--import-max-bytes`).
    ResourceExhausted(String),
    /// The request is valid but the state of a resource does not allow it.
    FailedPrecondition(String),
    /// Something this server depends on did not answer (e.g. the host of an import).
    Unavailable(String),
    /// The operation was cancelled.
    Cancelled(String),
    /// The feature is not implemented by this server.
    Unimplemented(String),
    /// The server failed; the message says where.
    Internal(String),
}

/// google.rpc.Code numbers used by [`Error::code`].
pub mod code {
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

impl Error {
    /// The google.rpc.Code of this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Cancelled(_) => code::CANCELLED,
            Error::InvalidArgument(_) => code::INVALID_ARGUMENT,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::AlreadyExists(_) => code::ALREADY_EXISTS,
            Error::PermissionDenied(_) => code::PERMISSION_DENIED,
            Error::ResourceExhausted(_) => code::RESOURCE_EXHAUSTED,
            Error::FailedPrecondition(_) => code::FAILED_PRECONDITION,
            Error::Unavailable(_) => code::UNAVAILABLE,
            Error::Unimplemented(_) => code::UNIMPLEMENTED,
            Error::Internal(_) => code::INTERNAL,
        }
    }

    /// The message a person reads.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(message)
            | Error::NotFound(message)
            | Error::AlreadyExists(message)
            | Error::PermissionDenied(message)
            | Error::ResourceExhausted(message)
            | Error::FailedPrecondition(message)
            | Error::Unavailable(message)
            | Error::Cancelled(message)
            | Error::Unimplemented(message)
            | Error::Internal(message) => message,
        }
    }

    /// The error as the google.rpc.Status of a failed Operation.
    pub fn to_rpc_status(&self) -> crate::pb::google::rpc::Status {
        crate::pb::google::rpc::Status {
            code: self.code(),
            message: self.message().to_string(),
            details: Vec::new(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<crate::validation::Violation> for Error {
    fn from(violation: crate::validation::Violation) -> Error {
        Error::InvalidArgument(violation.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> tonic::Status {
        tonic::Status::new(tonic::Code::from_i32(error.code()), error.message())
    }
}

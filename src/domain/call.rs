//! The facts of one call that every method needs besides its request: who calls (subject
//! and the folders it may use), the request id, the idempotency key and the deadline.
//!
//! `rpc_layer` builds one [`CallContext`] per RPC, gRPC or REST alike (the gateway calls
//! the gRPC services in-process), and puts it into the request's extensions; the API
//! adapters take it out and hand it to the domain with the request. Nothing below the
//! layer reads headers.

use crate::domain::PUBLIC_FOLDER;
use crate::error::{excerpt, Error};
use crate::store::KeyClaim;
use std::collections::BTreeSet;
use std::time::Instant;

/// The subject of every call when authentication is off (no `--auth-tokens`).
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

/// Which folders a caller may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Folders {
    /// Every folder (a token without folders, or no authentication).
    All,
    /// Only these (and the public catalogue's [`PUBLIC_FOLDER`], to read).
    Only(BTreeSet<String>),
}

/// Who makes a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Recorded as `created_by` of the operations the call starts.
    pub subject: String,
    pub folders: Folders,
    /// Whether it may use the admin API (when it is on): a token marked `@admin` in the
    /// token file, or every caller when authentication is off.
    pub admin: bool,
}

impl Caller {
    /// The caller when authentication is off.
    pub fn anonymous() -> Caller {
        Caller {
            subject: ANONYMOUS_SUBJECT.to_string(),
            folders: Folders::All,
            admin: true,
        }
    }

    /// Whether the caller may use the folder (read or write; whether the folder may be
    /// written at all is the domain's rule).
    pub fn may_use(&self, folder_id: &str) -> bool {
        match &self.folders {
            Folders::All => true,
            Folders::Only(folders) => folder_id == PUBLIC_FOLDER || folders.contains(folder_id),
        }
    }

    /// The folders the caller may use, the public catalogue's included; `None`: every
    /// folder.
    pub fn folder_list(&self) -> Option<Vec<String>> {
        match &self.folders {
            Folders::All => None,
            Folders::Only(folders) => Some(
                folders
                    .iter()
                    .cloned()
                    .chain([PUBLIC_FOLDER.to_string()])
                    .collect(),
            ),
        }
    }

    /// PERMISSION_DENIED unless the caller may use the folder.
    pub fn check_folder(&self, folder_id: &str) -> Result<(), Error> {
        if self.may_use(folder_id) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "subject {} has no access to folder {}",
            excerpt(&self.subject),
            excerpt(folder_id)
        )))
    }
}

/// One call's facts (see the module documentation).
#[derive(Debug, Clone)]
pub struct CallContext {
    pub caller: Caller,
    /// The RPC, as its gRPC path (`/yandex.cloud.compute.v1.ImageService/Create`), also
    /// when the call came through the REST gateway.
    pub method: String,
    /// The host and port the client used to reach this server, if it said.
    pub authority: Option<String>,
    /// The `x-request-id` of the call (the access log makes one up when absent).
    pub request_id: String,
    /// The `idempotency-key` of the call, if it sent one.
    pub idempotency_key: Option<String>,
    /// When the call must have ended, if anyone set a deadline.
    pub deadline: Option<Instant>,
    /// The claim of the idempotency key on the operation the call stores: set by
    /// `domain::idempotency` for the call's writes, never by the layer.
    pub claim: Option<KeyClaim>,
}

impl CallContext {
    /// A call by `caller` with no request id, key or deadline: for the domain's own tests
    /// and for callers outside the RPC layer.
    pub fn of(caller: Caller) -> CallContext {
        CallContext {
            caller,
            authority: None,
            method: String::new(),
            request_id: String::new(),
            idempotency_key: None,
            deadline: None,
            claim: None,
        }
    }

    /// An anonymous call (see [`CallContext::of`]).
    pub fn anonymous() -> CallContext {
        CallContext::of(Caller::anonymous())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_limited_to_folders_uses_them_and_the_public_catalogue_only() {
        let caller = Caller {
            subject: "alice".into(),
            folders: Folders::Only(["f1".to_string()].into()),
            admin: false,
        };
        assert!(caller.may_use("f1"));
        assert!(caller.may_use(PUBLIC_FOLDER));
        let error = caller.check_folder("f2").unwrap_err();
        assert_eq!(
            error,
            Error::PermissionDenied("subject \"alice\" has no access to folder \"f2\"".into())
        );
        assert!(Caller::anonymous().may_use("anything"));
    }
}

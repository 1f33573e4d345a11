//! Idempotency keys: a call that starts an operation (a create, update, delete, move,
//! relocate or access-binding change), repeated with the same `idempotency-key` and the
//! same request, answers the operation the first call started, and does the work once.
//!
//! A key is the caller's own: keys are per subject. It is stored with a fingerprint of
//! what it was used for (the SHA-256 of the RPC and the request in a canonical form) in
//! the same transaction as the operation it started (`Store::create`, `Store::change`
//! take the [`KeyClaim`]), so a key without its operation, or the reverse, never exists.
//! A repeated call runs again up to its write, which finds the key taken (`KeyTaken`,
//! nothing written) and answers the first call's operation; so do calls that race with one
//! key: the store lets one write win. This holds across replicas on PostgreSQL, where the key's primary key
//! decides. The same key with a different request is INVALID_ARGUMENT. Keys are kept at
//! least [`KEY_RETENTION`].

use super::Catalog;
use crate::domain::call::{CallContext, Caller};
use crate::error::{excerpt, Error};
use crate::pb::operation::Operation;
use crate::store::KeyClaim;
use prost_reflect::DynamicMessage;
use std::future::Future;
use std::time::Duration;

/// How long a key is kept after its first use (then purged by the executor's sweep).
pub const KEY_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The longest key, in bytes; keys are visible ASCII (a UUID is the usual choice, and
/// what Yandex Cloud documents).
pub const MAX_KEY_LEN: usize = 128;

/// The field errors about the key name.
const KEY_FIELD: &str = "idempotency-key";

/// The SHA-256 (hex) of the RPC and the request in a canonical form: its JSON with map
/// entries in key order (encoded protobuf is not canonical: map entries come in any
/// order). A request that has no proto3 JSON form (a field mask path that cannot be
/// written in lowerCamelCase, such as `minDiskSize`, which the domain reads as
/// `min_disk_size`) is taken as its encoded bytes.
pub fn fingerprint<M: prost::Message + prost::Name>(
    method: &str,
    request: &M,
) -> Result<String, Error> {
    let descriptor = crate::pb::descriptor_pool()
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| Error::Internal(format!("no descriptor for {}", M::full_name())))?;
    let dynamic = DynamicMessage::decode(descriptor, request.encode_to_vec().as_slice())
        .map_err(|error| Error::Internal(format!("re-reading the request: {error}")))?;
    // serde_json's Map keeps keys sorted, so the value is canonical.
    let canonical = serde_json::to_value(&dynamic)
        .and_then(|value| serde_json::to_vec(&value))
        .unwrap_or_else(|_| [b"encoded:".as_slice(), &request.encode_to_vec()].concat());
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(method.as_bytes());
    context.update(b"\n");
    context.update(&canonical);
    Ok(hex(context.finish().as_ref()))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Refuses a key that is empty, too long or not visible ASCII (`!` to `~`): a key that
/// cannot be a key is an error, never taken as no key (the call would then run twice).
fn check_key(key: &str) -> Result<(), Error> {
    const RULE: &str = "a key is 1-128 visible ASCII characters (! to ~), such as a UUID";
    if key.is_empty() {
        return Err(Error::invalid_field(KEY_FIELD, format!("is empty; {RULE}")));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid_field(
            KEY_FIELD,
            format!("is {} bytes long; {RULE}", key.len()),
        ));
    }
    if !key.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(Error::invalid_field(
            KEY_FIELD,
            format!("{} has other characters; {RULE}", excerpt(key)),
        ));
    }
    Ok(())
}

impl Catalog {
    /// The claim of the call's idempotency key on what `request` starts, or `None` when
    /// the call sent no key; INVALID_ARGUMENT for a value that is not a key.
    pub fn key_claim<M: prost::Message + prost::Name>(
        &self,
        call: &CallContext,
        request: &M,
    ) -> Result<Option<KeyClaim>, Error> {
        let Some(key) = call.idempotency_key.as_deref() else {
            return Ok(None);
        };
        check_key(key)?;
        Ok(Some(KeyClaim {
            subject: call.caller.subject.clone(),
            key: key.to_string(),
            fingerprint: fingerprint(&call.method, request)?,
        }))
    }

    /// Runs `start` (which stores an operation) under the key's `claim`. Its write stores
    /// the key, or finds it taken (`KeyTaken`, nothing written): then, as after any
    /// failure, a stored key answers: the operation of the earlier (or racing) call with the
    /// same request, or INVALID_ARGUMENT for another request. The first use of a key costs
    /// no read: the write itself finds out whether the key is new.
    pub async fn idempotent<Start, Started>(
        &self,
        call: CallContext,
        claim: Option<KeyClaim>,
        start: Start,
    ) -> Result<Operation, Error>
    where
        Start: FnOnce(CallContext) -> Started,
        Started: Future<Output = Result<Operation, Error>>,
    {
        let Some(claim) = claim else {
            return start(call).await;
        };
        let caller = call.caller.clone();
        let claimed = CallContext {
            claim: Some(claim.clone()),
            ..call
        };
        match start(claimed).await {
            Ok(operation) => Ok(operation),
            Err(error) => match self.replay(&caller, &claim).await? {
                Some(operation) => Ok(operation),
                None => Err(error),
            },
        }
    }

    /// The operation the claim's key started, if the key is stored and the caller may see
    /// it; INVALID_ARGUMENT if the key was used for another request. Two tokens of one
    /// subject share its keys, not its folders: an answer names the key's operation only to
    /// a caller who may see it, and a replay of one it may not see is answered as the call
    /// itself was (`None`: the call's own error stands).
    async fn replay(&self, caller: &Caller, claim: &KeyClaim) -> Result<Option<Operation>, Error> {
        let Some(stored) = self
            .store
            .idempotency_key(&claim.subject, &claim.key)
            .await?
        else {
            return Ok(None);
        };
        let record = self.store.operation(&stored.operation_id).await?;
        let visible = record
            .as_ref()
            .is_some_and(|record| caller.may_use(&record.target.folder_id));
        if stored.fingerprint != claim.fingerprint {
            let named = if visible {
                format!(" (operation {})", stored.operation_id)
            } else {
                String::new()
            };
            return Err(Error::invalid_field(
                KEY_FIELD,
                format!(
                    "{} was used for another request{named}; use a new key for a new request",
                    excerpt(&claim.key),
                ),
            ));
        }
        match record {
            Some(record) if visible => Ok(Some(record.operation)),
            Some(_) => Ok(None),
            None => Err(Error::FailedPrecondition(format!(
                "idempotency key {} started an operation that is gone (finished operations \
                 are kept for --operation-retention); use a new key",
                excerpt(&claim.key),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::compute::CreateImageRequest;
    use std::collections::HashMap;

    fn request(labels: &[(&str, &str)]) -> CreateImageRequest {
        // Each map is built anew, so its iteration order differs from run to run.
        let labels: HashMap<String, String> = labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        CreateImageRequest {
            folder_id: "b1gfolder".into(),
            name: "image".into(),
            labels,
            ..Default::default()
        }
    }

    #[test]
    fn a_fingerprint_ignores_map_order_and_sees_every_difference() {
        let many: Vec<(String, String)> = (0..32).map(|i| (format!("k{i}"), "v".into())).collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let method = "/yandex.cloud.compute.v1.ImageService/Create";
        let first = fingerprint(method, &request(&pairs)).unwrap();
        for _ in 0..20 {
            assert_eq!(fingerprint(method, &request(&pairs)).unwrap(), first);
        }
        assert_ne!(
            fingerprint(method, &request(&pairs[1..])).unwrap(),
            first,
            "a label less"
        );
        assert_ne!(
            fingerprint("/other.Service/Create", &request(&pairs)).unwrap(),
            first,
            "another method"
        );
    }

    #[test]
    fn a_request_without_a_json_form_has_a_fingerprint_too() {
        use crate::pb::compute::UpdateImageRequest;
        let update = |path: &str| UpdateImageRequest {
            image_id: "fd8image".into(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![path.into()],
            }),
            ..Default::default()
        };
        let method = "/yandex.cloud.compute.v1.ImageService/Update";
        let camel = fingerprint(method, &update("minDiskSize")).unwrap();
        assert_eq!(camel, fingerprint(method, &update("minDiskSize")).unwrap());
        assert_ne!(
            camel,
            fingerprint(method, &update("min_disk_size")).unwrap()
        );
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(check_key("0b6bcb4e-5d0e-4b3c-9a37-1f4f0c1d2e3f").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1))
            .unwrap_err()
            .message()
            .starts_with("idempotency-key: is 129 bytes long"));
        for bad in ["", "with space", "café", "tab\t", "\u{7f}"] {
            let refused = check_key(bad).unwrap_err().message();
            assert!(refused.starts_with("idempotency-key: "), "{refused}");
            assert!(refused.contains("1-128 visible ASCII"), "{refused}");
        }
        assert!(check_key("!~").is_ok());
    }
}

-- imageplane schema 3 (PostgreSQL): what authentication and idempotency keys need.
-- Operations remember the folder of their resource when they began, so that a caller
-- limited to folders sees an operation even after its resource is gone. Rows of earlier
-- schemas take the folder their resource has now ('' when it is gone: only callers of
-- every folder see them).
ALTER TABLE operations ADD COLUMN folder_id TEXT NOT NULL DEFAULT '';
UPDATE operations SET folder_id = COALESCE(
    (SELECT folder_id FROM resources WHERE resources.id = operations.target_id), '');

-- A mutating call's idempotency key, stored in the transaction of its operation: the
-- same key and request later (or on another replica) answers that operation. Keys are
-- per subject; `fingerprint` is the SHA-256 of the method and the canonical request.
CREATE TABLE idempotency_keys (
    subject        TEXT NOT NULL,
    key            TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    operation_id   TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (subject, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);

-- IAM tokens issued by IamTokenService.Create, by the SHA-256 of the token (the token
-- itself is never stored): whose they are, which folders they may use ('*' = all, else
-- comma-separated) and when they expire.
CREATE TABLE iam_tokens (
    token_sha256   TEXT NOT NULL PRIMARY KEY,
    subject        TEXT NOT NULL,
    folders        TEXT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
CREATE INDEX iam_tokens_by_expiry ON iam_tokens (expires_at_ms);

-- imageplane schema 1 (SQLite): resources and the operations that change them.
-- Each row keeps the API message, protobuf-encoded, in `body`; the other columns are the
-- ones queries and constraints need. Times are milliseconds since the Unix epoch.

CREATE TABLE resources (
    id         TEXT    NOT NULL PRIMARY KEY,
    kind       INTEGER NOT NULL,  -- 1 compute image, 2 snapshot, 3 disk, 4 bare-metal image
    folder_id  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    os         BLOB,              -- disks and snapshots: the encoded Os they inherited
    body       BLOB    NOT NULL
) WITHOUT ROWID;

-- A non-empty name is unique per kind and folder; the database enforces it.
CREATE UNIQUE INDEX resources_name ON resources (kind, folder_id, name) WHERE name <> '';

CREATE TABLE operations (
    id              TEXT    NOT NULL PRIMARY KEY,
    done            INTEGER NOT NULL,  -- 0 running, 1 finished
    modified_at_ms  INTEGER NOT NULL,
    target_kind     INTEGER NOT NULL,
    target_id       TEXT    NOT NULL,
    import_uri      TEXT,              -- NULL for a copy
    owner           TEXT    NOT NULL,  -- the replica that runs it
    lease_until_ms  INTEGER NOT NULL,  -- the owner's claim lasts until then
    body            BLOB    NOT NULL   -- the yandex.cloud.operation.Operation
) WITHOUT ROWID;

-- Running operations, for recovery and lease checks; finished ones, for retention.
CREATE INDEX operations_running ON operations (lease_until_ms) WHERE done = 0;
CREATE INDEX operations_finished ON operations (modified_at_ms) WHERE done = 1;

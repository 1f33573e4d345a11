-- imageplane schema 2 (SQLite): what lists, updates, deletes and access bindings need.
-- Resources gain the columns lists filter and order on (status, family, creation time)
-- and their access bindings; operations gain their kind of work (instead of inferring it
-- from import_uri), the resource a copy reads from, and their creation time. The new
-- columns of existing rows are filled from their bodies by the migration's backfill.

ALTER TABLE resources ADD COLUMN status INTEGER NOT NULL DEFAULT 0;  -- the API's status number
ALTER TABLE resources ADD COLUMN family TEXT NOT NULL DEFAULT '';    -- compute images only
ALTER TABLE resources ADD COLUMN created_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN access_bindings BLOB;               -- ListAccessBindingsResponse

-- One index a way of reading a folder (src/store/query.rs picks one for every list): in
-- each order (id, name, creation time), and by an equality on a family or a status. A
-- family has two, so that both a filtered page (by id) and GetLatestByFamily (the newest)
-- read only their rows; they hold only images with a family.
CREATE INDEX resources_by_id ON resources (kind, folder_id, id);
CREATE INDEX resources_by_name_order ON resources (kind, folder_id, name, id);
CREATE INDEX resources_by_created ON resources (kind, folder_id, created_at_ms, id);
CREATE INDEX resources_by_family ON resources (kind, folder_id, family, id)
    WHERE family <> '';
CREATE INDEX resources_by_family_created ON resources (kind, folder_id, family, created_at_ms, id)
    WHERE family <> '';
CREATE INDEX resources_by_status ON resources (kind, folder_id, status, id);

ALTER TABLE operations ADD COLUMN work TEXT NOT NULL DEFAULT 'copy';  -- copy, import, delete, update, ...
ALTER TABLE operations ADD COLUMN source_id TEXT;                     -- what a copy reads from
ALTER TABLE operations ADD COLUMN created_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE operations SET work = 'import' WHERE import_uri IS NOT NULL;

CREATE INDEX operations_by_target ON operations (target_id, created_at_ms, id);
CREATE INDEX operations_running_by_source ON operations (source_id) WHERE done = 0;

-- Values the server keeps for itself, such as the key that signs page tokens.
CREATE TABLE settings (
    name   TEXT NOT NULL PRIMARY KEY,
    value  BLOB NOT NULL
) WITHOUT ROWID;

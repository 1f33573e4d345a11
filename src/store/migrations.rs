//! Versioned schema migrations, applied at start (`schema::migration`). Each database has
//! its own ordered list of SQL files under `migrations/<database>/` (their DDL differs);
//! the table `schema_migrations` records which versions a database has. The pending
//! migrations run in one transaction with their records, so a crash leaves them applied
//! or not at all. A database newer than this binary is refused rather than written with
//! an older idea of the schema.
//!
//! To change the schema, add a file with the next number to both lists; never edit one
//! that has shipped.

/// One schema change.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// The SQLite schema, in order.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "resources and operations",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "lists, changes, deletes and access bindings",
        sql: include_str!("../../migrations/sqlite/0002_lifecycle.sql"),
    },
    Migration {
        version: 3,
        description: "operation folders, idempotency keys and IAM tokens",
        sql: include_str!("../../migrations/sqlite/0003_dropin.sql"),
    },
    Migration {
        version: 4,
        description: "running operations of changes",
        sql: include_str!("../../migrations/sqlite/0004_running_changes.sql"),
    },
];

/// The PostgreSQL schema, in order.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "resources and operations",
        sql: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "lists, changes, deletes and access bindings",
        sql: include_str!("../../migrations/postgres/0002_lifecycle.sql"),
    },
    Migration {
        version: 3,
        description: "operation folders, idempotency keys and IAM tokens",
        sql: include_str!("../../migrations/postgres/0003_dropin.sql"),
    },
    Migration {
        version: 4,
        description: "running operations of changes",
        sql: include_str!("../../migrations/postgres/0004_running_changes.sql"),
    },
];

/// The version whose new columns are filled from the rows' bodies after its SQL (each
/// backend's `backfill_columns`): SQL cannot read the protobuf bodies.
pub const BACKFILLED: i64 = 2;

/// Creates the bookkeeping table (the same SQL serves both backends).
pub const CREATE_BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

/// The columns every query of the stores relies on, per table: probed at start after the
/// migrations, so that a damaged schema (a dropped table or column) stops the start with
/// its name instead of failing every call later. Keep in step with the migrations.
pub const SCHEMA_PROBES: &[(&str, &str)] = &[
    (
        "resources",
        "SELECT id, kind, folder_id, name, os, body, status, family, created_at_ms, \
         access_bindings FROM resources LIMIT 0",
    ),
    (
        "operations",
        "SELECT id, done, modified_at_ms, target_kind, target_id, import_uri, owner, \
         lease_until_ms, body, work, source_id, created_at_ms, folder_id FROM operations \
         LIMIT 0",
    ),
    ("settings", "SELECT name, value FROM settings LIMIT 0"),
    (
        "idempotency_keys",
        "SELECT subject, key, fingerprint, operation_id, created_at_ms FROM idempotency_keys \
         LIMIT 0",
    ),
    (
        "iam_tokens",
        "SELECT token_sha256, subject, folders, expires_at_ms FROM iam_tokens LIMIT 0",
    ),
];

/// The message of a failed schema probe.
pub fn damaged_schema(table: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "the database schema is damaged: table {table} is missing or lacks columns ({error}); \
         restore a backup"
    )
}

/// The migrations still to apply to a database at `current` version, or an error if
/// the database is newer than this binary knows.
pub fn pending(all: &'static [Migration], current: i64) -> Result<&'static [Migration], String> {
    let latest = all.last().map_or(0, |migration| migration.version);
    if current > latest {
        return Err(format!(
            "the database has schema version {current}, newer than this imageplane knows \
             ({latest}); run a newer imageplane or restore a backup"
        ));
    }
    Ok(&all[all.partition_point(|migration| migration.version <= current)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_by_one_from_one() {
        for list in [SQLITE, POSTGRES] {
            for (index, migration) in list.iter().enumerate() {
                assert_eq!(migration.version, index as i64 + 1);
            }
        }
        assert_eq!(SQLITE.len(), POSTGRES.len());
    }

    #[test]
    fn pending_skips_what_is_applied_and_refuses_newer_databases() {
        assert_eq!(pending(SQLITE, 0).unwrap().len(), SQLITE.len());
        assert!(pending(SQLITE, SQLITE.len() as i64).unwrap().is_empty());
        let error = pending(SQLITE, 99).unwrap_err();
        assert!(error.contains("schema version 99"), "{error}");
    }
}

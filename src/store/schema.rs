//! The schema's life, the same on both databases: migrations applied at start (one
//! generic loop over each database's list, [`migrations`]), the backfill SQL cannot do, the
//! check that the schema the queries rely on is whole, and `imageplane check`, which reads
//! every row.

use super::codec::{self, ResourceRow};
use super::migrations::{self, Migration};
use super::sql::{Job, Row, Tx, Value};
use super::{CheckReport, StoreError};

/// How many rows `imageplane check` reads at a time.
const CHECK_PAGE: usize = 1000;

/// The write that applies the migrations the database lacks, in one transaction, then
/// checks the schema. A database newer than this binary is refused rather than written
/// with an older idea of the schema.
pub fn migration() -> Job<()> {
    Box::new(|tx| Box::pin(migrate(tx, None)))
}

/// Applies the migrations the database lacks, up to `target` (`None`: all, and then the
/// schema is checked); a snapshot of an older schema is migrated through it
/// (`snapshot::migrate_job`).
pub async fn migrate(tx: &dyn Tx, target: Option<i64>) -> Result<(), StoreError> {
    let dialect = tx.dialect();
    if let Some(lock) = dialect.migration_lock {
        tx.execute(lock, Vec::new()).await?;
    }
    tx.execute_batch(migrations::CREATE_BOOKKEEPING).await?;
    let current = version(tx).await?;
    let all = dialect.migrations;
    for migration in migrations::pending(all, current).map_err(StoreError::Backend)? {
        if target.is_some_and(|target| migration.version > target) {
            return Ok(());
        }
        apply(tx, migration).await?;
    }
    verify(tx).await
}

/// The schema version the database has (0: none yet).
pub async fn version(tx: &dyn Tx) -> Result<i64, StoreError> {
    let mut rows = tx
        .query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            Vec::new(),
        )
        .await?;
    rows.first_mut().map_or(Ok(0), |row| row.i64(0))
}

/// Applies one migration and records it.
async fn apply(tx: &dyn Tx, migration: &Migration) -> Result<(), StoreError> {
    tx.execute_batch(migration.sql).await?;
    if migration.version == migrations::BACKFILLED {
        backfill_columns(tx).await?;
    }
    tx.execute(
        "INSERT INTO schema_migrations (version, description, applied_at_ms)
         VALUES ($1, $2, $3)",
        vec![
            migration.version.into(),
            migration.description.into(),
            codec::now_ms().into(),
        ],
    )
    .await?;
    tracing::info!(
        version = migration.version,
        migration.description,
        "applied schema migration"
    );
    Ok(())
}

/// Fills the columns schema 2 added (status, family and creation time of resources, the
/// creation time of operations) from the bodies of the rows written before it. A row that
/// cannot be decoded keeps the defaults: `imageplane check` names it.
async fn backfill_columns(tx: &dyn Tx) -> Result<(), StoreError> {
    for mut row in tx
        .query("SELECT id, kind, os, body FROM resources", Vec::new())
        .await?
    {
        let id = row.text(0)?;
        if let Ok(resource) = codec::resource_from_row(&mut row, 1) {
            let columns = ResourceRow::from_resource(&resource);
            tx.execute(
                "UPDATE resources SET status = $2, family = $3, created_at_ms = $4 WHERE id = $1",
                vec![
                    id.into(),
                    columns.status.into(),
                    columns.family.into(),
                    columns.created_at_ms.into(),
                ],
            )
            .await?;
        }
    }
    for mut row in tx
        .query("SELECT id, body FROM operations", Vec::new())
        .await?
    {
        let id = row.text(0)?;
        if let Ok(operation) = codec::decode_operation(&row.bytes(1)?) {
            tx.execute(
                "UPDATE operations SET created_at_ms = $2 WHERE id = $1",
                vec![id.into(), codec::created_at_ms(&operation).into()],
            )
            .await?;
        }
    }
    Ok(())
}

/// Probes every table and column the queries use (`migrations::SCHEMA_PROBES`) and the
/// indexes lists may name (`INDEXED BY` fails without them), so that a damaged schema
/// stops the start with its name instead of failing every call later.
async fn verify(tx: &dyn Tx) -> Result<(), StoreError> {
    for (table, probe) in migrations::SCHEMA_PROBES {
        tx.query(probe, Vec::new())
            .await
            .map_err(|error| StoreError::Backend(migrations::damaged_schema(table, &error)))?;
    }
    for index in super::query::LIST_INDEXES {
        let mut rows = tx
            .query(tx.dialect().index_count, vec![(*index).into()])
            .await?;
        if rows.first_mut().map_or(Ok(0), |row| row.i64(0))? == 0 {
            return Err(StoreError::Backend(migrations::damaged_schema(
                "resources",
                &format!("index {index} is missing"),
            )));
        }
    }
    Ok(())
}

/// Reads every row without changing anything (see [`super::check`]).
pub async fn check(tx: &dyn Tx) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    if let Some(integrity_check) = tx.dialect().integrity_check {
        match tx.query(integrity_check, Vec::new()).await {
            Ok(lines) => {
                for mut line in lines {
                    match line.text(0) {
                        Ok(line) if line == "ok" => {}
                        Ok(line) => report.problems.push(format!("integrity_check: {line}")),
                        Err(error) => report.problems.push(format!("integrity_check: {error}")),
                    }
                }
            }
            Err(error) => report.problems.push(format!("integrity_check: {error}")),
        }
    }
    if let Err(error) = verify(tx).await {
        report.problems.push(error.to_string());
        return Ok(report);
    }
    check_rows(tx, &mut report, "resources", "kind, os, body", |row| {
        codec::resource_from_row(row, 1).map(drop)
    })
    .await;
    check_rows(
        tx,
        &mut report,
        "operations",
        codec::OPERATION_COLUMNS,
        |row| codec::record_from_row(row, 1).map(drop),
    )
    .await;
    Ok(report)
}

/// Decodes every row of `table` (its id, then `columns`), a page at a time, counting it or
/// naming it as damaged; a page that cannot be read ends the table's reading.
async fn check_rows(
    tx: &dyn Tx,
    report: &mut CheckReport,
    table: &str,
    columns: &str,
    decode: impl Fn(&mut Row) -> Result<(), StoreError>,
) {
    let sql = format!("SELECT id, {columns} FROM {table} WHERE id > $1 ORDER BY id LIMIT $2");
    let mut after = String::new();
    loop {
        let rows = match tx
            .query(
                &sql,
                vec![Value::Text(after.clone()), super::sql::limit(CHECK_PAGE)],
            )
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                report
                    .problems
                    .push(format!("{table}: reading stopped: {error}"));
                return;
            }
        };
        let count = rows.len();
        let before = after.clone();
        for mut row in rows {
            let id = row.text(0).unwrap_or_default();
            match decode(&mut row) {
                Ok(()) if table == "resources" => report.resources += 1,
                Ok(()) => report.operations += 1,
                Err(error) => report.problems.push(format!(
                    "{table} row {}: {error}",
                    crate::error::excerpt(&id)
                )),
            }
            after = id;
        }
        if count < CHECK_PAGE {
            return;
        }
        if after <= before {
            report
                .problems
                .push(format!("{table}: reading stopped: the ids do not advance"));
            return;
        }
    }
}

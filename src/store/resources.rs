//! [`Resources`] of the [`SqlStore`]: creates, reads, changes, lists and seeds, each one
//! job with the same SQL on both databases.

use super::codec::{self, OperationRow, ResourceRow};
use super::query::{self, ListQuery};
use super::read_cache::Record;
use super::sql::Job;
use super::sql::{Pending, Tx, Value};
use super::{
    Change, Changed, Current, KeyClaim, Reading, Resources, Source, SourceSeen, SqlStore,
    StoreError,
};
use crate::error::{excerpt, Error};
use crate::model::resource::{status, OperationRecord, Resource, ResourceKind};
use crate::pb::yandex::cloud::access::AccessBinding;
use async_trait::async_trait;

#[async_trait]
impl Resources for SqlStore {
    async fn create_copy(
        &self,
        resource: Resource,
        operation: OperationRecord,
        claim: Option<&KeyClaim>,
        seen: Option<SourceSeen>,
    ) -> Result<(), StoreError> {
        let owner = self.replica.id.clone();
        let lease_ms = self.lease_ms();
        let claim = claim.cloned();
        // Encoded here, not in the job: SQLite runs jobs on its one writer thread.
        let row = ResourceRow::from_resource(&resource);
        let operation_row = OperationRow::from_record(&operation);
        let source = operation.work.source().map(str::to_string);
        // A batch compares bodies; a record read (SQLite's) is confirmed alone.
        let batchable = !matches!(seen, Some(SourceSeen::Record(_)));
        if let (None, Some(batcher), true) = (&claim, &self.creates, batchable) {
            // PostgreSQL: with the creates that arrive with it, in one statement that
            // commits alone, with its source's check (`check_source_ready`) in it
            // (`create_batch`).
            let name_taken = StoreError::name_taken(&resource);
            let rows = NewRows {
                resource: row,
                operation: operation_row,
                source,
                seen,
            };
            return batcher.create(rows, name_taken).await;
        }
        if claim.is_none() {
            // SQLite: the checks first, then the changes, which nothing can refuse, so the
            // job needs no savepoint (`Database::write_checks_first`).
            return self
                .database
                .write_checks_first(Box::new(move |tx| {
                    Box::pin(async move {
                        check_source_ready(tx, source.as_deref(), seen.as_ref()).await?;
                        let operation_id = operation.operation.id.clone();
                        if operation_exists(tx, &operation_id).await? {
                            return Err(StoreError::Duplicate(format!(
                                "operation {operation_id} exists"
                            )));
                        }
                        // Refused (the name taken, or the id: a primary key) before it
                        // changes anything.
                        if !insert_resource(tx, row).await? {
                            return Err(StoreError::name_taken(&resource));
                        }
                        insert_operation(tx, operation_row, &owner, lease_ms).await?;
                        let resource_id = resource.id().to_string();
                        tx.wrote(&operation_id, Some(Record::Operation(operation)));
                        tx.wrote(&resource_id, Some(Record::Resource(resource)));
                        Ok(())
                    })
                }))
                .await;
        }
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    // Sent together (PostgreSQL pipelines them), in this order: writes that
                    // share a key wait for each other on it before either locks a source or
                    // takes a name, as a change takes its key before it locks its resource.
                    let (key_stored, (), inserted, ()) = futures_util::try_join!(
                        insert_key(tx, claim.as_ref(), &operation.operation.id),
                        check_source_ready(tx, source.as_deref(), seen.as_ref()),
                        insert_resource(tx, row),
                        insert_operation(tx, operation_row, &owner, lease_ms),
                    )?;
                    if !key_stored {
                        return Err(StoreError::KeyTaken);
                    }
                    if !inserted {
                        return Err(StoreError::name_taken(&resource));
                    }
                    let (operation_id, resource_id) =
                        (operation.operation.id.clone(), resource.id().to_string());
                    tx.wrote(&operation_id, Some(Record::Operation(operation)));
                    tx.wrote(&resource_id, Some(Record::Resource(resource)));
                    Ok(())
                })
            }))
            .await
    }

    async fn source(
        &self,
        kind: ResourceKind,
        id: &str,
        reading: Reading,
    ) -> Result<Option<Source>, StoreError> {
        let Some(kept) = &self.kept_sources else {
            let resource = self.resource(kind, id).await?;
            return Ok(resource.map(|resource| Source {
                seen: SourceSeen::Record(std::sync::Arc::new(resource.clone())),
                resource,
            }));
        };
        if reading == Reading::MayUseKept {
            if let Some(source) = kept.get(id) {
                return Ok((source.resource.kind() == kind).then_some(source));
            }
        }
        let key = id.to_string();
        let job: Job<Option<(Resource, Vec<u8>)>> = Box::new(move |tx| {
            Box::pin(async move {
                let mut rows = tx
                    .query(
                        "SELECT kind, os, body FROM resources WHERE id = $1",
                        vec![key.into()],
                    )
                    .await?;
                let Some(row) = rows.first_mut() else {
                    return Ok(None);
                };
                let (kind, os, body) = (row.i32(0)?, row.optional_bytes(1)?, row.bytes(2)?);
                let resource = codec::resource_from_columns(kind, os.as_deref(), &body)?;
                Ok(Some((resource, body)))
            })
        });
        let found = self.database.read(job).await?;
        Ok(kept
            .read(id, found)
            .filter(|source| source.resource.kind() == kind))
    }

    fn keeps_sources(&self) -> bool {
        self.kept_sources.is_some()
    }

    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Resource>, StoreError> {
        let key = id.to_string();
        let job: Job<Option<Record>> = Box::new(move |tx| {
            Box::pin(async move { Ok(select_resource(tx, &key).await?.map(Record::Resource)) })
        });
        Ok(match self.database.read_record(id, job).await? {
            Some(Record::Resource(resource)) if resource.kind() == kind => Some(resource),
            _ => None,
        })
    }

    async fn change(
        &self,
        kind: ResourceKind,
        id: &str,
        change: Change,
        claim: Option<&KeyClaim>,
    ) -> Result<OperationRecord, StoreError> {
        let id = id.to_string();
        let owner = self.replica.id.clone();
        let lease_ms = self.lease_ms();
        let claim = claim.cloned();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    // The key first, as a create takes it: two writes that share a key wait
                    // for each other on it before either locks a resource or a name. Its
                    // operation is known once the change has decided.
                    if !insert_key(tx, claim.as_ref(), "").await? {
                        return Err(StoreError::KeyTaken);
                    }
                    let current = select_current(tx, kind, &id).await?;
                    let before = current
                        .as_ref()
                        .map(|current| Indexed::of(&current.resource));
                    let Changed {
                        resource,
                        access_bindings,
                        record,
                    } = change(current).map_err(StoreError::Refused)?;
                    check_name_free(tx, &resource).await?;
                    let bindings = async {
                        match &access_bindings {
                            None => Ok(0),
                            Some(bindings) => {
                                tx.execute(
                                    "UPDATE resources SET access_bindings = $2 WHERE id = $1",
                                    vec![
                                        id.clone().into(),
                                        codec::encode_bindings(bindings).into(),
                                    ],
                                )
                                .await
                            }
                        }
                    };
                    let key = async {
                        match &claim {
                            None => Ok(0),
                            Some(claim) => {
                                tx.execute(
                                    "UPDATE idempotency_keys SET operation_id = $3
                                     WHERE subject = $1 AND key = $2",
                                    vec![
                                        claim.subject.clone().into(),
                                        claim.key.clone().into(),
                                        record.operation.id.clone().into(),
                                    ],
                                )
                                .await
                            }
                        }
                    };
                    let written = futures_util::try_join!(
                        update_resource(
                            tx,
                            ResourceRow::from_resource(&resource),
                            before == Some(Indexed::of(&resource)),
                        ),
                        bindings,
                        insert_operation(tx, OperationRow::from_record(&record), &owner, lease_ms),
                        key,
                    );
                    match written {
                        // A concurrent transaction took the name first: the index decides.
                        Err(StoreError::Duplicate(_)) => {
                            return Err(StoreError::name_taken(&resource))
                        }
                        written => written?,
                    };
                    tx.wrote(&id, Some(Record::Resource(resource)));
                    tx.wrote(
                        &record.operation.id,
                        Some(Record::Operation(record.clone())),
                    );
                    Ok(record)
                })
            }))
            .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Resource>, StoreError> {
        let query = query.clone();
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move {
                    let (sql, parameters) = query::list_sql(&query, tx.dialect());
                    tx.query(&sql, parameters)
                        .await?
                        .iter_mut()
                        .map(|row| codec::resource_from_row(row, 0))
                        .collect()
                })
            }))
            .await
    }

    async fn access_bindings(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Vec<AccessBinding>>, StoreError> {
        let id = id.to_string();
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move {
                    let mut rows = tx
                        .query(
                            "SELECT access_bindings FROM resources WHERE id = $1 AND kind = $2",
                            vec![id.into(), kind.code().into()],
                        )
                        .await?;
                    let Some(row) = rows.first_mut() else {
                        return Ok(None);
                    };
                    let stored = row.optional_bytes(0)?;
                    codec::decode_bindings(stored.as_deref()).map(Some)
                })
            }))
            .await
    }

    async fn seed(&self, resources: Vec<Resource>) -> Result<usize, StoreError> {
        let rows = seed_rows(resources);
        self.database
            .write(Box::new(move |tx| Box::pin(insert_seeds(tx, rows))))
            .await
    }
}

/// Seed resources with their rows, encoded before a job takes them (SQLite runs jobs on
/// its one writer thread).
pub(super) fn seed_rows(resources: Vec<Resource>) -> Vec<(ResourceRow, Resource)> {
    resources
        .into_iter()
        .map(|resource| (ResourceRow::from_resource(&resource), resource))
        .collect()
}

/// Inserts the seed resources whose ids are not stored yet; returns how many were new. A
/// name another resource holds is [`StoreError::NameTaken`].
pub(super) async fn insert_seeds(
    tx: &dyn Tx,
    rows: Vec<(ResourceRow, Resource)>,
) -> Result<usize, StoreError> {
    let mut new = 0;
    for (row, resource) in rows {
        let inserted = tx
            .execute(
                "INSERT INTO resources (id, kind, folder_id, name, os, body,
                     status, family, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO NOTHING",
                resource_values(row),
            )
            .await;
        match inserted {
            Ok(0) => {}
            Ok(_) => {
                new += 1;
                let id = resource.id().to_string();
                tx.wrote(&id, Some(Record::Resource(resource)));
            }
            Err(StoreError::Duplicate(_)) => return Err(StoreError::name_taken(&resource)),
            Err(error) => return Err(error),
        }
    }
    Ok(new)
}

/// A resource row's columns, in the order of the inserts' column lists.
fn resource_values(row: ResourceRow) -> Vec<Value> {
    vec![
        row.id.into(),
        row.kind.into(),
        row.folder_id.into(),
        row.name.into(),
        row.os.into(),
        row.body.into(),
        row.status.into(),
        row.family.into(),
        row.created_at_ms.into(),
    ]
}

/// Inserts a resource unless its name is taken (then returns false, writing nothing).
async fn insert_resource(tx: &dyn Tx, row: ResourceRow) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO resources (id, kind, folder_id, name, os, body, status, family,
                 created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (kind, folder_id, name) WHERE name <> '' DO NOTHING",
            resource_values(row),
        )
        .await?;
    Ok(inserted == 1)
}

/// Inserts a resource and the operation that creates it in one statement (a database with
/// [`Dialect::writable_ctes`](super::sql::Dialect)); false, and nothing written, if the
/// resource's name is taken.
pub(super) async fn insert_created(
    tx: &dyn Tx,
    create: NewRows,
    owner: String,
    lease_ms: i64,
) -> Result<bool, StoreError> {
    let now_ms = tx.dialect().now_ms;
    let mut parameters = resource_values(create.resource);
    parameters.extend(operation_values(create.operation, &owner, lease_ms));
    let Some(source) = create.source else {
        let sql = format!(
            "WITH inserted AS (
                 INSERT INTO resources (id, kind, folder_id, name, os, body, status, family,
                     created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (kind, folder_id, name) WHERE name <> '' DO NOTHING
                 RETURNING id)
             INSERT INTO operations {OPERATION_INSERT_COLUMNS}
             SELECT $10, $11, $12, $13, $14, $15, $16, {now_ms} + $17, $18, $19, $20, $21, $22
             FROM inserted"
        );
        return Ok(tx.execute(&sql, parameters).await? == 1);
    };
    // A copy: its source's row locked as `check_source_ready` locks it, and nothing
    // inserted unless it is READY (and has the body the create read, if it says); the
    // source's state comes back to say why.
    let sql = format!(
        "WITH source AS (
             SELECT kind, status, body IS DISTINCT FROM $24 AND $24 IS NOT NULL AS changed
             FROM resources WHERE id = $23{}),
         inserted AS (
             INSERT INTO resources (id, kind, folder_id, name, os, body, status, family,
                 created_at_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE EXISTS (SELECT 1 FROM source WHERE status = {} AND NOT changed)
             ON CONFLICT (kind, folder_id, name) WHERE name <> '' DO NOTHING
             RETURNING id),
         created AS (
             INSERT INTO operations {OPERATION_INSERT_COLUMNS}
             SELECT $10, $11, $12, $13, $14, $15, $16, {now_ms} + $17, $18, $19, $20, $21, $22
             FROM inserted
             RETURNING id)
         SELECT (SELECT count(*) FROM created), source.kind, source.status, source.changed
         FROM (SELECT 1) AS one LEFT JOIN source ON true",
        tx.dialect().for_share,
        status::READY
    );
    parameters.push(source.clone().into());
    parameters.push(seen_body(create.seen.as_ref()));
    let mut rows = tx.query(&sql, parameters).await?;
    let Some(row) = rows.first_mut() else {
        return Err(StoreError::Backend("a create answered no row".into()));
    };
    let inserted = row.i64(0)? == 1;
    let state = match row.optional_i32(1)? {
        None => None,
        Some(kind) => Some((kind, row.i32(2)?, row.bool(3)?)),
    };
    created(inserted, Some(&source), state)
}

/// The body a create read of its source, as a parameter (NULL: nothing to compare). A
/// batch holds only creates that read a body (`create_copy`).
fn seen_body(seen: Option<&SourceSeen>) -> Value {
    match seen {
        Some(SourceSeen::Body(body)) => Value::Bytes(body.to_vec()),
        None | Some(SourceSeen::Record(_)) => Value::Null,
    }
}

/// How a create went, from what its statement found: true if it was written; false if
/// not, its name taken; the source's refusal if it has a source that is gone (`state`
/// `None`) or not READY, or `SourceChanged` if its body is not the one the create read
/// (`state` is its kind's and status's numbers and whether it changed).
fn created(
    inserted: bool,
    source: Option<&str>,
    state: Option<(i32, i32, bool)>,
) -> Result<bool, StoreError> {
    if inserted {
        return Ok(true);
    }
    if let Some(source) = source {
        source_ready(source, state.map(|(kind, status, _)| (kind, status)))?;
        if state.is_some_and(|(_, _, changed)| changed) {
            return Err(StoreError::SourceChanged(source.to_string()));
        }
    }
    Ok(false)
}

/// One create of a batch: its rows, the source of a copy, and the source's body as the
/// create read it, if the write is to confirm it.
#[derive(Clone)]
pub(super) struct NewRows {
    pub resource: ResourceRow,
    pub operation: OperationRow,
    pub source: Option<String>,
    pub seen: Option<SourceSeen>,
}

/// Inserts many creates in one statement, as [`insert_created`] inserts one (PostgreSQL:
/// the rows arrive as one array per column). Each create's outcome, in order: true if it
/// was written, false if its name was taken, or its source's refusal. Names are taken in
/// one order (kind, folder, name) whatever the order of the batch, so two batches that
/// take the same names wait for each other instead of deadlocking.
pub(super) async fn insert_created_many(
    tx: &dyn Tx,
    creates: Vec<NewRows>,
    owner: String,
    lease_ms: i64,
) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
    // One array per column, in the order of `resource_values`, `operation_values` and the
    // source: the single create's order.
    let mut columns: Vec<Vec<Value>> = (0..24).map(|_| Vec::with_capacity(creates.len())).collect();
    let sources: Vec<Option<String>> = creates.iter().map(|create| create.source.clone()).collect();
    for create in creates {
        let seen = seen_body(create.seen.as_ref());
        let values = resource_values(create.resource)
            .into_iter()
            .chain(operation_values(create.operation, &owner, lease_ms))
            .chain([create.source.into(), seen]);
        for (column, value) in columns.iter_mut().zip(values) {
            column.push(value);
        }
    }
    let mut parameters: Vec<Value> = columns.into_iter().map(Value::Column).collect();
    // The sources apart, each once: `= ANY` of a parameter is looked up by the primary
    // key, where a subquery of the unnested rows was planned as a scan of the table.
    let mut distinct_sources: Vec<String> = sources.iter().flatten().cloned().collect();
    distinct_sources.sort_unstable();
    distinct_sources.dedup();
    parameters.push(Value::TextList(distinct_sources));
    let sql = format!(
        "WITH input AS (
             SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[],
                 $5::bytea[], $6::bytea[], $7::integer[], $8::text[], $9::bigint[],
                 $10::text[], $11::boolean[], $12::bigint[], $13::integer[], $14::text[],
                 $15::text[], $16::text[], $17::bigint[], $18::bytea[], $19::text[],
                 $20::text[], $21::bigint[], $22::text[], $23::text[], $24::bytea[])
             WITH ORDINALITY AS input (id, kind, folder_id, name, os, body, status, family,
                 created_at_ms, operation_id, done, modified_at_ms, target_kind, target_id,
                 import_uri, owner, lease_ms, operation_body, work, source_id,
                 operation_created_at_ms, operation_folder_id, source, seen, position)),
         source AS (
             SELECT id, kind, status, body FROM resources WHERE id = ANY($25){for_share}),
         inserted AS (
             INSERT INTO resources (id, kind, folder_id, name, os, body, status, family,
                 created_at_ms)
             SELECT id, kind, folder_id, name, os, body, status, family, created_at_ms
             FROM input
             WHERE source IS NULL OR EXISTS (
                 SELECT 1 FROM source WHERE source.id = input.source AND source.status = {ready}
                     AND (input.seen IS NULL OR source.body = input.seen))
             ORDER BY kind, folder_id, name, id
             ON CONFLICT (kind, folder_id, name) WHERE name <> '' DO NOTHING
             RETURNING id),
         created AS (
             INSERT INTO operations {OPERATION_INSERT_COLUMNS}
             SELECT operation_id, done, modified_at_ms, target_kind, target_id, import_uri,
                 owner, {now_ms} + lease_ms, operation_body, work, source_id,
                 operation_created_at_ms, operation_folder_id
             FROM input WHERE id IN (SELECT id FROM inserted)
             RETURNING target_id)
         SELECT created.target_id IS NOT NULL, source.kind, source.status,
             input.seen IS NOT NULL AND source.body IS DISTINCT FROM input.seen
         FROM input
         LEFT JOIN created ON created.target_id = input.id
         LEFT JOIN source ON source.id = input.source
         ORDER BY input.position",
        for_share = tx.dialect().for_share,
        ready = status::READY,
        now_ms = tx.dialect().now_ms,
    );
    let rows = tx.query(&sql, parameters).await?;
    if rows.len() != sources.len() {
        return Err(StoreError::Backend(format!(
            "a batch of {} creates answered {} rows",
            sources.len(),
            rows.len()
        )));
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    for (mut row, source) in rows.into_iter().zip(sources) {
        let inserted = row.bool(0)?;
        let state = match row.optional_i32(1)? {
            None => None,
            Some(kind) => Some((kind, row.i32(2)?, row.bool(3)?)),
        };
        outcomes.push(created(inserted, source.as_deref(), state));
    }
    Ok(outcomes)
}

/// The columns an operation is inserted with, in the order of [`operation_values`].
const OPERATION_INSERT_COLUMNS: &str = "(id, done, modified_at_ms, target_kind, target_id,
    import_uri, owner, lease_until_ms, body, work, source_id, created_at_ms, folder_id)";

/// An operation row's values, held by `owner`; `lease_ms` is added to the database's
/// clock by the statement.
fn operation_values(row: OperationRow, owner: &str, lease_ms: i64) -> [Value; 13] {
    [
        row.id.into(),
        row.done.into(),
        row.modified_at_ms.into(),
        row.target_kind.into(),
        row.target_id.into(),
        row.import_uri.into(),
        owner.into(),
        lease_ms.into(),
        row.body.into(),
        row.work.into(),
        row.source_id.into(),
        row.created_at_ms.into(),
        row.folder_id.into(),
    ]
}

/// Inserts an operation held by `owner` for `lease_ms` from now (the database's clock).
pub(super) async fn insert_operation(
    tx: &dyn Tx,
    row: OperationRow,
    owner: &str,
    lease_ms: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO operations {OPERATION_INSERT_COLUMNS}
         VALUES ($1, $2, $3, $4, $5, $6, $7, {} + $8, $9, $10, $11, $12, $13)",
        tx.dialect().now_ms
    );
    tx.execute(&sql, operation_values(row, owner, lease_ms).into())
        .await?;
    Ok(())
}

/// Stores the key of `claim` for the operation `operation_id`; false if it is stored
/// already (true when there is no claim). On PostgreSQL a concurrent transaction storing
/// the same key makes this wait for its end: it then answers false if that one committed.
async fn insert_key(
    tx: &dyn Tx,
    claim: Option<&KeyClaim>,
    operation_id: &str,
) -> Result<bool, StoreError> {
    let Some(claim) = claim else {
        return Ok(true);
    };
    let sql = format!(
        "INSERT INTO idempotency_keys (subject, key, fingerprint, operation_id, created_at_ms)
         VALUES ($1, $2, $3, $4, {})
         ON CONFLICT (subject, key) DO NOTHING",
        tx.dialect().now_ms
    );
    let inserted = tx
        .execute(
            &sql,
            vec![
                claim.subject.clone().into(),
                claim.key.clone().into(),
                claim.fingerprint.clone().into(),
                operation_id.into(),
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// The resource `id`, as stored.
pub(super) async fn select_resource(tx: &dyn Tx, id: &str) -> Result<Option<Resource>, StoreError> {
    let mut rows = tx
        .query(
            "SELECT kind, os, body FROM resources WHERE id = $1",
            vec![id.into()],
        )
        .await?;
    rows.first_mut()
        .map(|row| codec::resource_from_row(row, 0))
        .transpose()
}

/// The state a change starts from, its row locked (see `Dialect::for_update`): the
/// resource of `kind`, its access bindings, and a running operation that creates,
/// deletes or copies from it.
async fn select_current(
    tx: &dyn Tx,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<Current>, StoreError> {
    let dialect = tx.dialect();
    let select = format!(
        "SELECT kind, os, body, access_bindings FROM resources WHERE id = $1 AND kind = $2{}",
        dialect.for_update
    );
    let mut rows = tx
        .query(&select, vec![id.into(), kind.code().into()])
        .await?;
    let Some(row) = rows.first_mut() else {
        return Ok(None);
    };
    let resource = codec::resource_from_row(row, 0)?;
    let access_bindings = codec::decode_bindings(row.optional_bytes(3)?.as_deref())?;
    let busy = format!(
        "SELECT id FROM operations
         WHERE {} AND (target_id = $1 OR source_id = $1) LIMIT 1",
        dialect.running
    );
    let mut rows = tx.query(&busy, vec![id.into()]).await?;
    let busy_with = rows.first_mut().map(|row| row.text(0)).transpose()?;
    Ok(Some(Current {
        resource,
        access_bindings,
        busy_with,
    }))
}

/// Whether an operation with this id is stored.
async fn operation_exists(tx: &dyn Tx, id: &str) -> Result<bool, StoreError> {
    let found = tx
        .query(
            "SELECT 1 FROM operations WHERE id = $1",
            vec![Value::Text(id.to_string())],
        )
        .await?;
    Ok(!found.is_empty())
}

/// Refuses a copy whose source is gone or not READY, as the database holds it now, its
/// row locked against changes until the create commits (`Dialect::for_share`): a delete of
/// the source either commits first (and the copy is refused here) or waits for the copy
/// and then finds it running (and is refused by its own check, `select_current`'s
/// `busy_with`). The domain checked the source before; this decides it with the write.
async fn check_source_ready(
    tx: &dyn Tx,
    source: Option<&str>,
    seen: Option<&SourceSeen>,
) -> Result<(), StoreError> {
    let Some(id) = source else {
        return Ok(());
    };
    let mut parameters = vec![id.into()];
    // What else the row answers: whether its body is the one read, or the record itself.
    let compared = match seen {
        None => "1",
        Some(SourceSeen::Body(body)) => {
            parameters.push(Value::Bytes(body.to_vec()));
            "CASE WHEN body = $2 THEN 1 ELSE 0 END"
        }
        Some(SourceSeen::Record(_)) => "kind, os, body",
    };
    let select = format!(
        "SELECT kind, status, {compared} FROM resources WHERE id = $1{}",
        tx.dialect().for_share
    );
    let mut rows = tx.query(&select, parameters).await?;
    let Some(row) = rows.first_mut() else {
        return source_ready(id, None);
    };
    source_ready(id, Some((row.i32(0)?, row.i32(1)?)))?;
    let unchanged = match seen {
        Some(SourceSeen::Record(read)) => codec::resource_from_row(row, 2)? == **read,
        None | Some(SourceSeen::Body(_)) => row.bool(2)?,
    };
    match unchanged {
        true => Ok(()),
        false => Err(StoreError::SourceChanged(id.to_string())),
    }
}

/// Refuses a source that is gone (`state` is `None`) or whose status is not READY;
/// `state` is its kind's and its status's numbers.
fn source_ready(id: &str, state: Option<(i32, i32)>) -> Result<(), StoreError> {
    let Some((kind, status)) = state else {
        return Err(StoreError::Refused(Error::NotFound(format!(
            "{}, the source, no longer exists",
            excerpt(id)
        ))));
    };
    let kind = ResourceKind::from_code(kind).map_or("Resource", ResourceKind::display_name);
    let state = match status {
        status::READY => return Ok(()),
        status::DELETING => "is being deleted",
        _ => "is not ready",
    };
    Err(StoreError::Refused(Error::FailedPrecondition(format!(
        "{kind} {}, the source, {state}",
        excerpt(id)
    ))))
}

/// `NameTaken` if another resource of its kind holds `resource`'s non-empty name in its
/// folder. (On PostgreSQL a concurrent transaction may still take it first: then the
/// unique index refuses the write.)
async fn check_name_free(tx: &dyn Tx, resource: &Resource) -> Result<(), StoreError> {
    if resource.name().is_empty() {
        return Ok(());
    }
    let holders = tx
        .query(
            "SELECT id FROM resources
             WHERE kind = $1 AND folder_id = $2 AND name = $3 AND id <> $4 LIMIT 1",
            vec![
                resource.kind().code().into(),
                resource.folder_id().into(),
                resource.name().into(),
                resource.id().into(),
            ],
        )
        .await?;
    match holders.is_empty() {
        true => Ok(()),
        false => Err(StoreError::name_taken(resource)),
    }
}

/// The columns of a resource that the list indexes are on.
#[derive(PartialEq)]
pub(super) struct Indexed {
    folder_id: String,
    name: String,
    family: String,
}

impl Indexed {
    pub(super) fn of(resource: &Resource) -> Indexed {
        Indexed {
            folder_id: resource.folder_id().to_string(),
            name: resource.name().to_string(),
            family: resource.family().to_string(),
        }
    }
}

/// Writes a resource's new state (every column but its kind, id and creation time).
///
/// SQLite rewrites the entries of every index on a column named in SET, whether its value
/// changed or not; the list indexes are on folder_id, name and family, so when those stay
/// (`indexed_unchanged`: every ending of an operation but a few changes) only the other
/// columns are set.
pub(super) fn update_resource(
    tx: &dyn Tx,
    row: ResourceRow,
    indexed_unchanged: bool,
) -> Pending<'_, u64> {
    if indexed_unchanged {
        return tx.execute(
            "UPDATE resources SET os = $2, body = $3, status = $4 WHERE id = $1",
            vec![
                row.id.into(),
                row.os.into(),
                row.body.into(),
                row.status.into(),
            ],
        );
    }
    tx.execute(
        "UPDATE resources SET folder_id = $2, name = $3, os = $4, body = $5, status = $6,
             family = $7
         WHERE id = $1",
        vec![
            row.id.into(),
            row.folder_id.into(),
            row.name.into(),
            row.os.into(),
            row.body.into(),
            row.status.into(),
            row.family.into(),
        ],
    )
}

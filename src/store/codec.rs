//! How records become rows of the SQL backends and back, the same for SQLite and
//! PostgreSQL. A row keeps the API message itself, protobuf-encoded, in `body`, beside the
//! few columns the database must see (kind, folder and name for the unique name index;
//! done, lease and times for the operation queries). Protobuf keeps old rows readable when
//! fields are added to the messages.

use super::sql::Row;
use super::StoreError;
use crate::model::resource::{OperationRecord, Resource, ResourceKind, ResourceRef, Work};
use crate::pb::compute::{Disk, Image, Os, Snapshot};
use crate::pb::yandex::cloud::access::{AccessBinding, ListAccessBindingsResponse};
use crate::pb::{baremetal, operation::Operation};
use prost::Message;

/// A resource as one row of `resources`.
#[derive(Clone)]
pub struct ResourceRow {
    pub id: String,
    pub kind: i32,
    pub folder_id: String,
    pub name: String,
    /// Disks and snapshots: the encoded `Os` of the image they descend from.
    pub os: Option<Vec<u8>>,
    pub body: Vec<u8>,
    /// Columns that lists filter and order on.
    pub status: i32,
    pub family: String,
    pub created_at_ms: i64,
}

impl ResourceRow {
    pub fn from_resource(resource: &Resource) -> ResourceRow {
        let (body, os) = match resource {
            Resource::ComputeImage(image) => (image.encode_to_vec(), None),
            Resource::Snapshot { snapshot, os } => (snapshot.encode_to_vec(), os.as_ref()),
            Resource::Disk { disk, os } => (disk.encode_to_vec(), os.as_ref()),
            Resource::BaremetalImage(image) => (image.encode_to_vec(), None),
        };
        ResourceRow {
            id: resource.id().to_string(),
            kind: resource.kind().code(),
            folder_id: resource.folder_id().to_string(),
            name: resource.name().to_string(),
            os: os.map(Message::encode_to_vec),
            body,
            status: resource.status(),
            family: resource.family().to_string(),
            created_at_ms: resource.created_at_ms(),
        }
    }
}

/// Reads a resource back from its `kind`, `os` and `body` columns.
pub fn resource_from_columns(
    kind: i32,
    os: Option<&[u8]>,
    body: &[u8],
) -> Result<Resource, StoreError> {
    let kind = ResourceKind::from_code(kind)
        .ok_or_else(|| StoreError::Corrupt(format!("stored resource has unknown kind {kind}")))?;
    let unreadable =
        |error: prost::DecodeError| StoreError::Corrupt(format!("stored resource: {error}"));
    let os = os.map(Os::decode).transpose().map_err(unreadable)?;
    Ok(match kind {
        ResourceKind::ComputeImage => {
            Resource::ComputeImage(Image::decode(body).map_err(unreadable)?)
        }
        ResourceKind::Snapshot => Resource::Snapshot {
            snapshot: Snapshot::decode(body).map_err(unreadable)?,
            os,
        },
        ResourceKind::Disk => Resource::Disk {
            disk: Disk::decode(body).map_err(unreadable)?,
            os,
        },
        ResourceKind::BaremetalImage => {
            Resource::BaremetalImage(baremetal::Image::decode(body).map_err(unreadable)?)
        }
    })
}

/// Reads a resource back from a row's `kind`, `os` and `body`, from column `first` on.
pub fn resource_from_row(row: &mut Row, first: usize) -> Result<Resource, StoreError> {
    let kind = row.i32(first)?;
    let os = row.optional_bytes(first + 1)?;
    let body = row.bytes(first + 2)?;
    resource_from_columns(kind, os.as_deref(), &body)
}

/// An operation as one row of `operations` (without the lease columns, which the
/// backends set themselves).
#[derive(Clone)]
pub struct OperationRow {
    pub id: String,
    pub done: bool,
    pub modified_at_ms: i64,
    pub target_kind: i32,
    pub target_id: String,
    /// The folder of the target when the operation began.
    pub folder_id: String,
    /// The kind of work (`Work::name`).
    pub work: &'static str,
    /// The URI of an import; NULL otherwise.
    pub import_uri: Option<String>,
    /// The resource a copy reads from; NULL otherwise.
    pub source_id: Option<String>,
    pub created_at_ms: i64,
    pub body: Vec<u8>,
}

impl OperationRow {
    pub fn from_record(record: &OperationRecord) -> OperationRow {
        OperationRow {
            id: record.operation.id.clone(),
            done: record.operation.done,
            modified_at_ms: modified_at_ms(&record.operation),
            target_kind: record.target.kind.code(),
            target_id: record.target.id.clone(),
            folder_id: record.target.folder_id.clone(),
            work: record.work.name(),
            import_uri: record.work.import_uri().map(str::to_string),
            source_id: record.work.source().map(str::to_string),
            created_at_ms: created_at_ms(&record.operation),
            body: record.operation.encode_to_vec(),
        }
    }
}

/// Reads an operation record back from its columns.
pub fn record_from_columns(
    columns: OperationColumns,
    body: &[u8],
) -> Result<OperationRecord, StoreError> {
    let kind = ResourceKind::from_code(columns.target_kind).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "stored operation has unknown kind {}",
            columns.target_kind
        ))
    })?;
    let work = Work::from_columns(&columns.work, columns.import_uri, columns.source_id)
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "stored operation has unknown work {:?}",
                columns.work
            ))
        })?;
    Ok(OperationRecord {
        operation: decode_operation(body)?,
        target: ResourceRef {
            kind,
            id: columns.target_id,
            folder_id: columns.folder_id,
        },
        work,
    })
}

/// The columns of `operations` that make a record, besides its body. Queries select them
/// as [`OPERATION_COLUMNS`], in that order.
#[derive(Debug, Clone)]
pub struct OperationColumns {
    pub target_kind: i32,
    pub target_id: String,
    pub folder_id: String,
    pub work: String,
    pub import_uri: Option<String>,
    pub source_id: Option<String>,
}

/// The select list of an operation record: its columns, then `body`.
pub const OPERATION_COLUMNS: &str =
    "target_kind, target_id, folder_id, work, import_uri, source_id, body";

/// Reads an operation record back from a row's [`OPERATION_COLUMNS`], from column
/// `first` on.
pub fn record_from_row(row: &mut Row, first: usize) -> Result<OperationRecord, StoreError> {
    let columns = OperationColumns {
        target_kind: row.i32(first)?,
        target_id: row.text(first + 1)?,
        folder_id: row.text(first + 2)?,
        work: row.text(first + 3)?,
        import_uri: row.optional_text(first + 4)?,
        source_id: row.optional_text(first + 5)?,
    };
    let body = row.bytes(first + 6)?;
    record_from_columns(columns, &body)
}

/// The `access_bindings` column: a `ListAccessBindingsResponse` holding them (NULL: none).
pub fn encode_bindings(bindings: &[AccessBinding]) -> Vec<u8> {
    ListAccessBindingsResponse {
        access_bindings: bindings.to_vec(),
        next_page_token: String::new(),
    }
    .encode_to_vec()
}

/// Reads the `access_bindings` column back.
pub fn decode_bindings(column: Option<&[u8]>) -> Result<Vec<AccessBinding>, StoreError> {
    match column {
        None => Ok(Vec::new()),
        Some(bytes) => ListAccessBindingsResponse::decode(bytes)
            .map(|stored| stored.access_bindings)
            .map_err(|error| StoreError::Corrupt(format!("stored access bindings: {error}"))),
    }
}

/// Decodes the `body` column of an operation.
pub fn decode_operation(body: &[u8]) -> Result<Operation, StoreError> {
    Operation::decode(body)
        .map_err(|error| StoreError::Corrupt(format!("stored operation: {error}")))
}

/// When the operation last changed, in milliseconds since the Unix epoch.
pub fn modified_at_ms(operation: &Operation) -> i64 {
    operation.modified_at.as_ref().map_or(0, |at| {
        at.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(at.nanos) / 1_000_000)
    })
}

/// When the operation was created, in milliseconds since the Unix epoch.
pub fn created_at_ms(operation: &Operation) -> i64 {
    operation.created_at.as_ref().map_or(0, |at| {
        at.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(at.nanos) / 1_000_000)
    })
}

/// Milliseconds since the Unix epoch, now, by this machine's clock.
pub fn now_ms() -> i64 {
    unix_ms(std::time::SystemTime::now())
}

/// Milliseconds since the Unix epoch of a time (0 before it).
pub fn unix_ms(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The finished form of an operation whose stored row cannot be read: done, with an
/// INTERNAL error that says why, and nothing else (the rest of the row is unreadable).
pub fn unreadable(id: &str, error: &StoreError) -> Operation {
    let now = crate::model::operations::now();
    Operation {
        id: id.to_string(),
        description: "unreadable operation".into(),
        created_at: Some(now),
        modified_at: Some(now),
        done: true,
        result: Some(crate::pb::operation::operation::Result::Error(
            crate::error::Error::Internal(format!(
                "this operation's stored record cannot be read ({error}); it was ended"
            ))
            .to_rpc_status(),
        )),
        ..Operation::default()
    }
}

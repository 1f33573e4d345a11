//! Reading many: List of every kind (filter, order, keyset paging), GetLatestByFamily, and
//! ListOperations.
//!
//! Pages are keyset pages: a page token holds where the last page ended (the order
//! column's value and the id, `page_token`), so a list stays correct while rows are
//! added and removed: no row that existed throughout is skipped or repeated. `page_size`
//! 0 means the kind's default (100 for compute, 20 for bare metal); at most 1000.

use super::filter::{parse_filter, parse_order, Fields};
use super::page_token::Position;
use super::Catalog;
use crate::domain::call::CallContext;
use crate::error::{excerpt, Error};
use crate::model::resource::{status, Kind, Resource, ResourceKind};
use crate::pb::compute;
use crate::pb::operation::Operation;
use crate::store::query::{Column, Condition, Cursor, ListQuery, Operator, Order, SqlValue};

/// The largest page.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A List request of any kind, as the adapters read it.
#[derive(Debug, Clone, Default)]
pub struct ListArgs {
    pub folder_id: String,
    pub page_size: i64,
    pub page_token: String,
    pub filter: String,
    pub order_by: String,
}

/// Status names of the compute kinds (their enums agree) and of bare metal.
const COMPUTE_STATUSES: &[(&str, i32)] =
    &[("CREATING", 1), ("READY", 2), ("ERROR", 3), ("DELETING", 4)];
const BAREMETAL_STATUSES: &[(&str, i32)] = &[
    ("CREATING", 1),
    ("READY", 2),
    ("ERROR", 3),
    ("DELETING", 4),
    ("UPDATING", 5),
];

/// What the filter of each kind may name.
fn fields(kind: ResourceKind) -> Fields {
    const COMMON: &[(&str, &str, Column)] = &[
        ("id", "id", Column::Id),
        ("name", "name", Column::Name),
        ("status", "status", Column::Status),
    ];
    const IMAGES: &[(&str, &str, Column)] = &[
        ("id", "id", Column::Id),
        ("name", "name", Column::Name),
        ("status", "status", Column::Status),
        ("family", "family", Column::Family),
    ];
    match kind {
        ResourceKind::ComputeImage => Fields {
            names: IMAGES,
            statuses: COMPUTE_STATUSES,
            contains: false,
        },
        ResourceKind::Snapshot | ResourceKind::Disk => Fields {
            names: COMMON,
            statuses: COMPUTE_STATUSES,
            contains: false,
        },
        ResourceKind::BaremetalImage => Fields {
            names: COMMON,
            statuses: BAREMETAL_STATUSES,
            contains: true,
        },
    }
}

/// The page size a request asks for: 0 is `default`.
pub(super) fn page_size(requested: i64, default: i64) -> Result<usize, Error> {
    match requested {
        0 => Ok(default as usize),
        1..=MAX_PAGE_SIZE => Ok(requested as usize),
        other => Err(Error::invalid_field(
            "page_size",
            format!("must be 0 (the default, {default}) to {MAX_PAGE_SIZE}, got {other}"),
        )),
    }
}

/// The default page size of a kind.
pub fn default_page_size(kind: ResourceKind) -> i64 {
    match kind {
        ResourceKind::BaremetalImage => 20,
        _ => 100,
    }
}

/// Where a page of this order ends, after `last`.
fn position_after(order: Order, last: &Resource) -> Position {
    let id = last.id().to_string();
    match order.column {
        Column::Name => Position::Text(last.name().to_string(), id),
        Column::CreatedAt => Position::Number(last.created_at_ms(), id),
        _ => Position::Id(id),
    }
}

/// The cursor a position stands for under this order, or INVALID_ARGUMENT.
fn cursor_of(order: Order, position: Position) -> Result<Cursor, Error> {
    let mismatch = || Error::invalid_field("page_token", "belongs to another order");
    match (order.column, position) {
        (Column::Id, Position::Id(id)) => Ok(Cursor {
            value: SqlValue::Text(id.clone()),
            id,
        }),
        (Column::Name, Position::Text(name, id)) => Ok(Cursor {
            value: SqlValue::Text(name),
            id,
        }),
        (Column::CreatedAt, Position::Number(created, id)) => Ok(Cursor {
            value: SqlValue::I64(created),
            id,
        }),
        _ => Err(mismatch()),
    }
}

impl Catalog {
    /// List of kind `K`, as its messages: a page and the token of the next.
    pub async fn list_typed<K: Kind>(
        &self,
        call: &CallContext,
        args: ListArgs,
    ) -> Result<(Vec<K>, String), Error> {
        let (page, next_page_token) = self.list(call, K::KIND, args).await?;
        let page = page.into_iter().filter_map(K::from_resource).collect();
        Ok((page, next_page_token))
    }

    /// List of any kind: a page of the folder's resources and the token of the next;
    /// PERMISSION_DENIED for a folder the caller may not use.
    pub async fn list(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        args: ListArgs,
    ) -> Result<(Vec<Resource>, String), Error> {
        call.caller.check_folder(&args.folder_id)?;
        let size = page_size(args.page_size, default_page_size(kind))?;
        let conditions = parse_filter(&args.filter, &fields(kind))?;
        let order = parse_order(&args.order_by)?;
        let scope = format!(
            "list|{}|{}|{}|{}",
            kind.code(),
            args.folder_id,
            args.filter,
            args.order_by
        );
        let after = if args.page_token.is_empty() {
            None
        } else {
            let position = self.page_tokens.read(&scope, &args.page_token)?;
            Some(cursor_of(order, position)?)
        };
        let mut page = self
            .store
            .list(&ListQuery {
                kind,
                folder_id: args.folder_id,
                conditions,
                order,
                after,
                limit: size + 1,
            })
            .await?;
        let next = if page.len() > size {
            page.truncate(size);
            let last = page.last().expect("a full page has a last row");
            self.page_tokens.issue(&scope, &position_after(order, last))
        } else {
            String::new()
        };
        Ok((page, next))
    }

    /// ImageService.GetLatestByFamily: the newest READY image of the family in the folder.
    pub async fn latest_by_family(
        &self,
        call: &CallContext,
        folder_id: &str,
        family: &str,
    ) -> Result<compute::Image, Error> {
        call.caller.check_folder(folder_id)?;
        let query = ListQuery {
            kind: ResourceKind::ComputeImage,
            folder_id: folder_id.to_string(),
            conditions: vec![
                Condition {
                    column: Column::Family,
                    operator: Operator::Equal,
                    values: vec![SqlValue::Text(family.to_string())],
                },
                Condition {
                    column: Column::Status,
                    operator: Operator::Equal,
                    values: vec![SqlValue::I32(status::READY)],
                },
            ],
            order: Order {
                column: Column::CreatedAt,
                descending: true,
            },
            after: None,
            limit: 1,
        };
        match self
            .store
            .list(&query)
            .await?
            .pop()
            .and_then(compute::Image::from_resource)
        {
            Some(image) => Ok(image),
            None => Err(Error::NotFound(format!(
                "no READY image of family {} in folder {}",
                excerpt(family),
                excerpt(folder_id)
            ))),
        }
    }

    /// ListOperations of any kind: the resource's operations, newest first.
    pub async fn list_operations(
        &self,
        call: &CallContext,
        kind: ResourceKind,
        id: &str,
        requested_size: i64,
        page_token: &str,
    ) -> Result<(Vec<Operation>, String), Error> {
        let size = page_size(requested_size, default_page_size(kind))?;
        let scope = format!("operations|{id}");
        let after = if page_token.is_empty() {
            None
        } else {
            match self.page_tokens.read(&scope, page_token)? {
                Position::Number(created, id) => Some((created, id)),
                _ => return Err(Error::invalid_field("page_token", "is damaged")),
            }
        };
        // A resource in a folder the caller may not use is, to the caller, one that does not
        // exist (as for Get). Either way the caller sees the operations recorded in its
        // folders (a disk that moved has operations in both), as OperationService.Get would.
        let exists = self
            .store
            .resource(kind, id)
            .await?
            .is_some_and(|resource| call.caller.may_use(resource.folder_id()));
        let folders = call.caller.folder_list();
        let mut page = self
            .store
            .operations_of(id, folders.as_deref(), after, size + 1)
            .await?;
        // Every resource has its create's operation (seeded ones excepted): none at all is
        // a resource that never existed here, or whose operations were all purged.
        if page.is_empty() && page_token.is_empty() && !exists {
            return Err(super::not_found(kind, id));
        }
        let next = if page.len() > size {
            page.truncate(size);
            let last = page.last().expect("a full page has a last row");
            let created = crate::store::codec::created_at_ms(last);
            self.page_tokens
                .issue(&scope, &Position::Number(created, last.id.clone()))
        } else {
            String::new()
        };
        Ok((page, next))
    }
}

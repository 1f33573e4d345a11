//! Lists as SQL, the same for SQLite and PostgreSQL: a [`ListQuery`] (conditions on
//! indexed columns, an order, a keyset cursor, a limit) becomes one statement and its
//! parameters. The domain parses `filter` and `order_by` into a query; a database only
//! says how its substring test is written, and whether the statement names its index
//! ([`Dialect`]).
//!
//! Which index serves a list ([`index_for`]) is decided here, by one rule, rather than
//! left to SQLite's planner, which has no statistics and would read a whole folder in id
//! order to find one family: an equality on a name, then on a family (by id or by
//! creation time), then on a status (when the order is by id) picks that column's index;
//! otherwise the order's index serves. PostgreSQL plans with its own statistics; both get the same indexes (see
//! `migrations/*/0002_lifecycle.sql`).

use super::sql::Dialect;
use crate::model::resource::ResourceKind;

/// The columns lists may filter and order on: all of them are columns of `resources`
/// covered by its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Name,
    Status,
    Family,
    CreatedAt,
}

impl Column {
    fn sql(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Name => "name",
            Column::Status => "status",
            Column::Family => "family",
            Column::CreatedAt => "created_at_ms",
        }
    }
}

/// A parameter value (the store's [`Value`](super::sql::Value)).
pub use super::sql::Value as SqlValue;

/// How a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equal,
    NotEqual,
    In,
    NotIn,
    /// The column contains the value (a substring).
    Contains,
}

/// `column operator values` (one value except for IN and NOT IN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub column: Column,
    pub operator: Operator,
    pub values: Vec<SqlValue>,
}

/// The order of a list: a column, then the id to break ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub column: Column,
    pub descending: bool,
}

/// Where the previous page ended: its last row's value of the order column, and its id
/// (empty when the value is unique: a non-empty name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub value: SqlValue,
    pub id: String,
}

/// One page of resources of one kind in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub kind: ResourceKind,
    pub folder_id: String,
    pub conditions: Vec<Condition>,
    pub order: Order,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// Every index [`index_for`] may name: SQLite's start-up check makes sure they exist, since
/// a statement that names a missing index fails.
pub const LIST_INDEXES: &[&str] = &[
    "resources_by_id",
    "resources_by_name_order",
    "resources_by_created",
    "resources_by_family",
    "resources_by_family_created",
    "resources_by_status",
];

/// Whether a condition holds only for rows whose `column` is one of some non-empty texts
/// (an `=` or `IN`): then a partial index on `column <> ''` may serve it.
fn picks_non_empty(condition: &Condition, column: Column) -> bool {
    condition.column == column
        && matches!(condition.operator, Operator::Equal | Operator::In)
        && !condition.values.is_empty()
        && condition
            .values
            .iter()
            .all(|value| !matches!(value, SqlValue::Text(text) if text.is_empty()))
}

/// The index of `resources` that serves `query` (see the module documentation), or
/// `None` when the query names ids: the primary key serves that best.
pub fn index_for(query: &ListQuery) -> Option<&'static str> {
    let equal_on = |column: Column| {
        query.conditions.iter().any(|condition| {
            condition.column == column
                && matches!(condition.operator, Operator::Equal | Operator::In)
        })
    };
    let non_empty_on = |column: Column| {
        query
            .conditions
            .iter()
            .any(|condition| picks_non_empty(condition, column))
    };
    if equal_on(Column::Id) {
        None
    } else if equal_on(Column::Name) {
        Some("resources_by_name_order")
    } else if non_empty_on(Column::Family) {
        Some(match query.order.column {
            Column::CreatedAt => "resources_by_family_created",
            _ => "resources_by_family",
        })
    } else if equal_on(Column::Status) && query.order.column == Column::Id {
        Some("resources_by_status")
    } else {
        Some(match query.order.column {
            Column::Name => "resources_by_name_order",
            Column::CreatedAt => "resources_by_created",
            _ => "resources_by_id",
        })
    }
}

/// The statement and its parameters. It selects `kind, os, body`.
pub fn list_sql(query: &ListQuery, dialect: &Dialect) -> (String, Vec<SqlValue>) {
    let mut parameters: Vec<SqlValue> = Vec::new();
    let bind = |value: SqlValue, parameters: &mut Vec<SqlValue>| {
        parameters.push(value);
        format!("${}", parameters.len())
    };
    let index = index_for(query);
    let indexed_by = match index {
        Some(index) if dialect.names_index => format!(" INDEXED BY {index}"),
        _ => String::new(),
    };
    let mut sql = format!(
        "SELECT kind, os, body FROM resources{indexed_by} WHERE kind = {} AND folder_id = {}",
        bind(SqlValue::I32(query.kind.code()), &mut parameters),
        bind(SqlValue::Text(query.folder_id.clone()), &mut parameters)
    );
    if query
        .conditions
        .iter()
        .any(|condition| picks_non_empty(condition, Column::Family))
    {
        // Implied by the condition, and said, so that the partial family index may serve.
        sql.push_str(" AND family <> ''");
    }
    for condition in &query.conditions {
        let column = condition.column.sql();
        let clause = match condition.operator {
            Operator::Equal | Operator::NotEqual | Operator::Contains => {
                let value = condition
                    .values
                    .first()
                    .cloned()
                    .unwrap_or(SqlValue::I32(0));
                let placeholder = bind(value, &mut parameters);
                match condition.operator {
                    Operator::Equal => format!("{column} = {placeholder}"),
                    Operator::NotEqual => format!("{column} <> {placeholder}"),
                    _ => (dialect.contains)(column, &placeholder),
                }
            }
            Operator::In | Operator::NotIn => {
                let placeholders: Vec<String> = condition
                    .values
                    .iter()
                    .map(|value| bind(value.clone(), &mut parameters))
                    .collect();
                let not = if condition.operator == Operator::NotIn {
                    "NOT "
                } else {
                    ""
                };
                format!("{column} {not}IN ({})", placeholders.join(", "))
            }
        };
        sql.push_str(" AND ");
        sql.push_str(&clause);
    }
    let column = query.order.column.sql();
    let (compare, direction) = if query.order.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &query.after {
        if query.order.column == Column::Id {
            let id = bind(SqlValue::Text(after.id.clone()), &mut parameters);
            sql.push_str(&format!(" AND id {compare} {id}"));
        } else if after.id.is_empty() {
            // A unique value (a non-empty name): everything after it.
            let value = bind(after.value.clone(), &mut parameters);
            sql.push_str(&format!(" AND {column} {compare} {value}"));
        } else {
            // A row value: both databases read it as one range of the order's index.
            let value = bind(after.value.clone(), &mut parameters);
            let id = bind(SqlValue::Text(after.id.clone()), &mut parameters);
            sql.push_str(&format!(" AND ({column}, id) {compare} ({value}, {id})"));
        }
    }
    let limit = bind(
        SqlValue::I64(i64::try_from(query.limit).unwrap_or(i64::MAX)),
        &mut parameters,
    );
    if query.order.column == Column::Id {
        sql.push_str(&format!(" ORDER BY id {direction} LIMIT {limit}"));
    } else {
        sql.push_str(&format!(
            " ORDER BY {column} {direction}, id {direction} LIMIT {limit}"
        ));
    }
    (sql, parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIALECT: &Dialect = &crate::store::postgres::DIALECT;

    #[test]
    fn a_filtered_page_after_a_cursor() {
        let query = ListQuery {
            kind: ResourceKind::ComputeImage,
            folder_id: "f".into(),
            conditions: vec![
                Condition {
                    column: Column::Status,
                    operator: Operator::In,
                    values: vec![SqlValue::I32(1), SqlValue::I32(2)],
                },
                Condition {
                    column: Column::Name,
                    operator: Operator::Contains,
                    values: vec![SqlValue::Text("ubu".into())],
                },
            ],
            order: Order {
                column: Column::CreatedAt,
                descending: true,
            },
            after: Some(Cursor {
                value: SqlValue::I64(5),
                id: "fd8x".into(),
            }),
            limit: 101,
        };
        let (sql, parameters) = list_sql(&query, DIALECT);
        assert_eq!(
            sql,
            "SELECT kind, os, body FROM resources WHERE kind = $1 AND folder_id = $2 \
             AND status IN ($3, $4) AND strpos(name, $5) > 0 \
             AND (created_at_ms, id) < ($6, $7) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $8"
        );
        assert_eq!(parameters.len(), 8);
        assert_eq!(parameters[7], SqlValue::I64(101));
        assert_eq!(index_for(&query), Some("resources_by_created"));
    }

    fn query_with(conditions: Vec<Condition>, order: Column) -> ListQuery {
        ListQuery {
            kind: ResourceKind::ComputeImage,
            folder_id: "f".into(),
            conditions,
            order: Order {
                column: order,
                descending: false,
            },
            after: None,
            limit: 1001,
        }
    }

    fn equal(column: Column, value: SqlValue) -> Condition {
        Condition {
            column,
            operator: Operator::Equal,
            values: vec![value],
        }
    }

    #[test]
    fn the_index_follows_the_most_selective_equality_then_the_order() {
        let text = |text: &str| SqlValue::Text(text.into());
        let family = equal(Column::Family, text("ubuntu"));
        let status = equal(Column::Status, SqlValue::I32(2));
        let cases = [
            (vec![], Column::Id, Some("resources_by_id")),
            (vec![], Column::Name, Some("resources_by_name_order")),
            (vec![], Column::CreatedAt, Some("resources_by_created")),
            (vec![equal(Column::Id, text("fd8"))], Column::Name, None),
            (
                vec![status.clone(), equal(Column::Name, text("a"))],
                Column::Id,
                Some("resources_by_name_order"),
            ),
            (
                vec![status.clone(), family.clone()],
                Column::Id,
                Some("resources_by_family"),
            ),
            (
                vec![family.clone(), status.clone()],
                Column::CreatedAt,
                Some("resources_by_family_created"),
            ),
            // An empty family is not in the partial index.
            (
                vec![equal(Column::Family, text(""))],
                Column::CreatedAt,
                Some("resources_by_created"),
            ),
            (
                vec![status.clone()],
                Column::Id,
                Some("resources_by_status"),
            ),
            // Sorting every READY row by name would cost more than reading in name order.
            (vec![status], Column::Name, Some("resources_by_name_order")),
        ];
        for (conditions, order, index) in cases {
            let query = query_with(conditions, order);
            assert_eq!(index_for(&query), index, "{query:?}");
            assert!(index.is_none_or(|index| LIST_INDEXES.contains(&index)));
        }
    }

    #[test]
    fn sqlite_names_the_index_and_a_family_says_it_is_not_empty() {
        let query = query_with(
            vec![equal(Column::Family, SqlValue::Text("ubuntu".into()))],
            Column::Id,
        );
        let (sql, _) = list_sql(&query, &crate::store::sqlite::DIALECT);
        assert_eq!(
            sql,
            "SELECT kind, os, body FROM resources INDEXED BY resources_by_family \
             WHERE kind = $1 AND folder_id = $2 AND family <> '' AND family = $3 \
             ORDER BY id ASC LIMIT $4"
        );
    }
}

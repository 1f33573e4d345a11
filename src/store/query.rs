//! Lists as SQL, the same for SQLite and PostgreSQL: a [`ListQuery`] (conditions on
//! indexed columns, an order, a keyset cursor, a limit) becomes one statement and its
//! parameters. The domain parses `filter` and `order_by` into a query; a backend only
//! says how its placeholders and its substring test are written ([`Dialect`]).

use crate::resource::ResourceKind;

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

/// A parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    /// An INTEGER column (status).
    I32(i32),
    /// A BIGINT column (times in milliseconds).
    I64(i64),
}

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

/// How a backend writes what differs.
pub struct Dialect {
    /// The placeholder of the n-th parameter (from 1).
    pub placeholder: fn(usize) -> String,
    /// `column` contains `placeholder`.
    pub contains: fn(&str, &str) -> String,
}

/// The statement and its parameters. It selects `kind, os, body`.
pub fn list_sql(query: &ListQuery, dialect: &Dialect) -> (String, Vec<SqlValue>) {
    let mut parameters: Vec<SqlValue> = Vec::new();
    let bind = |value: SqlValue, parameters: &mut Vec<SqlValue>| {
        parameters.push(value);
        (dialect.placeholder)(parameters.len())
    };
    let mut sql = format!(
        "SELECT kind, os, body FROM resources WHERE kind = {} AND folder_id = {}",
        bind(SqlValue::I32(query.kind.code()), &mut parameters),
        bind(SqlValue::Text(query.folder_id.clone()), &mut parameters)
    );
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
            let value = bind(after.value.clone(), &mut parameters);
            let same = bind(after.value.clone(), &mut parameters);
            let id = bind(SqlValue::Text(after.id.clone()), &mut parameters);
            sql.push_str(&format!(
                " AND ({column} {compare} {value} OR ({column} = {same} AND id {compare} {id}))"
            ));
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

    fn numbered(n: usize) -> String {
        format!("${n}")
    }
    fn strpos(column: &str, placeholder: &str) -> String {
        format!("strpos({column}, {placeholder}) > 0")
    }
    const DIALECT: Dialect = Dialect {
        placeholder: numbered,
        contains: strpos,
    };

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
        let (sql, parameters) = list_sql(&query, &DIALECT);
        assert_eq!(
            sql,
            "SELECT kind, os, body FROM resources WHERE kind = $1 AND folder_id = $2 \
             AND status IN ($3, $4) AND strpos(name, $5) > 0 \
             AND (created_at_ms < $6 OR (created_at_ms = $7 AND id < $8)) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $9"
        );
        assert_eq!(parameters.len(), 9);
        assert_eq!(parameters[8], SqlValue::I64(101));
    }
}

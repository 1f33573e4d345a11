//! The `filter` and `order_by` grammars of List, parsed into conditions on indexed columns.
//!
//! `filter`: conditions joined by `AND` (any case):
//!
//! ```text
//! condition := field ("=" | "!=" | ":") value
//!            | field ["NOT"] "IN" "(" value ("," value)* ")"
//! value     := "double-quoted" | 'single-quoted'   (C escapes: \" \' \\ \n \r \t \xHH)
//! ```
//!
//! `:` (contains) is for bare-metal images only. Fields are named in lowerCamelCase or as
//! in the proto (`createdAt`, `created_at`); which fields a kind allows is the caller's
//! [`Fields`]. `order_by` is `field [asc|desc]` on id, name or createdAt.
//!
//! Every error names the position (counted in characters from 1) where the string stops
//! making sense; no input makes the parser panic (a test feeds it random strings).

use crate::error::Error;
use crate::store::query::{Column, Condition, Operator, Order, SqlValue};

/// What one kind lets a filter name: fields, their columns, and how status values read.
pub struct Fields {
    /// (lowerCamelCase name, proto name, column).
    pub names: &'static [(&'static str, &'static str, Column)],
    /// The status enum's value names and numbers.
    pub statuses: &'static [(&'static str, i32)],
    /// Whether `:` (contains) may be used.
    pub contains: bool,
}

/// The fields lists of every kind may order by.
const ORDERABLE: &[(&str, &str, Column)] = &[
    ("id", "id", Column::Id),
    ("name", "name", Column::Name),
    ("createdAt", "created_at", Column::CreatedAt),
];

/// A parse error at a character position (from 1).
fn at(field: &str, position: usize, what: String) -> Error {
    Error::invalid_field(field, format!("at position {position}: {what}"))
}

/// A cursor over the characters of the input.
struct Scanner {
    characters: Vec<char>,
    index: usize,
    field: &'static str,
}

impl Scanner {
    fn new(text: &str, field: &'static str) -> Scanner {
        Scanner {
            characters: text.chars().collect(),
            index: 0,
            field,
        }
    }

    fn position(&self) -> usize {
        self.index + 1
    }

    fn skip_spaces(&mut self) {
        while self
            .characters
            .get(self.index)
            .is_some_and(|c| c.is_whitespace())
        {
            self.index += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.characters.get(self.index).copied()
    }

    fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.index >= self.characters.len()
    }

    fn error(&self, what: impl Into<String>) -> Error {
        at(self.field, self.position(), what.into())
    }

    /// A word of letters, digits and `_`.
    fn word(&mut self) -> Option<String> {
        self.skip_spaces();
        let start = self.index;
        while self
            .characters
            .get(self.index)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            self.index += 1;
        }
        (self.index > start).then(|| self.characters[start..self.index].iter().collect())
    }

    /// Takes `keyword` (any case) if it comes next as a whole word.
    fn keyword(&mut self, keyword: &str) -> bool {
        let saved = self.index;
        match self.word() {
            Some(word) if word.eq_ignore_ascii_case(keyword) => true,
            _ => {
                self.index = saved;
                false
            }
        }
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        self.skip_spaces();
        let wanted: Vec<char> = symbol.chars().collect();
        if self.characters[self.index.min(self.characters.len())..].starts_with(&wanted) {
            self.index += wanted.len();
            true
        } else {
            false
        }
    }

    /// A quoted value with C escapes.
    fn quoted(&mut self) -> Result<String, Error> {
        self.skip_spaces();
        let quote = match self.peek() {
            Some(quote @ ('"' | '\'')) => quote,
            Some(_) => return Err(self.error("expected a value in double or single quotes")),
            None => return Err(self.error("expected a value, found the end")),
        };
        let opening = self.position();
        self.index += 1;
        let mut value = String::new();
        loop {
            let Some(character) = self.peek() else {
                return Err(at(self.field, opening, "this quote is never closed".into()));
            };
            self.index += 1;
            match character {
                c if c == quote => return Ok(value),
                '\\' => {
                    let escape_at = self.position() - 1;
                    let Some(escaped) = self.peek() else {
                        return Err(at(self.field, escape_at, "an escape at the end".into()));
                    };
                    self.index += 1;
                    value.push(match escaped {
                        '"' | '\'' | '\\' => escaped,
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'x' => {
                            let digits: String = self
                                .characters
                                .get(self.index..self.index + 2)
                                .map(|pair| pair.iter().collect())
                                .unwrap_or_default();
                            let code = u8::from_str_radix(&digits, 16)
                                .ok()
                                .filter(|_| digits.chars().all(|c| c.is_ascii_hexdigit()));
                            match code {
                                Some(code) => {
                                    self.index += 2;
                                    char::from(code)
                                }
                                None => {
                                    return Err(at(
                                        self.field,
                                        escape_at,
                                        "\\x needs two hexadecimal digits".into(),
                                    ))
                                }
                            }
                        }
                        other => {
                            return Err(at(
                                self.field,
                                escape_at,
                                format!("unknown escape \\{other}"),
                            ))
                        }
                    });
                }
                other => value.push(other),
            }
        }
    }
}

/// The column a field name stands for in `names`.
fn column_of(names: &[(&str, &str, Column)], name: &str) -> Option<Column> {
    names
        .iter()
        .find(|(camel, snake, _)| *camel == name || *snake == name)
        .map(|(_, _, column)| *column)
}

/// The value of a condition on `column`: statuses by their names, the rest as text.
fn value_for(
    column: Column,
    text: String,
    fields: &Fields,
    scanner: &Scanner,
    position: usize,
) -> Result<SqlValue, Error> {
    if column != Column::Status {
        return Ok(SqlValue::Text(text));
    }
    fields
        .statuses
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&text))
        .map(|(_, number)| SqlValue::I32(*number))
        .ok_or_else(|| {
            let known: Vec<&str> = fields.statuses.iter().map(|(name, _)| *name).collect();
            at(
                scanner.field,
                position,
                format!(
                    "unknown status {}; one of {}",
                    crate::error::excerpt(&text),
                    known.join(", ")
                ),
            )
        })
}

/// Parses a `filter`; an empty one has no conditions.
pub fn parse_filter(text: &str, fields: &Fields) -> Result<Vec<Condition>, Error> {
    let mut scanner = Scanner::new(text, "filter");
    let mut conditions = Vec::new();
    if scanner.at_end() {
        return Ok(conditions);
    }
    loop {
        scanner.skip_spaces();
        let field_at = scanner.position();
        let Some(name) = scanner.word() else {
            return Err(scanner.error("expected a field name"));
        };
        let Some(column) = column_of(fields.names, &name) else {
            let known: Vec<&str> = fields.names.iter().map(|(camel, _, _)| *camel).collect();
            return Err(at(
                "filter",
                field_at,
                format!(
                    "unknown field {}; one of {}",
                    crate::error::excerpt(&name),
                    known.join(", ")
                ),
            ));
        };
        scanner.skip_spaces();
        let operator_at = scanner.position();
        let operator = if scanner.symbol("!=") {
            Operator::NotEqual
        } else if scanner.symbol("=") {
            Operator::Equal
        } else if scanner.symbol(":") {
            if !fields.contains {
                return Err(at(
                    "filter",
                    operator_at,
                    "the operator : is not available here".into(),
                ));
            }
            Operator::Contains
        } else if scanner.keyword("NOT") {
            if !scanner.keyword("IN") {
                return Err(scanner.error("expected IN after NOT"));
            }
            Operator::NotIn
        } else if scanner.keyword("IN") {
            Operator::In
        } else {
            return Err(at(
                "filter",
                operator_at,
                "expected an operator: =, !=, IN, NOT IN".into(),
            ));
        };
        let values = match operator {
            Operator::In | Operator::NotIn => {
                if !scanner.symbol("(") {
                    return Err(scanner.error("expected ( after IN"));
                }
                let mut values = Vec::new();
                loop {
                    scanner.skip_spaces();
                    let value_at = scanner.position();
                    let text = scanner.quoted()?;
                    values.push(value_for(column, text, fields, &scanner, value_at)?);
                    if scanner.symbol(",") {
                        continue;
                    }
                    if scanner.symbol(")") {
                        break;
                    }
                    return Err(scanner.error("expected , or )"));
                }
                values
            }
            _ => {
                scanner.skip_spaces();
                let value_at = scanner.position();
                let text = scanner.quoted()?;
                vec![value_for(column, text, fields, &scanner, value_at)?]
            }
        };
        conditions.push(Condition {
            column,
            operator,
            values,
        });
        if scanner.at_end() {
            return Ok(conditions);
        }
        if !scanner.keyword("AND") {
            return Err(scanner.error("expected AND or the end"));
        }
    }
}

/// Parses an `order_by`; an empty one is `id asc`.
pub fn parse_order(text: &str) -> Result<Order, Error> {
    let mut scanner = Scanner::new(text, "order_by");
    if scanner.at_end() {
        return Ok(Order {
            column: Column::Id,
            descending: false,
        });
    }
    scanner.skip_spaces();
    let field_at = scanner.position();
    let name = scanner
        .word()
        .ok_or_else(|| scanner.error("expected a field name"))?;
    let column = column_of(ORDERABLE, &name).ok_or_else(|| {
        at(
            "order_by",
            field_at,
            format!(
                "cannot order by {}; one of id, name, createdAt",
                crate::error::excerpt(&name)
            ),
        )
    })?;
    let descending = if scanner.at_end() || scanner.keyword("asc") {
        false
    } else if scanner.keyword("desc") {
        true
    } else {
        return Err(scanner.error("expected asc, desc or the end"));
    };
    if !scanner.at_end() {
        return Err(scanner.error("expected the end"));
    }
    Ok(Order { column, descending })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: Fields = Fields {
        names: &[
            ("id", "id", Column::Id),
            ("name", "name", Column::Name),
            ("status", "status", Column::Status),
            ("family", "family", Column::Family),
        ],
        statuses: &[("CREATING", 1), ("READY", 2), ("DELETING", 4)],
        contains: false,
    };

    fn text(value: &str) -> SqlValue {
        SqlValue::Text(value.into())
    }

    #[test]
    fn conditions_join_with_and() {
        let conditions = parse_filter(
            r#"name = "web-1" AND status IN ("READY", 'creating') and family != 'x\'y\x41'"#,
            &FIELDS,
        )
        .unwrap();
        assert_eq!(
            conditions,
            vec![
                Condition {
                    column: Column::Name,
                    operator: Operator::Equal,
                    values: vec![text("web-1")],
                },
                Condition {
                    column: Column::Status,
                    operator: Operator::In,
                    values: vec![SqlValue::I32(2), SqlValue::I32(1)],
                },
                Condition {
                    column: Column::Family,
                    operator: Operator::NotEqual,
                    values: vec![text("x'yA")],
                },
            ]
        );
        assert_eq!(
            parse_filter(r#"id NOT IN ("a","b")"#, &FIELDS).unwrap()[0].operator,
            Operator::NotIn
        );
        assert!(parse_filter("   ", &FIELDS).unwrap().is_empty());
    }

    #[test]
    fn errors_say_where() {
        let message = |filter: &str| parse_filter(filter, &FIELDS).unwrap_err().message();
        assert_eq!(
            message("colour = \"red\""),
            "filter: at position 1: unknown field \"colour\"; one of id, name, status, family"
        );
        assert!(message("name = red").starts_with("filter: at position 8: expected a value"));
        assert!(message("name ~ \"x\"").starts_with("filter: at position 6: expected an operator"));
        assert!(
            message("name = \"x").starts_with("filter: at position 8: this quote is never closed")
        );
        assert!(message("name = \"x\" OR id = \"y\"")
            .starts_with("filter: at position 12: expected AND"));
        assert!(message("status = \"GONE\"").starts_with("filter: at position 10: unknown status"));
        assert!(message("name : \"x\"").contains("position 6"));
        assert!(message("name = \"\\q\"").contains("position 9: unknown escape"));
        assert!(message("id IN (\"a\" \"b\")").contains("expected , or )"));
        let order = |text: &str| parse_order(text).unwrap_err().message();
        assert!(order("size").starts_with("order_by: at position 1: cannot order by"));
        assert!(order("name sideways").starts_with("order_by: at position 6: expected asc"));
        assert_eq!(
            parse_order(" created_at DESC ").unwrap(),
            Order {
                column: Column::CreatedAt,
                descending: true
            }
        );
        assert_eq!(parse_order("").unwrap().column, Column::Id);
    }

    #[test]
    fn no_input_panics_and_every_error_has_a_position() {
        let alphabet: Vec<char> = "nameid statusfamily=!:()'\",\\xAND NOT IN READY \u{e9}\u{1F600}"
            .chars()
            .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let length = (state % 40) as usize;
            let mut input = String::new();
            for _ in 0..length {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                input.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            for fields in [&FIELDS] {
                if let Err(error) = parse_filter(&input, fields) {
                    assert!(
                        error.message().contains("at position "),
                        "{input:?}: {error}"
                    );
                }
            }
            if let Err(error) = parse_order(&input) {
                assert!(
                    error.message().contains("at position "),
                    "{input:?}: {error}"
                );
            }
        }
    }
}

//! The snapshot file itself: writing the tables as JSON lines ([`export_job`]) and reading
//! them back, strictly ([`parse`]): a key given twice in a line, a column of another type
//! or a NULL where the column takes none is refused, naming the line.

use super::{added_in, NULLABLE, TABLES};
use super::{
    latest_schema, read_rows, ColumnType, Snapshot, SnapshotRow, FORMAT, MAX_SNAPSHOT_BYTES,
};
use crate::error::{excerpt, Error};
use crate::store::sql::{Job, Tx, Value};
use crate::store::StoreError;
use crate::strict_json::Refusal;
use base64::Engine;
use serde_json::{json, Map, Value as Json};
use ColumnType::{BigInt, Bool, Bytes, Int, Text};

/// The header line of a snapshot written now (its time from `ids::current`, which
/// `--deterministic-ids` makes repeat and an export does not move).
fn header(schema: i64) -> String {
    json!({
        "imageplaneState": FORMAT,
        "schema": schema,
        "imageplane": env!("CARGO_PKG_VERSION"),
        "exportedAt": humantime::format_rfc3339_millis(crate::ids::current()).to_string(),
    })
    .to_string()
}

/// The read that writes the whole state as a snapshot file; run it as one consistent
/// read (`Database::read_consistent`). A database at another schema than this binary's
/// is refused: its rows are not the columns [`TABLES`] names.
pub fn export_job() -> Job<Vec<u8>> {
    Box::new(|tx| Box::pin(async move { export(tx).await }))
}

async fn export(tx: &dyn Tx) -> Result<Vec<u8>, StoreError> {
    let schema = crate::store::schema::version(tx).await?;
    if schema != latest_schema() {
        return Err(StoreError::Refused(Error::FailedPrecondition(format!(
            "the database has schema version {schema}, this imageplane writes snapshots of \
             {}: start this imageplane on it once (it migrates at start), then export",
            latest_schema()
        ))));
    }
    let mut file = header(schema).into_bytes();
    file.push(b'\n');
    read_rows(tx, |table, values| {
        let table = &TABLES[table];
        // Written by hand so that "table" comes first and the columns keep their order:
        // a person reading the file sees each row as the table has it.
        file.extend_from_slice(format!("{{\"table\":\"{}\",\"row\":{{", table.name).as_bytes());
        for (index, ((name, _), value)) in table.columns.iter().zip(values).enumerate() {
            if index > 0 {
                file.push(b',');
            }
            // Which replica holds a running operation, and until when, is not state: an
            // import gives every running operation to the replicas anew.
            let value = match (table.name, *name) {
                ("operations", "owner") => Json::from(""),
                ("operations", "lease_until_ms") => Json::from(0),
                _ => json_of(value),
            };
            file.extend_from_slice(format!("\"{name}\":{value}").as_bytes());
        }
        file.extend_from_slice(b"}}\n");
    })
    .await?;
    Ok(file)
}

/// A column's value as JSON.
fn json_of(value: Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(value) => Json::Bool(value),
        Value::I32(number) => Json::from(number),
        Value::I64(number) => Json::from(number),
        Value::Text(text) => Json::String(text),
        Value::Bytes(bytes) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Value::TextList(texts) => Json::from(texts),
        Value::Column(values) => Json::Array(values.into_iter().map(json_of).collect()),
    }
}

/// Reads a snapshot file, checking its size, its header's versions and each row's table,
/// columns and types; an error names the line and what is wrong.
pub fn parse(file: &[u8]) -> Result<Snapshot, Error> {
    if file.len() > MAX_SNAPSHOT_BYTES {
        return Err(Error::InvalidArgument(format!(
            "the state snapshot is larger than {} MiB, the most an import takes",
            MAX_SNAPSHOT_BYTES >> 20
        )));
    }
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let invalid = |line: usize, message: String| {
        Error::InvalidArgument(format!("state snapshot line {line}: {message}"))
    };
    let mut lines = file
        .split(|byte| *byte == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace));
    let Some((number, first)) = lines.next() else {
        return Err(Error::InvalidArgument(format!(
            "the state snapshot is empty: it needs a header line such as \
             {{\"imageplaneState\": {FORMAT}, \"schema\": {}}}",
            latest_schema()
        )));
    };
    let schema = parse_header(first).map_err(|message| invalid(number, message))?;
    let mut rows = Vec::new();
    for (number, line) in lines {
        let mut row = parse_row(line, schema).map_err(|message| invalid(number, message))?;
        row.line = number;
        rows.push(row);
    }
    Ok(Snapshot { schema, rows })
}

/// The schema version of a header line; refuses a newer format or schema.
fn parse_header(line: &[u8]) -> Result<i64, String> {
    let header = object(line).map_err(|error| {
        format!(
            "the header is not a JSON object ({error}); a snapshot starts with \
             {{\"imageplaneState\": {FORMAT}, ...}}"
        )
    })?;
    let version = |key: &str| -> Result<i64, String> {
        header
            .get(key)
            .and_then(Json::as_i64)
            .filter(|version| *version >= 1)
            .ok_or_else(|| format!("the header needs \"{key}\", a version number of 1 or more"))
    };
    let format = version("imageplaneState")?;
    if format > FORMAT {
        return Err(format!(
            "the snapshot has format version {format}, newer than this imageplane \
             ({}) reads ({FORMAT}): import it with a newer imageplane",
            env!("CARGO_PKG_VERSION")
        ));
    }
    let schema = version("schema")?;
    let latest = latest_schema();
    if schema > latest {
        return Err(format!(
            "the snapshot has schema version {schema}, newer than this imageplane's \
             ({latest}, imageplane {}): import it with a newer imageplane",
            env!("CARGO_PKG_VERSION")
        ));
    }
    Ok(schema)
}

/// One row line.
fn parse_row(line: &[u8], schema: i64) -> Result<SnapshotRow, String> {
    let mut object = object(line).map_err(|error| format!("not a JSON object: {error}"))?;
    let name = match object.remove("table") {
        Some(Json::String(name)) => name,
        _ => return Err("needs \"table\", the name of a table".into()),
    };
    let (table, spec) = TABLES
        .iter()
        .enumerate()
        .find(|(_, table)| table.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
            format!(
                "unknown table {}: a snapshot holds {}",
                excerpt(&name),
                known.join(", ")
            )
        })?;
    if added_in(&name) > schema {
        return Err(format!(
            "table {name} came with schema {}: a snapshot of schema {schema} has none",
            added_in(&name)
        ));
    }
    let row = match object.remove("row") {
        Some(Json::Object(row)) => row,
        _ => return Err("needs \"row\", an object of the row's columns".into()),
    };
    if let Some(other) = object.keys().next() {
        return Err(format!(
            "unknown key {}: a line holds \"table\" and \"row\"",
            excerpt(other)
        ));
    }
    let mut values = vec![None; spec.columns.len()];
    for (column, value) in row {
        let index = spec
            .columns
            .iter()
            .position(|(name, _)| *name == column)
            .ok_or_else(|| format!("table {name} has no column {}", excerpt(&column)))?;
        let since = added_in(&format!("{name}.{column}"));
        if since > schema {
            return Err(format!(
                "column {name}.{column} came with schema {since}: a snapshot of schema \
                 {schema} has none"
            ));
        }
        let kind = spec.columns[index].1;
        let value = value_of(&value, kind)
            .map_err(|expected| format!("column {name}.{column} must be {expected}"))?;
        if value == Value::Null && !NULLABLE.contains(&format!("{name}.{column}").as_str()) {
            return Err(format!("column {name}.{column} must not be null"));
        }
        values[index] = Some(value);
    }
    if schema == latest_schema() {
        if let Some(index) = values.iter().position(Option::is_none) {
            return Err(format!(
                "the {name} row lacks column {}",
                spec.columns[index].0
            ));
        }
    }
    Ok(SnapshotRow {
        table,
        line: 0,
        values,
    })
}

/// A JSON value as a column's value, or what it must be.
fn value_of(value: &Json, kind: ColumnType) -> Result<Value, &'static str> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match kind {
        Text => value
            .as_str()
            .map(|text| Value::Text(text.to_string()))
            .ok_or("a string or null"),
        Int => value
            .as_i64()
            .and_then(|number| i32::try_from(number).ok())
            .map(Value::I32)
            .ok_or("a 32-bit integer or null"),
        BigInt => value.as_i64().map(Value::I64).ok_or("an integer or null"),
        Bool => value.as_bool().map(Value::Bool).ok_or("true or false"),
        Bytes => value
            .as_str()
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .map(Value::Bytes)
            .ok_or("bytes in base64 (standard, padded) or null"),
    }
}

/// A line as a JSON object, refusing a key given twice at any depth (serde_json would keep
/// the last): a reader that keeps the first would see another state than the import.
fn object(line: &[u8]) -> Result<Map<String, Json>, String> {
    match crate::strict_json::parse(line) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err("it is not an object".into()),
        Err(Refusal::Twice { key, .. }) => Err(format!("the key {} is given twice", excerpt(&key))),
        Err(Refusal::Invalid(error)) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_holds_only_the_tables_and_columns_of_its_schema() {
        let operation = r#"{"table":"operations","row":{"id":"opr1","folder_id":"f"}}"#;
        let error = parse_row(operation.as_bytes(), 2).unwrap_err();
        assert!(
            error.contains("operations.folder_id came with schema 3"),
            "{error}"
        );
        let key = r#"{"table":"idempotency_keys","row":{"subject":"s"}}"#;
        let error = parse_row(key.as_bytes(), 1).unwrap_err();
        assert!(
            error.contains("table idempotency_keys came with schema 3"),
            "{error}"
        );
        assert!(parse_row(
            r#"{"table":"operations","row":{"id":"opr1"}}"#.as_bytes(),
            1
        )
        .is_ok());
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        assert!(object(br#"{"a": 1, "b": {"c": 2}}"#).is_ok());
        let error = object(br#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(error.contains("\"a\" is given twice"), "{error}");
        let error = object(br#"{"row": {"done": false, "done": true}}"#).unwrap_err();
        assert!(error.contains("\"done\" is given twice"), "{error}");
        assert!(object(b"[1]").is_err());
        assert!(object(br#"{"a": 1} x"#).is_err());
    }
}

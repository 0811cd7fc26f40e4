//! Row mapping helpers shared by the store modules: typed columns, ids, timestamps, JSON.

use anyhow::Context;
use frontdesk_core::id::IdError;
use frontdesk_core::store::StoreResult;
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{FromCell, Row};

/// Serializes a value for a JSON column.
pub fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(anyhow::Error::new(e)))
}

/// Reads a column.
pub fn col<T: FromCell>(row: &Row, column: &str) -> StoreResult<T> {
    row.get(column)
}

/// Reads a JSON column.
pub fn json_col<T: DeserializeOwned>(row: &Row, column: &str) -> StoreResult<T> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text)
        .with_context(|| format!("column {column} holds invalid JSON"))
        .map_err(StoreError::Backend)
}

/// Reads a nullable JSON column.
pub fn json_col_opt<T: DeserializeOwned>(row: &Row, column: &str) -> StoreResult<Option<T>> {
    let text: Option<String> = row.get(column)?;
    text.map(|text| {
        serde_json::from_str(&text).with_context(|| format!("column {column} holds invalid JSON"))
    })
    .transpose()
    .map_err(StoreError::Backend)
}

/// Parses an id column.
pub fn id_col<T>(row: &Row, column: &str, parse: fn(&str) -> Result<T, IdError>) -> StoreResult<T> {
    let text: String = row.get(column)?;
    parse(&text).map_err(|e| StoreError::Backend(anyhow::Error::new(e)))
}

/// Parses an optional id column.
pub fn id_col_opt<T>(
    row: &Row,
    column: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> StoreResult<Option<T>> {
    let text: Option<String> = row.get(column)?;
    text.map(|text| parse(&text).map_err(|e| StoreError::Backend(anyhow::Error::new(e))))
        .transpose()
}

/// A millisecond column as a timestamp.
pub fn ts(row: &Row, column: &str) -> StoreResult<Timestamp> {
    Ok(Timestamp::from_millis(row.get(column)?))
}

/// A nullable millisecond column as a timestamp.
pub fn ts_opt(row: &Row, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(row.get::<Option<i64>>(column)?.map(Timestamp::from_millis))
}

/// A stored value that does not parse as the domain type it should be.
pub fn bad_value(column: &str, error: frontdesk_core::Error) -> StoreError {
    StoreError::Backend(anyhow::anyhow!("column {column}: {error}"))
}

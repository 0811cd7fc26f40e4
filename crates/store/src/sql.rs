//! Helpers shared by the store modules: dynamic statements with `$n` placeholders, error
//! mapping, and JSON columns.

use anyhow::Context;
use frontdesk_core::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

/// A value to bind.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A statement built at run time: its text and its binds, numbered in order.
#[derive(Debug, Default)]
pub struct Statement {
    pub text: String,
    binds: Vec<Bind>,
}

impl Statement {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), binds: Vec::new() }
    }

    /// Adds a bind and returns its placeholder (`$n`).
    pub fn arg(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    pub fn push(&mut self, sql: &str) {
        self.text.push_str(sql);
    }

    /// The query with every bind applied.
    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for bind in &self.binds {
            query = match bind {
                Bind::Text(value) => query.bind(value.clone()),
                Bind::Int(value) => query.bind(*value),
            };
        }
        query
    }
}

/// A database error as a store error; a unique violation becomes `Conflict(what)`.
pub fn db_error(error: sqlx::Error, what: &'static str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Backend(anyhow::Error::new(error)),
    }
}

/// Maps any error without special cases.
pub fn backend(error: sqlx::Error) -> StoreError {
    db_error(error, "row")
}

/// Serializes a value for a JSON column.
pub fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(anyhow::Error::new(e)))
}

/// Reads a JSON column.
pub fn json_col<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column).map_err(backend)?;
    serde_json::from_str(&text)
        .with_context(|| format!("column {column} holds invalid JSON"))
        .map_err(StoreError::Backend)
}

/// Reads a nullable JSON column.
pub fn json_col_opt<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<Option<T>, StoreError> {
    let text: Option<String> = row.try_get(column).map_err(backend)?;
    text.map(|text| serde_json::from_str(&text).with_context(|| format!("column {column} holds invalid JSON")))
        .transpose()
        .map_err(StoreError::Backend)
}

/// Reads a column.
pub fn col<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(backend)
}

/// Parses an id column, which must hold a valid id.
pub fn id_col<T>(row: &AnyRow, column: &str, parse: fn(&str) -> Result<T, frontdesk_core::id::IdError>) -> Result<T, StoreError> {
    let text: String = col(row, column)?;
    parse(&text).map_err(|e| StoreError::Backend(anyhow::Error::new(e)))
}

/// Parses an optional id column.
pub fn id_col_opt<T>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Result<T, frontdesk_core::id::IdError>,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = col(row, column)?;
    text.map(|text| parse(&text).map_err(|e| StoreError::Backend(anyhow::Error::new(e)))).transpose()
}

/// A nullable millisecond column as a timestamp.
pub fn ts_opt(row: &AnyRow, column: &str) -> Result<Option<frontdesk_core::time::Timestamp>, StoreError> {
    let millis: Option<i64> = col(row, column)?;
    Ok(millis.map(frontdesk_core::time::Timestamp::from_millis))
}

/// A millisecond column as a timestamp.
pub fn ts(row: &AnyRow, column: &str) -> Result<frontdesk_core::time::Timestamp, StoreError> {
    Ok(frontdesk_core::time::Timestamp::from_millis(col(row, column)?))
}

/// Fails with `Backend` for a value that does not parse as a domain enum.
pub fn bad_value(column: &str, error: frontdesk_core::Error) -> StoreError {
    StoreError::Backend(anyhow::anyhow!("column {column}: {error}"))
}

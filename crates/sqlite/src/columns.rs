//! Reading SQLite columns as domain values: uuids stored as hyphenated
//! text, times as integer microseconds ([`crate::clock`]), JSON and text
//! arrays as JSON text. A value that does not decode is a database error
//! (`unexpected row`), never a panic: the file may have been edited by hand.
//!
//! Binding goes the other way with `id.hyphenated()`, `clock::micros(at)`
//! and `serde_json::to_string(..)`; sqlx's own `Uuid` encoding (a blob)
//! must never be bound, or the row would not match its text key.

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use tasker_model::Timestamp;
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::clock;

/// A row that does not hold what its table promises.
pub(crate) fn unexpected(message: impl std::fmt::Display) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

/// A column as its SQLite type.
pub(crate) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column)
        .map_err(|e| unexpected(format!("column {column}: {e}")))
}

pub(crate) fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid> {
    let text: String = get(row, column)?;
    parse_uuid(column, &text)
}

pub(crate) fn uuid_opt(row: &SqliteRow, column: &str) -> Result<Option<Uuid>> {
    let text: Option<String> = get(row, column)?;
    text.map(|t| parse_uuid(column, &t)).transpose()
}

fn parse_uuid(column: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| unexpected(format!("column {column}: {text:?}: {e}")))
}

pub(crate) fn time(row: &SqliteRow, column: &str) -> Result<Timestamp> {
    Ok(clock::from_micros(get(row, column)?))
}

pub(crate) fn time_opt(row: &SqliteRow, column: &str) -> Result<Option<Timestamp>> {
    Ok(clock::from_micros_opt(get(row, column)?))
}

/// A JSON column, decoded into `T`.
pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| unexpected(format!("column {column}: {e}")))
}

/// A nullable JSON column, decoded into `T`.
pub(crate) fn json_opt<T: serde::de::DeserializeOwned>(
    row: &SqliteRow,
    column: &str,
) -> Result<Option<T>> {
    let text: Option<String> = get(row, column)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| unexpected(format!("column {column}: {e}")))
}

/// A count (`count(*)`, `sum(..)`), never negative.
pub(crate) fn count(row: &SqliteRow, column: &str) -> Result<u64> {
    let n: Option<i64> = get(row, column)?;
    Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
}

/// A value as JSON text (a text array is stored as a JSON array).
pub(crate) fn to_json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

/// The stored time `span` before `now`: "seen within `within`" is
/// `last_seen_at > before(now, within)`.
pub(crate) fn before(now: Timestamp, span: std::time::Duration) -> i64 {
    clock::micros(now).saturating_sub(i64::try_from(span.as_micros()).unwrap_or(i64::MAX))
}

//! Mapping database errors into [`tasker_store::Error`], and retrying
//! transactions that lost a deadlock.

use std::future::Future;

use tasker_store::Error;

/// Wraps a database error; its text is logged by the API, never shown.
pub fn db(error: impl Into<sqlx::Error>) -> Error {
    Error::Database(Box::new(error.into()))
}

fn is_retryable(error: &Error) -> bool {
    let Error::Database(inner) = error else {
        return false;
    };
    let Some(sqlx::Error::Database(db)) = inner.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    // deadlock_detected, serialization_failure
    matches!(db.code().as_deref(), Some("40P01" | "40001"))
}

/// Runs a whole transaction again when PostgreSQL aborted it to break a
/// deadlock; the aborted attempt left nothing behind.
pub async fn with_retry<T, F, Fut>(mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if is_retryable(&e) && tries < 5 => {
                tries += 1;
                tracing::debug!(tries, "transaction aborted by a deadlock; retrying");
            }
            other => return other,
        }
    }
}

//! Mapping database errors into [`tasker_store::Error`], and retrying
//! transactions that lost a deadlock.

use std::future::Future;

use tasker_store::{Error, Event, RetryReason};

use crate::PgStore;

/// Wraps a database error; its text is logged by the API, never shown.
pub fn db(error: impl Into<sqlx::Error>) -> Error {
    Error::Database(Box::new(error.into()))
}

fn retry_reason(error: &Error) -> Option<RetryReason> {
    let Error::Database(inner) = error else {
        return None;
    };
    let Some(sqlx::Error::Database(db)) = inner.downcast_ref::<sqlx::Error>() else {
        return None;
    };
    match db.code().as_deref() {
        Some("40P01") => Some(RetryReason::Deadlock),
        Some("40001") => Some(RetryReason::SerializationFailure),
        _ => None,
    }
}

/// Runs a whole transaction again when PostgreSQL aborted it to break a
/// deadlock; the aborted attempt left nothing behind. Every retry is
/// reported to the store's observer: with task rows always locked before
/// queue messages (and claims skipping busy tasks) none should happen.
pub async fn with_retry<T, F, Fut>(store: &PgStore, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e)
                if tries < 5
                    && let Some(reason) = retry_reason(&e) =>
            {
                tries += 1;
                tracing::warn!(
                    tries,
                    reason = reason.as_str(),
                    "transaction aborted by the database; retrying"
                );
                store.observe(&[Event::TransactionRetried { reason }]);
            }
            other => return other,
        }
    }
}

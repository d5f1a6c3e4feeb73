//! Mapping database errors into [`tasker_store::Error`], and running a
//! store operation again when that is safe: after the database aborted it
//! (deadlock, serialization failure) or after its connection was lost before
//! anything was committed.
//!
//! ```text
//!  with_retry(op):
//!    database known down ──────────────────────────▶ 503 unavailable, at once
//!    op ─▶ ok ───────────────────────────────────────▶ answer
//!       ├▶ deadlock / serialization failure ─▶ op again (up to 5 times)
//!       ├▶ connection lost before COMMIT ──▶ check the database now:
//!       │     up   ─▶ op again on a fresh connection (once)
//!       │     down ─▶ 503 unavailable
//!       ├▶ connection lost during COMMIT ─▶ 503, outcome unknown (never run
//!       │     again blindly, unless the operation is idempotent by construction)
//!       └▶ anything else ─────────────────────────────▶ the error
//! ```
//!
//! Every run again is counted through the observer
//! (`tasker_db_transaction_retries_total{reason}`).

use std::future::Future;

use tasker_store::backend::Repeat;
use tasker_store::{Error, Event, RetryReason, Unavailability};

use crate::PgStore;

/// Wraps a database error. A lost connection or an acquire timeout becomes
/// [`Error::Unavailable`] (503); any other error [`Error::Database`] (500).
/// Either way its text is logged by the API, never shown.
pub fn db(error: impl Into<sqlx::Error>) -> Error {
    let error = error.into();
    let why = match &error {
        sqlx::Error::PoolTimedOut => Unavailability::AcquireTimeout,
        e if is_connection_error(e) => Unavailability::ConnectionLost,
        _ => return Error::Database(Box::new(error)),
    };
    Error::Unavailable {
        why,
        cause: Box::new(error),
    }
}

/// Wraps an error of COMMIT: a connection lost while it was in flight
/// leaves the outcome unknown ([`Unavailability::CommitUnknown`]), which
/// [`with_retry`] never runs again.
pub fn commit_error(error: sqlx::Error) -> Error {
    if is_connection_error(&error) {
        Error::Unavailable {
            why: Unavailability::CommitUnknown,
            cause: Box::new(error),
        }
    } else {
        db(error)
    }
}

/// Wraps an error keeping the database's text in the message: for
/// start-up (connecting, creating the database), where the operator needs
/// to read why, and no API client sees it.
pub fn db_verbatim(error: impl Into<sqlx::Error>) -> Error {
    Error::Database(Box::new(error.into()))
}

/// Whether an error means the connection itself failed: an I/O error (reset,
/// closed, refused), a backend terminated by an administrator, a crash or a
/// shutdown (SQLSTATE 57P01, 57P02, 57P03), or any connection exception
/// (class 08).
pub fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(&*code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Whether an aborted transaction left nothing behind and may run again.
fn abort_reason(error: &Error) -> Option<RetryReason> {
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

/// How many times an operation runs again after losing its connection
/// (each time only once a check has reached the database). More than once:
/// when all of a node's backends are killed together, the first retry may
/// take an idle pool connection whose backend has been told to terminate
/// but has not yet gone, and lose that one too.
const LOST_CONNECTION_RETRIES: u32 = 2;

/// Runs a store operation (one transaction, or one statement), again after
/// a deadlock, a serialization failure, or a connection lost before COMMIT;
/// refuses at once while the database is known down (see the module
/// diagram).
pub async fn with_retry<T, F, Fut>(store: &PgStore, attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retrying(store, Repeat::Once, attempt).await
}

/// Runs `attempt` as [`with_retry`] does; with [`Repeat::Idempotent`] also
/// again after a connection lost *during* COMMIT (see [`Repeat`]). This is
/// the [`tasker_store::backend::Backend::retrying`] of PostgreSQL.
pub(crate) async fn retrying<T, F, Fut>(
    store: &PgStore,
    repeat: Repeat,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut aborts = 0;
    let mut reconnections = 0;
    loop {
        if store.monitor.is_down() {
            return Err(Error::Unavailable {
                why: Unavailability::DatabaseDown,
                cause: "the database check found it unreachable".into(),
            });
        }
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if aborts < 5
            && let Some(reason) = abort_reason(&error)
        {
            aborts += 1;
            tracing::warn!(
                tries = aborts,
                reason = reason.as_str(),
                "transaction aborted by the database; retrying"
            );
            store.observe(&[Event::TransactionRetried { reason }]);
            continue;
        }
        let Error::Unavailable { why, .. } = &error else {
            return Err(error);
        };
        let lost = match why {
            Unavailability::ConnectionLost => true,
            Unavailability::CommitUnknown => repeat == Repeat::Idempotent,
            Unavailability::AcquireTimeout => {
                // Maybe busy, maybe an outage: let the check tell.
                store.monitor.request_check();
                false
            }
            Unavailability::DatabaseDown => false,
        };
        if matches!(
            why,
            Unavailability::ConnectionLost | Unavailability::CommitUnknown
        ) {
            // The other idle connections may be gone too: test them before use.
            store.acquire_check.connection_lost();
        }
        if !lost {
            return Err(error);
        }
        if reconnections == LOST_CONNECTION_RETRIES {
            // Lost again and again: the database is probably gone. The check
            // marks it down for everyone else at once if it is.
            store.monitor.request_check();
            return Err(error);
        }
        // A killed backend or an outage? A check (shared with every other
        // request that just lost its connection) tells, so that an outage is
        // answered at once instead of after the pool's acquire timeout.
        let cause = match &error {
            Error::Unavailable { cause, .. } => cause.to_string(),
            other => other.to_string(),
        };
        if !store.monitor.check_now().await {
            return Err(Error::Unavailable {
                why: Unavailability::DatabaseDown,
                cause: format!("connection lost ({cause}) and the database check failed").into(),
            });
        }
        reconnections += 1;
        tracing::warn!(%cause, "database connection lost before commit; running the operation again on a fresh connection");
        store.observe(&[Event::TransactionRetried {
            reason: RetryReason::ConnectionLost,
        }]);
    }
}

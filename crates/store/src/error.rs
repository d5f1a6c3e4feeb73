//! The store's error type. Messages are safe to show to API clients; the
//! database's own text stays inside [`Error::Database`] and is only logged.

use tasker_model::{LeaseError, OperationError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `hint` says what to do about it (create the namespace first);
    /// `did_you_mean` lists near names that do exist.
    #[error("{what} not found{}", advice(hint.as_deref(), did_you_mean))]
    NotFound {
        what: String,
        hint: Option<String>,
        did_you_mean: Vec<String>,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Operation(#[from] OperationError),
    #[error("database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot serve the request now (unreachable, its
    /// connection lost, no connection free in time). The message, from
    /// [`Unavailability`], is safe to show; `cause` is only logged.
    #[error("{}", .why.message())]
    Unavailable {
        why: Unavailability,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why the database could not serve a request: each is temporary, and the
/// API answers it with 503 `unavailable` and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailability {
    /// The database is known to be unreachable (the node's check found it
    /// down): the request was refused without waiting for a connection.
    DatabaseDown,
    /// The request's connection was lost (killed, the server restarting, a
    /// network failure) before anything was committed, and it could not be
    /// run again on a fresh connection.
    ConnectionLost,
    /// No connection became free within the pool's acquire timeout.
    AcquireTimeout,
    /// The connection was lost while the transaction was committing: it may
    /// or may not have taken effect.
    CommitUnknown,
}

impl Unavailability {
    /// What a client is told.
    pub fn message(self) -> &'static str {
        match self {
            Unavailability::DatabaseDown => {
                "the database is unreachable; retry after the Retry-After delay"
            }
            Unavailability::ConnectionLost => {
                "the connection to the database was lost; retry after the Retry-After delay"
            }
            Unavailability::AcquireTimeout => {
                "no database connection became free in time (the database is slow or \
                 unreachable, or this node is overloaded); retry after the Retry-After delay"
            }
            Unavailability::CommitUnknown => {
                "the connection to the database was lost while committing, so this request \
                 may or may not have taken effect; check before repeating it (worker reports \
                 and requests with an idempotency key are safe to repeat)"
            }
        }
    }

    /// A label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailability::DatabaseDown => "database_down",
            Unavailability::ConnectionLost => "connection_lost",
            Unavailability::AcquireTimeout => "acquire_timeout",
            Unavailability::CommitUnknown => "commit_unknown",
        }
    }
}

impl Error {
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound {
            what: what.into(),
            hint: None,
            did_you_mean: Vec::new(),
        }
    }

    /// Not found, with what to do about it.
    pub fn not_found_hint(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::NotFound {
            what: what.into(),
            hint: Some(hint.into()),
            did_you_mean: Vec::new(),
        }
    }

    /// The same error again, for another caller it also answers (the other
    /// items of a batch, the other polls of one claim). A database error
    /// keeps only its message: its cause cannot be copied.
    pub fn duplicate(&self) -> Self {
        match self {
            Error::NotFound {
                what,
                hint,
                did_you_mean,
            } => Error::NotFound {
                what: what.clone(),
                hint: hint.clone(),
                did_you_mean: did_you_mean.clone(),
            },
            Error::Conflict { code, message } => Error::Conflict {
                code,
                message: message.clone(),
            },
            Error::Invalid { field, message } => Error::Invalid {
                field: field.clone(),
                message: message.clone(),
            },
            Error::Lease(e) => Error::Lease(*e),
            Error::Operation(e) => Error::Operation(e.clone()),
            Error::Database(e) => Error::Database(e.to_string().into()),
            Error::Unavailable { why, cause } => Error::Unavailable {
                why: *why,
                cause: cause.to_string().into(),
            },
        }
    }

    /// A stable machine code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Conflict { code, .. } => code,
            Error::Invalid { .. } => "invalid",
            Error::Lease(e) => e.code(),
            Error::Operation(OperationError::Lease(e)) => e.code(),
            Error::Operation(OperationError::WrongState { .. }) => "wrong_state",
            Error::Operation(OperationError::TaskFinished(_)) => "task_finished",
            Error::Operation(OperationError::InvalidResult(_)) => "invalid_result",
            Error::Database(_) => "internal",
            Error::Unavailable { .. } => "unavailable",
        }
    }
}

/// The end of a not-found message: `; did you mean a or b?`, then the hint.
fn advice(hint: Option<&str>, did_you_mean: &[String]) -> String {
    let mut text = String::new();
    if let Some((last, rest)) = did_you_mean.split_last() {
        text.push_str("; did you mean ");
        if !rest.is_empty() {
            text.push_str(&rest.join(", "));
            text.push_str(" or ");
        }
        text.push_str(last);
        text.push('?');
    }
    if let Some(hint) = hint {
        text.push_str("; ");
        text.push_str(hint);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_keeps_its_reason_when_duplicated_and_hides_its_cause() {
        let error = Error::Unavailable {
            why: Unavailability::CommitUnknown,
            cause: "server closed the connection unexpectedly".into(),
        };
        let copy = error.duplicate();
        assert!(matches!(
            copy,
            Error::Unavailable {
                why: Unavailability::CommitUnknown,
                ..
            }
        ));
        assert_eq!(copy.code(), "unavailable");
        assert!(!copy.to_string().contains("server closed"));
        assert!(
            copy.to_string()
                .contains("may or may not have taken effect")
        );
    }

    #[test]
    fn not_found_names_the_near_names_and_the_hint() {
        assert_eq!(Error::not_found("task 1").to_string(), "task 1 not found");
        let error = Error::NotFound {
            what: "template default/linera".into(),
            hint: None,
            did_you_mean: vec!["default/linear".into(), "examples/linear".into()],
        };
        assert_eq!(
            error.to_string(),
            "template default/linera not found; did you mean default/linear or examples/linear?"
        );
        let error = Error::not_found_hint("namespace \"x\"", "create it first");
        assert_eq!(
            error.to_string(),
            "namespace \"x\" not found; create it first"
        );
    }
}

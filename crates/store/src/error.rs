//! The store's error type. Messages are safe to show to API clients; the
//! database's own text stays inside [`Error::Database`] and is only logged.

use tasker_model::{LeaseError, OperationError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} not found")]
    NotFound { what: String },
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
}

impl Error {
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
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
            Error::Database(_) => "internal",
        }
    }
}

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
            Error::Database(_) => "internal",
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

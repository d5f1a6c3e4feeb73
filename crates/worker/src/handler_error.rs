//! How a handler says an attempt failed. Whether another attempt could
//! succeed is part of the type, not a flag callers forget to set: a
//! [`HandlerError::Retryable`] is retried after the step's backoff while
//! attempts remain, a [`HandlerError::Permanent`] fails the step at once.

use serde_json::Value;
use tasker_client::FailReport;

/// The `error_type` of errors made without one.
pub const DEFAULT_ERROR_TYPE: &str = "handler_error";

/// The server refuses an `error_type` longer than this.
pub use tasker_model::limits::MAX_ERROR_TYPE_LEN;
use tasker_model::limits::{MAX_ERROR_MESSAGE_LEN, truncate_to};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// Transient: a timeout downstream, a lock, a 503 from a dependency.
    #[error("{error_type}: {message}")]
    Retryable {
        error_type: String,
        message: String,
        details: Value,
    },
    /// Another attempt would fail the same way: bad input, a refused card.
    #[error("{error_type}: {message}")]
    Permanent {
        error_type: String,
        message: String,
        details: Value,
    },
}

impl HandlerError {
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError::Retryable {
            error_type: DEFAULT_ERROR_TYPE.to_owned(),
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError::Permanent {
            error_type: DEFAULT_ERROR_TYPE.to_owned(),
            message: message.into(),
            details: Value::Null,
        }
    }

    /// Sets the machine-readable kind (`payment_declined`, `rate_limited`).
    pub fn with_type(mut self, kind: impl Into<String>) -> Self {
        match &mut self {
            HandlerError::Retryable { error_type, .. }
            | HandlerError::Permanent { error_type, .. } => {
                *error_type = kind.into();
            }
        }
        self
    }

    /// Attaches structured details, shown with the step's error.
    pub fn with_details(mut self, value: Value) -> Self {
        match &mut self {
            HandlerError::Retryable { details, .. } | HandlerError::Permanent { details, .. } => {
                *details = value;
            }
        }
        self
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Retryable { .. })
    }

    pub fn error_type(&self) -> &str {
        match self {
            HandlerError::Retryable { error_type, .. }
            | HandlerError::Permanent { error_type, .. } => error_type,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            HandlerError::Retryable { message, .. } | HandlerError::Permanent { message, .. } => {
                message
            }
        }
    }

    pub fn details(&self) -> &Value {
        match self {
            HandlerError::Retryable { details, .. } | HandlerError::Permanent { details, .. } => {
                details
            }
        }
    }

    /// The report sent to the server. An `error_type` the server would refuse
    /// (empty or too long) is replaced or shortened, and a message longer
    /// than the protocol allows is shortened, so that the failure is still
    /// recorded.
    pub fn into_fail_report(self) -> FailReport {
        let retryable = self.is_retryable();
        let (error_type, message, details) = match self {
            HandlerError::Retryable {
                error_type,
                message,
                details,
            }
            | HandlerError::Permanent {
                error_type,
                message,
                details,
            } => (error_type, message, details),
        };
        FailReport {
            retryable,
            error_type: sanitize_error_type(error_type),
            message: if message.len() > MAX_ERROR_MESSAGE_LEN {
                truncate_to(&message, MAX_ERROR_MESSAGE_LEN).to_owned()
            } else {
                message
            },
            details,
        }
    }
}

/// Anything turned into an error with `?` through `anyhow` is assumed
/// transient; return [`HandlerError::permanent`] for what is not.
impl From<anyhow::Error> for HandlerError {
    fn from(error: anyhow::Error) -> Self {
        HandlerError::retryable(format!("{error:#}"))
    }
}

pub(crate) fn sanitize_error_type(error_type: String) -> String {
    let trimmed = error_type.trim();
    if trimmed.is_empty() {
        return DEFAULT_ERROR_TYPE.to_owned();
    }
    truncate_to(trimmed, MAX_ERROR_TYPE_LEN).to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn helpers_set_kind_and_retryability() {
        let error = HandlerError::retryable("gateway timeout")
            .with_type("gateway")
            .with_details(json!({"status": 504}));
        assert!(error.is_retryable());
        assert_eq!(error.error_type(), "gateway");
        assert_eq!(error.to_string(), "gateway: gateway timeout");
        let report = error.into_fail_report();
        assert_eq!(
            report,
            FailReport {
                retryable: true,
                error_type: "gateway".into(),
                message: "gateway timeout".into(),
                details: json!({"status": 504}),
            }
        );

        let permanent = HandlerError::permanent("card declined").into_fail_report();
        assert!(!permanent.retryable);
        assert_eq!(permanent.error_type, DEFAULT_ERROR_TYPE);
        assert_eq!(permanent.details, Value::Null);
    }

    #[test]
    fn anyhow_errors_are_retryable_with_their_chain() {
        let error: HandlerError = anyhow::anyhow!("connection reset")
            .context("calling the carrier")
            .into();
        assert!(error.is_retryable());
        assert_eq!(error.message(), "calling the carrier: connection reset");
    }

    #[test]
    fn error_types_the_server_would_refuse_are_fixed() {
        let empty = HandlerError::permanent("x")
            .with_type("  ")
            .into_fail_report();
        assert_eq!(empty.error_type, DEFAULT_ERROR_TYPE);
        let long = "é".repeat(100); // 200 bytes
        let report = HandlerError::permanent("x")
            .with_type(long)
            .into_fail_report();
        assert!(report.error_type.len() <= MAX_ERROR_TYPE_LEN);
        assert!(report.error_type.chars().all(|c| c == 'é'));
    }

    #[test]
    fn messages_longer_than_the_protocol_allows_are_shortened() {
        let report = HandlerError::retryable("é".repeat(MAX_ERROR_MESSAGE_LEN)).into_fail_report();
        assert!(report.message.len() <= MAX_ERROR_MESSAGE_LEN);
        assert!(report.message.len() > MAX_ERROR_MESSAGE_LEN - 2);
        let short = HandlerError::retryable("fine").into_fail_report();
        assert_eq!(short.message, "fine");
    }
}

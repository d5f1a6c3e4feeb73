//! [`ApiError`]: the one error type of the API and its JSON form
//! `{"error": {"code", "message", "details"}}`.
//!
//! Statuses follow the table in `docs/api.md`, keyed by the stable machine
//! code. A database error never reaches a client: it becomes `internal` with
//! a generic message, and its text goes to the log. A database that cannot
//! serve now (unreachable, a lost connection, no free connection) is 503
//! `unavailable` with `Retry-After`, never 500.

use std::any::Any;

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tasker_model::template::Issue;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

/// What `Retry-After` says on 503 `unavailable`: a node serves again within
/// one database check (a second by default) of the database's return.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

const INTERNAL_MESSAGE: &str = "internal error; the server log has the details";

/// The status of each machine code (the `docs/api.md` error table).
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "bad_request" | "invalid" | "template_parse" => StatusCode::BAD_REQUEST,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "not_found" | "worker_not_registered" | "namespace_not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "template_conflict"
        | "schedule_conflict"
        | "schedule_fired"
        | "lease_expired"
        | "lease_mismatch"
        | "task_cancelled"
        | "step_not_running"
        | "step_timed_out"
        | "wrong_state"
        | "task_finished"
        | "idempotency_conflict" => StatusCode::CONFLICT,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "template_invalid" | "context_invalid" | "schedule_invalid" | "invalid_result" => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        "shutting_down" | "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: status_for(code),
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new("payload_too_large", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new("unsupported_media_type", message)
    }

    pub fn shutting_down() -> Self {
        Self::new(
            "shutting_down",
            "this node is shutting down; send the request to another node",
        )
    }

    /// The database cannot serve now; `cause` is logged, never returned.
    pub fn unavailable(message: impl Into<String>, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "request refused: the database is unavailable");
        let mut error = Self::new("unavailable", message);
        error.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECONDS);
        error
    }

    /// Seconds of the `Retry-After` header, if the answer has one.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// A failure the client cannot fix; `cause` is logged, never returned.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new("internal", INTERNAL_MESSAGE)
    }

    pub fn status_code(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn details(&self) -> &Value {
        &self.details
    }
}

fn issues_json(issues: &[Issue]) -> Value {
    Value::Array(
        issues
            .iter()
            .map(|i| json!({"path": i.path, "message": i.message}))
            .collect(),
    )
}

impl From<tasker_engine::Error> for ApiError {
    fn from(error: tasker_engine::Error) -> Self {
        use tasker_engine::Error as E;
        use tasker_model::template::Error as TemplateError;
        use tasker_store::Error as StoreError;

        match &error {
            E::Store(StoreError::Database(cause)) => return Self::internal(cause),
            E::Store(StoreError::Unavailable { why, cause }) => {
                return Self::unavailable(why.message(), cause);
            }
            E::Template(TemplateError::Invalid { issues, .. })
            | E::ContextInvalid { issues, .. } => {
                return Self::new(error.code(), error.to_string())
                    .with_details(issues_json(issues));
            }
            E::ScheduleInvalid { field, .. } => {
                let field = *field;
                return Self::new(error.code(), error.to_string())
                    .with_details(json!({ "field": field }));
            }
            E::Invalid { field, .. } | E::Store(StoreError::Invalid { field, .. }) => {
                let field = field.clone();
                return Self::new("invalid", error.to_string())
                    .with_details(json!({ "field": field }));
            }
            E::Store(StoreError::NotFound {
                hint, did_you_mean, ..
            }) if hint.is_some() || !did_you_mean.is_empty() => {
                return Self::new(error.code(), error.to_string())
                    .with_details(json!({ "hint": hint, "did_you_mean": did_you_mean }));
            }
            // A conflict code the table does not know yet is still a conflict.
            E::Store(StoreError::Conflict { code, message }) => {
                let mut api = Self::new(code, message.clone());
                api.status = StatusCode::CONFLICT;
                return api;
            }
            _ => {}
        }
        let code = error.code();
        if status_for(code) == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::internal(&error);
        }
        Self::new(code, error.to_string())
    }
}

impl From<tasker_store::Error> for ApiError {
    fn from(error: tasker_store::Error) -> Self {
        tasker_engine::Error::Store(error).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {"code": self.code, "message": self.message, "details": self.details}
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The answer to a handler that panicked: `internal`, with the panic logged.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a handler panicked");
    ApiError::internal(&format!("handler panicked: {text}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_model::LeaseError;

    fn api(error: impl Into<tasker_engine::Error>) -> ApiError {
        ApiError::from(error.into())
    }

    #[test]
    fn store_errors_map_to_documented_statuses() {
        use tasker_store::Error as S;
        assert_eq!(api(S::not_found("task x")).status_code(), 404);
        let lease = api(S::Lease(LeaseError::LeaseExpired));
        assert_eq!(
            (lease.status_code(), lease.code()),
            (StatusCode::CONFLICT, "lease_expired")
        );
        let conflict = api(S::Conflict {
            code: "template_conflict",
            message: "differs".into(),
        });
        assert_eq!(conflict.status_code(), 409);
        assert_eq!(conflict.code(), "template_conflict");
        let new_conflict = api(S::Conflict {
            code: "something_new",
            message: "x".into(),
        });
        assert_eq!(new_conflict.status_code(), 409);
    }

    #[test]
    fn database_text_never_leaves() {
        let cause: Box<dyn std::error::Error + Send + Sync> =
            "relation tasker.secret_table does not exist".into();
        let error = api(tasker_store::Error::Database(cause));
        assert_eq!(error.status_code(), 500);
        assert_eq!(error.code(), "internal");
        assert!(!error.message().contains("secret_table"));
    }

    #[test]
    fn an_unavailable_database_is_503_with_retry_after_and_no_database_text() {
        for why in [
            tasker_store::Unavailability::DatabaseDown,
            tasker_store::Unavailability::ConnectionLost,
            tasker_store::Unavailability::AcquireTimeout,
            tasker_store::Unavailability::CommitUnknown,
        ] {
            let error = api(tasker_store::Error::Unavailable {
                why,
                cause: "terminating connection due to administrator command".into(),
            });
            assert_eq!(error.status_code(), 503);
            assert_eq!(error.code(), "unavailable");
            assert_eq!(error.retry_after(), Some(UNAVAILABLE_RETRY_AFTER_SECONDS));
            assert!(!error.message().contains("administrator"));
            let response = error.into_response();
            assert_eq!(response.headers()[RETRY_AFTER], "1");
        }
    }

    #[test]
    fn validation_errors_carry_their_issues() {
        let error = api(tasker_model::template::Error::Invalid {
            reference: "default/x@1".into(),
            issues: vec![Issue {
                path: "steps[0].handler".into(),
                message: "must not be empty".into(),
            }],
        });
        assert_eq!(error.status_code(), 422);
        assert_eq!(error.code(), "template_invalid");
        assert_eq!(error.details()[0]["path"], "steps[0].handler");

        let error = ApiError::from(tasker_engine::Error::PayloadTooLarge {
            what: "context",
            size: 10,
            limit: 5,
        });
        assert_eq!(error.status_code(), 413);
        let error = ApiError::from(tasker_engine::Error::Invalid {
            field: "worker_id".into(),
            message: "too long".into(),
        });
        assert_eq!(
            (error.status_code(), error.code()),
            (StatusCode::BAD_REQUEST, "invalid")
        );
        assert_eq!(error.details()["field"], "worker_id");
    }
}

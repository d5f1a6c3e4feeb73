//! The engine's error type: the store's errors plus input that was refused
//! before anything was written.

use tasker_model::template::Issue;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] tasker_store::Error),
    #[error(transparent)]
    Template(#[from] tasker_model::template::Error),
    #[error("context does not match the schema of template {template}: {}", issues.iter().map(Issue::to_string).collect::<Vec<_>>().join("; "))]
    ContextInvalid {
        template: String,
        issues: Vec<Issue>,
    },
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// A schedule's field that does not hold (an invalid cron expression,
    /// an unknown time zone, a reversed or too large backfill range).
    #[error("invalid {field}: {message}")]
    ScheduleInvalid {
        field: &'static str,
        message: String,
    },
    /// An idempotency key reused for a different task.
    #[error(
        "idempotency key {key:?} already names task {task_id} {differs}; use a new key for a new task"
    )]
    IdempotencyConflict {
        key: String,
        task_id: uuid::Uuid,
        /// What differs, e.g. "of template default/linear@1".
        differs: String,
    },
    /// A poll named a namespace that does not exist.
    #[error(
        "namespace {namespace:?} does not exist: create it (POST /v1/namespaces), then register its templates"
    )]
    NamespaceNotFound { namespace: String },
}

impl Error {
    /// A stable machine code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Store(e) => e.code(),
            Error::Template(tasker_model::template::Error::Parse { .. }) => "template_parse",
            Error::Template(tasker_model::template::Error::Invalid { .. }) => "template_invalid",
            Error::ContextInvalid { .. } => "context_invalid",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Invalid { .. } => "invalid",
            Error::ScheduleInvalid { .. } => "schedule_invalid",
            Error::IdempotencyConflict { .. } => "idempotency_conflict",
            Error::NamespaceNotFound { .. } => "namespace_not_found",
        }
    }
}

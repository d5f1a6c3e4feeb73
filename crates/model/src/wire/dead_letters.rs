//! Dead letters on the wire: steps that failed for good, how to select
//! them, and what a bulk retry or resolve did.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{StepError, TaskState, Timestamp};

/// Which dead letters to list (or to retry or resolve). Every field narrows
/// the selection; none selects every dead letter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Template name (every version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// The `error_type` of the last error, e.g. `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Failed at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub failed_since: Option<Timestamp>,
    /// Failed before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub failed_until: Option<Timestamp>,
}

/// A step that failed for good (no attempts left, or a non-retryable
/// error) in a task that can still be reopened: an operator retries or
/// resolves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetter {
    pub step_id: Uuid,
    pub task_id: Uuid,
    pub task_state: TaskState,
    pub namespace: String,
    pub template_name: String,
    pub template_version: String,
    pub step_name: String,
    pub handler: String,
    /// Attempts made.
    pub attempt: u32,
    /// The last attempt's error.
    pub error: Option<StepError>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
    pub failed_at: Option<Timestamp>,
}

/// One page of dead letters, oldest step first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A step a bulk request could not retry or resolve, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterRefusal {
    pub step_id: Uuid,
    /// The machine code the single-step operation answered, e.g. `wrong_state`.
    pub code: String,
    pub message: String,
}

/// What a bulk retry or resolve did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterOutcome {
    /// Dead letters selected.
    pub matched: u64,
    /// Of those, retried (or resolved).
    pub applied: u64,
    /// Steps that could not be (no longer failed, task cancelled, unknown).
    pub refused: Vec<DeadLetterRefusal>,
    /// True when the filter selected more than `limit`: send the request
    /// again for the rest.
    pub more: bool,
}

//! Records of the leader's housekeeping: steps that exhausted their retries
//! (dead letters) and how to select them, the kinds of stuck work the sweep
//! repairs, and what each sweep last did. A backend finds and repairs; when
//! and how often is the engine's decision, never the backend's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tasker_model::{StepError, TaskState, Timestamp};
use uuid::Uuid;

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

/// What the stuck-work sweep finds and repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StuckKind {
    /// A ready or retrying step whose queue message is gone (deleted by
    /// hand): a new message is sent (a retrying one hidden until its
    /// backoff ends).
    QueuedWithoutMessage,
    /// A running step whose queue message is gone: a new message is sent,
    /// hidden until the lease expires, so the step is delivered again if
    /// its worker never reports.
    RunningWithoutMessage,
    /// A running step whose message stays hidden past the lease's expiry:
    /// the message is made visible when the lease expires.
    LeaseMessageMismatch,
}

impl StuckKind {
    pub const ALL: [StuckKind; 3] = [
        StuckKind::QueuedWithoutMessage,
        StuckKind::RunningWithoutMessage,
        StuckKind::LeaseMessageMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StuckKind::QueuedWithoutMessage => "queued_without_message",
            StuckKind::RunningWithoutMessage => "running_without_message",
            StuckKind::LeaseMessageMismatch => "lease_message_mismatch",
        }
    }
}

/// What one run of a sweep did, by what it counts (e.g. `timed_out`).
pub type SweepCounts = BTreeMap<String, u64>;

/// What a sweep last did, as stored for the cluster view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepRecord {
    /// `timeouts`, `deadlines`, `stuck` or `queue_vacuum`.
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub last_run_at: Timestamp,
    /// The leader that ran it.
    pub node_id: String,
    /// What its last run found.
    pub last_counts: SweepCounts,
    /// What it found in every run so far.
    pub totals: SweepCounts,
}

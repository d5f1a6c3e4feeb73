//! Domain records as the store returns them and the API shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::step_state::StepState;
use crate::task_state::TaskState;
use crate::template::Template;

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Namespace {
    #[cfg_attr(feature = "openapi", schema(example = "orders"))]
    pub name: String,
    /// The PGMQ queue that carries this namespace's ready steps.
    #[cfg_attr(feature = "openapi", schema(example = "tasker_orders"))]
    pub queue: String,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateRecord {
    pub id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    /// SHA-256 of the canonical definition: identical content re-registered is a no-op.
    pub content_hash: String,
    /// The template in its JSON form (see the template reference).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub definition: Template,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: Uuid,
    pub namespace: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub template_version: String,
    pub state: TaskState,
    /// Left out of task lists unless asked for (`include=context`); reads
    /// as `null` then.
    #[serde(default)]
    pub context: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub tags: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub finished_at: Option<Timestamp>,
    /// When the task fails with `deadline_exceeded` unless it has finished;
    /// `null` without a deadline.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub deadline_at: Option<Timestamp>,
}

/// Why an attempt failed, as the worker (or the engine) reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepError {
    /// A short machine-readable kind, e.g. `timeout`, `handler_not_found`.
    pub error_type: String,
    pub message: String,
    #[serde(default)]
    // Always serialized: `default` only lets a reader accept JSON without it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub details: serde_json::Value,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    pub id: Uuid,
    pub task_id: Uuid,
    pub name: String,
    pub handler: String,
    pub state: StepState,
    /// Attempts started so far (the running attempt included).
    pub attempt: u32,
    pub max_attempts: u32,
    pub depends_on: Vec<String>,
    pub worker_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub lease_expires_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub retry_at: Option<Timestamp>,
    pub result: Option<serde_json::Value>,
    pub error: Option<StepError>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub started_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub finished_at: Option<Timestamp>,
}

/// One entry of a task's append-only audit history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    pub id: i64,
    pub task_id: Uuid,
    /// `null` for a change of the task itself.
    pub step_id: Option<Uuid>,
    pub step_name: Option<String>,
    pub from_state: Option<String>,
    pub to_state: String,
    pub attempt: Option<u32>,
    pub worker_id: Option<String>,
    /// The server node that made the change.
    pub node_id: Option<String>,
    pub reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub at: Timestamp,
}

/// Most reports (complete, fail, release, heartbeat) one request to
/// `POST /v1/steps/reports` may carry; the server refuses more with 400
/// `invalid`, and a client sends more in several requests.
pub const MAX_REPORTS_PER_REQUEST: usize = 256;

/// Proof that a worker holds a step: `(step id, attempt, token)`. Heartbeat,
/// complete and fail must present the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub step_id: Uuid,
    pub attempt: u32,
    pub token: Uuid,
}

/// Everything a worker needs to run one attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedStep {
    pub lease: Lease,
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub lease_expires_at: Timestamp,
    pub task_id: Uuid,
    pub namespace: String,
    pub template_name: String,
    pub template_version: String,
    pub step_name: String,
    pub handler: String,
    /// The step's `config` from the template.
    pub config: serde_json::Value,
    pub max_attempts: u32,
    /// How long this attempt may run before it is failed as a timeout.
    pub timeout_ms: u64,
    pub context: serde_json::Value,
    /// Results of the step's parents, by step name, as many as fit in the
    /// server's budget (`engine.max_parent_results_bytes`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parent_results: serde_json::Map<String, serde_json::Value>,
    /// Parents whose results did not fit in the claim: step name → step
    /// id; fetch each with `GET /v1/steps/{id}/result`. Absent when empty.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parent_result_refs: std::collections::BTreeMap<String, Uuid>,
    /// For an instance of a fan-out step: which one, and the item(s) of its
    /// source's result it runs over. Absent for every other step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOutItems>,
}

/// What one fan-out instance runs over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FanOutItems {
    /// The instance's number (`process_rows[3]` is 3), from 0.
    pub number: u32,
    /// Its chunk of the source's `items`: one item unless the fan-out
    /// has a `chunk_size` above 1 (the last chunk may be shorter).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub items: Vec<serde_json::Value>,
}

//! Domain records as the store returns them and the API shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::step_state::StepState;
use crate::task_state::TaskState;
use crate::template::Template;

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    /// The PGMQ queue that carries this namespace's ready steps.
    pub queue: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub definition: Template,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: Uuid,
    pub namespace: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub template_version: String,
    pub state: TaskState,
    pub context: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// Why an attempt failed, as the worker (or the engine) reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// A short machine-readable kind, e.g. `timeout`, `handler_not_found`.
    pub error_type: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub lease_expires_at: Option<Timestamp>,
    pub retry_at: Option<Timestamp>,
    pub result: Option<serde_json::Value>,
    pub error: Option<StepError>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One entry of the append-only audit history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub id: i64,
    pub task_id: Uuid,
    pub step_id: Option<Uuid>,
    pub step_name: Option<String>,
    pub from_state: Option<String>,
    pub to_state: String,
    pub attempt: Option<u32>,
    pub worker_id: Option<String>,
    pub node_id: Option<String>,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// Proof that a worker holds a step: `(step id, attempt, token)`. Heartbeat,
/// complete and fail must present the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    pub step_id: Uuid,
    pub attempt: u32,
    pub token: Uuid,
}

/// Everything a worker needs to run one attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedStep {
    pub lease: Lease,
    pub lease_expires_at: Timestamp,
    pub task_id: Uuid,
    pub namespace: String,
    pub template_name: String,
    pub template_version: String,
    pub step_name: String,
    pub handler: String,
    pub config: serde_json::Value,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub context: serde_json::Value,
    /// Results of the step's parents, by step name.
    pub parent_results: serde_json::Map<String, serde_json::Value>,
}

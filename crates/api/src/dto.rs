//! The records the API returns, as the API's own types: the JSON a client
//! sees is defined here (and described in the OpenAPI document from these
//! same types), so a change to a domain type cannot silently change the
//! wire format. Each converts from its `tasker_model`/`tasker_store` twin.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Namespace {
    #[schema(example = "orders")]
    pub name: String,
    /// The PGMQ queue that carries this namespace's ready steps.
    #[schema(example = "tasker_orders")]
    pub queue: String,
    pub created_at: DateTime<Utc>,
}

impl From<tasker_model::Namespace> for Namespace {
    fn from(n: tasker_model::Namespace) -> Self {
        Self {
            name: n.name,
            queue: n.queue,
            created_at: n.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateRecord {
    pub id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    /// SHA-256 of the canonical definition: identical content re-registered is a no-op.
    pub content_hash: String,
    /// The template in its JSON form (see the template reference).
    #[schema(value_type = Object)]
    pub definition: Value,
    pub created_at: DateTime<Utc>,
}

impl From<tasker_model::TemplateRecord> for TemplateRecord {
    fn from(t: tasker_model::TemplateRecord) -> Self {
        Self {
            id: t.id,
            namespace: t.namespace,
            name: t.name,
            version: t.version,
            content_hash: t.content_hash,
            definition: serde_json::to_value(&t.definition).unwrap_or(Value::Null),
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    Complete,
    Failed,
    Cancelled,
}

impl From<tasker_model::TaskState> for TaskState {
    fn from(s: tasker_model::TaskState) -> Self {
        use tasker_model::TaskState as M;
        match s {
            M::Running => Self::Running,
            M::Complete => Self::Complete,
            M::Failed => Self::Failed,
            M::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: Uuid,
    pub namespace: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub template_version: String,
    pub state: TaskState,
    pub context: Value,
    pub idempotency_key: Option<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<tasker_model::Task> for Task {
    fn from(t: tasker_model::Task) -> Self {
        Self {
            id: t.id,
            namespace: t.namespace,
            template_id: t.template_id,
            template_name: t.template_name,
            template_version: t.template_version,
            state: t.state.into(),
            context: t.context,
            idempotency_key: t.idempotency_key,
            tags: t.tags,
            created_at: t.created_at,
            updated_at: t.updated_at,
            finished_at: t.finished_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Ready,
    Running,
    Retrying,
    Complete,
    Failed,
    Cancelled,
    Resolved,
}

impl From<tasker_model::StepState> for StepState {
    fn from(s: tasker_model::StepState) -> Self {
        use tasker_model::StepState as M;
        match s {
            M::Pending => Self::Pending,
            M::Ready => Self::Ready,
            M::Running => Self::Running,
            M::Retrying => Self::Retrying,
            M::Complete => Self::Complete,
            M::Failed => Self::Failed,
            M::Cancelled => Self::Cancelled,
            M::Resolved => Self::Resolved,
        }
    }
}

/// Why an attempt failed, as the worker (or the engine) reported it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepError {
    /// A short machine-readable kind, e.g. `timeout`, `handler_not_found`.
    pub error_type: String,
    pub message: String,
    pub details: Value,
    pub retryable: bool,
}

impl From<tasker_model::StepError> for StepError {
    fn from(e: tasker_model::StepError) -> Self {
        Self {
            error_type: e.error_type,
            message: e.message,
            details: e.details,
            retryable: e.retryable,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub retry_at: Option<DateTime<Utc>>,
    pub result: Option<Value>,
    pub error: Option<StepError>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<tasker_model::Step> for Step {
    fn from(s: tasker_model::Step) -> Self {
        Self {
            id: s.id,
            task_id: s.task_id,
            name: s.name,
            handler: s.handler,
            state: s.state.into(),
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            depends_on: s.depends_on,
            worker_id: s.worker_id,
            lease_expires_at: s.lease_expires_at,
            retry_at: s.retry_at,
            result: s.result,
            error: s.error.map(Into::into),
            started_at: s.started_at,
            finished_at: s.finished_at,
        }
    }
}

/// One entry of a task's append-only audit history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    pub at: DateTime<Utc>,
}

impl From<tasker_model::Transition> for Transition {
    fn from(t: tasker_model::Transition) -> Self {
        Self {
            id: t.id,
            task_id: t.task_id,
            step_id: t.step_id,
            step_name: t.step_name,
            from_state: t.from_state,
            to_state: t.to_state,
            attempt: t.attempt,
            worker_id: t.worker_id,
            node_id: t.node_id,
            reason: t.reason,
            at: t.at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Worker {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    pub handlers: Vec<String>,
    pub concurrency: u32,
    pub version: Option<String>,
    /// The node that last heard from it.
    pub node_id: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl From<tasker_store::Worker> for Worker {
    fn from(w: tasker_store::Worker) -> Self {
        Self {
            worker_id: w.worker_id,
            namespaces: w.namespaces,
            handlers: w.handlers,
            concurrency: w.concurrency,
            version: w.version,
            node_id: w.node_id,
            registered_at: w.registered_at,
            last_seen_at: w.last_seen_at,
        }
    }
}

/// Proof that a worker holds a step: heartbeat, complete and fail present
/// its `attempt` and `token`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    pub step_id: Uuid,
    pub attempt: u32,
    pub token: Uuid,
}

impl From<tasker_model::Lease> for Lease {
    fn from(l: tasker_model::Lease) -> Self {
        Self {
            step_id: l.step_id,
            attempt: l.attempt,
            token: l.token,
        }
    }
}

/// Everything a worker needs to run one attempt of a step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimedStep {
    pub lease: Lease,
    pub lease_expires_at: DateTime<Utc>,
    pub task_id: Uuid,
    pub namespace: String,
    pub template_name: String,
    pub template_version: String,
    pub step_name: String,
    pub handler: String,
    /// The step's `config` from the template.
    pub config: Value,
    pub max_attempts: u32,
    /// How long this attempt may run before it is failed as a timeout.
    pub timeout_ms: u64,
    pub context: Value,
    /// Results of the step's parents, by step name.
    #[schema(value_type = Object)]
    pub parent_results: serde_json::Map<String, Value>,
}

impl From<tasker_model::ClaimedStep> for ClaimedStep {
    fn from(c: tasker_model::ClaimedStep) -> Self {
        Self {
            lease: c.lease.into(),
            lease_expires_at: c.lease_expires_at,
            task_id: c.task_id,
            namespace: c.namespace,
            template_name: c.template_name,
            template_version: c.template_version,
            step_name: c.step_name,
            handler: c.handler,
            config: c.config,
            max_attempts: c.max_attempts,
            timeout_ms: c.timeout_ms,
            context: c.context,
            parent_results: c.parent_results,
        }
    }
}

/// The error body of every failed request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `not_found`, `lease_expired`.
    #[schema(example = "not_found")]
    pub code: String,
    /// What was wrong and what to do, for people.
    pub message: String,
    /// Code-specific: for `template_invalid` and `context_invalid` a list of
    /// `{path, message}`; otherwise usually `null`.
    pub details: Value,
}

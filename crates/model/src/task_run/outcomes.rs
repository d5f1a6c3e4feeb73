//! What an operation on a [`super::TaskRun`] produces: the plan the backend
//! writes, and the outcomes and refusals callers see.

use std::collections::BTreeSet;

use serde::Serialize;
use uuid::Uuid;

use crate::records::{Lease, StepError, Timestamp};
use crate::step_state::StepState;
use crate::task_state::TaskState;

/// A history entry to append (the backend adds the node id and its own id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewTransition {
    pub task_id: Uuid,
    pub step_id: Option<Uuid>,
    pub from_state: Option<&'static str>,
    pub to_state: &'static str,
    pub attempt: Option<u32>,
    pub worker_id: Option<String>,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// What an operation changed; the backend writes all of it in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Indices of steps whose row changed.
    pub dirty_steps: BTreeSet<usize>,
    pub task_changed: bool,
    /// Results to store, by step index.
    pub results: Vec<(usize, serde_json::Value)>,
    /// Errors to store (`None` clears), by step index.
    pub errors: Vec<(usize, Option<StepError>)>,
    pub transitions: Vec<NewTransition>,
    /// Steps that need a new queue message; the backend sets their `msg_id`.
    pub enqueue: Vec<usize>,
    /// Steps leased as soon as they were released: their new message is
    /// sent hidden until the lease expires (the lease is its visibility).
    pub enqueue_leased: Vec<(usize, Timestamp)>,
    /// Messages whose visibility moves to the given time.
    pub set_visibility: Vec<(i64, Timestamp)>,
    pub delete_messages: Vec<i64>,
    /// Fan-out instances created: the backend inserts their rows (pending,
    /// at position `index`) before writing the rest of the plan.
    pub new_steps: Vec<NewStep>,
    /// Fan-out steps whose instances are all done: their result becomes the
    /// list of the instances' results, in instance order.
    pub gather: Vec<usize>,
}

/// A fan-out instance to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    /// Its row index, which is also its position.
    pub index: usize,
    /// The item or chunk of items it runs over.
    pub items: Vec<serde_json::Value>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Why a lease holder's request was refused. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseError {
    #[error("the lease has expired; the step will be delivered again")]
    LeaseExpired,
    #[error("the lease is not the step's current lease (stale attempt or token)")]
    LeaseMismatch,
    #[error("the task was cancelled")]
    TaskCancelled,
    #[error("the step is not running")]
    StepNotRunning,
    #[error("the attempt ran past the step's timeout and was failed as `timeout`")]
    StepTimedOut,
}

impl LeaseError {
    /// Stable machine code for APIs.
    pub fn code(self) -> &'static str {
        match self {
            LeaseError::LeaseExpired => "lease_expired",
            LeaseError::LeaseMismatch => "lease_mismatch",
            LeaseError::TaskCancelled => "task_cancelled",
            LeaseError::StepNotRunning => "step_not_running",
            LeaseError::StepTimedOut => "step_timed_out",
        }
    }
}

/// What a message read from the queue turned out to mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The step is now running under the new lease.
    Claimed(Lease),
    /// Someone still holds a valid lease; the message was hidden again.
    Busy,
    /// The message was stale, or the expired lease used the last attempt;
    /// the message was deleted.
    Dropped,
}

/// Result of a heartbeat from the current lease holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    Extended {
        lease_expires_at: Timestamp,
    },
    /// The task was cancelled: stop working, the result will be refused.
    Cancelled,
    /// The attempt ran past the step's timeout and was failed as `timeout`.
    TimedOut,
}

/// Result of a complete or fail from a lease holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The report changed the step.
    Applied,
    /// The same lease already reported; nothing changed (safe re-send).
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OperationError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("step \"{step}\" is {state}; {action} needs {needs}")]
    WrongState {
        step: String,
        state: StepState,
        action: &'static str,
        needs: &'static str,
    },
    #[error("task is {0}; it can no longer change")]
    TaskFinished(TaskState),
    /// A result the step's definition does not allow (e.g. a decision
    /// naming a step that is not one of its branches).
    #[error("{0}")]
    InvalidResult(String),
}

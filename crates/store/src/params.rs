//! Parameter and result structs of [`crate::Store`] methods.

use serde::{Deserialize, Serialize};
use tasker_model::{ClaimedStep, Lease, StepError};
use uuid::Uuid;

pub use tasker_model::wire::{
    HistoryPage, NewTask, TaskFilter, TaskPage, Worker, WorkerRegistration,
};

/// What the store writes for a new task, once the engine checked it.
#[derive(Debug, Clone)]
pub struct TaskCreate {
    pub template_id: Uuid,
    pub context: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub tags: Vec<String>,
    /// How long the task may take from its creation; `None`: its
    /// template's `deadline`, if any.
    pub deadline: Option<std::time::Duration>,
}

#[derive(Debug, Clone)]
pub struct StepClaim {
    pub namespace: String,
    pub worker_id: String,
    pub max: u32,
    /// Lease length; PGMQ visibility is whole seconds, so backends round up.
    pub lease_for: std::time::Duration,
    /// Handlers the worker runs: only steps naming one of them are leased.
    /// Empty: any step of the namespace.
    pub handlers: Vec<String>,
}

/// One claim for several waiting polls of a namespace (a node's dispatcher).
#[derive(Debug, Clone)]
pub struct ClaimBatch {
    pub namespace: String,
    /// Lease length; PGMQ visibility is whole seconds, so backends round up.
    pub lease_for: std::time::Duration,
    /// The polls, oldest first: earlier slots are served first.
    pub slots: Vec<ClaimSlot>,
}

/// One waiting poll of a [`ClaimBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSlot {
    pub worker_id: String,
    /// Most steps this poll takes.
    pub max: u32,
    /// Handlers its worker runs, as in [`StepClaim::handlers`].
    pub handlers: Vec<String>,
}

/// What a [`ClaimBatch`] leased.
#[derive(Debug, Clone, Default)]
pub struct ClaimedBatch {
    /// Per slot, in the order of the batch's slots.
    pub steps: Vec<Vec<ClaimedStep>>,
    /// When the claim left room unfilled (the queue had nothing more for
    /// these slots): how long until the queue's next hidden message becomes
    /// visible (a retry's backoff, a lease's expiry). `None` when nothing is
    /// hidden, or when every slot was filled.
    pub next_visible_in: Option<std::time::Duration>,
}

/// What a lease holder reports about its step. Reports that reach a node
/// together are written in one transaction ([`crate::Store::step_report`]),
/// each answered on its own.
#[derive(Debug, Clone)]
pub enum StepReport {
    /// A result; with `next`, more steps leased to the same worker.
    Complete {
        lease: Lease,
        result: serde_json::Value,
        next: Option<NextClaim>,
    },
    Fail {
        lease: Lease,
        error: StepError,
    },
    /// Handed back unfinished: delivered again at once, attempt not counted.
    Release {
        lease: Lease,
    },
    /// Extends the lease to `lease_for` from now.
    Heartbeat {
        lease: Lease,
        lease_for: std::time::Duration,
    },
}

impl StepReport {
    pub fn lease(&self) -> &Lease {
        match self {
            StepReport::Complete { lease, .. }
            | StepReport::Fail { lease, .. }
            | StepReport::Release { lease }
            | StepReport::Heartbeat { lease, .. } => lease,
        }
    }
}

/// How a [`StepReport`] was taken.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportOutcome {
    Completed {
        recorded: tasker_model::Recorded,
        /// Steps leased by `next`.
        next: Vec<ClaimedStep>,
    },
    Failed(tasker_model::Recorded),
    Released,
    Heartbeat(tasker_model::HeartbeatOutcome),
}

/// Steps to lease in the same transaction as a completion.
#[derive(Debug, Clone)]
pub struct NextClaim {
    pub worker_id: String,
    /// Children the completion releases (in these namespaces) are leased
    /// first; then these queues are read in order until `max` are leased.
    pub namespaces: Vec<String>,
    pub max: u32,
    pub lease_for: std::time::Duration,
    /// Handlers the worker runs, as in [`StepClaim::handlers`].
    pub handlers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StepCompletion {
    pub lease: Lease,
    pub result: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct StepFailure {
    pub lease: Lease,
    pub error: StepError,
}

/// How much work a namespace's queue holds right now (for metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub namespace: String,
    /// Messages visible now: ready steps (and expired leases) waiting for a worker.
    pub ready: u64,
    /// Steps running under a lease that has not expired.
    pub leased: u64,
    /// Hidden messages that are not live leases: retries waiting out their backoff.
    pub delayed: u64,
    /// When the oldest message visible now was first sent: how long the
    /// longest-waiting ready step has waited. `None` when nothing is ready.
    #[serde(default)]
    pub oldest_ready_at: Option<tasker_model::Timestamp>,
}

/// Tasks started and finished in one minute (the dashboard's chart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskActivity {
    /// The start of the minute.
    pub minute: tasker_model::Timestamp,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
}

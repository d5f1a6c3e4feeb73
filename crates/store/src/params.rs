//! Parameter and result structs of [`crate::Store`] methods.

use serde::{Deserialize, Serialize};
use tasker_model::{ClaimedStep, Lease, StepError, Task, TaskState};
use uuid::Uuid;

/// A task to create: the engine's input and the body of `POST /v1/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    pub namespace: String,
    /// Template name within the namespace.
    pub template: String,
    /// `None`: the newest registered version.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub context: serde_json::Value,
    /// Unique per namespace: creating again with the same key returns the
    /// existing task instead of starting another.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// How long the task may take from its creation (e.g. `30m`); past it
    /// the task fails with `deadline_exceeded`. Default: the template's
    /// `deadline`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<tasker_model::HumanDuration>,
}

impl NewTask {
    /// A task of the newest version of `namespace/template` with an empty
    /// context, no idempotency key and no tags.
    pub fn new(namespace: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            template: template.into(),
            version: None,
            context: serde_json::json!({}),
            idempotency_key: None,
            tags: Vec::new(),
            deadline: None,
        }
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    pub fn context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilter {
    pub namespace: Option<String>,
    pub template: Option<String>,
    pub state: Option<TaskState>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size; backends cap it at 500. Default 50.
    pub limit: Option<u32>,
    /// Only tasks whose id starts with these hex digits (1 to 32; dashes
    /// ignored), as `git` finds a commit by a prefix of its hash.
    pub id_prefix: Option<String>,
    /// Only tasks carrying this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only tasks created at or after this time.
    #[serde(default)]
    pub created_after: Option<tasker_model::Timestamp>,
    /// Only tasks created before this time.
    #[serde(default)]
    pub created_before: Option<tasker_model::Timestamp>,
}

impl TaskFilter {
    /// The smallest and the largest id that start with `id_prefix`: UUIDs
    /// sort by their bytes, i.e. by their hex digits, so a prefix is a range
    /// that an index on the id scans cheaply. `Err` says what is wrong with
    /// the prefix.
    pub fn id_range(&self) -> Result<Option<(Uuid, Uuid)>, String> {
        let Some(prefix) = &self.id_prefix else {
            return Ok(None);
        };
        let digits: String = prefix.chars().filter(|c| *c != '-').collect();
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(format!(
                "id_prefix {prefix:?} must be 1 to 32 hexadecimal digits (dashes are ignored)"
            ));
        }
        let bound = |fill: char| {
            let mut hex = digits.to_ascii_lowercase();
            hex.extend(std::iter::repeat_n(fill, 32 - digits.len()));
            Uuid::parse_str(&hex).expect("32 hex digits are a uuid")
        };
        Ok(Some((bound('0'), bound('f'))))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a task's history, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryPage {
    pub transitions: Vec<tasker_model::Transition>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
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

/// What a worker tells the server about itself when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRegistration {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    pub handlers: Vec<String>,
    pub concurrency: u32,
    #[serde(default)]
    pub version: Option<String>,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Worker {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    pub handlers: Vec<String>,
    pub concurrency: u32,
    pub version: Option<String>,
    /// The node that last heard from it.
    pub node_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub registered_at: tasker_model::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub last_seen_at: tasker_model::Timestamp,
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

#[cfg(test)]
mod id_prefix_tests {
    use super::*;

    fn range(prefix: &str) -> Result<Option<(Uuid, Uuid)>, String> {
        TaskFilter {
            id_prefix: Some(prefix.into()),
            ..TaskFilter::default()
        }
        .id_range()
    }

    #[test]
    fn a_prefix_is_the_range_of_ids_that_start_with_it() {
        let (low, high) = range("0193A1-b").unwrap().unwrap();
        assert_eq!(low.to_string(), "0193a1b0-0000-0000-0000-000000000000");
        assert_eq!(high.to_string(), "0193a1bf-ffff-ffff-ffff-ffffffffffff");
        let full = "0193a1b2-0000-7000-8000-000000000001";
        assert_eq!(
            range(full).unwrap(),
            Some((full.parse().unwrap(), full.parse().unwrap()))
        );
        assert_eq!(TaskFilter::default().id_range(), Ok(None));
    }

    #[test]
    fn a_prefix_that_is_not_hex_or_too_long_is_refused() {
        for bad in ["", "-", "xyz", "0193 a1", &"a".repeat(33)] {
            let err = range(bad).unwrap_err();
            assert!(err.contains("hexadecimal"), "{bad}: {err}");
        }
    }
}

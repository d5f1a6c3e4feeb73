//! The storage contract of Tasker: one method per operation, taking a params
//! struct and returning domain types (noun-then-verb names, as in
//! `task_create`, `step_claim`).
//!
//! Every state-changing method is one transaction in the backend: the state
//! change, the history it appends and the queue messages it implies commit
//! together or not at all. The graph logic itself lives in
//! [`tasker_model::TaskRun`]; the orchestration around it (load, apply,
//! write) lives once, in [`orchestration`], over the narrow primitives each
//! backend offers ([`backend::Backend`]).
//!
//! ```text
//!  engine ──dyn Store──▶ PgStore / SqliteStore (Store impls)
//!                          │ claims, reports, cancel, retry, resolve, sweeps
//!                          ▼
//!                        orchestration::*  (generic over B: Backend)
//!                          │ TaskRun (tasker-model): pure decisions
//!                          ▼
//!                        backend::Transaction: lock tasks, read/hide/delete
//!                          messages, load payloads, write a plan, commit
//! ```

pub mod backend;
pub mod catalog;
mod cluster;
mod error;
mod maintenance;
mod observer;
pub mod orchestration;
pub mod paging;
mod params;
mod retention;
pub mod schedules;
pub mod task_activity;

use std::time::Duration;

use async_trait::async_trait;
use tasker_model::explanation::ExplainFacts;
use tasker_model::{
    ClaimedStep, HeartbeatOutcome, Lease, Namespace, Recorded, Schedule, ScheduleFire, Step, Task,
    TaskState, Template, TemplateRecord, Timestamp, Transition,
};
use uuid::Uuid;

pub use cluster::{
    ClusterLeader, ClusterNode, ClusterWorker, LeaderElect, Leadership, Node, NodeRegistration,
};
pub use error::{Error, Unavailability};
pub use maintenance::{
    DeadLetter, DeadLetterFilter, DeadLetterOutcome, DeadLetterPage, DeadLetterRefusal, StuckKind,
    SweepCounts, SweepRecord,
};
pub use observer::{AttemptOutcome, Event, Observer, RetryReason};
pub use params::*;
pub use retention::{RetentionDeleted, RetentionHorizon, RetentionTasksDelete};
pub use schedules::{FireAction, FireRequest, FireResult, NextFire, ScheduleWrite};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies migrations and installs the queue machinery. Idempotent.
    async fn migrate(&self) -> Result<()>;

    /// What `/ready` reports: database reachable, migrations applied,
    /// queues installed, default namespace. Answered from the backend's
    /// last periodic check: it never waits on the database (except for the
    /// very first check of a new store), so probes answer at once during an
    /// outage.
    async fn readiness(&self) -> Result<Readiness>;

    /// Sets the most instances one fan-out step may get in one task
    /// (`engine.max_fan_out_instances`); the engine calls it at start.
    fn fan_out_cap_set(&self, cap: u32);

    /// Creates a namespace and its queue; `created` is false when it existed.
    async fn namespace_create(&self, name: &str) -> Result<(Namespace, bool)>;
    async fn namespace_list(&self) -> Result<Vec<Namespace>>;

    /// Registers a validated template. Same content again returns the
    /// existing record (`created` false); different content under the same
    /// `namespace/name@version` is [`Error::Conflict`].
    async fn template_register(&self, template: &Template) -> Result<(TemplateRecord, bool)>;
    /// `version` `None` means the newest version: the highest in version
    /// order (`tasker_model::template::VersionRank`: semantic and plain
    /// integer versions by value, a pre-release below its release, numbered
    /// versions above the rest), ties going to the later registration.
    async fn template_get(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<TemplateRecord>;
    /// By namespace and name; each name's versions oldest first in version
    /// order, so the newest is last.
    async fn template_list(&self, namespace: Option<&str>) -> Result<Vec<TemplateRecord>>;

    /// Creates a task with its steps and dispatches its roots. With an
    /// idempotency key that exists in the namespace, returns that task
    /// (`created` false) and writes nothing.
    async fn task_create(&self, params: TaskCreate) -> Result<(Task, bool)>;
    /// Creates tasks in one transaction, answering each in order as
    /// [`Store::task_create`] would. An item refused on its own (its
    /// template gone) does not fail the others; a database error fails them
    /// all and writes nothing. Items sharing an idempotency key are written
    /// once, by the first; the others are answered with its task
    /// (`created` false).
    async fn task_create_many(&self, items: Vec<TaskCreate>) -> Result<Vec<Result<(Task, bool)>>>;
    async fn task_get(&self, id: Uuid) -> Result<Task>;
    async fn task_list(&self, filter: &TaskFilter) -> Result<TaskPage>;
    async fn task_steps(&self, id: Uuid) -> Result<Vec<Step>>;
    /// Up to `limit` transitions of a task with an id above `after`,
    /// oldest first ([`Error::NotFound`] when the task does not exist).
    async fn task_history(&self, id: Uuid, after: i64, limit: u32) -> Result<Vec<Transition>>;
    async fn task_cancel(&self, id: Uuid, reason: &str) -> Result<Task>;
    /// What "why is it waiting?" needs of a task, read in one snapshot: its
    /// steps with their queue messages and lease holders' nodes, and the
    /// workers heard from within `worker_within` ([`Error::NotFound`] when
    /// the task does not exist).
    async fn task_explain_facts(&self, id: Uuid, worker_within: Duration) -> Result<ExplainFacts>;

    /// One step, as in [`Store::task_steps`].
    async fn step_get(&self, id: Uuid) -> Result<Step>;
    /// Leases up to `max` ready steps of a namespace for `lease_for`.
    async fn step_claim(&self, params: StepClaim) -> Result<Vec<ClaimedStep>>;
    /// Leases ready steps of one namespace for several waiting polls in one
    /// transaction: each slot gets at most its `max`, only steps of its
    /// handlers, and messages no slot can take stay visible.
    async fn step_claim_batch(&self, batch: ClaimBatch) -> Result<ClaimedBatch>;
    async fn step_heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<HeartbeatOutcome>;
    /// Records results; each item succeeds or is refused on its own, and all
    /// accepted items commit in one transaction.
    async fn step_complete(&self, items: Vec<StepCompletion>) -> Result<Vec<Result<Recorded>>>;
    /// Records one result and, in the same transaction, leases up to
    /// `next.max` ready steps for the same worker: the sequential path of a
    /// workflow then costs one commit per step instead of two.
    async fn step_complete_and_claim(
        &self,
        item: StepCompletion,
        next: &NextClaim,
    ) -> Result<(Recorded, Vec<ClaimedStep>)>;
    async fn step_fail(&self, params: StepFailure) -> Result<Recorded>;
    /// Writes reports of lease holders (results, failures, releases,
    /// heartbeats) in one transaction. Each is taken or refused on its own
    /// (a stale lease refuses only its report); a database error fails them
    /// all and writes nothing.
    async fn step_report(&self, reports: Vec<StepReport>) -> Result<Vec<Result<ReportOutcome>>>;
    /// The lease holder gives the step back unfinished; it is delivered
    /// again at once and the attempt is not counted.
    async fn step_release(&self, lease: &Lease) -> Result<()>;
    async fn step_retry(&self, step_id: Uuid) -> Result<Step>;
    async fn step_resolve(&self, step_id: Uuid, result: Option<serde_json::Value>) -> Result<Step>;

    /// Records (or refreshes) a worker's registration.
    async fn worker_register(&self, registration: &WorkerRegistration) -> Result<Worker>;
    /// Marks workers as seen now, in one statement; unknown workers are
    /// ignored.
    async fn workers_seen(&self, worker_ids: &[String]) -> Result<()>;
    /// One worker, if it was seen within `within`: what a poll or a `next`
    /// may lease it (its namespaces and handlers).
    async fn worker_get(&self, worker_id: &str, within: Duration) -> Result<Option<Worker>>;
    /// Workers seen within `within`, most recent first.
    async fn worker_list(&self, within: Duration) -> Result<Vec<Worker>>;
    /// Per worker, the steps running under a lease it holds. Read for the
    /// cluster view: it reads the queues' hidden messages, never every step.
    async fn worker_in_flight(&self) -> Result<std::collections::HashMap<String, u64>>;

    /// Records this node (or refreshes its record) with a heartbeat at the
    /// database's now.
    async fn node_heartbeat(&self, node: &NodeRegistration) -> Result<Node>;
    /// Nodes whose last heartbeat is within `within`, by id.
    async fn node_list(&self, within: Duration) -> Result<Vec<Node>>;
    /// Removes a node's record (a node stopping gracefully).
    async fn node_delete(&self, node_id: &str) -> Result<()>;
    /// Removes the records of nodes not heard from for `older_than`;
    /// returns how many. Safe to run on several nodes at once.
    async fn node_delete_stale(&self, older_than: Duration) -> Result<u64>;

    /// Takes the lease of `elect.name` when it is free, expired or already
    /// `elect.node_id`'s (renewing it), in one conditional statement, and
    /// returns the lease as it stands after the attempt: the caller leads
    /// when it is the holder. `None` only when the lease is being created
    /// by another node at this very moment.
    async fn leader_attempt_elect(&self, elect: &LeaderElect) -> Result<Option<Leadership>>;
    /// Ends `node_id`'s lease of `name` now, so that another node may take
    /// it at once; returns false when `node_id` did not hold it.
    async fn leader_resign(&self, name: &str, node_id: &str) -> Result<bool>;
    /// The lease of `name`, live or expired, if anyone ever held it.
    async fn leader_get(&self, name: &str) -> Result<Option<Leadership>>;

    /// Per namespace, the queue's ready, leased and delayed work. Read for
    /// the metrics every few seconds, so it must stay cheap: it may read
    /// queue rows, never scan every step.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>>;

    /// Per minute since `since`, tasks created, completed and failed (only
    /// minutes with any), oldest first. Reads tasks created at most a day
    /// before `since` (by id, which is time-ordered), never the whole table.
    async fn task_activity(&self, since: Timestamp) -> Result<Vec<TaskActivity>>;

    // Schedules

    /// Stores a new schedule; [`Error::Conflict`] when its name is taken.
    async fn schedule_create(&self, id: Uuid, write: &ScheduleWrite) -> Result<Schedule>;
    async fn schedule_get(&self, id: Uuid) -> Result<Schedule>;
    /// Every schedule, by name.
    async fn schedule_list(&self) -> Result<Vec<Schedule>>;
    /// Replaces a schedule's spec and times (its fires stay).
    async fn schedule_update(&self, id: Uuid, write: &ScheduleWrite) -> Result<Schedule>;
    /// Deletes a schedule and its fire records (tasks it started stay).
    async fn schedule_delete(&self, id: Uuid) -> Result<()>;
    /// Up to `limit` schedules to look at now: not paused with
    /// `next_run_at <= now`, or holding a buffered fire; oldest due first.
    async fn schedule_due(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>>;
    /// The earliest `next_run_at` of the schedules not paused.
    async fn schedule_next_run(&self) -> Result<Option<Timestamp>>;
    /// Records one fire and does what it asks in one transaction; a
    /// schedule and time recorded before writes nothing and answers
    /// [`FireResult::AlreadyFired`]. A task it starts goes through the
    /// same path as [`Store::task_create`].
    async fn schedule_fire(&self, request: &FireRequest) -> Result<FireResult>;
    /// A schedule's fires, newest fire time first, at most `limit`.
    async fn schedule_fires(&self, id: Uuid, limit: u32) -> Result<Vec<ScheduleFire>>;

    // Maintenance

    /// Among up to `batch` tasks with running steps whose lease ran out,
    /// in one transaction: fails each attempt past its step's timeout as
    /// `timeout` (retried per its policy, after its backoff), and hands
    /// back the others (their worker is gone) as a claim would. Tasks
    /// another transaction holds are skipped until the next run. Returns
    /// (timed out, lease expired).
    async fn maintenance_steps_time_out(&self, batch: u32) -> Result<(u64, u64)>;
    /// Fails up to `batch` running tasks past their deadline with
    /// `deadline_exceeded`, in one transaction (busy tasks skipped).
    /// Returns how many it failed.
    async fn maintenance_tasks_exceed_deadline(&self, batch: u32) -> Result<u64>;
    /// Finds up to `batch` in-flight steps that cannot make progress (see
    /// [`StuckKind`]) and repairs them in one transaction; counts by kind.
    async fn maintenance_stuck_repair(&self, batch: u32) -> Result<Vec<(StuckKind, u64)>>;
    /// Records a sweep's run: its counts become the last ones and are added
    /// to its totals.
    async fn maintenance_sweep_record(
        &self,
        name: &str,
        node_id: &str,
        counts: &SweepCounts,
    ) -> Result<()>;
    /// Every sweep's record, by name.
    async fn maintenance_sweep_list(&self) -> Result<Vec<SweepRecord>>;
    /// Vacuums every namespace's queue table that the statistics say has
    /// at least `min_dead` dead row versions; returns (namespace, dead row
    /// versions before) of each one vacuumed.
    async fn maintenance_queues_vacuum(&self, min_dead: u64) -> Result<Vec<(String, u64)>>;
    /// Failed steps of tasks that can still be reopened, oldest first;
    /// `cursor` from a previous page, `limit` capped at 500 (default 50).
    async fn dead_letter_list(
        &self,
        filter: &DeadLetterFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<DeadLetterPage>;

    // Retention

    /// Deletes up to `limit` finished tasks older than their horizon, with
    /// their steps and transitions, in one short transaction. Task rows
    /// locked by another transaction are skipped; running tasks and tasks
    /// with a step in flight are never touched. Returns what went, per
    /// table (0 tasks when nothing is left to delete).
    async fn retention_tasks_delete(
        &self,
        batch: &RetentionTasksDelete,
    ) -> Result<RetentionDeleted>;
    /// Releases the idempotency keys of up to `limit` finished tasks
    /// created longer than `older_than` ago (the key's window), so that the
    /// key may name a new task. Keys of running tasks are kept. Returns how
    /// many keys were released.
    async fn retention_idempotency_keys_release(
        &self,
        older_than: Duration,
        limit: u32,
    ) -> Result<u64>;
    /// Deletes up to `limit` worker records not seen for `older_than`;
    /// returns how many.
    async fn retention_workers_delete(&self, older_than: Duration, limit: u32) -> Result<u64>;
}

/// The parts of readiness a backend can check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    pub database: bool,
    pub migrations_applied: bool,
    pub queues_installed: bool,
    pub default_namespace: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.database && self.migrations_applied && self.queues_installed && self.default_namespace
    }
}

/// Task states a list can filter on, parsed from text.
pub fn parse_task_state(text: &str) -> Result<TaskState> {
    text.parse().map_err(|message: String| Error::Invalid {
        field: "state".into(),
        message,
    })
}

//! The narrow transactional primitives a storage backend offers to the one
//! orchestration of Tasker (the `orchestration` module): lock tasks, read,
//! hide and delete queue messages, load payloads, write a plan, commit. The
//! backend holds SQL and connections; it never decides what happens to a
//! step (that is [`TaskRun`] and the orchestration), and it must never
//! commit half of a transaction.
//!
//! ```text
//!  orchestration                         backend
//!  ─────────────                         ───────
//!  retrying(repeat, ||                   ◀─ runs again after an abort it knows
//!    begin(durability)                   ─▶ one open Transaction
//!      tasks_lock(Lock, Load)            ─▶ task rows locked in id order,
//!                                           steps (and contexts) loaded,
//!                                           the database clock
//!      messages_read / _delete / _show   ─▶ the namespace's queue
//!      TaskRun::<op>(..)                    (pure, tasker-model)
//!      plan_write(&mut [Pending])        ─▶ steps, tasks, transitions, messages
//!      payloads_load(..)                 ─▶ what a claim's payloads still lack
//!    commit())                           ─▶ all of it or none of it
//!  after_commit(&Written)                ─▶ wake polls, notify, observer
//! ```
//!
//! Round trips are the cost that matters on a hot path (each statement is a
//! network round trip and a parse-bind-execute in the database), so the
//! primitives are cut to be one statement each and to carry what the next
//! step would otherwise fetch: the durability is known when the transaction
//! begins, the lock loads the contexts when asked, and the plan's new
//! messages can be sent by the same statement that writes the plan.
//!
//! One lock order everywhere: task rows (in id order), then queue messages.
//! A claim already holds messages when it locks tasks, so it locks with
//! [`Lock::FreeTasks`] (skipping busy tasks) instead of waiting.
//!
//! Clock: every time a primitive reads or writes (`now` of
//! [`Transaction::tasks_lock`], message visibility, lease expiry) is the
//! backend's one clock (the database's in PostgreSQL), so that leases and
//! visibility are judged against the same clock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker_model::task_run::{StepRow, TaskRow};
use tasker_model::{TaskRun, TemplateRecord, Timestamp};
use uuid::Uuid;

use crate::orchestration::task_creation::{Inserted, Prepared};
use crate::{Event, Result, TaskCreate};

/// A locked task with what a [`TaskRun`] needs.
#[derive(Debug)]
pub struct LoadedTask {
    pub namespace: String,
    /// The queue of the task's namespace.
    pub queue: String,
    pub template: Arc<TemplateRecord>,
    pub task: TaskRow,
    /// In position order: template steps first, then fan-out instances.
    pub steps: Vec<StepRow>,
    /// `engine.max_fan_out_instances` when the task was loaded (the
    /// backend's [`Backend::max_fan_out`]).
    pub max_fan_out: u32,
    /// The task's context, when the lock was asked for it
    /// ([`Load::RowsAndContexts`]) and the backend reads it with the rows;
    /// `None` otherwise (the payloads then read it).
    pub context: Option<serde_json::Value>,
}

impl LoadedTask {
    /// The parents of row `index` without building a whole run (a task
    /// with a large fan-out has many rows): a template step's parents, none
    /// for a fan-out instance.
    pub fn parents_of(&self, index: usize) -> Vec<usize> {
        let steps = &self.template.definition.steps;
        match steps.get(index) {
            Some(step) => step
                .depends_on
                .iter()
                .filter_map(|d| self.template.definition.step_index(d))
                .collect(),
            None => Vec::new(),
        }
    }

    /// A run over copies of the loaded rows.
    pub fn run(&self) -> TaskRun<'_> {
        let mut run = TaskRun::new(
            &self.template.definition,
            self.task.clone(),
            self.steps.clone(),
        );
        run.max_fan_out = self.max_fan_out;
        run
    }
}

/// Which tasks to lock.
#[derive(Debug, Clone, Copy)]
pub enum Lock<'a> {
    Tasks(&'a [Uuid]),
    /// The tasks that own these steps (a step never changes task).
    TasksOfSteps(&'a [Uuid]),
    /// These tasks, skipping those another transaction holds. Claims lock
    /// this way: they hold queue messages already, and waiting for a task
    /// while holding its messages would invert the one lock order (task rows,
    /// then messages) that completions and cancels follow. Sweeps too: a
    /// task a worker reports on right now is left for the next run.
    FreeTasks(&'a [Uuid]),
}

/// What [`Transaction::tasks_lock`] loads besides the task rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// The task rows and their steps.
    Rows,
    /// Also each task's context: the transaction will lease steps of these
    /// tasks (a claim, a completion with `next`), and their payloads need it.
    /// A backend for which a second read costs no round trip may ignore it.
    RowsAndContexts,
}

/// Whether a commit waits for its record to reach disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Results, creations, failures, cancellations: accepted work must
    /// survive a crash.
    Flushed,
    /// Claims and heartbeats: losing one in a crash only means the step is
    /// delivered again when its (shorter) lease runs out, and the lease fences
    /// the forgotten holder. Skipping the flush wait saves a disk sync per
    /// claim; any later flushed commit makes it durable anyway (the log is
    /// written in order). A backend without the distinction flushes.
    Relaxed,
}

/// Whether an operation may run again after its COMMIT was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Running it twice could do it twice (a task created twice): a lost
    /// COMMIT is answered 503 with the outcome unknown.
    Once,
    /// Running it again after it took effect changes nothing and answers
    /// the same or an equivalent outcome. Worker reports are: each is fenced
    /// by its lease, so a second run of a batch whose COMMIT did take effect
    /// finds the leases consumed and answers `duplicate` (success to the
    /// worker), extends a heartbeat once more, or refuses a release with the
    /// 409 that means "already released".
    Idempotent,
}

/// The body of a queue message, in every backend's queue: which step of
/// which task is ready, and the handler it names, so that a claim can read
/// only the messages of the handlers its worker runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub task_id: Uuid,
    pub step_id: Uuid,
    pub handler: String,
}

/// Which step of which task a queue message delivers: what a claim reads
/// of a [`StepMessage`] body (older bodies carry no handler; a claim routes
/// them by their step's handler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct MessageTarget {
    pub task_id: Uuid,
    pub step_id: Uuid,
}

/// A message just read, hidden from other readers until `visible_at`.
#[derive(Debug, Clone, Copy)]
pub struct ReadMessage {
    pub msg_id: i64,
    pub visible_at: Timestamp,
    /// When the message was first sent.
    pub enqueued_at: Timestamp,
    /// `None` when the body could not be read: nothing can use the message.
    pub body: Option<MessageTarget>,
}

/// A run to write and the queue and namespace of its task.
pub struct Pending<'r, 't> {
    pub queue: &'r str,
    pub namespace: &'r str,
    pub run: &'r mut TaskRun<'t>,
}

impl std::fmt::Debug for Pending<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("queue", &self.queue)
            .field("task_id", &self.run.task.id)
            .finish()
    }
}

/// What a transaction leaves for after its commit.
#[derive(Debug, Default)]
pub struct Written {
    /// Namespaces that got new visible ready steps, with how many (or a
    /// retry whose backoff will end, counted 0: claim loops must learn when
    /// it becomes visible): announce them once the transaction has committed.
    pub ready: Vec<(String, usize)>,
    /// Facts for the observer, also for after the commit.
    pub events: Vec<Event>,
}

impl Written {
    pub fn extend(&mut self, other: Written) {
        self.ready.extend(other.ready);
        self.events.extend(other.events);
    }
}

/// What a claim's payloads need from storage besides the locked rows.
#[derive(Debug, Default)]
pub struct PayloadRequest {
    /// Tasks whose context to read (each once).
    pub contexts: Vec<Uuid>,
    /// Steps whose result to read, by (task, position).
    pub results: Vec<(Uuid, usize)>,
    /// Fan-out instances whose items to read, by step id.
    pub items: Vec<Uuid>,
}

/// The answer to a [`PayloadRequest`]. A value not stored (a step without a
/// result yet) is missing or JSON `null`; the orchestration treats both as
/// `null`.
#[derive(Debug, Default)]
pub struct Payloads {
    pub contexts: HashMap<Uuid, serde_json::Value>,
    pub results: HashMap<(Uuid, usize), serde_json::Value>,
    /// Each instance's items (an empty list when none are stored).
    pub items: HashMap<Uuid, Vec<serde_json::Value>>,
}

/// One run of an operation under [`Backend::retrying`], and what
/// `retrying` returns. Boxed: a future named by type keeps the
/// orchestration's futures provably `Send` (the compiler cannot yet prove it
/// through a generic method returning `impl Future + Send` whose closure
/// borrows, rust-lang/rust#100013).
pub type Attempt<'op, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'op>>;

/// One open transaction of a backend. Every change made through it commits
/// with [`Transaction::commit`] or, when it is dropped uncommitted, is
/// rolled back: nothing of it remains.
pub trait Transaction: Send {
    /// Locks the tasks `lock` names in id order (with [`Lock::FreeTasks`],
    /// skipping those another transaction holds) and loads their steps
    /// (and contexts, as `load` asks). Returns the tasks found, by id, and
    /// the backend clock read after the locks were granted. A task whose
    /// rows are inconsistent is an [`crate::Error::Database`].
    fn tasks_lock(
        &mut self,
        lock: Lock<'_>,
        load: Load,
    ) -> impl Future<Output = Result<(HashMap<Uuid, LoadedTask>, Timestamp)>> + Send;

    /// Of `ids`, those that exist (locked or not): tells a task another
    /// transaction holds from one that is gone after a [`Lock::FreeTasks`].
    fn tasks_existing(&mut self, ids: &[Uuid]) -> impl Future<Output = Result<Vec<Uuid>>> + Send;

    /// Reads up to `max` visible messages of `queue`, oldest first, and
    /// hides them for at least `lease_for` (the backend may round up to its
    /// granularity; `visible_at` tells). With `handlers`, only messages
    /// naming one of them (or naming none) are read. Messages another
    /// transaction is reading are skipped, never waited for.
    fn messages_read(
        &mut self,
        queue: &str,
        lease_for: Duration,
        max: u32,
        handlers: &[String],
    ) -> impl Future<Output = Result<Vec<ReadMessage>>> + Send;

    /// Deletes messages of `queue`; unknown ids are ignored.
    fn messages_delete(
        &mut self,
        queue: &str,
        msg_ids: &[i64],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes messages of `queue` visible now (read but not used); their
    /// read count stays.
    fn messages_show(
        &mut self,
        queue: &str,
        msg_ids: &[i64],
    ) -> impl Future<Output = Result<()>> + Send;

    /// When each of `msg_ids` that still exists in `queue` becomes visible.
    fn messages_visible_at(
        &mut self,
        queue: &str,
        msg_ids: &[i64],
    ) -> impl Future<Output = Result<HashMap<i64, Timestamp>>> + Send;

    /// How long until the first hidden message of `queue` becomes visible
    /// (by the backend clock); `None` when no message is hidden.
    fn messages_next_visible_in(
        &mut self,
        queue: &str,
    ) -> impl Future<Output = Result<Option<Duration>>> + Send;

    /// Reads the task contexts, step results and fan-out items a claim's
    /// payloads need.
    fn payloads_load(
        &mut self,
        request: &PayloadRequest,
    ) -> impl Future<Output = Result<Payloads>> + Send;

    /// Writes the plans of `runs` (tasks locked by this transaction): inserts
    /// their new fan-out instances, sends their new messages (`enqueue`
    /// visible now, `enqueue_leased` hidden until their time) and stores
    /// each message id in its step row, updates dirty steps and changed
    /// tasks, appends transitions (with this node's id), deletes and hides
    /// messages (a message both deleted and hidden is deleted), and gathers
    /// finished fan-outs' results. Sets the `msg_id` of each step it sent a
    /// message for, in the run as in the row. Does nothing when every plan
    /// is empty. What to announce and observe is the orchestration's to
    /// derive (it is pure).
    fn plan_write(
        &mut self,
        runs: &mut [Pending<'_, '_>],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Commits everything done through this transaction, atomically, with
    /// the durability it began with. A connection lost while the commit was
    /// in flight is [`crate::Unavailability::CommitUnknown`].
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
}

/// A storage backend as the orchestration sees it: transactions, the retry
/// policy around them, what to do after a commit, and the read-only finders
/// of the sweeps' candidates.
pub trait Backend: Send + Sync {
    /// An open transaction, borrowing the backend.
    type Tx<'a>: Transaction
    where
        Self: 'a;

    /// Opens a transaction whose commit will have `durability` (known at
    /// the start, so that a backend can set it up in the same round trip as
    /// the transaction itself).
    fn begin(&self, durability: Durability) -> impl Future<Output = Result<Self::Tx<'_>>> + Send;

    /// Writes new tasks and commits them: the rows `prepared` chose for
    /// `items` (a row whose idempotency key a stored task holds is not
    /// written and is answered with that task), their steps, their root
    /// steps' messages and their first transitions, all or nothing, with a
    /// flushed commit. A connection lost once the write may have committed
    /// is [`crate::Unavailability::CommitUnknown`]; lost before, it is
    /// [`crate::Unavailability::ConnectionLost`] and nothing was written.
    fn tasks_create(
        &self,
        items: &[TaskCreate],
        prepared: Prepared,
    ) -> impl Future<Output = Result<Inserted>> + Send;

    /// The queue of `namespace`; [`crate::Error::NotFound`] naming the
    /// namespace when there is none. May be cached (a namespace's queue
    /// never changes).
    fn queue_of(&self, namespace: &str) -> impl Future<Output = Result<String>> + Send;

    /// A template by id; [`crate::Error::NotFound`] naming it when there is
    /// none. May be cached (a template never changes).
    fn template_by_id(&self, id: Uuid) -> impl Future<Output = Result<Arc<TemplateRecord>>> + Send;

    /// Runs `op` (one transaction, begun and committed inside it), again
    /// when the backend knows that is safe: after the database aborted it
    /// (deadlock, serialization failure), after its connection was lost
    /// before COMMIT, and with [`Repeat::Idempotent`] also after a lost
    /// COMMIT. May refuse at once ([`crate::Error::Unavailable`]) while the
    /// backend knows its database is down. A backend without such failures
    /// runs `op` once.
    fn retrying<'op, T, F>(&'op self, repeat: Repeat, op: F) -> Attempt<'op, T>
    where
        T: Send + 'op,
        F: FnMut() -> Attempt<'op, T> + Send + 'op;

    /// After a commit: wakes the polls of the namespaces in `written.ready`
    /// (this process's at once, other nodes' by a notification) and hands
    /// `written.events` to the observer. Never fails: these are hints and
    /// facts, the data is committed already.
    fn after_commit(&self, written: &Written);

    /// The most instances one fan-out step may get
    /// (`engine.max_fan_out_instances`), as set now.
    fn max_fan_out(&self) -> u32;

    /// Up to `batch` tasks with a running step whose lease has run out (by
    /// the backend clock), read without locks: the time-out sweep's
    /// candidates. With leases capped at the step timeout, every attempt
    /// past its timeout is among them.
    fn tasks_with_lapsed_leases(
        &self,
        batch: u32,
    ) -> impl Future<Output = Result<Vec<Uuid>>> + Send;

    /// Up to `batch` running tasks past their deadline (by the backend
    /// clock), read without locks, in id order.
    fn tasks_past_deadline(&self, batch: u32) -> impl Future<Output = Result<Vec<Uuid>>> + Send;

    /// Up to `batch` running tasks that may have a stuck step, read without
    /// locks: an in-flight step (ready, running, retrying) whose message is
    /// gone, or a running step whose message is hidden more than a second
    /// past its lease.
    fn tasks_maybe_stuck(&self, batch: u32) -> impl Future<Output = Result<Vec<Uuid>>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reads_the_target_of_new_and_older_bodies() {
        let body = StepMessage {
            task_id: Uuid::now_v7(),
            step_id: Uuid::now_v7(),
            handler: "h.a".into(),
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["handler"], "h.a");
        let target: MessageTarget = serde_json::from_value(json).unwrap();
        assert_eq!(
            (target.task_id, target.step_id),
            (body.task_id, body.step_id)
        );
        let older = serde_json::json!({"task_id": body.task_id, "step_id": body.step_id});
        let target: MessageTarget = serde_json::from_value(older).unwrap();
        assert_eq!(target.step_id, body.step_id);
        assert!(serde_json::from_value::<MessageTarget>(serde_json::json!({})).is_err());
    }
}

//! The one orchestration of Tasker's state changes, generic over a
//! [`Backend`]: lock the tasks, build their [`TaskRun`]s, apply the
//! operation (pure logic, tasker-model), write the plans, commit, then wake
//! polls and tell the observer. Every backend's `Store` methods for these
//! operations are one-liners calling in here, so the policy (which messages
//! are orphaned or busy, which children a `next` leases, when the queue is
//! the fallback, what the observer hears, what may run again) exists once.
//!
//! The design has the engine own the orchestration; the engine talks to a
//! `dyn Store`, so the orchestration lives beside the [`Backend`] trait in
//! the store crate, where each backend's `Store` implementation reaches it.
//!
//! ```text
//!  Store::step_claim_batch ─▶ claims        read messages, lock free tasks, TaskRun::claim
//!  Store::step_report      ─▶ reports       lock tasks of steps, complete | fail | release
//!                                           | heartbeat, lease `next` children, queue fallback
//!  Store::task_cancel, step_retry, step_resolve
//!                          ─▶ task_operations  one locked task, one TaskRun call
//!  Store::maintenance_*    ─▶ sweeps        candidates (no locks), lock free tasks, re-check
//!  Store::task_create_many ─▶ task_creation  templates and queues, which items write,
//!                                           which share a key, the answers (rows: backend)
//!                              events       observer events and wake-ups derived from plans
//! ```
//!
//! Must never: read a clock of its own (the `now` of
//! [`Transaction::tasks_lock`] is the only one), lock a task while holding
//! queue messages except with [`Lock::FreeTasks`], or run SQL.

pub mod claims;
mod events;
pub mod reports;
pub mod sweeps;
pub mod task_creation;
pub mod task_operations;

use std::collections::HashMap;

use tasker_model::{TaskRun, Timestamp};
use uuid::Uuid;

use crate::backend::{
    Backend, Durability, Load, LoadedTask, Lock, Pending, Repeat, Transaction, Written,
};
use crate::{Error, Result};

/// Writes the plans of `runs` (built from `loaded`) on `tx`; returns what to
/// announce and observe after the commit.
pub(crate) async fn write_runs<T: Transaction>(
    tx: &mut T,
    loaded: &HashMap<Uuid, LoadedTask>,
    runs: &mut HashMap<Uuid, TaskRun<'_>>,
) -> Result<Written> {
    let mut pending: Vec<Pending<'_, '_>> = runs
        .iter_mut()
        .map(|(id, run)| Pending {
            queue: &loaded[id].queue,
            namespace: &loaded[id].namespace,
            run,
        })
        .collect();
    let written = events::written_of(&pending);
    tx.plan_write(&mut pending).await?;
    Ok(written)
}

/// Runs `op` on one locked task (`what` names it in a not-found error),
/// writes its plan and commits; run again as the backend's retry policy
/// allows.
pub(crate) async fn with_task<B, T, F>(
    backend: &B,
    lock: Lock<'_>,
    what: &str,
    durability: Durability,
    op: F,
) -> Result<T>
where
    B: Backend,
    T: Send,
    F: Fn(&mut TaskRun<'_>, Timestamp) -> Result<T> + Send + Sync,
{
    let op = &op;
    backend
        .retrying(Repeat::Once, move || {
            Box::pin(async move {
                let mut tx = backend.begin(durability).await?;
                let (loaded, now) = tx.tasks_lock(lock, Load::Rows).await?;
                let task = loaded
                    .values()
                    .next()
                    .ok_or_else(|| Error::not_found(what))?;
                let mut run = task.run();
                let value = op(&mut run, now)?;
                let mut pending = [Pending {
                    queue: &task.queue,
                    namespace: &task.namespace,
                    run: &mut run,
                }];
                let written = events::written_of(&pending);
                tx.plan_write(&mut pending).await?;
                tx.commit().await?;
                backend.after_commit(&written);
                Ok(value)
            })
        })
        .await
}

//! The leader's sweeps: attempts past their timeout, tasks past their
//! deadline, in-flight steps whose queue message is gone or disagrees with
//! their lease. Each run is one transaction over at most a batch of tasks,
//! locked with [`Lock::FreeTasks`] (a task a worker is reporting on right
//! now is simply left for the next run), then the queue messages: the one
//! lock order everywhere.
//!
//! ```text
//!  backend finds candidates (reads without locks, bounded by the batch)
//!  BEGIN
//!    tasks_lock(FreeTasks)
//!    TaskRun::expire_lease | exceed_deadline | resend_message | align_visibility
//!      (each checks again on the locked rows: repeating is a no-op)
//!    plan_write
//!  COMMIT
//! ```
//!
//! Nothing here may change a step that is not past its time or truly
//! missing its message: the candidates are read without locks, so every
//! decision is taken again on the locked rows. The backend's retry policy
//! wraps each whole run, candidates included.

use std::collections::HashMap;

use tasker_model::task_run::TIMEOUT;
use tasker_model::{StepState, TaskRun, Timestamp};
use uuid::Uuid;

use super::write_runs;
use crate::backend::{Backend, Durability, Load, Lock, Repeat, Transaction};
use crate::{Event, Result, StuckKind};

/// Fails running steps past their timeout as `timeout`, and hands back
/// those whose lease ran out without a timeout (their worker is gone) as a
/// claim would. Returns (timed out, lease expired).
pub async fn steps_time_out<B: Backend>(backend: &B, batch: u32) -> Result<(u64, u64)> {
    backend
        .retrying(Repeat::Once, move || {
            Box::pin(async move {
                let tasks = backend.tasks_with_lapsed_leases(batch).await?;
                let mut timed_out = 0;
                let lapsed = sweep_tasks(backend, tasks, |run, now| {
                    let mut lapsed = 0;
                    for i in 0..run.steps.len() {
                        match run.expire_lease(i, now) {
                            Some(TIMEOUT) => timed_out += 1,
                            Some(_) => lapsed += 1,
                            None => {}
                        }
                    }
                    lapsed
                })
                .await?;
                Ok((timed_out, lapsed))
            })
        })
        .await
}

/// Fails running tasks past their deadline; returns how many.
pub async fn tasks_exceed_deadline<B: Backend>(backend: &B, batch: u32) -> Result<u64> {
    backend
        .retrying(Repeat::Once, move || {
            Box::pin(async move {
                let tasks = backend.tasks_past_deadline(batch).await?;
                sweep_tasks(backend, tasks, |run, now| {
                    u64::from(run.exceed_deadline(now))
                })
                .await
            })
        })
        .await
}

/// Runs `op` on each of `task_ids` that is free to lock, writes the plans
/// and commits; `op` returns how many changes it made to one run.
async fn sweep_tasks<B, F>(backend: &B, mut task_ids: Vec<Uuid>, mut op: F) -> Result<u64>
where
    B: Backend,
    F: FnMut(&mut TaskRun<'_>, Timestamp) -> u64 + Send,
{
    task_ids.sort_unstable();
    task_ids.dedup();
    if task_ids.is_empty() {
        return Ok(0);
    }
    let mut tx = backend.begin(Durability::Flushed).await?;
    let (loaded, now) = tx
        .tasks_lock(Lock::FreeTasks(&task_ids), Load::Rows)
        .await?;
    let mut runs: HashMap<Uuid, TaskRun<'_>> =
        loaded.iter().map(|(id, t)| (*id, t.run())).collect();
    let mut changed = 0;
    for run in runs.values_mut() {
        changed += op(run, now);
    }
    let written = write_runs(&mut tx, &loaded, &mut runs).await?;
    tx.commit().await?;
    backend.after_commit(&written);
    Ok(changed)
}

/// Finds in-flight steps whose message is gone or hidden past their lease,
/// and repairs them; counts by kind (every kind, zeros included).
pub async fn stuck_repair<B: Backend>(backend: &B, batch: u32) -> Result<Vec<(StuckKind, u64)>> {
    backend
        .retrying(Repeat::Once, move || {
            Box::pin(async move {
                let mut tasks = backend.tasks_maybe_stuck(batch).await?;
                tasks.sort_unstable();
                tasks.dedup();
                let mut counts: HashMap<StuckKind, u64> = HashMap::new();
                if !tasks.is_empty() {
                    repair(backend, &tasks, &mut counts).await?;
                }
                Ok(StuckKind::ALL
                    .into_iter()
                    .map(|kind| (kind, counts.get(&kind).copied().unwrap_or(0)))
                    .collect())
            })
        })
        .await
}

/// Locks the free ones of `tasks` and repairs their stuck steps, judged on
/// the locked rows and the messages as they are now.
async fn repair<B: Backend>(
    backend: &B,
    tasks: &[Uuid],
    counts: &mut HashMap<StuckKind, u64>,
) -> Result<()> {
    let mut tx = backend.begin(Durability::Flushed).await?;
    let (loaded, _) = tx.tasks_lock(Lock::FreeTasks(tasks), Load::Rows).await?;
    // The messages the locked steps name, as they are now.
    let mut by_queue: HashMap<&str, Vec<i64>> = HashMap::new();
    for task in loaded.values() {
        let ids = by_queue.entry(task.queue.as_str()).or_default();
        ids.extend(task.steps.iter().filter_map(|s| s.msg_id));
    }
    let mut visible_at: HashMap<i64, Timestamp> = HashMap::new();
    for (queue, ids) in &by_queue {
        visible_at.extend(tx.messages_visible_at(queue, ids).await?);
    }
    let mut runs: HashMap<Uuid, TaskRun<'_>> =
        loaded.iter().map(|(id, t)| (*id, t.run())).collect();
    let mut events = Vec::new();
    for run in runs.values_mut() {
        for i in 0..run.steps.len() {
            let step = &run.steps[i];
            if !step.state.is_in_flight() {
                continue;
            }
            let running = step.state == StepState::Running;
            let kind = match step.msg_id.and_then(|m| visible_at.get(&m)) {
                None if run.resend_message(i) => {
                    if running {
                        StuckKind::RunningWithoutMessage
                    } else {
                        StuckKind::QueuedWithoutMessage
                    }
                }
                Some(&vt) if run.align_visibility(i, vt) => StuckKind::LeaseMessageMismatch,
                _ => continue,
            };
            tracing::warn!(
                task_id = %run.task.id,
                step = %run.name(i),
                kind = kind.as_str(),
                "repaired stuck step"
            );
            *counts.entry(kind).or_default() += 1;
            events.push(Event::StuckRepaired {
                kind: kind.as_str(),
            });
        }
    }
    let mut written = write_runs(&mut tx, &loaded, &mut runs).await?;
    written.events.extend(events);
    tx.commit().await?;
    backend.after_commit(&written);
    Ok(())
}

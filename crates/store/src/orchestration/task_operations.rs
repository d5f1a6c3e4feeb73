//! Operations on one locked task: the single reports of a lease holder
//! (heartbeat, complete, complete-and-claim, fail, release), which go
//! through the batch path of `reports` as a batch of one, and the
//! operator's changes (manual retry, resolve, cancel), each one
//! [`TaskRun`] call on its task, locked, written and committed together.
//!
//! The operator's changes answer the id of the task they changed; the
//! backend reads the answer (the step or the task as it is now) afterwards.

use std::time::Duration;

use tasker_model::{ClaimedStep, HeartbeatOutcome, Lease, Recorded, TaskRun, Timestamp};
use uuid::Uuid;

use super::{reports, with_task};
use crate::backend::{Backend, Durability, Lock};
use crate::{Error, NextClaim, ReportOutcome, Result, StepCompletion, StepFailure, StepReport};

/// Extends a lease (see [`crate::Store::step_heartbeat`]).
pub async fn heartbeat<B: Backend>(
    backend: &B,
    lease: &Lease,
    lease_for: Duration,
) -> Result<HeartbeatOutcome> {
    let report = StepReport::Heartbeat {
        lease: *lease,
        lease_for,
    };
    match one(reports::write(backend, vec![report]).await?)? {
        ReportOutcome::Heartbeat(outcome) => Ok(outcome),
        other => unreachable!("a heartbeat answered {other:?}"),
    }
}

/// Records results (see [`crate::Store::step_complete`]).
pub async fn complete<B: Backend>(
    backend: &B,
    items: Vec<StepCompletion>,
) -> Result<Vec<Result<Recorded>>> {
    let reports = items
        .into_iter()
        .map(|item| StepReport::Complete {
            lease: item.lease,
            result: item.result,
            next: None,
        })
        .collect();
    Ok(reports::write(backend, reports)
        .await?
        .into_iter()
        .map(|outcome| match outcome? {
            ReportOutcome::Completed { recorded, .. } => Ok(recorded),
            other => unreachable!("a completion answered {other:?}"),
        })
        .collect())
}

/// Records one result and leases up to `next.max` steps for the same
/// worker (see [`crate::Store::step_complete_and_claim`]).
pub async fn complete_and_claim<B: Backend>(
    backend: &B,
    item: StepCompletion,
    next: &NextClaim,
) -> Result<(Recorded, Vec<ClaimedStep>)> {
    let report = StepReport::Complete {
        lease: item.lease,
        result: item.result,
        next: Some(next.clone()),
    };
    match one(reports::write(backend, vec![report]).await?)? {
        ReportOutcome::Completed { recorded, next } => Ok((recorded, next)),
        other => unreachable!("a completion answered {other:?}"),
    }
}

/// Records a failed attempt (see [`crate::Store::step_fail`]).
pub async fn fail<B: Backend>(backend: &B, params: StepFailure) -> Result<Recorded> {
    let report = StepReport::Fail {
        lease: params.lease,
        error: params.error,
    };
    match one(reports::write(backend, vec![report]).await?)? {
        ReportOutcome::Failed(recorded) => Ok(recorded),
        other => unreachable!("a failure answered {other:?}"),
    }
}

/// Gives a step back unfinished (see [`crate::Store::step_release`]).
pub async fn release<B: Backend>(backend: &B, lease: &Lease) -> Result<()> {
    match one(reports::write(backend, vec![StepReport::Release { lease: *lease }]).await?)? {
        ReportOutcome::Released => Ok(()),
        other => unreachable!("a release answered {other:?}"),
    }
}

/// Retries a failed step by hand; answers its task's id.
pub async fn retry<B: Backend>(backend: &B, step_id: Uuid) -> Result<Uuid> {
    with_step_task(backend, step_id, |run, index, now| {
        run.retry_step(index, now)?;
        Ok(run.task.id)
    })
    .await
}

/// Marks a step done by hand with `result`; answers its task's id.
pub async fn resolve<B: Backend>(
    backend: &B,
    step_id: Uuid,
    result: Option<serde_json::Value>,
) -> Result<Uuid> {
    with_step_task(backend, step_id, |run, index, now| {
        run.resolve_step(index, result.clone(), now)?;
        Ok(run.task.id)
    })
    .await
}

/// Cancels a task (its steps in flight stop being delivered).
pub async fn cancel<B: Backend>(backend: &B, id: Uuid, reason: &str) -> Result<()> {
    let what = format!("task {id}");
    with_task(
        backend,
        Lock::Tasks(&[id]),
        &what,
        Durability::Flushed,
        |run, now| Ok(run.cancel(reason, now)?),
    )
    .await
}

/// Runs `op` on the task that owns `step_id`, locked, and writes its plan.
async fn with_step_task<B, T, F>(backend: &B, step_id: Uuid, op: F) -> Result<T>
where
    B: Backend,
    T: Send,
    F: Fn(&mut TaskRun<'_>, usize, Timestamp) -> Result<T> + Send + Sync,
{
    let what = format!("step {step_id}");
    with_task(
        backend,
        Lock::TasksOfSteps(&[step_id]),
        &what,
        Durability::Flushed,
        |run, now| {
            let index = run
                .step_index(step_id)
                .ok_or_else(|| Error::not_found(what.clone()))?;
            op(run, index, now)
        },
    )
    .await
}

/// The one answer of a single report.
fn one(mut outcomes: Vec<Result<ReportOutcome>>) -> Result<ReportOutcome> {
    outcomes.pop().expect("one answer per report")
}

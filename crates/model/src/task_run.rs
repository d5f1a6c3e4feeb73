//! [`TaskRun`]: one task's graph in memory, and every operation on it as pure
//! logic. A backend loads a task (locked) into a `TaskRun`, calls one
//! operation, then writes what the run recorded in its [`Plan`] in the same
//! transaction. Graph readiness, retry policy, lease fencing and finalization
//! all live here, so every backend behaves the same and none of it is SQL.
//!
//! A `TaskRun` must never perform I/O or read the clock: `now` is passed in
//! (backends use the database clock, the same one PGMQ uses for visibility).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::TimeDelta;
use serde::Serialize;
use uuid::Uuid;

use crate::records::{Lease, StepError, Timestamp};
use crate::step_state::{self, StepEffect, StepEvent, StepState};
use crate::task_state::{self, TaskEffect, TaskEvent, TaskState};
use crate::template::Template;

/// The mutable part of a step row.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub id: Uuid,
    pub state: StepState,
    pub attempt: u32,
    pub lease_token: Option<Uuid>,
    pub lease_expires_at: Option<Timestamp>,
    pub msg_id: Option<i64>,
    pub retry_at: Option<Timestamp>,
    pub worker_id: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl StepRow {
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            state: StepState::Pending,
            attempt: 0,
            lease_token: None,
            lease_expires_at: None,
            msg_id: None,
            retry_at: None,
            worker_id: None,
            started_at: None,
            finished_at: None,
        }
    }
}

/// The mutable part of a task row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: Uuid,
    pub state: TaskState,
    pub finished_at: Option<Timestamp>,
}

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
    /// Messages whose visibility moves to the given time.
    pub set_visibility: Vec<(i64, Timestamp)>,
    pub delete_messages: Vec<i64>,
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
}

impl LeaseError {
    /// Stable machine code for APIs.
    pub fn code(self) -> &'static str {
        match self {
            LeaseError::LeaseExpired => "lease_expired",
            LeaseError::LeaseMismatch => "lease_mismatch",
            LeaseError::TaskCancelled => "task_cancelled",
            LeaseError::StepNotRunning => "step_not_running",
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
}

/// One task's graph in memory plus the plan of what changed.
#[derive(Debug)]
pub struct TaskRun<'t> {
    pub template: &'t Template,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    pub task: TaskRow,
    /// In template order: `steps[i]` is `template.steps[i]`.
    pub steps: Vec<StepRow>,
    pub plan: Plan,
}

impl<'t> TaskRun<'t> {
    pub fn new(template: &'t Template, task: TaskRow, steps: Vec<StepRow>) -> Self {
        assert_eq!(
            template.steps.len(),
            steps.len(),
            "one row per template step"
        );
        let parents = template.parent_indices();
        let mut children = vec![Vec::new(); parents.len()];
        for (child, ps) in parents.iter().enumerate() {
            for &p in ps {
                children[p].push(child);
            }
        }
        Self {
            template,
            parents,
            children,
            task,
            steps,
            plan: Plan::default(),
        }
    }

    /// A new task: every step pending, roots released.
    pub fn create(
        template: &'t Template,
        task_id: Uuid,
        step_ids: &[Uuid],
        now: Timestamp,
    ) -> Self {
        let task = TaskRow {
            id: task_id,
            state: TaskState::Running,
            finished_at: None,
        };
        let steps = step_ids.iter().map(|&id| StepRow::new(id)).collect();
        let mut run = Self::new(template, task, steps);
        run.record_task(None, TaskState::Running, Some("created"), now);
        for i in 0..run.steps.len() {
            if run.parents[i].is_empty() {
                run.step_event(i, StepEvent::Release, None, now);
            }
        }
        run
    }

    pub fn step_index(&self, step_id: Uuid) -> Option<usize> {
        self.steps.iter().position(|s| s.id == step_id)
    }

    pub fn parents_of(&self, index: usize) -> &[usize] {
        &self.parents[index]
    }

    /// Handles a queue message `msg_id` for step `index`, just read with
    /// visibility until `visible_at` (the new lease's expiry).
    pub fn claim(
        &mut self,
        index: usize,
        msg_id: i64,
        visible_at: Timestamp,
        token: Uuid,
        worker_id: &str,
        now: Timestamp,
    ) -> ClaimOutcome {
        let step = &self.steps[index];
        if step.msg_id != Some(msg_id) || self.task.state.is_terminal() {
            self.plan.delete_messages.push(msg_id);
            return ClaimOutcome::Dropped;
        }
        match step.state {
            StepState::Ready => {}
            StepState::Retrying => {
                self.step_event(index, StepEvent::RetryDue, Some("backoff elapsed"), now);
            }
            StepState::Running => match step.lease_expires_at {
                Some(expiry) if expiry > now => {
                    // A heartbeat extended the lease while the message was read.
                    self.plan.set_visibility.push((msg_id, expiry));
                    return ClaimOutcome::Busy;
                }
                _ => {
                    let retry = self.policy(index).has_attempts_left(step.attempt);
                    self.plan.errors.push((
                        index,
                        Some(StepError {
                            error_type: "lease_expired".into(),
                            message: format!(
                                "attempt {} lost its worker: no result or heartbeat before the lease expired",
                                step.attempt
                            ),
                            details: serde_json::Value::Null,
                            retryable: true,
                        }),
                    ));
                    if !retry {
                        // Failed for good, like any final failure: finished now, no lease.
                        let step = &mut self.steps[index];
                        step.finished_at = Some(now);
                        step.lease_expires_at = None;
                    }
                    self.step_event(
                        index,
                        StepEvent::LeaseExpired { retry },
                        Some("lease expired"),
                        now,
                    );
                    if !retry {
                        return ClaimOutcome::Dropped;
                    }
                }
            },
            _ => {
                self.plan.delete_messages.push(msg_id);
                return ClaimOutcome::Dropped;
            }
        }
        let step = &mut self.steps[index];
        step.attempt += 1;
        step.lease_token = Some(token);
        step.lease_expires_at = Some(visible_at);
        step.worker_id = Some(worker_id.to_owned());
        step.started_at = Some(now);
        step.finished_at = None;
        step.retry_at = None;
        let lease = Lease {
            step_id: step.id,
            attempt: step.attempt,
            token,
        };
        self.step_event(index, StepEvent::Claim, None, now);
        ClaimOutcome::Claimed(lease)
    }

    /// Extends the lease of a running step to `now + lease_for`.
    pub fn heartbeat(
        &mut self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<HeartbeatOutcome, LeaseError> {
        let index = self
            .step_index(lease.step_id)
            .ok_or(LeaseError::LeaseMismatch)?;
        let step = &self.steps[index];
        if !holds(step, lease) {
            return Err(LeaseError::LeaseMismatch);
        }
        match step.state {
            StepState::Cancelled => return Ok(HeartbeatOutcome::Cancelled),
            StepState::Running => {}
            _ => return Err(LeaseError::StepNotRunning),
        }
        if step.lease_expires_at.is_none_or(|e| e <= now) {
            return Err(LeaseError::LeaseExpired);
        }
        let timeout = self.template.steps[index].timeout.as_duration();
        if step.started_at.is_some_and(|s| s + delta(timeout) <= now) {
            let error = StepError {
                error_type: "timeout".into(),
                message: format!(
                    "attempt {} ran longer than the step's timeout of {}",
                    step.attempt, self.template.steps[index].timeout
                ),
                details: serde_json::Value::Null,
                retryable: true,
            };
            self.fail_running(index, error, now);
            return Ok(HeartbeatOutcome::TimedOut);
        }
        let expiry = now + delta(lease_for);
        let step = &mut self.steps[index];
        step.lease_expires_at = Some(expiry);
        if let Some(msg_id) = step.msg_id {
            self.plan.set_visibility.push((msg_id, expiry));
        }
        self.plan.dirty_steps.insert(index);
        Ok(HeartbeatOutcome::Extended {
            lease_expires_at: expiry,
        })
    }

    /// Records the lease holder's result.
    pub fn complete(
        &mut self,
        lease: &Lease,
        result: serde_json::Value,
        now: Timestamp,
    ) -> Result<Recorded, LeaseError> {
        let index = self.current_lease(lease, StepState::Complete, now)?;
        if self.steps[index].state == StepState::Complete {
            return Ok(Recorded::Duplicate);
        }
        self.steps[index].finished_at = Some(now);
        self.steps[index].lease_expires_at = None;
        self.plan.results.push((index, result));
        self.step_event(index, StepEvent::Complete, None, now);
        Ok(Recorded::Applied)
    }

    /// The lease holder hands the step back unfinished: it becomes ready and
    /// visible at once, and the attempt it used is given back.
    pub fn release(&mut self, lease: &Lease, now: Timestamp) -> Result<(), LeaseError> {
        let index = self.current_lease(lease, StepState::Complete, now)?;
        if self.steps[index].state != StepState::Running {
            return Err(LeaseError::StepNotRunning);
        }
        let step = &mut self.steps[index];
        step.lease_expires_at = None;
        step.attempt -= 1;
        step.started_at = None;
        self.step_event(
            index,
            StepEvent::Relinquish,
            Some("released by its worker"),
            now,
        );
        // Nobody holds the step now; the old token must not match a new claim.
        self.steps[index].lease_token = None;
        Ok(())
    }

    /// Records the lease holder's failure; retries when the error is
    /// retryable and the template allows another attempt.
    pub fn fail(
        &mut self,
        lease: &Lease,
        error: StepError,
        now: Timestamp,
    ) -> Result<Recorded, LeaseError> {
        let index = self.current_lease(lease, StepState::Failed, now)?;
        match self.steps[index].state {
            StepState::Running => {}
            _ => return Ok(Recorded::Duplicate),
        }
        self.fail_running(index, error, now);
        Ok(Recorded::Applied)
    }

    fn fail_running(&mut self, index: usize, error: StepError, now: Timestamp) {
        let step = &self.steps[index];
        let retry = error.retryable && self.policy(index).has_attempts_left(step.attempt);
        let reason = format!("{}: {}", error.error_type, error.message);
        self.plan.errors.push((index, Some(error)));
        let step = &mut self.steps[index];
        step.lease_expires_at = None;
        if retry {
            let delay = self.template.steps[index]
                .retry
                .delay_after(step.attempt, step.id);
            step.retry_at = Some(now + delta(delay));
        } else {
            step.finished_at = Some(now);
        }
        self.step_event(index, StepEvent::Fail { retry }, Some(&reason), now);
    }

    /// Cancels the task and every step that has not finished.
    pub fn cancel(&mut self, reason: &str, now: Timestamp) -> Result<(), OperationError> {
        self.task_event(TaskEvent::Cancel, Some(reason), now)
    }

    /// Runs a failed step again with a fresh attempt budget.
    pub fn retry_step(&mut self, index: usize, now: Timestamp) -> Result<(), OperationError> {
        self.expect_state(index, &[StepState::Failed], "a manual retry", "failed")?;
        self.reopen(now)?;
        let step = &mut self.steps[index];
        step.attempt = 0;
        step.finished_at = None;
        step.retry_at = None;
        self.plan.errors.push((index, None));
        self.step_event(index, StepEvent::ManualRetry, Some("manual retry"), now);
        Ok(())
    }

    /// Marks a failed or pending step done without running it; dependents
    /// proceed as if it had completed with `result`.
    pub fn resolve_step(
        &mut self,
        index: usize,
        result: Option<serde_json::Value>,
        now: Timestamp,
    ) -> Result<(), OperationError> {
        self.expect_state(
            index,
            &[StepState::Failed, StepState::Pending],
            "resolving",
            "failed or pending",
        )?;
        self.reopen(now)?;
        self.steps[index].finished_at = Some(now);
        if let Some(result) = result {
            self.plan.results.push((index, result));
        }
        self.step_event(index, StepEvent::Resolve, Some("manually resolved"), now);
        Ok(())
    }

    fn reopen(&mut self, now: Timestamp) -> Result<(), OperationError> {
        match self.task.state {
            TaskState::Running => Ok(()),
            TaskState::Failed => self.task_event(
                TaskEvent::Reopen,
                Some("step manually retried or resolved"),
                now,
            ),
            other => Err(OperationError::TaskFinished(other)),
        }
    }

    fn expect_state(
        &self,
        index: usize,
        allowed: &[StepState],
        action: &'static str,
        needs: &'static str,
    ) -> Result<(), OperationError> {
        if self.task.state.is_terminal() && self.task.state != TaskState::Failed {
            return Err(OperationError::TaskFinished(self.task.state));
        }
        let state = self.steps[index].state;
        if allowed.contains(&state) {
            Ok(())
        } else {
            Err(OperationError::WrongState {
                step: self.template.steps[index].name.clone(),
                state,
                action,
                needs,
            })
        }
    }

    /// Checks that `lease` is the step's current lease and still valid.
    /// A step already in `done_state` under the same lease is a re-sent report.
    fn current_lease(
        &self,
        lease: &Lease,
        done_state: StepState,
        now: Timestamp,
    ) -> Result<usize, LeaseError> {
        let index = self
            .step_index(lease.step_id)
            .ok_or(LeaseError::LeaseMismatch)?;
        let step = &self.steps[index];
        if !holds(step, lease) {
            return Err(LeaseError::LeaseMismatch);
        }
        let resent = step.state == done_state
            || (done_state == StepState::Failed && step.state == StepState::Retrying);
        match step.state {
            _ if resent => {}
            StepState::Running => {
                if step.lease_expires_at.is_none_or(|e| e <= now) {
                    return Err(LeaseError::LeaseExpired);
                }
            }
            StepState::Cancelled => return Err(LeaseError::TaskCancelled),
            _ => return Err(LeaseError::StepNotRunning),
        }
        Ok(index)
    }

    fn policy(&self, index: usize) -> &crate::template::RetryPolicy {
        &self.template.steps[index].retry
    }

    /// Applies a step event and carries out its effects.
    fn step_event(&mut self, index: usize, event: StepEvent, reason: Option<&str>, now: Timestamp) {
        let from = self.steps[index].state;
        let (to, effects) = step_state::apply(from, event)
            .unwrap_or_else(|e| panic!("engine bug: {e} (step {index})"));
        self.steps[index].state = to;
        self.plan.dirty_steps.insert(index);
        let step = &self.steps[index];
        self.plan.transitions.push(NewTransition {
            task_id: self.task.id,
            step_id: Some(step.id),
            from_state: Some(from.as_str()),
            to_state: to.as_str(),
            attempt: (step.attempt > 0).then_some(step.attempt),
            worker_id: step.worker_id.clone().filter(|_| {
                matches!(
                    event,
                    StepEvent::Claim | StepEvent::Complete | StepEvent::Fail { .. }
                )
            }),
            reason: reason.map(str::to_owned),
            at: now,
        });
        for effect in effects {
            match effect {
                StepEffect::Enqueue => self.plan.enqueue.push(index),
                StepEffect::ScheduleRetry => {
                    let step = &self.steps[index];
                    if let (Some(msg_id), Some(at)) = (step.msg_id, step.retry_at) {
                        self.plan.set_visibility.push((msg_id, at));
                    }
                }
                StepEffect::MakeVisible => {
                    if let Some(msg_id) = self.steps[index].msg_id {
                        self.plan.set_visibility.push((msg_id, now));
                    }
                }
                StepEffect::DeleteMessage => {
                    if let Some(msg_id) = self.steps[index].msg_id.take() {
                        self.plan.delete_messages.push(msg_id);
                    }
                }
                StepEffect::ReleaseChildren => {
                    for child in self.children[index].clone() {
                        let ready = self.steps[child].state == StepState::Pending
                            && self.parents[child]
                                .iter()
                                .all(|&p| self.steps[p].state.satisfies_dependents());
                        if ready {
                            self.step_event(child, StepEvent::Release, None, now);
                        }
                    }
                }
                StepEffect::EvaluateTask => self.evaluate(now),
            }
        }
    }

    /// Finalizes the task when every step is done, or when a step failed and
    /// nothing else can run. Guarded by the task's state, so a second
    /// evaluation is a no-op.
    fn evaluate(&mut self, now: Timestamp) {
        if self.task.state != TaskState::Running {
            return;
        }
        if self.steps.iter().all(|s| s.state.satisfies_dependents()) {
            let _ = self.task_event(TaskEvent::AllDone, None, now);
        } else if !self.steps.iter().any(|s| s.state.is_in_flight()) {
            let failed: Vec<&str> = self
                .steps
                .iter()
                .zip(&self.template.steps)
                .filter(|(s, _)| s.state == StepState::Failed)
                .map(|(_, d)| d.name.as_str())
                .collect();
            let reason = format!("step(s) failed: {}", failed.join(", "));
            let _ = self.task_event(TaskEvent::Stuck, Some(&reason), now);
        }
    }

    fn task_event(
        &mut self,
        event: TaskEvent,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), OperationError> {
        let from = self.task.state;
        let (to, effects) =
            task_state::apply(from, event).map_err(|_| OperationError::TaskFinished(from))?;
        self.task.state = to;
        self.task.finished_at = if to.is_terminal() { Some(now) } else { None };
        self.plan.task_changed = true;
        self.record_task(Some(from), to, reason, now);
        for effect in effects {
            match effect {
                TaskEffect::Finalize => {}
                TaskEffect::CancelSteps => {
                    for i in 0..self.steps.len() {
                        if !self.steps[i].state.is_terminal() {
                            self.steps[i].finished_at = Some(now);
                            self.step_event(i, StepEvent::Cancel, reason, now);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn record_task(
        &mut self,
        from: Option<TaskState>,
        to: TaskState,
        reason: Option<&str>,
        now: Timestamp,
    ) {
        self.plan.transitions.push(NewTransition {
            task_id: self.task.id,
            step_id: None,
            from_state: from.map(TaskState::as_str),
            to_state: to.as_str(),
            attempt: None,
            worker_id: None,
            reason: reason.map(str::to_owned),
            at: now,
        });
    }
}

fn holds(step: &StepRow, lease: &Lease) -> bool {
    step.attempt == lease.attempt && step.lease_token == Some(lease.token)
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

//! Operations of the lease holder (and of the queue that hands out leases):
//! claim, heartbeat, complete, release, fail. Each checks the presented lease
//! against the step first and changes nothing when it is stale.

use std::time::Duration;

use uuid::Uuid;

use super::{ClaimOutcome, HeartbeatOutcome, LeaseError, Recorded, TaskRun, delta, holds};
use crate::records::{Lease, StepError, Timestamp};
use crate::step_state::{StepEvent, StepState};

impl TaskRun<'_> {
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
                            error_type: super::LEASE_EXPIRED.into(),
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
        ClaimOutcome::Claimed(self.lease_to(index, visible_at, token, worker_id, now))
    }

    /// Leases a step that this run has just released (it is waiting for its
    /// first message) to `worker_id` until `visible_at`: the step skips the
    /// queue, and its message is sent hidden until the lease expires.
    /// Returns `None` for a step that is not freshly released.
    pub fn claim_released(
        &mut self,
        index: usize,
        visible_at: Timestamp,
        token: Uuid,
        worker_id: &str,
        now: Timestamp,
    ) -> Option<Lease> {
        let position = self.plan.enqueue.iter().position(|&i| i == index)?;
        if self.steps[index].state != StepState::Ready || self.task.state.is_terminal() {
            return None;
        }
        self.plan.enqueue.remove(position);
        self.plan.enqueue_leased.push((index, visible_at));
        Some(self.lease_to(index, visible_at, token, worker_id, now))
    }

    /// Moves a ready step to running under a new lease.
    fn lease_to(
        &mut self,
        index: usize,
        visible_at: Timestamp,
        token: Uuid,
        worker_id: &str,
        now: Timestamp,
    ) -> Lease {
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
        lease
    }

    /// Extends the lease of a running step to `now + lease_for`.
    pub fn heartbeat(
        &mut self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<HeartbeatOutcome, LeaseError> {
        let index = self.held_step(lease)?;
        let step = &self.steps[index];
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
        // An earlier attempt's error no longer describes the step; the
        // history keeps it.
        self.plan.errors.push((index, None));
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

    /// The step `lease` names, if the lease's attempt and token are the
    /// step's (whatever its state).
    fn held_step(&self, lease: &Lease) -> Result<usize, LeaseError> {
        let index = self
            .step_index(lease.step_id)
            .ok_or(LeaseError::LeaseMismatch)?;
        if holds(&self.steps[index], lease) {
            Ok(index)
        } else {
            Err(LeaseError::LeaseMismatch)
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
        let index = self.held_step(lease)?;
        let step = &self.steps[index];
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
}

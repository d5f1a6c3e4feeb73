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
        if self.steps[index].msg_id != Some(msg_id) || self.task.state.is_terminal() {
            self.plan.delete_messages.push(msg_id);
            return ClaimOutcome::Dropped;
        }
        if self.exceed_deadline(now) {
            // The deadline cancelled the step and deleted its message.
            return ClaimOutcome::Dropped;
        }
        let step = &self.steps[index];
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
                    if !self.lapse(index, now) {
                        return ClaimOutcome::Dropped;
                    }
                }
            },
            _ => {
                self.plan.delete_messages.push(msg_id);
                return ClaimOutcome::Dropped;
            }
        }
        let until = self.lease_cap(index, visible_at, now);
        if until < visible_at {
            // The queue itself ends the attempt at its timeout.
            self.plan.set_visibility.push((msg_id, until));
        }
        ClaimOutcome::Claimed(self.lease_to(index, until, token, worker_id, now))
    }

    /// The lease of a running step ran out: the attempt is lost (as
    /// `timeout` when it also ran past its timeout, else `lease_expired`)
    /// and the step is ready again at once if attempts are left (its
    /// message is already visible), else failed. Returns whether it will
    /// run again.
    fn lapse(&mut self, index: usize, now: Timestamp) -> bool {
        let step = &self.steps[index];
        let retry = self.policy(index).has_attempts_left(step.attempt);
        // Leases are capped at the timeout: a lease that ran out there is
        // the timeout, whether or not its worker still heartbeats.
        let (error, reason) = if self.timed_out(index, now) {
            (self.timeout_error(index), "timeout")
        } else {
            let error = StepError {
                error_type: super::LEASE_EXPIRED.into(),
                message: format!(
                    "attempt {} lost its worker: no result or heartbeat before the lease expired",
                    step.attempt
                ),
                details: serde_json::Value::Null,
                retryable: true,
            };
            (error, "lease expired")
        };
        self.plan.errors.push((index, Some(error)));
        if !retry {
            // Failed for good, like any final failure: finished now, no lease.
            let step = &mut self.steps[index];
            step.finished_at = Some(now);
            step.lease_expires_at = None;
        }
        self.step_event(index, StepEvent::LeaseExpired { retry }, Some(reason), now);
        retry
    }

    /// The sweep's view of a running step whose lease ran out: past its
    /// timeout it is failed as `timeout` (retried after its backoff, per
    /// its policy); otherwise its worker is gone and it is handled as a
    /// claim would handle it. Returns what it did, if anything: a step
    /// that is not running, or whose lease is still valid, is left alone.
    pub fn expire_lease(&mut self, index: usize, now: Timestamp) -> Option<&'static str> {
        let step = &self.steps[index];
        if step.state != StepState::Running
            || self.task.state.is_terminal()
            || step.lease_expires_at.is_some_and(|e| e > now)
        {
            return None;
        }
        if self.time_out(index, now) {
            return Some(super::TIMEOUT);
        }
        self.lapse(index, now);
        Some(super::LEASE_EXPIRED)
    }

    /// The end of a lease asked to run until `until` for an attempt that
    /// starts at `now`: never past the step's timeout.
    fn lease_cap(&self, index: usize, until: Timestamp, now: Timestamp) -> Timestamp {
        until.min(now + delta(self.def(index).timeout.as_duration()))
    }

    /// Whether the step's current (or last) attempt has run past its
    /// timeout by `now`.
    pub fn timed_out(&self, index: usize, now: Timestamp) -> bool {
        let timeout = self.def(index).timeout.as_duration();
        self.steps[index]
            .started_at
            .is_some_and(|s| s + delta(timeout) <= now)
    }

    fn timeout_error(&self, index: usize) -> StepError {
        StepError {
            error_type: super::TIMEOUT.into(),
            message: format!(
                "attempt {} ran longer than the step's timeout of {}",
                self.steps[index].attempt,
                self.def(index).timeout
            ),
            details: serde_json::Value::Null,
            retryable: true,
        }
    }

    /// Fails a running step whose attempt ran past its timeout as
    /// `timeout` (retried per its policy, after its backoff). Returns
    /// whether it did; any other step is left alone, so repeating is safe.
    pub fn time_out(&mut self, index: usize, now: Timestamp) -> bool {
        if self.steps[index].state != StepState::Running
            || self.task.state.is_terminal()
            || !self.timed_out(index, now)
        {
            return false;
        }
        let error = self.timeout_error(index);
        self.fail_running(index, error, now);
        true
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
        let until = self.lease_cap(index, visible_at, now);
        self.plan.enqueue.remove(position);
        self.plan.enqueue_leased.push((index, until));
        Some(self.lease_to(index, until, token, worker_id, now))
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

    /// Extends the lease of a running step to `now + lease_for`, never past
    /// the attempt's timeout. An attempt past its timeout is failed as
    /// `timeout`; a task past its deadline fails, and the holder is told to
    /// stop as for a cancellation.
    pub fn heartbeat(
        &mut self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<HeartbeatOutcome, LeaseError> {
        let index = self.held_step(lease)?;
        if self.exceed_deadline(now) {
            return Ok(HeartbeatOutcome::Cancelled);
        }
        let step = &self.steps[index];
        match step.state {
            StepState::Cancelled => return Ok(HeartbeatOutcome::Cancelled),
            StepState::Running => {}
            // The sweep (or a claim) already failed this attempt as
            // `timeout`: the holder learns it now.
            StepState::Retrying | StepState::Failed | StepState::Ready
                if self.timed_out(index, now) =>
            {
                return Ok(HeartbeatOutcome::TimedOut);
            }
            _ => return Err(LeaseError::StepNotRunning),
        }
        if self.time_out(index, now) {
            return Ok(HeartbeatOutcome::TimedOut);
        }
        let step = &self.steps[index];
        if step.lease_expires_at.is_none_or(|e| e <= now) {
            return Err(LeaseError::LeaseExpired);
        }
        let wanted = now + delta(lease_for);
        let expiry = match step.started_at {
            Some(started) => self.lease_cap(index, wanted, started),
            None => wanted,
        };
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
        if self.def(index).decision {
            match self.decision_branches(index, &result) {
                Ok(branches) => self.steps[index].branches = Some(branches),
                Err(message) => {
                    // Deterministic: running the handler again would choose
                    // the same, so the step fails for good.
                    let error = StepError {
                        error_type: super::INVALID_DECISION.into(),
                        message,
                        details: serde_json::json!({ "result": result }),
                        retryable: false,
                    };
                    self.fail_running(index, error, now);
                    return Ok(Recorded::Applied);
                }
            }
        }
        if let Err(error) = self.check_fan_out_source(index, &result) {
            self.fail_running(index, error, now);
            return Ok(Recorded::Applied);
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
        let def = self.def(index);
        let step = &mut self.steps[index];
        step.lease_expires_at = None;
        if retry {
            let delay = def.retry.delay_after(step.attempt, step.id);
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
            // A result after the timeout is refused even before the sweep
            // (or a claim) has failed the attempt.
            StepState::Running | StepState::Retrying | StepState::Failed | StepState::Ready
                if self.timed_out(index, now) =>
            {
                return Err(LeaseError::StepTimedOut);
            }
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

//! Repairs of a step's queue message that the stuck-work sweep makes when
//! the message and the step disagree (a message deleted by hand, a
//! visibility that outlasts the lease). They change no state and count no
//! attempt: they only give the step back the message it should have.

use std::time::Duration;

use super::{TaskRun, delta};
use crate::records::Timestamp;
use crate::step_state::StepState;

/// A message may stay hidden this much past its lease's expiry before the
/// two are said to disagree (queue visibility is set in whole seconds).
pub const VISIBILITY_SLACK: Duration = Duration::from_secs(1);

impl TaskRun<'_> {
    /// The step is in flight but its queue message is gone: sends a new one,
    /// visible now for a ready step, when the backoff ends for a retrying
    /// one, when the lease expires for a running one. Returns whether it
    /// did (a step not in flight, or of a finished task, needs none).
    pub fn resend_message(&mut self, index: usize) -> bool {
        if self.task.state.is_terminal() {
            return false;
        }
        let step = &self.steps[index];
        match (step.state, step.retry_at, step.lease_expires_at) {
            (StepState::Ready, ..) => self.plan.enqueue.push(index),
            (StepState::Retrying, Some(at), _) | (StepState::Running, _, Some(at)) => {
                self.plan.enqueue_leased.push((index, at))
            }
            _ => return false,
        }
        self.steps[index].msg_id = None;
        self.plan.dirty_steps.insert(index);
        true
    }

    /// A running step's message is hidden until `visible_at`, past its
    /// lease: the step would be delivered late if its worker is gone. Moves
    /// the message's visibility to the lease's expiry; returns whether it
    /// did.
    pub fn align_visibility(&mut self, index: usize, visible_at: Timestamp) -> bool {
        let step = &self.steps[index];
        match (step.state, step.msg_id, step.lease_expires_at) {
            (StepState::Running, Some(msg_id), Some(expiry))
                if visible_at > expiry + delta(VISIBILITY_SLACK) =>
            {
                self.plan.set_visibility.push((msg_id, expiry));
                true
            }
            _ => false,
        }
    }
}

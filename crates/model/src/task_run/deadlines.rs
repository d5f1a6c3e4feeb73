//! A task's deadline: past it, a task that has not finished fails with
//! `deadline_exceeded` and every step not finished is cancelled (their
//! holders learn it at their next heartbeat, as for a cancellation).

use super::{DEADLINE_EXCEEDED, TaskRun};
use crate::records::Timestamp;
use crate::task_state::{TaskEvent, TaskState};

impl TaskRun<'_> {
    /// Whether the task is running past its deadline at `now`.
    pub fn past_deadline(&self, now: Timestamp) -> bool {
        self.task.state == TaskState::Running && self.task.deadline_at.is_some_and(|d| d <= now)
    }

    /// Fails the task with `deadline_exceeded` when it runs past its
    /// deadline. Returns whether it did; a task within its deadline, or
    /// already finished, is left alone, so repeating is safe.
    pub fn exceed_deadline(&mut self, now: Timestamp) -> bool {
        if !self.past_deadline(now) {
            return false;
        }
        let reason = format!(
            "{DEADLINE_EXCEEDED}: the task did not finish by its deadline {}",
            self.task
                .deadline_at
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        );
        self.task_event(TaskEvent::DeadlineExceeded, Some(&reason), now)
            .is_ok()
    }
}

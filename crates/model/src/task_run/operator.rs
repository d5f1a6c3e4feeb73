//! Operations an operator asks for: cancel a task, retry or resolve a step.

use super::{OperationError, TaskRun};
use crate::records::Timestamp;
use crate::step_state::{StepEvent, StepState};
use crate::task_state::{TaskEvent, TaskState};

impl TaskRun<'_> {
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
        // A resolved decision runs the branches its result names, or every
        // branch when it is given no result.
        if self.def(index).decision {
            self.steps[index].branches = match &result {
                Some(result) => Some(
                    self.decision_branches(index, result)
                        .map_err(OperationError::InvalidResult)?,
                ),
                None => None,
            };
        }
        if let Some(result) = &result {
            self.check_fan_out_source(index, result)
                .map_err(|e| OperationError::InvalidResult(e.message))?;
        }
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
                step: self.name(index),
                state,
                action,
                needs,
            })
        }
    }
}

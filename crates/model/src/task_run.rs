//! [`TaskRun`]: one task's graph in memory, and every operation on it as pure
//! logic. A backend loads a task (locked) into a `TaskRun`, calls one
//! operation, then writes what the run recorded in its [`Plan`] in the same
//! transaction. Graph readiness, retry policy, lease fencing and finalization
//! all live here, so every backend behaves the same and none of it is SQL.
//!
//! A `TaskRun` must never perform I/O or read the clock: `now` is passed in
//! (backends use the database clock, the same one PGMQ uses for visibility).

use std::time::Duration;

use chrono::TimeDelta;
use uuid::Uuid;

use crate::records::{Lease, Timestamp};
use crate::step_state::{self, StepEffect, StepEvent, StepState};
use crate::task_state::{self, TaskEffect, TaskEvent, TaskState};
use crate::template::{StepDef, Template};

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
    /// For a finished decision step: the children it chose to run.
    pub branches: Option<Vec<String>>,
    /// For a fan-out step's own row, once its source completed: how many
    /// instances it got (0: it was skipped, as an empty fan-out).
    pub fan_out_count: Option<u32>,
    /// For a fan-out instance: which step it is an instance of.
    pub instance: Option<Instance>,
}

/// A fan-out instance's place: instance `number` of template step `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub of: usize,
    pub number: u32,
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
            branches: None,
            fan_out_count: None,
            instance: None,
        }
    }
}

/// The mutable part of a task row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: Uuid,
    pub state: TaskState,
    pub finished_at: Option<Timestamp>,
    /// When the task fails with `deadline_exceeded` unless it finished.
    pub deadline_at: Option<Timestamp>,
}

mod convergence;
mod deadlines;
mod fan_out;
mod leases;
mod operator;
mod outcomes;
pub mod repairs;

pub use convergence::INVALID_DECISION;
pub use fan_out::{DEFAULT_MAX_FAN_OUT, FAN_OUT_LIMIT_EXCEEDED, INVALID_FAN_OUT};
pub use outcomes::*;

/// `error_type` recorded on an attempt whose lease ran out.
pub const LEASE_EXPIRED: &str = "lease_expired";

/// `error_type` recorded on an attempt that ran past its step's timeout.
pub const TIMEOUT: &str = "timeout";

/// The reason recorded on a task (and its cancelled steps) whose deadline
/// passed before it finished.
pub const DEADLINE_EXCEEDED: &str = "deadline_exceeded";

/// One task's graph in memory plus the plan of what changed.
#[derive(Debug)]
pub struct TaskRun<'t> {
    pub template: &'t Template,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    pub task: TaskRow,
    /// In position order: `steps[i]` is `template.steps[i]` for each
    /// template step, followed by fan-out instances in creation order.
    pub steps: Vec<StepRow>,
    /// The server-wide cap on instances per fan-out step
    /// (`engine.max_fan_out_instances`).
    pub max_fan_out: u32,
    pub plan: Plan,
}

impl<'t> TaskRun<'t> {
    pub fn new(template: &'t Template, task: TaskRow, steps: Vec<StepRow>) -> Self {
        let defined = template.steps.len();
        assert!(steps.len() >= defined, "one row per template step");
        assert!(
            steps[..defined].iter().all(|s| s.instance.is_none())
                && steps[defined..].iter().all(|s| s.instance.is_some()),
            "template steps first, then fan-out instances"
        );
        let mut parents = template.parent_indices();
        let mut children = vec![Vec::new(); steps.len()];
        for (child, ps) in parents.iter().enumerate() {
            for &p in ps {
                children[p].push(child);
            }
        }
        // An instance is released when it is created; its fan-out step's row
        // waits for all of them.
        for (i, row) in steps.iter().enumerate().skip(defined) {
            parents.push(Vec::new());
            children[i].push(row.instance.expect("checked above").of);
        }
        Self {
            template,
            parents,
            children,
            task,
            steps,
            max_fan_out: DEFAULT_MAX_FAN_OUT,
            plan: Plan::default(),
        }
    }

    /// The template step row `index` runs (an instance runs its fan-out step).
    pub fn def(&self, index: usize) -> &'t StepDef {
        let template: &'t Template = self.template;
        match self.steps[index].instance {
            Some(instance) => &template.steps[instance.of],
            None => &template.steps[index],
        }
    }

    /// The step's name: its template name, `name[3]` for an instance.
    pub fn name(&self, index: usize) -> String {
        match self.steps[index].instance {
            Some(instance) => format!("{}[{}]", self.def(index).name, instance.number),
            None => self.def(index).name.clone(),
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
            deadline_at: None,
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
    fn policy(&self, index: usize) -> &crate::template::RetryPolicy {
        &self.def(index).retry
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
                        self.settle(child, now);
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
        if self.steps.iter().all(|s| s.state.is_done()) {
            let _ = self.task_event(TaskEvent::AllDone, None, now);
        } else if !self.steps.iter().any(|s| s.state.is_in_flight()) {
            let failed: Vec<String> = (0..self.steps.len())
                .filter(|&i| self.steps[i].state == StepState::Failed)
                .map(|i| self.name(i))
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

//! [`Harness`]: drives a [`TaskRun`] the way a backend does. Every operation
//! loads a fresh `TaskRun` from the stored rows, runs, then "writes" the plan:
//! rows are replaced, queue messages are sent, hidden and deleted in a small
//! queue model, and sent messages get their `msg_id`.
//!
//! After every operation the harness checks the invariants a backend relies
//! on: the plan names every row that changed, each in-flight step has exactly
//! one live message whose visibility matches its lease or backoff, finished
//! rows carry `finished_at`, and the task's state agrees with its steps'.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use tasker_model::task_run::{StepRow, TaskRow};
use tasker_model::template::Convergence;
use tasker_model::{
    ClaimOutcome, HeartbeatOutcome, Lease, LeaseError, OperationError, Plan, Recorded, StepError,
    StepState, TaskRun, TaskState, Template, Timestamp,
};
use uuid::Uuid;

/// How long a claim hides its message, i.e. the lease length.
pub const LEASE_SECS: i64 = 30;
pub const WORKER: &str = "worker-1";

/// The moment every test starts at.
pub fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// `t0` plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    t0() + TimeDelta::seconds(secs)
}

/// `t0` plus `millis` milliseconds.
pub fn at_ms(millis: i64) -> Timestamp {
    t0() + TimeDelta::milliseconds(millis)
}

pub fn retryable(message: &str) -> StepError {
    StepError {
        error_type: "handler_error".into(),
        message: message.into(),
        details: serde_json::Value::Null,
        retryable: true,
    }
}

pub fn fatal(message: &str) -> StepError {
    StepError {
        retryable: false,
        ..retryable(message)
    }
}

/// A queue message as PGMQ holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Message {
    pub step: usize,
    pub visible_at: Timestamp,
}

#[derive(Debug)]
pub struct Harness {
    pub template: Template,
    pub task: TaskRow,
    pub steps: Vec<StepRow>,
    pub queue: BTreeMap<i64, Message>,
    /// The server's cap on fan-out instances the runs are given.
    pub max_fan_out: u32,
    next_msg_id: i64,
    next_token: u128,
}

impl Harness {
    /// Creates a task from a YAML template at `t0`; returns the creation plan.
    pub fn create(yaml: &str) -> (Self, Plan) {
        let template = Template::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
        let task_id = Uuid::from_u128(0x7a5c);
        let step_ids: Vec<Uuid> = (0..template.steps.len())
            .map(|i| Uuid::from_u128(0x5000 + i as u128))
            .collect();
        let run = TaskRun::create(&template, task_id, &step_ids, t0());
        let (task, steps, plan) = (run.task.clone(), run.steps.clone(), run.plan.clone());
        let mut harness = Self {
            template,
            task,
            steps,
            queue: BTreeMap::new(),
            max_fan_out: tasker_model::task_run::DEFAULT_MAX_FAN_OUT,
            next_msg_id: 100,
            next_token: 1,
        };
        harness.write(&plan, t0());
        harness.check_invariants();
        (harness, plan)
    }

    /// Loads a fresh `TaskRun`, runs `op`, writes its plan and checks invariants.
    pub fn run<R>(&mut self, now: Timestamp, op: impl FnOnce(&mut TaskRun<'_>) -> R) -> (R, Plan) {
        let mut run = TaskRun::new(&self.template, self.task.clone(), self.steps.clone());
        run.max_fan_out = self.max_fan_out;
        let out = op(&mut run);
        let (task, steps, plan) = (run.task, run.steps, run.plan);
        for i in self.steps.len()..steps.len() {
            assert!(
                plan.new_steps.iter().any(|n| n.index == i) && plan.dirty_steps.contains(&i),
                "row {i} was added but the plan does not create it"
            );
        }
        for (i, (old, new)) in self.steps.iter().zip(&steps).enumerate() {
            if old != new {
                assert!(
                    plan.dirty_steps.contains(&i),
                    "step {i} changed but the plan does not say so:\n{old:?}\n{new:?}"
                );
            }
        }
        if task != self.task {
            assert!(
                plan.task_changed,
                "task row changed but task_changed is false"
            );
        }
        self.task = task;
        self.steps = steps;
        self.write(&plan, now);
        self.check_invariants();
        (out, plan)
    }

    /// Runs `op`; when `refused` judges its outcome a refusal (or a harmless
    /// duplicate), asserts that nothing was planned or changed.
    pub fn run_checked<R: std::fmt::Debug>(
        &mut self,
        now: Timestamp,
        op: impl FnOnce(&mut TaskRun<'_>) -> R,
        refused: impl FnOnce(&R) -> bool,
    ) -> (R, Plan) {
        let before = (self.task.clone(), self.steps.clone(), self.queue.clone());
        let (out, plan) = self.run(now, op);
        if refused(&out) {
            assert!(plan.is_empty(), "{out:?} must not plan anything: {plan:?}");
            assert_eq!(
                before,
                (self.task.clone(), self.steps.clone(), self.queue.clone()),
                "{out:?} must not change anything"
            );
        }
        (out, plan)
    }

    /// What a backend does with a plan once the transaction commits.
    fn write(&mut self, plan: &Plan, now: Timestamp) {
        for msg_id in &plan.delete_messages {
            self.queue.remove(msg_id);
        }
        for (msg_id, visible_at) in &plan.set_visibility {
            let message = self
                .queue
                .get_mut(msg_id)
                .unwrap_or_else(|| panic!("set_visibility on deleted message {msg_id}"));
            message.visible_at = *visible_at;
        }
        for &step in &plan.enqueue {
            let msg_id = self.next_msg_id;
            self.next_msg_id += 1;
            self.queue.insert(
                msg_id,
                Message {
                    step,
                    visible_at: now,
                },
            );
            self.steps[step].msg_id = Some(msg_id);
        }
    }

    /// The row of step `name`, or of instance `name[3]`.
    pub fn idx(&self, name: &str) -> usize {
        if let Some((base, number)) = name.strip_suffix(']').and_then(|n| n.split_once('[')) {
            let of = self.template.step_index(base);
            let number: u32 = number.parse().expect("instance number");
            return self
                .steps
                .iter()
                .position(|s| {
                    s.instance
                        .is_some_and(|inst| Some(inst.of) == of && inst.number == number)
                })
                .unwrap_or_else(|| panic!("no instance {name}"));
        }
        self.template
            .step_index(name)
            .unwrap_or_else(|| panic!("no step {name}"))
    }

    pub fn step(&self, name: &str) -> &StepRow {
        &self.steps[self.idx(name)]
    }

    pub fn state(&self, name: &str) -> StepState {
        self.step(name).state
    }

    /// The step's live message id.
    pub fn msg(&self, name: &str) -> i64 {
        self.step(name)
            .msg_id
            .unwrap_or_else(|| panic!("step {name} has no message"))
    }

    pub fn visible_at(&self, name: &str) -> Timestamp {
        self.queue[&self.msg(name)].visible_at
    }

    pub fn next_token(&mut self) -> Uuid {
        self.next_token += 1;
        Uuid::from_u128(0xA000_0000 + self.next_token)
    }

    /// Reads message `msg_id` at `now` (hiding it for a lease) and claims.
    /// Does not require the message to be visible, so tests can act out
    /// races between a read and a heartbeat.
    pub fn deliver(&mut self, name: &str, msg_id: i64, now: Timestamp) -> (ClaimOutcome, Plan) {
        let index = self.idx(name);
        let visible_at = now + TimeDelta::seconds(LEASE_SECS);
        if let Some(message) = self.queue.get_mut(&msg_id) {
            message.visible_at = visible_at;
        }
        let token = self.next_token();
        self.run(now, |run| {
            run.claim(index, msg_id, visible_at, token, WORKER, now)
        })
    }

    /// Reads the step's message, which must be visible, and claims it.
    pub fn try_claim(&mut self, name: &str, now: Timestamp) -> (ClaimOutcome, Plan) {
        let msg_id = self.msg(name);
        assert!(
            self.queue[&msg_id].visible_at <= now,
            "message of {name} is hidden until {}",
            self.queue[&msg_id].visible_at
        );
        self.deliver(name, msg_id, now)
    }

    /// Claims a step that must be claimable; returns the new lease.
    pub fn claim(&mut self, name: &str, now: Timestamp) -> Lease {
        match self.try_claim(name, now).0 {
            ClaimOutcome::Claimed(lease) => lease,
            other => panic!("claim of {name}: {other:?}"),
        }
    }

    pub fn complete(
        &mut self,
        lease: &Lease,
        now: Timestamp,
    ) -> (Result<Recorded, LeaseError>, Plan) {
        let result = serde_json::json!({ "attempt": lease.attempt });
        self.complete_with(lease, result, now)
    }

    pub fn complete_with(
        &mut self,
        lease: &Lease,
        result: serde_json::Value,
        now: Timestamp,
    ) -> (Result<Recorded, LeaseError>, Plan) {
        self.run_checked(
            now,
            |run| run.complete(lease, result, now),
            |out| !matches!(out, Ok(Recorded::Applied)),
        )
    }

    pub fn fail(
        &mut self,
        lease: &Lease,
        error: StepError,
        now: Timestamp,
    ) -> (Result<Recorded, LeaseError>, Plan) {
        self.run_checked(
            now,
            |run| run.fail(lease, error, now),
            |out| !matches!(out, Ok(Recorded::Applied)),
        )
    }

    /// Heartbeats for another `LEASE_SECS`.
    pub fn heartbeat(
        &mut self,
        lease: &Lease,
        now: Timestamp,
    ) -> (Result<HeartbeatOutcome, LeaseError>, Plan) {
        let lease_for = std::time::Duration::from_secs(LEASE_SECS as u64);
        self.run_checked(
            now,
            |run| run.heartbeat(lease, lease_for, now),
            |out| matches!(out, Err(_) | Ok(HeartbeatOutcome::Cancelled)),
        )
    }

    /// An operator's command (cancel, retry, resolve); a refusal changes nothing.
    pub fn operate(
        &mut self,
        now: Timestamp,
        op: impl FnOnce(&mut TaskRun<'_>) -> Result<(), OperationError>,
    ) -> (Result<(), OperationError>, Plan) {
        self.run_checked(now, op, Result::is_err)
    }

    fn check_invariants(&self) {
        let parents = self.template.parent_indices();
        for (i, step) in self.steps.iter().enumerate() {
            let def = &self.template.steps[step.instance.map_or(i, |inst| inst.of)];
            let name = &match step.instance {
                Some(inst) => format!("{}[{}]", def.name, inst.number),
                None => def.name.clone(),
            };
            let no_parents = Vec::new();
            let parents_i = parents.get(i).unwrap_or(&no_parents);
            let messages: Vec<(&i64, &Message)> =
                self.queue.iter().filter(|(_, m)| m.step == i).collect();
            if step.state.is_in_flight() {
                let msg_id = step
                    .msg_id
                    .unwrap_or_else(|| panic!("{name} is {} without a message", step.state));
                assert_eq!(
                    messages.len(),
                    1,
                    "{name}: one live message, got {messages:?}"
                );
                assert_eq!(*messages[0].0, msg_id, "{name}: msg_id is the live message");
            } else {
                assert!(
                    messages.is_empty(),
                    "{name} is {} but has messages {messages:?}",
                    step.state
                );
            }
            let visible_at = step
                .msg_id
                .and_then(|m| self.queue.get(&m))
                .map(|m| m.visible_at);
            match step.state {
                StepState::Running => {
                    assert!(
                        step.lease_token.is_some() && step.worker_id.is_some(),
                        "{name}"
                    );
                    assert!(
                        (1..=def.retry.max_attempts).contains(&step.attempt),
                        "{name}"
                    );
                    assert_eq!(
                        visible_at, step.lease_expires_at,
                        "{name}: hidden for its lease"
                    );
                }
                StepState::Retrying => {
                    assert!(step.retry_at.is_some(), "{name}: retrying without retry_at");
                    assert_eq!(visible_at, step.retry_at, "{name}: hidden until retry_at");
                    assert!(step.attempt < def.retry.max_attempts, "{name}");
                }
                _ => {}
            }
            assert_eq!(
                step.finished_at.is_some(),
                step.state.is_terminal(),
                "{name} is {} with finished_at {:?}",
                step.state,
                step.finished_at
            );
            if step.state.is_in_flight() || step.state == StepState::Complete {
                // An empty fan-out is skipped but lets what follows it run.
                let ran = |p: &usize| {
                    let parent = &self.steps[*p];
                    parent.state.satisfies_dependents()
                        || (parent.state == StepState::Skipped && parent.fan_out_count == Some(0))
                };
                let done = |p: &usize| self.steps[*p].state.is_done();
                let held = match def.convergence {
                    Convergence::All => parents_i.iter().all(ran),
                    Convergence::AllDone => parents_i.iter().all(done),
                    Convergence::Any => parents_i.iter().any(ran),
                };
                assert!(
                    held,
                    "{name} is {} before its parents allow it ({:?})",
                    step.state, def.convergence
                );
            }
            if step.state == StepState::Skipped {
                assert!(step.attempt == 0, "{name} was skipped after running");
            }
        }
        let task = &self.task;
        assert_eq!(
            task.finished_at.is_some(),
            task.state.is_terminal(),
            "{task:?}"
        );
        let in_flight = self.steps.iter().any(|s| s.state.is_in_flight());
        match task.state {
            TaskState::Running => {
                assert!(in_flight, "a running task with nothing in flight is stuck")
            }
            TaskState::Complete => {
                assert!(self.steps.iter().all(|s| s.state.is_done()))
            }
            TaskState::Failed => {
                assert!(!in_flight);
                assert!(self.steps.iter().any(|s| s.state == StepState::Failed));
            }
            TaskState::Cancelled => assert!(self.steps.iter().all(|s| s.state.is_terminal())),
        }
    }
}

/// `(from, to)` of the task's own transitions in `plan`.
pub fn task_transitions(plan: &Plan) -> Vec<(Option<&'static str>, &'static str)> {
    plan.transitions
        .iter()
        .filter(|t| t.step_id.is_none())
        .map(|t| (t.from_state, t.to_state))
        .collect()
}

/// `(from, to)` of one step's transitions in `plan`.
pub fn step_transitions(h: &Harness, name: &str, plan: &Plan) -> Vec<(&'static str, &'static str)> {
    let id = h.step(name).id;
    plan.transitions
        .iter()
        .filter(|t| t.step_id == Some(id))
        .map(|t| (t.from_state.unwrap_or("-"), t.to_state))
        .collect()
}

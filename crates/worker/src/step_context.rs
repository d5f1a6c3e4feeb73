//! What a handler gets for one attempt of a step: the claimed step as the
//! server sent it, and the attempt's cancellation signal.

use serde_json::{Map, Value};
use tasker_client::ClaimedStep;
use uuid::Uuid;

use crate::cancellation::Cancellation;

#[derive(Debug, Clone)]
pub struct StepContext {
    claimed: ClaimedStep,
    cancellation: Cancellation,
}

impl StepContext {
    /// Public so that handlers can be unit-tested with a hand-made step.
    pub fn new(claimed: ClaimedStep, cancellation: Cancellation) -> Self {
        Self {
            claimed,
            cancellation,
        }
    }

    pub fn task_id(&self) -> Uuid {
        self.claimed.task_id
    }

    pub fn step_id(&self) -> Uuid {
        self.claimed.lease.step_id
    }

    /// The step's name in its template (`fetch_a`).
    pub fn step_name(&self) -> &str {
        &self.claimed.step_name
    }

    /// The handler name the step asked for (`examples.mixed_dag.fetch`).
    pub fn handler(&self) -> &str {
        &self.claimed.handler
    }

    pub fn namespace(&self) -> &str {
        &self.claimed.namespace
    }

    pub fn template_name(&self) -> &str {
        &self.claimed.template_name
    }

    pub fn template_version(&self) -> &str {
        &self.claimed.template_version
    }

    /// The step's `config` from the template (`null` when it has none).
    pub fn config(&self) -> &Value {
        &self.claimed.config
    }

    /// The task's context, as given when the task was created.
    pub fn context(&self) -> &Value {
        &self.claimed.context
    }

    /// Results of the step's parents, by step name.
    pub fn parent_results(&self) -> &Map<String, Value> {
        &self.claimed.parent_results
    }

    /// One parent's result.
    pub fn parent(&self, step_name: &str) -> Option<&Value> {
        self.claimed.parent_results.get(step_name)
    }

    /// This attempt's number, starting at 1.
    /// For an instance of a fan-out step: its number and its item(s).
    pub fn fan_out(&self) -> Option<&tasker_client::FanOutItems> {
        self.claimed.fan_out.as_ref()
    }

    pub fn attempt(&self) -> u32 {
        self.claimed.lease.attempt
    }

    pub fn max_attempts(&self) -> u32 {
        self.claimed.max_attempts
    }

    /// Whether a retryable failure of this attempt would still fail the step.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt() >= self.max_attempts()
    }

    /// How long this attempt may run (`0`: no limit).
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.claimed.timeout_ms)
    }

    /// Fires when the task is cancelled, the step times out, the lease is
    /// lost or the worker's shutdown grace runs out; the handler's future is
    /// dropped right after.
    pub fn cancellation(&self) -> &Cancellation {
        &self.cancellation
    }

    /// The step as the server sent it.
    pub fn claimed(&self) -> &ClaimedStep {
        &self.claimed
    }
}

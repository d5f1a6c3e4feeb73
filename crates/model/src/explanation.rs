//! "Why is it waiting?": turns what the store knows of a task (its steps,
//! their queue messages, the live workers) into, per unfinished step, the
//! reasons it has not finished. Pure: the facts are loaded elsewhere and the
//! time is passed in, so every reason is unit-tested here. It must never
//! guess: a reason names only what the facts show.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::{Step, StepError, Task, Timestamp};
use crate::step_state::StepState;
use crate::task_state::TaskState;

/// The queue message of an in-flight step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFacts {
    /// When the message was first sent.
    pub enqueued_at: Timestamp,
    /// Until when nobody can read it (a lease, a retry backoff).
    pub visible_at: Timestamp,
}

/// A worker heard from within the liveness window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveWorker {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    /// Empty: it runs any handler of its namespaces.
    pub handlers: Vec<String>,
    pub node_id: Option<String>,
}

/// One step and what the store knows around it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFacts {
    pub step: Step,
    /// Its queue message, while it is `ready`, `running` or `retrying`.
    pub message: Option<MessageFacts>,
    /// The node that last heard from the worker holding its lease.
    pub holder_node: Option<String>,
}

/// Everything [`explain`] needs, read at one moment (`now`, the database's
/// clock, which rules leases and visibility).
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainFacts {
    pub task: Task,
    pub steps: Vec<StepFacts>,
    pub workers: Vec<LiveWorker>,
    pub now: Timestamp,
}

/// A step named with its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepRef {
    pub name: String,
    pub state: StepState,
}

/// One reason a step has not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    /// Its parents (listed with their states) are not complete or resolved yet.
    ParentsNotDone { parents: Vec<StepRef> },
    /// A step it depends on, directly or not, failed or was cancelled: it
    /// cannot run until that step is retried or resolved.
    BlockedByParent { blocking: Vec<StepRef> },
    /// Ready, its message waits in the namespace queue.
    Queued {
        #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
        since: Timestamp,
        /// When its message can be read; later than now while it is hidden.
        #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
        visible_at: Timestamp,
    },
    /// No live worker subscribes to the task's namespace.
    NoWorkerServesNamespace { namespace: String },
    /// Live workers serve the namespace, but none runs the step's handler.
    NoWorkerRunsHandler {
        namespace: String,
        handler: String,
        /// The live workers of the namespace.
        workers: Vec<String>,
    },
    /// These live workers could take it.
    ServedBy { workers: Vec<String> },
    /// A worker holds its lease.
    Leased {
        worker_id: Option<String>,
        /// The node that last heard from that worker.
        node_id: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
        until: Timestamp,
        /// The lease ran out: the step is delivered again when a worker polls.
        expired: bool,
        /// The holder is heard from within the liveness window.
        worker_live: bool,
    },
    /// It failed an attempt and runs again at `at`.
    RetryScheduled {
        #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
        at: Timestamp,
        attempt: u32,
        max_attempts: u32,
    },
    /// It failed for good: only a manual retry or resolve moves it.
    Failed {
        attempt: u32,
        max_attempts: u32,
        error: Option<StepError>,
    },
    /// It was cancelled.
    Cancelled,
}

/// What one unfinished step waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepExplanation {
    pub step_id: Uuid,
    pub name: String,
    pub handler: String,
    pub state: StepState,
    /// Attempts started so far.
    pub attempt: u32,
    pub max_attempts: u32,
    pub reasons: Vec<WaitReason>,
}

/// Why a task has not finished, step by step (`GET /v1/tasks/{id}/explain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskExplanation {
    pub task_id: Uuid,
    pub namespace: String,
    pub state: TaskState,
    /// One line: "complete at …", or how many steps are unfinished.
    pub summary: String,
    /// Every step that is not done (complete, resolved or skipped), in
    /// template order.
    pub steps: Vec<StepExplanation>,
    /// When the facts were read (the database's clock).
    #[cfg_attr(feature = "openapi", schema(value_type = DateTime<Utc>))]
    pub at: Timestamp,
}

/// Explains every unfinished step of `facts.task`.
pub fn explain(facts: &ExplainFacts) -> TaskExplanation {
    let by_name: HashMap<&str, &Step> = facts
        .steps
        .iter()
        .map(|f| (f.step.name.as_str(), &f.step))
        .collect();
    let task = &facts.task;
    let steps: Vec<StepExplanation> = facts
        .steps
        .iter()
        .filter(|f| !f.step.state.is_done())
        .map(|f| StepExplanation {
            step_id: f.step.id,
            name: f.step.name.clone(),
            handler: f.step.handler.clone(),
            state: f.step.state,
            attempt: f.step.attempt,
            max_attempts: f.step.max_attempts,
            reasons: step_reasons(f, &by_name, facts),
        })
        .collect();
    let time = |at: Option<Timestamp>| at.map(|t| format!(" at {}", stamp(t))).unwrap_or_default();
    let summary = match task.state {
        TaskState::Complete => format!("complete{}", time(task.finished_at)),
        TaskState::Cancelled => format!("cancelled{}", time(task.finished_at)),
        TaskState::Failed => format!(
            "failed{}; {} of {} steps not finished; retry or resolve a failed step to reopen it",
            time(task.finished_at),
            steps.len(),
            facts.steps.len()
        ),
        TaskState::Running => format!(
            "running; {} of {} steps not finished",
            steps.len(),
            facts.steps.len()
        ),
    };
    TaskExplanation {
        task_id: task.id,
        namespace: task.namespace.clone(),
        state: task.state,
        summary,
        steps,
        at: facts.now,
    }
}

fn step_reasons(
    f: &StepFacts,
    by_name: &HashMap<&str, &Step>,
    facts: &ExplainFacts,
) -> Vec<WaitReason> {
    let step = &f.step;
    let mut reasons = Vec::new();
    match step.state {
        StepState::Pending => {
            let blocking = blocking_ancestors(step, by_name);
            if !blocking.is_empty() {
                reasons.push(WaitReason::BlockedByParent { blocking });
                // Nothing else matters until someone acts on the blocker.
                return reasons;
            }
            let parents: Vec<StepRef> = step
                .depends_on
                .iter()
                .filter_map(|name| by_name.get(name.as_str()))
                .filter(|p| !p.state.is_done())
                .map(|p| step_ref(p))
                .collect();
            if !parents.is_empty() {
                reasons.push(WaitReason::ParentsNotDone { parents });
            }
        }
        StepState::Ready => {
            if let Some(message) = f.message {
                reasons.push(WaitReason::Queued {
                    since: message.enqueued_at,
                    visible_at: message.visible_at,
                });
            }
        }
        StepState::Running => {
            let worker_live = step
                .worker_id
                .as_ref()
                .is_some_and(|id| facts.workers.iter().any(|w| &w.worker_id == id));
            if let Some(until) = step.lease_expires_at {
                reasons.push(WaitReason::Leased {
                    worker_id: step.worker_id.clone(),
                    node_id: f.holder_node.clone(),
                    until,
                    expired: until <= facts.now,
                    worker_live,
                });
            }
            if step.lease_expires_at.is_some_and(|until| until > facts.now) {
                return reasons;
            }
        }
        StepState::Retrying => {
            if let Some(at) = step.retry_at.or(f.message.map(|m| m.visible_at)) {
                reasons.push(WaitReason::RetryScheduled {
                    at,
                    attempt: step.attempt,
                    max_attempts: step.max_attempts,
                });
            }
        }
        StepState::Failed => {
            reasons.push(WaitReason::Failed {
                attempt: step.attempt,
                max_attempts: step.max_attempts,
                error: step.error.clone(),
            });
            return reasons;
        }
        StepState::Cancelled => {
            reasons.push(WaitReason::Cancelled);
            return reasons;
        }
        StepState::Complete | StepState::Resolved | StepState::Skipped => return reasons,
    }
    if facts.task.state == TaskState::Running {
        reasons.push(coverage(
            &facts.task.namespace,
            &step.handler,
            &facts.workers,
        ));
    }
    reasons
}

/// Whether any live worker would take a step of `handler` in `namespace`.
fn coverage(namespace: &str, handler: &str, workers: &[LiveWorker]) -> WaitReason {
    let in_namespace: Vec<&LiveWorker> = workers
        .iter()
        .filter(|w| w.namespaces.iter().any(|n| n == namespace))
        .collect();
    if in_namespace.is_empty() {
        return WaitReason::NoWorkerServesNamespace {
            namespace: namespace.to_owned(),
        };
    }
    let runs: Vec<String> = in_namespace
        .iter()
        .filter(|w| w.handlers.is_empty() || w.handlers.iter().any(|h| h == handler))
        .map(|w| w.worker_id.clone())
        .collect();
    if runs.is_empty() {
        return WaitReason::NoWorkerRunsHandler {
            namespace: namespace.to_owned(),
            handler: handler.to_owned(),
            workers: in_namespace.iter().map(|w| w.worker_id.clone()).collect(),
        };
    }
    WaitReason::ServedBy { workers: runs }
}

/// The failed or cancelled steps `step` depends on, directly or through
/// other steps, in name order.
fn blocking_ancestors(step: &Step, by_name: &HashMap<&str, &Step>) -> Vec<StepRef> {
    let mut seen = BTreeSet::new();
    let mut blocking = BTreeMap::new();
    let mut stack: Vec<&str> = step.depends_on.iter().map(String::as_str).collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(parent) = by_name.get(name) else {
            continue;
        };
        match parent.state {
            StepState::Failed | StepState::Cancelled => {
                blocking.insert(name, step_ref(parent));
            }
            state if state.is_done() => {}
            _ => stack.extend(parent.depends_on.iter().map(String::as_str)),
        }
    }
    blocking.into_values().collect()
}

fn step_ref(step: &Step) -> StepRef {
    StepRef {
        name: step.name.clone(),
        state: step.state,
    }
}

/// A time as the sentences show it: UTC to the second.
pub fn stamp(at: Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl WaitReason {
    /// The reason as one plain sentence (the CLI and the dashboard show it).
    pub fn sentence(&self) -> String {
        let names = |steps: &[StepRef]| {
            steps
                .iter()
                .map(|s| format!("{} ({})", s.name, s.state))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            WaitReason::ParentsNotDone { parents } => {
                format!("Waits for its parents to finish: {}.", names(parents))
            }
            WaitReason::BlockedByParent { blocking } => format!(
                "Blocked: {} must be retried or resolved before it can run.",
                names(blocking)
            ),
            WaitReason::Queued { since, visible_at } => {
                let mut text = format!("Ready and waiting in the queue since {}", stamp(*since));
                if visible_at > since {
                    text.push_str(&format!(
                        "; its message is visible from {}",
                        stamp(*visible_at)
                    ));
                }
                text.push('.');
                text
            }
            WaitReason::NoWorkerServesNamespace { namespace } => {
                format!("No live worker serves namespace \"{namespace}\": start a worker for it.")
            }
            WaitReason::NoWorkerRunsHandler {
                namespace,
                handler,
                workers,
            } => format!(
                "No live worker runs handler \"{handler}\": the workers of namespace \"{namespace}\" ({}) declare other handlers.",
                workers.join(", ")
            ),
            WaitReason::ServedBy { workers } => {
                format!("Live workers that can run it: {}.", workers.join(", "))
            }
            WaitReason::Leased {
                worker_id,
                node_id,
                until,
                expired,
                worker_live,
            } => {
                let who = worker_id.as_deref().unwrap_or("an unknown worker");
                let via = node_id
                    .as_ref()
                    .map(|n| format!(" (through node {n})"))
                    .unwrap_or_default();
                let live = if *worker_live {
                    ""
                } else {
                    "; that worker has not been heard from lately"
                };
                if *expired {
                    format!(
                        "Leased by worker {who}{via}, but the lease ran out at {}{live}: it is delivered again at the next poll.",
                        stamp(*until)
                    )
                } else {
                    format!(
                        "Running: worker {who}{via} holds its lease until {}{live}.",
                        stamp(*until)
                    )
                }
            }
            WaitReason::RetryScheduled {
                at,
                attempt,
                max_attempts,
            } => format!(
                "Attempt {attempt} of {max_attempts} failed; the next attempt runs at {}.",
                stamp(*at)
            ),
            WaitReason::Failed {
                attempt,
                max_attempts,
                error,
            } => {
                let why = error
                    .as_ref()
                    .map(|e| format!(": {}: {}", e.error_type, e.message))
                    .unwrap_or_default();
                format!(
                    "Failed after attempt {attempt} of {max_attempts}{why}. Retry or resolve it."
                )
            }
            WaitReason::Cancelled => "Cancelled.".to_owned(),
        }
    }
}

#[cfg(test)]
#[path = "explanation_tests.rs"]
mod tests;

//! What a transaction leaves for after its commit, derived from the plans it
//! wrote: observer events (task finalizations, attempts that ended, leases
//! that ran out) and the namespaces whose polls to wake. Pure: no I/O.
//! Claims report their queue wait where they happen (`claims`), since only
//! the claim knows since when a step was ready.

use std::time::Duration;

use tasker_model::task_run::{DEADLINE_EXCEEDED, LEASE_EXPIRED, TIMEOUT};
use tasker_model::{StepState, TaskRun, TaskState, Timestamp};

use crate::backend::{Pending, Written};
use crate::{AttemptOutcome, Event};

/// The events and wake-ups of `runs`' plans, read before they are written.
pub(crate) fn written_of(runs: &[Pending<'_, '_>]) -> Written {
    let mut written = Written::default();
    for pending in runs {
        let run = &*pending.run;
        written.events.extend(of(pending.namespace, run));
        let sent = run.plan.enqueue.len();
        // A retry's message becomes visible when its backoff ends; the claim
        // loops of its namespace sleep until then only if they hear of it.
        let retrying = run
            .plan
            .dirty_steps
            .iter()
            .any(|&i| run.steps[i].state == StepState::Retrying);
        if sent == 0 && !retrying {
            continue;
        }
        match written
            .ready
            .iter_mut()
            .find(|(n, _)| n == pending.namespace)
        {
            Some((_, count)) => *count += sent,
            None => written.ready.push((pending.namespace.to_owned(), sent)),
        }
    }
    written
}

/// The observer events of one run's plan.
pub(crate) fn of(namespace: &str, run: &TaskRun<'_>) -> Vec<Event> {
    let mut events = Vec::new();
    for t in &run.plan.transitions {
        let Some(step_id) = t.step_id else {
            if t.to_state == TaskState::Failed.as_str()
                && t.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(DEADLINE_EXCEEDED))
            {
                events.push(Event::DeadlineExceeded {
                    namespace: namespace.to_owned(),
                });
            }
            if let Ok(state) = t.to_state.parse::<TaskState>()
                && state.is_terminal()
            {
                events.push(Event::TaskFinished {
                    namespace: namespace.to_owned(),
                    template: run.template.name.clone(),
                    state,
                });
            }
            continue;
        };
        if t.from_state != Some(StepState::Running.as_str()) {
            continue;
        }
        let Some(index) = run.step_index(step_id) else {
            continue;
        };
        let lease_ran_out =
            run.plan.errors.iter().any(|(i, e)| {
                *i == index && e.as_ref().is_some_and(|e| e.error_type == LEASE_EXPIRED)
            });
        if lease_ran_out {
            events.push(Event::LeaseExpired {
                namespace: namespace.to_owned(),
            });
            continue;
        }
        let timed_out = run
            .plan
            .errors
            .iter()
            .any(|(i, e)| *i == index && e.as_ref().is_some_and(|e| e.error_type == TIMEOUT));
        if timed_out {
            events.push(Event::StepTimedOut {
                namespace: namespace.to_owned(),
            });
        }
        let outcome = match t.to_state.parse::<StepState>() {
            Ok(StepState::Complete) => AttemptOutcome::Completed,
            Ok(StepState::Retrying) => AttemptOutcome::Retrying,
            Ok(StepState::Failed) => AttemptOutcome::Failed,
            _ => continue,
        };
        events.push(Event::AttemptEnded {
            namespace: namespace.to_owned(),
            outcome,
            run_time: since(run.steps[index].started_at, t.at),
        });
    }
    events
}

/// `to - from`, zero when unknown or negative.
pub(crate) fn since(from: Option<Timestamp>, to: Timestamp) -> Duration {
    from.and_then(|f| (to - f).to_std().ok())
        .unwrap_or_default()
}

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

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};
    use tasker_model::{ClaimOutcome, Lease, StepError, Template};
    use uuid::Uuid;

    use super::*;

    /// `a` (retried up to 3 times) and `b` are roots, `c` waits for `a`.
    fn template() -> Template {
        Template::from_yaml(
            "namespace: orders\nname: shipping\nversion: \"1\"\nsteps:\n\
             \x20 - { name: a, handler: h, retry: { max_attempts: 3 } }\n\
             \x20 - { name: b, handler: h }\n\
             \x20 - { name: c, handler: h, depends_on: [a] }\n",
        )
        .unwrap()
    }

    fn created(template: &Template) -> TaskRun<'_> {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        TaskRun::create(template, Uuid::now_v7(), &ids, Utc::now())
    }

    /// `run`'s rows as written (a message on every ready step), with a
    /// fresh plan, as the next transaction loads them.
    fn reloaded<'t>(template: &'t Template, run: &TaskRun<'_>) -> TaskRun<'t> {
        let mut steps = run.steps.clone();
        for (i, step) in steps.iter_mut().enumerate() {
            if step.state == StepState::Ready && step.msg_id.is_none() {
                step.msg_id = Some(i as i64 + 1);
            }
        }
        TaskRun::new(template, run.task.clone(), steps)
    }

    /// Step `a` of a new task, claimed: the run after the claim's commit
    /// and the lease.
    fn claimed_a(template: &Template) -> (TaskRun<'_>, Lease) {
        let mut run = reloaded(template, &created(template));
        let now = Utc::now();
        let msg_id = run.steps[0].msg_id.unwrap();
        let outcome = run.claim(
            0,
            msg_id,
            now + TimeDelta::seconds(30),
            Uuid::new_v4(),
            "w",
            now,
        );
        let ClaimOutcome::Claimed(lease) = outcome else {
            panic!("claim answered {outcome:?}");
        };
        (reloaded(template, &run), lease)
    }

    fn pending<'r, 't>(run: &'r mut TaskRun<'t>) -> Pending<'r, 't> {
        Pending {
            queue: "tasker_orders",
            namespace: "orders",
            run,
        }
    }

    #[test]
    fn new_ready_steps_wake_their_namespace_once_with_their_count() {
        let template = template();
        let (mut first, mut second) = (created(&template), created(&template));
        let written = written_of(&[pending(&mut first), pending(&mut second)]);
        assert_eq!(written.ready, vec![("orders".to_owned(), 4)]);
        assert!(written.events.is_empty(), "{:?}", written.events);
    }

    #[test]
    fn an_empty_plan_wakes_nobody_and_reports_nothing() {
        let template = template();
        let mut run = reloaded(&template, &created(&template));
        let written = written_of(&[pending(&mut run)]);
        assert!(written.ready.is_empty());
        assert!(written.events.is_empty());
    }

    #[test]
    fn a_completion_wakes_for_the_children_it_released_and_ends_the_attempt() {
        let template = template();
        let (mut run, lease) = claimed_a(&template);
        run.complete(&lease, serde_json::json!({"ok": true}), Utc::now())
            .unwrap();
        let written = written_of(&[pending(&mut run)]);
        assert_eq!(written.ready, vec![("orders".to_owned(), 1)]);
        assert!(
            matches!(
                written.events.as_slice(),
                [Event::AttemptEnded {
                    outcome: AttemptOutcome::Completed,
                    ..
                }]
            ),
            "{:?}",
            written.events
        );
    }

    #[test]
    fn a_retry_wakes_its_namespace_with_nothing_ready_yet() {
        let template = template();
        let (mut run, lease) = claimed_a(&template);
        let error = StepError {
            error_type: "flaky".into(),
            message: "try again".into(),
            details: serde_json::Value::Null,
            retryable: true,
        };
        run.fail(&lease, error, Utc::now()).unwrap();
        assert_eq!(run.steps[0].state, StepState::Retrying);
        let written = written_of(&[pending(&mut run)]);
        // Claim loops must hear of it to wake when the backoff ends.
        assert_eq!(written.ready, vec![("orders".to_owned(), 0)]);
        assert!(
            matches!(
                written.events.as_slice(),
                [Event::AttemptEnded {
                    outcome: AttemptOutcome::Retrying,
                    ..
                }]
            ),
            "{:?}",
            written.events
        );
    }

    #[test]
    fn since_is_zero_when_unknown_or_negative() {
        let now = Utc::now();
        assert_eq!(since(None, now), Duration::ZERO);
        assert_eq!(
            since(Some(now + TimeDelta::seconds(1)), now),
            Duration::ZERO
        );
        assert_eq!(
            since(Some(now - TimeDelta::seconds(2)), now),
            Duration::from_secs(2)
        );
    }
}

//! [`StepStatus`]: a step's state as a person needs it, derived for display
//! from the task's steps and the live workers: a `pending` step that can never
//! run because an upstream step failed is `blocked`; a `ready` step nobody
//! will take says why; a `retrying` step says when its next attempt runs.
//! The records themselves are never changed.

use tasker_model::{Step, StepState, Timestamp};
use tasker_store::Worker;

use super::Coverage;

/// What the notes are derived from: the task's namespace and steps, the live
/// workers (`None` when they could not be read: no worker notes then) and
/// the time now.
#[derive(Debug, Clone, Copy)]
pub struct StepStatus<'a> {
    pub namespace: &'a str,
    pub steps: &'a [Step],
    pub workers: Option<&'a [Worker]>,
    pub now: Timestamp,
}

impl StepStatus<'_> {
    /// The state column: the state, or `blocked`, with a note after a dash
    /// when there is something to say (`ready — no live worker serves
    /// namespace "x"`, `blocked — "a" failed`).
    pub fn label(&self, step: &Step) -> String {
        if let Some(failed) = self.failed_upstream(step) {
            return format!("blocked — \"{}\" failed", failed.name);
        }
        match self.note(step) {
            Some(note) => format!("{} — {note}", step.state),
            None => step.state.to_string(),
        }
    }

    /// What a step in its current state waits for, if worth saying.
    pub fn note(&self, step: &Step) -> Option<String> {
        let gap = || {
            self.workers
                .and_then(|w| Coverage::new(w).gap(self.namespace, &step.handler))
        };
        match step.state {
            StepState::Ready => gap().map(|g| g.to_string()),
            StepState::Retrying => {
                let when = step.retry_at.map(|at| {
                    let left = at - self.now;
                    if left.num_milliseconds() > 0 {
                        format!("next attempt in {} (at {})", in_words(left), clock(at))
                    } else {
                        format!("next attempt due since {}", clock(at))
                    }
                });
                let gap = gap().map(|g| g.to_string());
                match (when, gap) {
                    (Some(when), Some(gap)) => Some(format!("{when}; {gap}")),
                    (when, gap) => when.or(gap),
                }
            }
            _ => None,
        }
    }

    /// The nearest failed step that `step` depends on, directly or not, when
    /// `step` is still pending: it cannot run unless that one is retried or
    /// resolved.
    pub fn failed_upstream(&self, step: &Step) -> Option<&Step> {
        if step.state != StepState::Pending {
            return None;
        }
        let by_name = |name: &str| self.steps.iter().find(|s| s.name == name);
        let mut queue: Vec<&str> = step.depends_on.iter().map(String::as_str).collect();
        let mut seen: Vec<&str> = Vec::new();
        let mut next = 0;
        while next < queue.len() {
            let name = queue[next];
            next += 1;
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let Some(parent) = by_name(name) else {
                continue;
            };
            if parent.state == StepState::Failed {
                return Some(parent);
            }
            queue.extend(parent.depends_on.iter().map(String::as_str));
        }
        None
    }
}

/// `12:00:03`: the time of day in UTC, as watch lines show it.
pub fn clock(at: Timestamp) -> String {
    at.format("%H:%M:%S").to_string()
}

/// `4s`, `2m 5s`, `1h 3m`: a duration to the second, rounded up.
pub fn in_words(duration: chrono::TimeDelta) -> String {
    let seconds = (duration.num_milliseconds().max(0) + 999) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {}s", seconds / 60, seconds % 60),
        _ => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_records::{at, step, worker};

    fn chain(states: &[StepState]) -> Vec<Step> {
        states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let mut s = step(i as u128 + 1, *state, 0);
                if i > 0 {
                    s.depends_on = vec![format!("step_{i}")];
                }
                s
            })
            .collect()
    }

    fn status<'a>(steps: &'a [Step], workers: Option<&'a [Worker]>) -> StepStatus<'a> {
        StepStatus {
            namespace: "examples",
            steps,
            workers,
            now: at(0),
        }
    }

    #[test]
    fn pending_steps_below_a_failed_one_are_blocked_by_it() {
        let steps = chain(&[
            StepState::Complete,
            StepState::Failed,
            StepState::Pending,
            StepState::Pending,
        ]);
        let view = status(&steps, None);
        assert_eq!(view.label(&steps[2]), "blocked — \"step_2\" failed");
        assert_eq!(
            view.label(&steps[3]),
            "blocked — \"step_2\" failed",
            "transitively"
        );
        assert_eq!(view.label(&steps[1]), "failed");

        let running = chain(&[StepState::Running, StepState::Pending]);
        assert_eq!(status(&running, None).label(&running[1]), "pending");
    }

    #[test]
    fn a_ready_step_nobody_takes_says_why() {
        let steps = chain(&[StepState::Ready]);
        assert_eq!(
            status(&steps, Some(&[])).label(&steps[0]),
            "ready — no live worker serves namespace \"examples\""
        );
        let workers = [worker("w", &["examples"], &["h.other"])];
        assert_eq!(
            status(&steps, Some(&workers)).label(&steps[0]),
            "ready — no live worker declares handler \"h.step_1\""
        );
        let workers = [worker("w", &["examples"], &[])];
        assert_eq!(status(&steps, Some(&workers)).label(&steps[0]), "ready");
        assert_eq!(status(&steps, None).label(&steps[0]), "ready", "unknown");
    }

    #[test]
    fn a_retrying_step_says_when_it_runs_next() {
        let mut steps = chain(&[StepState::Retrying]);
        steps[0].retry_at = Some(at(4) - chrono::TimeDelta::milliseconds(300));
        let workers = [worker("w", &["examples"], &[])];
        assert_eq!(
            status(&steps, Some(&workers)).label(&steps[0]),
            "retrying — next attempt in 4s (at 22:13:23)"
        );
        steps[0].retry_at = Some(at(-2));
        assert_eq!(
            status(&steps, Some(&[])).label(&steps[0]),
            "retrying — next attempt due since 22:13:18; \
             no live worker serves namespace \"examples\""
        );
    }

    #[test]
    fn durations_read_in_words() {
        let s = chrono::TimeDelta::seconds;
        assert_eq!(in_words(s(0)), "0s");
        assert_eq!(in_words(chrono::TimeDelta::milliseconds(1)), "1s");
        assert_eq!(in_words(s(59)), "59s");
        assert_eq!(in_words(s(125)), "2m 5s");
        assert_eq!(in_words(s(3 * 3600 + 180)), "3h 3m");
    }
}

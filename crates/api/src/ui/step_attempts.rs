//! Each step's attempts, read from the task's history: an attempt starts
//! with a transition to `running` and ends with the next transition of the
//! same step out of `running` (complete, retrying, failed, released back
//! to ready, cancelled). Pure: the history in, the attempts out.

use std::collections::HashMap;

use tasker_model::{Timestamp, Transition};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub attempt: Option<u32>,
    pub worker_id: Option<String>,
    pub started_at: Timestamp,
    /// `None` while it runs.
    pub ended_at: Option<Timestamp>,
    /// The state the attempt ended in.
    pub outcome: Option<String>,
    pub reason: Option<String>,
}

/// Attempts per step id, oldest first. `history` is in the order it was
/// recorded.
pub fn attempts(history: &[Transition]) -> HashMap<Uuid, Vec<Attempt>> {
    let mut out: HashMap<Uuid, Vec<Attempt>> = HashMap::new();
    for t in history {
        let Some(step) = t.step_id else { continue };
        let runs = out.entry(step).or_default();
        let open = runs.last_mut().filter(|a| a.ended_at.is_none());
        if let Some(open) = open
            && t.from_state.as_deref() == Some("running")
        {
            open.ended_at = Some(t.at);
            open.outcome = Some(t.to_state.clone());
            open.reason = t.reason.clone();
        }
        if t.to_state == "running" {
            runs.push(Attempt {
                attempt: t.attempt,
                worker_id: t.worker_id.clone(),
                started_at: t.at,
                ended_at: None,
                outcome: None,
                reason: None,
            });
        }
    }
    out.retain(|_, runs| !runs.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> Timestamp {
        format!("2026-11-30T12:00:{second:02}Z").parse().unwrap()
    }

    fn t(
        step: Option<Uuid>,
        from: Option<&str>,
        to: &str,
        attempt: u32,
        second: u32,
    ) -> Transition {
        Transition {
            id: i64::from(second),
            task_id: Uuid::nil(),
            step_id: step,
            step_name: None,
            from_state: from.map(Into::into),
            to_state: to.into(),
            attempt: Some(attempt),
            worker_id: Some(format!("w{attempt}")),
            node_id: None,
            reason: (to == "retrying").then(|| "boom".into()),
            at: at(second),
        }
    }

    #[test]
    fn a_retried_step_has_two_attempts() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let history = [
            t(None, None, "running", 0, 0),
            t(Some(a), Some("pending"), "ready", 0, 0),
            t(Some(a), Some("ready"), "running", 1, 1),
            t(Some(a), Some("running"), "retrying", 1, 3),
            t(Some(a), Some("retrying"), "ready", 1, 5),
            t(Some(a), Some("ready"), "running", 2, 6),
            t(Some(a), Some("running"), "complete", 2, 9),
            t(Some(b), Some("pending"), "ready", 0, 9),
            t(Some(b), Some("ready"), "running", 1, 10),
        ];
        let runs = attempts(&history);
        let a_runs = &runs[&a];
        assert_eq!(a_runs.len(), 2);
        assert_eq!(a_runs[0].ended_at, Some(at(3)));
        assert_eq!(a_runs[0].outcome.as_deref(), Some("retrying"));
        assert_eq!(a_runs[0].reason.as_deref(), Some("boom"));
        assert_eq!(a_runs[1].attempt, Some(2));
        assert_eq!(a_runs[1].worker_id.as_deref(), Some("w2"));
        assert_eq!(a_runs[1].outcome.as_deref(), Some("complete"));
        assert_eq!(runs[&b][0].ended_at, None, "b still runs");
        assert_eq!(runs.len(), 2, "the task's own transitions are no step");
    }
}

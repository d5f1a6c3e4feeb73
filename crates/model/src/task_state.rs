//! The task state machine.
//!
//! ```text
//!   running ──AllDone──▶ complete
//!      │ ▲
//!      │ └──Reopen (manual retry of a step)── failed
//!      ├──Stuck──▶ failed
//!      ├──DeadlineExceeded──▶ failed (steps not finished are cancelled)
//!      └──Cancel──▶ cancelled
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    Complete,
    Failed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 4] = [
        TaskState::Running,
        TaskState::Complete,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        self != TaskState::Running
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown task state \"{s}\""))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    /// Every step is complete or resolved.
    AllDone,
    /// A step failed and no step can run any more.
    Stuck,
    Cancel,
    /// A failed step was manually retried or resolved.
    Reopen,
    /// The task's deadline passed before it finished.
    DeadlineExceeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEffect {
    /// Record the end time; the task is final.
    Finalize,
    /// Cancel every step that has not finished.
    CancelSteps,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task cannot go from {from} on {event:?}")]
pub struct IllegalTransition {
    pub from: TaskState,
    pub event: TaskEvent,
}

pub fn apply(
    from: TaskState,
    event: TaskEvent,
) -> Result<(TaskState, &'static [TaskEffect]), IllegalTransition> {
    use TaskEffect::*;
    use TaskEvent as E;
    use TaskState as S;
    Ok(match (from, event) {
        (S::Running, E::AllDone) => (S::Complete, &[Finalize]),
        (S::Running, E::Stuck) => (S::Failed, &[Finalize]),
        (S::Running | S::Failed, E::Cancel) => (S::Cancelled, &[CancelSteps, Finalize]),
        (S::Failed, E::Reopen) => (S::Running, &[]),
        (S::Running, E::DeadlineExceeded) => (S::Failed, &[CancelSteps, Finalize]),
        (from, event) => return Err(IllegalTransition { from, event }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [TaskEvent; 5] = [
        TaskEvent::AllDone,
        TaskEvent::Stuck,
        TaskEvent::Cancel,
        TaskEvent::Reopen,
        TaskEvent::DeadlineExceeded,
    ];

    #[test]
    fn every_state_and_event_pair_matches_the_table() {
        use TaskEvent as E;
        use TaskState as S;
        for from in TaskState::ALL {
            for event in EVENTS {
                let want = match (from, event) {
                    (S::Running, E::AllDone) => Some(S::Complete),
                    (S::Running, E::Stuck) => Some(S::Failed),
                    (S::Running | S::Failed, E::Cancel) => Some(S::Cancelled),
                    (S::Failed, E::Reopen) => Some(S::Running),
                    (S::Running, E::DeadlineExceeded) => Some(S::Failed),
                    _ => None,
                };
                match (apply(from, event), want) {
                    (Ok((to, _)), Some(want)) => assert_eq!(to, want),
                    (Err(e), None) => assert_eq!(e, IllegalTransition { from, event }),
                    (got, want) => panic!("{from} on {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn complete_and_cancelled_are_final() {
        for from in [TaskState::Complete, TaskState::Cancelled] {
            for event in EVENTS {
                assert!(apply(from, event).is_err(), "{from} on {event:?}");
            }
        }
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), state);
        }
    }
}

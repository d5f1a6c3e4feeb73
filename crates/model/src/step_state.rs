//! The step state machine: a pure function from (state, event) to the next
//! state and the effects the engine must carry out in the same transaction.
//!
//! ```text
//!   pending ──Release──▶ ready ──Claim──▶ running ──Complete──▶ complete
//!      │                  ▲  ▲               │
//!      │                  │  ├─LeaseExpired──┤ (attempts left)
//!      │                  │  └─Relinquish────┤
//!      │                  │                  ├──Fail(retry)──▶ retrying ──RetryDue──▶ ready
//!      │                  │                  └──Fail(final)──▶ failed
//!      │                  └──────────ManualRetry───────────────────┘
//!      ├──Resolve──▶ resolved ◀──Resolve── failed
//!      ├──Skip──▶ skipped   (a decision did not choose it, or its parents
//!      │                     were skipped and its convergence rule says so)
//!      └──Gather──▶ complete  (a fan-out step's row, once every instance is done)
//!   any non-terminal ──Cancel──▶ cancelled
//! ```
//! Illegal transitions are errors; nothing is silently ignored.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Ready,
    Running,
    Retrying,
    Complete,
    Failed,
    Cancelled,
    Resolved,
    /// Never ran and never will: a decision did not choose its branch, or
    /// the parents it converges on were skipped. Counts as done for the task
    /// and for `all_done` convergence.
    Skipped,
}

impl StepState {
    pub const ALL: [StepState; 9] = [
        StepState::Pending,
        StepState::Ready,
        StepState::Running,
        StepState::Retrying,
        StepState::Complete,
        StepState::Failed,
        StepState::Cancelled,
        StepState::Resolved,
        StepState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::Running => "running",
            StepState::Retrying => "retrying",
            StepState::Complete => "complete",
            StepState::Failed => "failed",
            StepState::Cancelled => "cancelled",
            StepState::Resolved => "resolved",
            StepState::Skipped => "skipped",
        }
    }

    /// Counts as done for the steps that depend on it.
    pub fn satisfies_dependents(self) -> bool {
        matches!(self, StepState::Complete | StepState::Resolved)
    }

    /// Finished without failing: complete, resolved or skipped. A task whose
    /// steps are all done is complete.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepState::Complete | StepState::Resolved | StepState::Skipped
        )
    }

    /// Has a queue message and may still run without anyone's intervention.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            StepState::Ready | StepState::Running | StepState::Retrying
        )
    }

    /// No event but a manual one moves it again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Complete
                | StepState::Failed
                | StepState::Cancelled
                | StepState::Resolved
                | StepState::Skipped
        )
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown step state \"{s}\""))
    }
}

/// Something that happens to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent {
    /// All parents are complete or resolved (or the step is a root).
    Release,
    /// A worker leased the step.
    Claim,
    /// The current lease holder reported success.
    Complete,
    /// The current lease holder reported failure (or the attempt timed out).
    /// `retry` is true when the error is retryable and attempts are left.
    Fail {
        retry: bool,
    },
    /// The lease ran out without a result; `retry` as for `Fail`.
    LeaseExpired {
        retry: bool,
    },
    /// The lease holder gave the step back unfinished (e.g. shutting down);
    /// it is delivered again at once and the attempt is not counted.
    Relinquish,
    /// The backoff of a retrying step has elapsed.
    RetryDue,
    Cancel,
    /// An operator asked to run a failed step again.
    ManualRetry,
    /// An operator declared the step done without running it.
    Resolve,
    /// The step will never run: its branch was not chosen, or the parents it
    /// converges on were skipped.
    Skip,
    /// Every instance of a fan-out step is done: its own row completes.
    Gather,
}

/// Work implied by a transition, carried out by the engine in the same
/// transaction as the state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEffect {
    /// Send a queue message for the step now.
    Enqueue,
    /// Keep the message but hide it until the retry backoff has elapsed.
    ScheduleRetry,
    /// Make the step's message visible now.
    MakeVisible,
    /// Delete the step's queue message.
    DeleteMessage,
    /// Make children whose parents are all done ready.
    ReleaseChildren,
    /// Re-evaluate whether the task is finished.
    EvaluateTask,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step cannot go from {from} on {event:?}")]
pub struct IllegalTransition {
    pub from: StepState,
    pub event: StepEvent,
}

/// Applies `event` to a step in state `from`.
pub fn apply(
    from: StepState,
    event: StepEvent,
) -> Result<(StepState, &'static [StepEffect]), IllegalTransition> {
    use StepEffect::*;
    use StepEvent as E;
    use StepState as S;
    let next: (StepState, &'static [StepEffect]) = match (from, event) {
        (S::Pending, E::Release) => (S::Ready, &[Enqueue]),
        (S::Ready, E::Claim) => (S::Running, &[]),
        (S::Running, E::Complete) => (S::Complete, &[DeleteMessage, ReleaseChildren, EvaluateTask]),
        (S::Running, E::Fail { retry: true }) => (S::Retrying, &[ScheduleRetry]),
        (S::Running, E::Fail { retry: false }) => (S::Failed, &[DeleteMessage, EvaluateTask]),
        // The expired lease already made the message visible again.
        (S::Running, E::LeaseExpired { retry: true }) => (S::Ready, &[]),
        (S::Running, E::LeaseExpired { retry: false }) => {
            (S::Failed, &[DeleteMessage, EvaluateTask])
        }
        (S::Running, E::Relinquish) => (S::Ready, &[MakeVisible]),
        (S::Retrying, E::RetryDue) => (S::Ready, &[]),
        (S::Pending, E::Cancel) => (S::Cancelled, &[]),
        (S::Ready | S::Running | S::Retrying, E::Cancel) => (S::Cancelled, &[DeleteMessage]),
        (S::Failed, E::ManualRetry) => (S::Ready, &[Enqueue]),
        (S::Failed | S::Pending, E::Resolve) => (S::Resolved, &[ReleaseChildren, EvaluateTask]),
        // Both happen only while the children of another step are released;
        // that step's own `EvaluateTask` follows once all of them are settled.
        (S::Pending, E::Skip) => (S::Skipped, &[ReleaseChildren]),
        (S::Pending, E::Gather) => (S::Complete, &[ReleaseChildren]),
        (from, event) => return Err(IllegalTransition { from, event }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [StepEvent; 14] = [
        StepEvent::Release,
        StepEvent::Claim,
        StepEvent::Complete,
        StepEvent::Fail { retry: true },
        StepEvent::Fail { retry: false },
        StepEvent::LeaseExpired { retry: true },
        StepEvent::LeaseExpired { retry: false },
        StepEvent::Relinquish,
        StepEvent::RetryDue,
        StepEvent::Cancel,
        StepEvent::ManualRetry,
        StepEvent::Resolve,
        StepEvent::Skip,
        StepEvent::Gather,
    ];

    /// The complete table of legal transitions; everything else is illegal.
    fn expected(from: StepState, event: StepEvent) -> Option<StepState> {
        use StepEvent as E;
        use StepState as S;
        Some(match (from, event) {
            (S::Pending, E::Release) => S::Ready,
            (S::Ready, E::Claim) => S::Running,
            (S::Running, E::Complete) => S::Complete,
            (S::Running, E::Fail { retry: true }) => S::Retrying,
            (S::Running, E::Fail { retry: false }) => S::Failed,
            (S::Running, E::LeaseExpired { retry: true }) => S::Ready,
            (S::Running, E::LeaseExpired { retry: false }) => S::Failed,
            (S::Running, E::Relinquish) => S::Ready,
            (S::Retrying, E::RetryDue) => S::Ready,
            (S::Pending | S::Ready | S::Running | S::Retrying, E::Cancel) => S::Cancelled,
            (S::Failed, E::ManualRetry) => S::Ready,
            (S::Failed | S::Pending, E::Resolve) => S::Resolved,
            (S::Pending, E::Skip) => S::Skipped,
            (S::Pending, E::Gather) => S::Complete,
            _ => return None,
        })
    }

    #[test]
    fn every_state_and_event_pair_matches_the_table() {
        let mut legal = 0;
        for from in StepState::ALL {
            for event in EVENTS {
                match (apply(from, event), expected(from, event)) {
                    (Ok((to, _)), Some(want)) => {
                        assert_eq!(to, want, "{from} on {event:?}");
                        legal += 1;
                    }
                    (Err(e), None) => assert_eq!(e, IllegalTransition { from, event }),
                    (got, want) => panic!("{from} on {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(legal, 18);
    }

    #[test]
    fn terminal_states_only_leave_by_manual_events() {
        for from in StepState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in EVENTS {
                if let Ok((to, _)) = apply(from, event) {
                    assert!(
                        matches!(event, StepEvent::ManualRetry | StepEvent::Resolve),
                        "{from} left by {event:?} to {to}"
                    );
                }
            }
        }
    }

    #[test]
    fn effects_keep_queue_and_state_in_step() {
        // Leaving an in-flight state for a terminal one always removes the message.
        for from in [StepState::Ready, StepState::Running, StepState::Retrying] {
            for event in EVENTS {
                if let Ok((to, effects)) = apply(from, event)
                    && to.is_terminal()
                {
                    assert!(effects.contains(&StepEffect::DeleteMessage), "{from}->{to}");
                }
            }
        }
        // Entering ready from a state without a message always enqueues one.
        for from in [StepState::Pending, StepState::Failed] {
            for event in EVENTS {
                if let Ok((StepState::Ready, effects)) = apply(from, event) {
                    assert!(
                        effects.contains(&StepEffect::Enqueue),
                        "{from} on {event:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in StepState::ALL {
            assert_eq!(state.as_str().parse::<StepState>().unwrap(), state);
        }
        assert!("bogus".parse::<StepState>().is_err());
    }
}

//! Records of the leader's housekeeping: steps that exhausted their retries
//! (dead letters) and how to select them, the kinds of stuck work the sweep
//! repairs, and what each sweep last did. A backend finds and repairs; when
//! and how often is the engine's decision, never the backend's.

pub use tasker_model::wire::{
    DeadLetter, DeadLetterFilter, DeadLetterOutcome, DeadLetterPage, DeadLetterRefusal,
    SweepCounts, SweepRecord,
};

/// What the stuck-work sweep finds and repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StuckKind {
    /// A ready or retrying step whose queue message is gone (deleted by
    /// hand): a new message is sent (a retrying one hidden until its
    /// backoff ends).
    QueuedWithoutMessage,
    /// A running step whose queue message is gone: a new message is sent,
    /// hidden until the lease expires, so the step is delivered again if
    /// its worker never reports.
    RunningWithoutMessage,
    /// A running step whose message stays hidden past the lease's expiry:
    /// the message is made visible when the lease expires.
    LeaseMessageMismatch,
}

impl StuckKind {
    pub const ALL: [StuckKind; 3] = [
        StuckKind::QueuedWithoutMessage,
        StuckKind::RunningWithoutMessage,
        StuckKind::LeaseMessageMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StuckKind::QueuedWithoutMessage => "queued_without_message",
            StuckKind::RunningWithoutMessage => "running_without_message",
            StuckKind::LeaseMessageMismatch => "lease_message_mismatch",
        }
    }
}

//! What a backend tells an observer (metrics) after a transaction committed:
//! facts a node cannot learn from the requests alone, such as which
//! completion finished its task or how long a step waited in its queue.

use std::time::Duration;

use tasker_model::TaskState;

/// One fact about a committed state change.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    TaskFinished {
        namespace: String,
        template: String,
        state: TaskState,
    },
    /// A step was leased; `queue_wait` is how long it had been ready.
    StepClaimed {
        namespace: String,
        queue_wait: Duration,
    },
    /// An attempt ended (complete, failed or retrying); `run_time` is how long
    /// it ran under its lease.
    AttemptEnded {
        namespace: String,
        outcome: AttemptOutcome,
        run_time: Duration,
    },
    /// A lease ran out without a result or heartbeat.
    LeaseExpired { namespace: String },
    /// An attempt ran past its step's timeout and was failed as `timeout`
    /// by the server (a heartbeat, a claim or the timeout sweep).
    StepTimedOut { namespace: String },
    /// A task ran past its deadline and failed with `deadline_exceeded`.
    DeadlineExceeded { namespace: String },
    /// The stuck-work sweep found work that could not make progress and
    /// repaired it; `kind` says what it found (see `StuckKind`).
    StuckRepaired { kind: &'static str },
    /// The database aborted a transaction to break a deadlock or a
    /// serialization conflict, or the connection it ran on was lost before
    /// anything was committed, and the backend ran it again. A deadlock is
    /// latency (it costs `deadlock_timeout`, a second by default) and, with
    /// one lock order everywhere, should not happen; a lost connection is a
    /// killed backend or a database restart.
    TransactionRetried { reason: RetryReason },
    /// Retention deleted (or, for `idempotency_keys`, released) rows of a
    /// table: `tasks`, `steps`, `transitions`, `idempotency_keys`, `workers`.
    RetentionDeleted { table: &'static str, rows: u64 },
}

/// Why a transaction was run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    Deadlock,
    SerializationFailure,
    /// Its connection was lost (a killed backend, a restart) before COMMIT
    /// was sent; run once more on a fresh connection.
    ConnectionLost,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Deadlock => "deadlock",
            RetryReason::SerializationFailure => "serialization_failure",
            RetryReason::ConnectionLost => "connection_lost",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Completed,
    /// Failed and will be retried after its backoff.
    Retrying,
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Retrying => "retrying",
            AttemptOutcome::Failed => "failed",
        }
    }
}

/// Receives events after commit. Must be cheap and must not block.
pub trait Observer: Send + Sync {
    fn observe(&self, events: &[Event]);
}

//! Retention: the leader duty that deletes what is old enough to go.
//!
//! ```text
//!  every `interval`, on the leader only:
//!    finished tasks past their horizon ─▶ batches of `batch_size` tasks,
//!        each with its steps and transitions, one short statement each,
//!        `batch_pause` between batches, until a batch comes back short
//!    idempotency keys past their window ─▶ released (same batching)
//!    worker records not seen for `worker_expiry` ─▶ deleted (same batching)
//! ```
//!
//! A task's horizon is looked up by its namespace and final state: the rule
//! for that namespace and state, else that namespace's rule for every
//! state, else the rule of the state (`state_horizons`), else `horizon`.
//!
//! It must never touch a running task or wait on a row another transaction
//! holds; every batch is safe to repeat, so a pass cut off by a change of
//! leader (or run by two leaders during a hand-over) leaves nothing half
//! done.

mod horizons;
mod retention_duty;

use std::time::Duration;

pub use horizons::{NamespaceHorizon, StateHorizon};
pub use retention_duty::{RetentionDuty, RetentionStats};

/// Settings of retention. Every field has an effect and a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// How long finished tasks are kept, unless a rule below says
    /// otherwise. Default 30 days.
    pub horizon: Duration,
    /// Horizons of a final state (`complete`, `failed`, `cancelled`) for
    /// every namespace. Default none.
    pub state_horizons: Vec<StateHorizon>,
    /// Horizons of one namespace, for all its final states or one. Default
    /// none.
    pub namespace_horizons: Vec<NamespaceHorizon>,
    /// Most rows (tasks with their steps and transitions, keys, workers)
    /// one statement deletes. Default 1,000.
    pub batch_size: u32,
    /// Pause between two batches, so that other work gets the database
    /// between them. Default 100 ms.
    pub batch_pause: Duration,
    /// Time between two passes; a pass runs at once when this node becomes
    /// leader. Default 5 minutes.
    pub interval: Duration,
    /// How long an idempotency key names its task: after this long from
    /// the task's creation, once the task has finished, the key is released
    /// and a new task may take it. Default 24 hours.
    pub idempotency_key_expiry: Duration,
    /// A worker record not seen for this long is deleted. Default 24 hours.
    pub worker_expiry: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const HOUR: u64 = 3600;
        Self {
            horizon: Duration::from_secs(30 * 24 * HOUR),
            state_horizons: Vec::new(),
            namespace_horizons: Vec::new(),
            batch_size: 1000,
            batch_pause: Duration::from_millis(100),
            interval: Duration::from_secs(300),
            idempotency_key_expiry: Duration::from_secs(24 * HOUR),
            worker_expiry: Duration::from_secs(24 * HOUR),
        }
    }
}

//! What retention asks of a backend: delete finished tasks (with their
//! steps and history) older than their horizon, release expired
//! idempotency keys and delete the records of workers long gone, each in
//! bounded batches. The backend must never touch a running task, nor a task
//! row another transaction holds (it skips it and takes it next time).

use std::time::Duration;

use tasker_model::TaskState;

/// How long finished tasks in one final state are kept. `namespace` `None`
/// is the rule for every namespace without a rule of its own for `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionHorizon {
    pub namespace: Option<String>,
    /// `complete`, `failed` or `cancelled`.
    pub state: TaskState,
    /// A task finished longer ago than this is deleted.
    pub keep_for: Duration,
}

/// One batch of [`crate::Store::retention_tasks_delete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionTasksDelete {
    /// The rules; for each finished task the rule of its namespace and
    /// state applies, else the rule of its state for every namespace, else
    /// the task is kept.
    pub horizons: Vec<RetentionHorizon>,
    /// Most tasks deleted (with their steps and transitions) in one
    /// statement.
    pub limit: u32,
}

/// What one batch deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionDeleted {
    pub tasks: u64,
    pub steps: u64,
    pub transitions: u64,
}

//! Parameter and result types of the schedule methods of [`crate::Store`].
//! Data only: the timing logic lives in `tasker_model::schedule`.

use tasker_model::schedule::FireOutcome;
use tasker_model::{ScheduleFire, ScheduleSpec, Task, Timestamp};
use uuid::Uuid;

use crate::TaskCreate;

/// A schedule as the engine checked it, with its computed times: what
/// [`crate::Store::schedule_create`] and [`crate::Store::schedule_update`]
/// write.
#[derive(Debug, Clone)]
pub struct ScheduleWrite {
    pub spec: ScheduleSpec,
    pub anchor_at: Timestamp,
    pub next_fire_at: Option<Timestamp>,
    pub next_run_at: Option<Timestamp>,
}

/// The schedule's next times after a scheduled fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextFire {
    pub next_fire_at: Option<Timestamp>,
    pub next_run_at: Option<Timestamp>,
}

/// What a fire does.
#[derive(Debug, Clone)]
pub enum FireAction {
    /// Starts a task, recorded `started` (or `failed` with the reason
    /// when the task cannot be created).
    Start(TaskCreate),
    /// Starts the task of this time's `buffered` fire.
    StartBuffered(TaskCreate),
    /// Records this time's `buffered` fire as `failed` (its task cannot be
    /// created).
    FailBuffered { message: String },
    /// Records the fire as `buffered` and remembers it on the schedule.
    Buffer,
    /// Records an outcome that starts nothing (`skipped_overlap`,
    /// `missed`, `failed`).
    Record {
        outcome: FireOutcome,
        message: Option<String>,
    },
}

/// One fire of one schedule at one time.
#[derive(Debug, Clone)]
pub struct FireRequest {
    pub schedule_id: Uuid,
    pub fire_time: Timestamp,
    pub kind: tasker_model::schedule::FireKind,
    pub action: FireAction,
    /// For a scheduled fire: the schedule's next times, written in the same
    /// transaction (and also when the time had been fired already, so that
    /// a schedule read before another node's fire moves on). Never moves a
    /// schedule's next fire time backwards.
    pub advance: Option<NextFire>,
}

/// The answer to a [`FireRequest`].
#[derive(Debug, Clone)]
pub enum FireResult {
    /// The fire as recorded, with the task it started.
    Recorded {
        fire: ScheduleFire,
        task: Option<Box<Task>>,
    },
    /// This schedule and time had a fire already (or, for
    /// [`FireAction::StartBuffered`], the buffered fire was started
    /// already): nothing was written.
    AlreadyFired,
}

//! Parameter and result types of the schedule methods of [`crate::Store`],
//! and what every backend decides alike when it records a fire (which row
//! it writes first, what the fire's outcome is, what it changes on the
//! schedule) and its errors. The timing logic lives in
//! `tasker_model::schedule`; the SQL in each backend. Must never: do I/O.

use tasker_model::schedule::FireOutcome;
use tasker_model::{ScheduleFire, ScheduleSpec, Task, Timestamp};
use uuid::Uuid;

use crate::{Error, Result, TaskCreate};

/// A schedule that does not exist (or was deleted meanwhile).
pub fn not_found(id: Uuid) -> Error {
    Error::not_found(format!("schedule {id}"))
}

/// A schedule name another schedule holds.
pub fn name_taken(name: &str) -> Error {
    Error::Conflict {
        code: "schedule_conflict",
        message: format!("a schedule named \"{name}\" exists already; choose another name"),
    }
}

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

impl FireAction {
    /// The task this fire creates, if any.
    pub fn task_create(&self) -> Option<&TaskCreate> {
        match self {
            FireAction::Start(create) | FireAction::StartBuffered(create) => Some(create),
            _ => None,
        }
    }

    /// The fire's row to insert first, as (outcome, message): the final one
    /// for a fire that starts nothing, `failed` as a placeholder for one
    /// that starts a task. `None` for the actions on this time's `buffered`
    /// row, which exists already and is claimed instead.
    pub fn row_to_insert(&self) -> Option<(FireOutcome, Option<String>)> {
        match self {
            FireAction::StartBuffered(_) | FireAction::FailBuffered { .. } => None,
            FireAction::Buffer => Some((FireOutcome::Buffered, None)),
            FireAction::Record { outcome, message } => Some((*outcome, message.clone())),
            FireAction::Start(_) => Some((FireOutcome::Failed, None)),
        }
    }

    /// What the fire does to the schedule's buffered time: remember this
    /// fire's (`Some(true)`), clear it (`Some(false)`), or leave it.
    pub fn buffered_set(&self) -> Option<bool> {
        match self {
            FireAction::Buffer => Some(true),
            FireAction::StartBuffered(_) | FireAction::FailBuffered { .. } => Some(false),
            _ => None,
        }
    }
}

/// The outcome of a fire that asked for a task, from the answer of its
/// creation.
#[derive(Debug)]
pub struct Started {
    pub outcome: FireOutcome,
    /// The task created.
    pub task: Option<Task>,
    /// Why no task was created.
    pub message: Option<String>,
}

impl Started {
    /// `started` with the task, or `failed` with why it was refused; a
    /// database that fails or is unavailable fails the fire instead.
    pub fn of(answer: Result<(Task, bool)>) -> Result<Started> {
        match answer {
            Ok((task, _)) => Ok(Started {
                outcome: FireOutcome::Started,
                task: Some(task),
                message: None,
            }),
            Err(e @ (Error::Database(_) | Error::Unavailable { .. })) => Err(e),
            Err(refused) => Ok(Started {
                outcome: FireOutcome::Failed,
                task: None,
                message: Some(refused.to_string()),
            }),
        }
    }
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

impl FireRequest {
    /// The schedule's next times to set, as (whether to set them, next fire
    /// time, next run time).
    pub fn next_times(&self) -> (bool, Option<Timestamp>, Option<Timestamp>) {
        match self.advance {
            Some(next) => (true, next.next_fire_at, next.next_run_at),
            None => (false, None, None),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn create() -> TaskCreate {
        TaskCreate {
            template_id: Uuid::nil(),
            context: serde_json::Value::Null,
            idempotency_key: None,
            tags: Vec::new(),
            deadline: None,
        }
    }

    #[test]
    fn a_buffered_fire_claims_its_row_others_insert_one() {
        assert_eq!(FireAction::StartBuffered(create()).row_to_insert(), None);
        assert_eq!(
            FireAction::FailBuffered {
                message: "m".into()
            }
            .row_to_insert(),
            None
        );
        assert_eq!(
            FireAction::Buffer.row_to_insert(),
            Some((FireOutcome::Buffered, None))
        );
        assert_eq!(
            FireAction::Start(create()).row_to_insert(),
            Some((FireOutcome::Failed, None))
        );
        let record = FireAction::Record {
            outcome: FireOutcome::Missed,
            message: Some("late".into()),
        };
        assert_eq!(
            record.row_to_insert(),
            Some((FireOutcome::Missed, Some("late".into())))
        );
        assert!(record.task_create().is_none());
        assert!(FireAction::StartBuffered(create()).task_create().is_some());
    }

    #[test]
    fn buffering_remembers_the_time_and_starting_or_failing_it_clears_it() {
        assert_eq!(FireAction::Buffer.buffered_set(), Some(true));
        assert_eq!(
            FireAction::StartBuffered(create()).buffered_set(),
            Some(false)
        );
        assert_eq!(
            FireAction::FailBuffered {
                message: "m".into()
            }
            .buffered_set(),
            Some(false)
        );
        assert_eq!(FireAction::Start(create()).buffered_set(), None);
    }

    #[test]
    fn a_refused_task_fails_the_fire_a_database_error_fails_the_call() {
        let refused = Started::of(Err(Error::not_found("template t"))).unwrap();
        assert_eq!(refused.outcome, FireOutcome::Failed);
        assert_eq!(refused.message.as_deref(), Some("template t not found"));
        assert!(refused.task.is_none());
        assert!(Started::of(Err(Error::Database("down".into()))).is_err());
    }
}

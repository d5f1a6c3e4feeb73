//! What the scheduler does with one due schedule: start its buffered fire
//! once the previous run has finished, and fire its due time under the
//! catch-up rule and the overlap policy. Every fire is one
//! [`tasker_store::Store::schedule_fire`] call; a time another node fired
//! already comes back as [`FireResult::AlreadyFired`] and is left alone.
//! Nothing here may write a fire or a task except through that call.

use tasker_model::schedule::{FireKind, FireOutcome, OverlapPolicy, timing};
use tasker_model::{Schedule, TaskState, Timestamp};
use tasker_store::{FireAction, FireRequest, FireResult, NextFire};
use uuid::Uuid;

use crate::{Engine, Error, Result};

/// What one look at a schedule did, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attempt {
    Nothing,
    Recorded(FireOutcome),
    AlreadyFired,
}

impl Engine {
    /// The task of the schedule's latest started fire, if it is still
    /// running.
    async fn schedule_previous_running(&self, schedule: &Schedule) -> Result<Option<Uuid>> {
        let Some(task_id) = schedule.last_task_id else {
            return Ok(None);
        };
        match self.store.task_get(task_id).await {
            Ok(task) if task.state == TaskState::Running => Ok(Some(task_id)),
            Ok(_) | Err(tasker_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a buffered fire whose previous run has finished.
    pub(crate) async fn schedule_start_buffered(&self, schedule: &Schedule) -> Result<Attempt> {
        let Some(fire_time) = schedule.buffered_fire_at else {
            return Ok(Attempt::Nothing);
        };
        if self.schedule_previous_running(schedule).await?.is_some() {
            return Ok(Attempt::Nothing);
        }
        let action = match self.task_checked(self.schedule_task(&schedule.spec)).await {
            Ok(create) => FireAction::StartBuffered(create),
            Err(
                e @ Error::Store(
                    tasker_store::Error::Database(_) | tasker_store::Error::Unavailable { .. },
                ),
            ) => {
                return Err(e);
            }
            Err(refused) => FireAction::FailBuffered {
                message: refused.to_string(),
            },
        };
        let result = self
            .store
            .schedule_fire(&FireRequest {
                schedule_id: schedule.id,
                fire_time,
                kind: FireKind::Scheduled,
                action,
                advance: None,
            })
            .await?;
        Ok(fired(result))
    }

    /// Fires the schedule's due time, if it has one at `now`.
    pub(crate) async fn schedule_fire_due(
        &self,
        schedule: &Schedule,
        now: Timestamp,
    ) -> Result<Attempt> {
        let (Some(next_fire_at), Some(next_run_at)) = (schedule.next_fire_at, schedule.next_run_at)
        else {
            return Ok(Attempt::Nothing);
        };
        if schedule.spec.paused || next_run_at > now {
            return Ok(Attempt::Nothing);
        }
        let (timing, jitter) =
            schedule
                .spec
                .check(schedule.anchor_at)
                .map_err(|issue| Error::ScheduleInvalid {
                    field: issue.field,
                    message: issue.message,
                })?;
        let Some(plan) = timing::plan_due(&timing, schedule.spec.catch_up, next_fire_at, now)
        else {
            return Ok(Attempt::Nothing);
        };
        let advance = Some(NextFire {
            next_fire_at: plan.next_fire_at,
            next_run_at: plan
                .next_fire_at
                .map(|t| t + timing::jitter_offset(schedule.id, t, jitter)),
        });
        if !plan.run {
            let action = FireAction::Record {
                outcome: FireOutcome::Missed,
                message: Some(format!(
                    "{} was due at {} while no leader ran; catch_up is skip",
                    plan.fire_time, now
                )),
            };
            return self
                .schedule_record(schedule, plan.fire_time, action, advance)
                .await;
        }
        let previous = self.schedule_previous_running(schedule).await?;
        let overlapping = |message: String| FireAction::Record {
            outcome: FireOutcome::SkippedOverlap,
            message: Some(message),
        };
        let action = match (previous, schedule.spec.overlap) {
            (None, _) | (Some(_), OverlapPolicy::Allow) => None,
            (Some(task), OverlapPolicy::Skip) => Some(overlapping(format!(
                "the previous run (task {task}) was still going"
            ))),
            (Some(task), OverlapPolicy::BufferOne) => Some(match schedule.buffered_fire_at {
                Some(waiting) => overlapping(format!(
                    "the previous run (task {task}) was still going and the fire of {waiting} waits already"
                )),
                None => FireAction::Buffer,
            }),
            (Some(task), OverlapPolicy::CancelPrevious) => {
                let reason = format!(
                    "cancelled by schedule \"{}\": its fire of {} started",
                    schedule.spec.name, plan.fire_time
                );
                match self.store.task_cancel(task, &reason).await {
                    // Finished meanwhile: nothing to cancel.
                    Ok(_) | Err(tasker_store::Error::Operation(_)) => {}
                    Err(tasker_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                None
            }
        };
        match action {
            Some(action) => {
                self.schedule_record(schedule, plan.fire_time, action, advance)
                    .await
            }
            None => Ok(fired(
                self.schedule_fire_task(schedule, plan.fire_time, FireKind::Scheduled, advance)
                    .await?,
            )),
        }
    }

    async fn schedule_record(
        &self,
        schedule: &Schedule,
        fire_time: Timestamp,
        action: FireAction,
        advance: Option<NextFire>,
    ) -> Result<Attempt> {
        let result = self
            .store
            .schedule_fire(&FireRequest {
                schedule_id: schedule.id,
                fire_time,
                kind: FireKind::Scheduled,
                action,
                advance,
            })
            .await?;
        Ok(fired(result))
    }
}

fn fired(result: FireResult) -> Attempt {
    match result {
        FireResult::Recorded { fire, .. } => Attempt::Recorded(fire.outcome),
        FireResult::AlreadyFired => Attempt::AlreadyFired,
    }
}

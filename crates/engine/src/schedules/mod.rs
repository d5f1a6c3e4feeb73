//! Schedules: the operations of `/v1/schedules` (create, get, list, update,
//! delete, pause, resume, trigger, backfill, fires) and the [`Scheduler`],
//! the leader duty that fires them.
//!
//! ```text
//!  API node: create/update/resume ─▶ spec checked, template + context checked,
//!                                    next fire computed (engine clock) ─▶ stored
//!                                    └─ wakes this node's scheduler
//!  leader:   Scheduler ─▶ due schedules ─▶ plan (catch-up) ─▶ overlap policy
//!                     └─▶ store.schedule_fire: fire row + task + next times, one commit
//!                     └─▶ sleeps until the earliest next run (at most RECHECK)
//! ```
//!
//! A fire time never runs twice: the fire row is keyed by schedule and
//! time, whichever node or request writes it. This module must never
//! create a schedule's task outside [`tasker_store::Store::schedule_fire`].

mod firing;
mod scheduler;

use std::sync::Arc;

use chrono::TimeDelta;
use tasker_model::schedule::{FireKind, Issue, MAX_BACKFILL_FIRES, Timing, timing};
use tasker_model::{HumanDuration, Schedule, ScheduleFire, ScheduleSpec, Task, Timestamp};
use tasker_store::{FireAction, FireRequest, FireResult, NewTask, ScheduleWrite};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use scheduler::{RECHECK, Scheduler};

use crate::{Engine, Error, Result, nul_check};

/// How many upcoming fire times a schedule shows.
pub const UPCOMING: usize = 5;

/// The schedule part of an [`Engine`], shared by its clones.
#[derive(Debug)]
pub(crate) struct ScheduleState {
    /// Wakes this node's scheduler (a schedule changed here).
    pub wake: Arc<Notify>,
    /// Passes of this node's scheduler so far: a test signal.
    pub passes: watch::Sender<u64>,
}

impl Default for ScheduleState {
    fn default() -> Self {
        Self {
            wake: Arc::default(),
            passes: watch::Sender::new(0),
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    /// The fires recorded by this backfill, oldest first.
    pub fires: Vec<ScheduleFire>,
    /// Times in the range that had a fire already (not run again).
    pub already_fired: Vec<Timestamp>,
}

fn invalid(issue: Issue) -> Error {
    Error::ScheduleInvalid {
        field: issue.field,
        message: issue.message,
    }
}

/// Milliseconds are what every clock, the database included, keeps alike.
fn to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The next fire time after `now` and when it runs (with its jitter).
pub(crate) fn next_times(
    id: Uuid,
    timing: &Timing,
    jitter: Option<HumanDuration>,
    after: Timestamp,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let next = timing.next_after(after);
    (next, next.map(|t| t + timing::jitter_offset(id, t, jitter)))
}

impl Engine {
    /// Checks a spec: its fields, its template and its context (as a task
    /// create would); returns its timing and jitter.
    async fn schedule_check(
        &self,
        spec: &mut ScheduleSpec,
        anchor: Timestamp,
    ) -> Result<(Timing, Option<HumanDuration>)> {
        if spec.context.is_null() {
            spec.context = serde_json::json!({});
        }
        for (field, text) in [
            ("name", Some(&spec.name)),
            ("cron", spec.cron.as_ref()),
            ("time_zone", spec.time_zone.as_ref()),
            ("interval", spec.interval.as_ref()),
            ("jitter", spec.jitter.as_ref()),
        ] {
            if let Some(text) = text {
                nul_check::check_text(field, text)?;
            }
        }
        let checked = spec.check(anchor).map_err(invalid)?;
        self.task_checked(self.schedule_task(spec)).await?;
        Ok(checked)
    }

    /// The task a spec starts.
    pub(crate) fn schedule_task(&self, spec: &ScheduleSpec) -> NewTask {
        NewTask {
            namespace: spec.namespace.clone(),
            template: spec.template.clone(),
            version: spec.version.clone(),
            context: spec.context.clone(),
            idempotency_key: None,
            tags: vec![format!("schedule:{}", spec.name)],
            // The template's deadline, if any.
            deadline: None,
        }
    }

    pub async fn schedule_create(&self, mut spec: ScheduleSpec) -> Result<Schedule> {
        let now = to_millis(self.clock.now());
        let (timing, jitter) = self.schedule_check(&mut spec, now).await?;
        let id = Uuid::now_v7();
        let (next_fire_at, next_run_at) = if spec.paused {
            (None, None)
        } else {
            next_times(id, &timing, jitter, now)
        };
        let schedule = self
            .store
            .schedule_create(
                id,
                &ScheduleWrite {
                    spec,
                    anchor_at: now,
                    next_fire_at,
                    next_run_at,
                },
            )
            .await?;
        self.schedules.wake.notify_one();
        Ok(schedule)
    }

    pub async fn schedule_get(&self, id: Uuid) -> Result<Schedule> {
        Ok(self.store.schedule_get(id).await?)
    }

    pub async fn schedule_list(&self) -> Result<Vec<Schedule>> {
        Ok(self.store.schedule_list().await?)
    }

    /// The next `n` fire times of a schedule (none while paused).
    pub fn schedule_upcoming(&self, schedule: &Schedule, n: usize) -> Vec<Timestamp> {
        let Some(first) = schedule.next_fire_at else {
            return Vec::new();
        };
        let Ok((timing, _)) = schedule.spec.check(schedule.anchor_at) else {
            return Vec::new();
        };
        let mut times = vec![first];
        while times.len() < n {
            match timing.next_after(*times.last().expect("one")) {
                Some(t) => times.push(t),
                None => break,
            }
        }
        times
    }

    /// Replaces a schedule's spec. Its next fire is computed anew from now;
    /// an interval counts from now when the interval changed.
    pub async fn schedule_update(&self, id: Uuid, mut spec: ScheduleSpec) -> Result<Schedule> {
        let current = self.store.schedule_get(id).await?;
        let now = to_millis(self.clock.now());
        let anchor = if current.spec.interval == spec.interval {
            current.anchor_at
        } else {
            now
        };
        let (timing, jitter) = self.schedule_check(&mut spec, anchor).await?;
        self.schedule_write(id, spec, anchor, &timing, jitter, now)
            .await
    }

    async fn schedule_write(
        &self,
        id: Uuid,
        spec: ScheduleSpec,
        anchor_at: Timestamp,
        timing: &Timing,
        jitter: Option<HumanDuration>,
        now: Timestamp,
    ) -> Result<Schedule> {
        let (next_fire_at, next_run_at) = if spec.paused {
            (None, None)
        } else {
            next_times(id, timing, jitter, now)
        };
        let schedule = self
            .store
            .schedule_update(
                id,
                &ScheduleWrite {
                    spec,
                    anchor_at,
                    next_fire_at,
                    next_run_at,
                },
            )
            .await?;
        self.schedules.wake.notify_one();
        Ok(schedule)
    }

    pub async fn schedule_delete(&self, id: Uuid) -> Result<()> {
        Ok(self.store.schedule_delete(id).await?)
    }

    /// Pauses (`true`) or resumes a schedule. Resuming fires next at the
    /// first time after now: times passed while paused are not caught up.
    pub async fn schedule_set_paused(&self, id: Uuid, paused: bool) -> Result<Schedule> {
        let current = self.store.schedule_get(id).await?;
        if current.spec.paused == paused {
            return Ok(current);
        }
        let mut spec = current.spec;
        spec.paused = paused;
        let (timing, jitter) = spec.check(current.anchor_at).map_err(invalid)?;
        let now = to_millis(self.clock.now());
        self.schedule_write(id, spec, current.anchor_at, &timing, jitter, now)
            .await
    }

    /// Fires a schedule now, whatever its overlap policy and also while
    /// paused: the fire time is now.
    pub async fn schedule_trigger(&self, id: Uuid) -> Result<(ScheduleFire, Option<Task>)> {
        let schedule = self.store.schedule_get(id).await?;
        let now = to_millis(self.clock.now());
        match self
            .schedule_fire_task(&schedule, now, FireKind::Manual, None)
            .await?
        {
            FireResult::Recorded { fire, task } => Ok((fire, task.map(|t| *t))),
            FireResult::AlreadyFired => Err(Error::Store(tasker_store::Error::Conflict {
                code: "schedule_fired",
                message: format!("schedule {id} fired at {now} already; trigger it again"),
            })),
        }
    }

    /// Fires every time of `[start, end)` that has no fire yet, oldest
    /// first, whatever the overlap policy. At most
    /// [`MAX_BACKFILL_FIRES`] times; `end` must not be in the future.
    pub async fn schedule_backfill(
        &self,
        id: Uuid,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Backfill> {
        if end <= start {
            return Err(Error::ScheduleInvalid {
                field: "end",
                message: format!("must be after start ({start}); got {end}"),
            });
        }
        let now = self.clock.now();
        if end > now + TimeDelta::seconds(1) {
            return Err(Error::ScheduleInvalid {
                field: "end",
                message: format!("must not be in the future (now is {now}); got {end}"),
            });
        }
        let schedule = self.store.schedule_get(id).await?;
        let (timing, _) = schedule.spec.check(schedule.anchor_at).map_err(invalid)?;
        let times = timing
            .between(start, end, MAX_BACKFILL_FIRES)
            .map_err(|max| Error::ScheduleInvalid {
                field: "end",
                message: format!(
                    "the range holds more than {max} fire times; backfill it in smaller ranges"
                ),
            })?;
        let mut done = Backfill {
            fires: Vec::new(),
            already_fired: Vec::new(),
        };
        for time in times {
            match self
                .schedule_fire_task(&schedule, time, FireKind::Backfill, None)
                .await?
            {
                FireResult::Recorded { fire, .. } => done.fires.push(fire),
                FireResult::AlreadyFired => done.already_fired.push(time),
            }
        }
        Ok(done)
    }

    /// A schedule's fires, newest first.
    pub async fn schedule_fires(&self, id: Uuid, limit: u32) -> Result<Vec<ScheduleFire>> {
        Ok(self.store.schedule_fires(id, limit).await?)
    }

    /// Makes this node's scheduler look at the schedules now (it also looks
    /// by itself at least every [`RECHECK`]).
    pub fn schedules_wake(&self) {
        self.schedules.wake.notify_one();
    }

    /// Passes of this node's scheduler so far; changes after each pass.
    pub fn schedule_passes(&self) -> watch::Receiver<u64> {
        self.schedules.passes.subscribe()
    }

    /// Starts a task for a schedule at `fire_time` (or records why it
    /// cannot), in one transaction with the fire's row.
    pub(crate) async fn schedule_fire_task(
        &self,
        schedule: &Schedule,
        fire_time: Timestamp,
        kind: FireKind,
        advance: Option<tasker_store::NextFire>,
    ) -> Result<FireResult> {
        let action = match self.task_checked(self.schedule_task(&schedule.spec)).await {
            Ok(create) => FireAction::Start(create),
            Err(
                e @ Error::Store(
                    tasker_store::Error::Database(_) | tasker_store::Error::Unavailable { .. },
                ),
            ) => {
                return Err(e);
            }
            Err(refused) => FireAction::Record {
                outcome: tasker_model::schedule::FireOutcome::Failed,
                message: Some(refused.to_string()),
            },
        };
        Ok(self
            .store
            .schedule_fire(&FireRequest {
                schedule_id: schedule.id,
                fire_time,
                kind,
                action,
                advance,
            })
            .await?)
    }
}

//! [`Scheduler`]: the leader duty that fires due schedules.
//!
//! Each pass asks the store for due schedules (and those holding a
//! buffered fire), fires each, then sleeps until the earliest next run, at
//! most [`RECHECK`] (so changes made through other nodes are seen), and
//! less while a buffered fire waits for its previous run. A change made
//! through this node wakes it at once.
//!
//! Failure: the duty is cancelled at an `.await` when leadership ends; each
//! fire is one transaction, so a cut-off pass leaves either the whole fire
//! or nothing, and the next leader's pass fires what is still due. Two
//! leaders overlapping in a hand-over meet at the fire row's key and fire
//! each time once.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::firing::Attempt;
use crate::cluster::{DutyContext, LeaderDuty};
use crate::{Engine, Result};

/// Longest sleep between two passes.
pub const RECHECK: Duration = Duration::from_secs(5);

/// How often a buffered fire checks whether its previous run finished.
const BUFFER_RECHECK: Duration = Duration::from_secs(1);

/// Due schedules fired per pass; a full batch makes the next pass start at
/// once.
const BATCH: u32 = 100;

/// The schedule-firing leader duty of one node.
pub struct Scheduler {
    engine: Engine,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    pub fn new(engine: &Engine) -> Self {
        Self {
            wake: engine.schedules.wake.clone(),
            engine: engine.clone(),
        }
    }

    /// One pass; returns how long to sleep.
    async fn pass(&self) -> Result<Duration> {
        let engine = &self.engine;
        let now = engine.clock.now();
        let due = engine.store.schedule_due(now, BATCH).await?;
        let mut waiting = false;
        for schedule in &due {
            let result: Result<()> = async {
                let mut schedule = schedule.clone();
                if schedule.buffered_fire_at.is_some() {
                    let started = engine.schedule_start_buffered(&schedule).await?;
                    if started == Attempt::Nothing {
                        waiting = true;
                    } else {
                        schedule = engine.store.schedule_get(schedule.id).await?;
                    }
                }
                let fired = engine.schedule_fire_due(&schedule, now).await?;
                if fired != Attempt::Nothing {
                    tracing::debug!(schedule = %schedule.spec.name, ?fired, "schedule fired");
                }
                Ok(())
            }
            .await;
            if let Err(error) = result {
                tracing::warn!(%error, schedule = %schedule.spec.name, "cannot fire a schedule; trying again at the next pass");
                waiting = true;
            }
        }
        if due.len() == BATCH as usize && !waiting {
            return Ok(Duration::ZERO);
        }
        let mut sleep = match engine.store.schedule_next_run().await? {
            Some(next) => (next - engine.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO),
            None => RECHECK,
        }
        .min(RECHECK);
        if waiting {
            sleep = sleep.min(BUFFER_RECHECK);
        }
        Ok(sleep)
    }
}

impl LeaderDuty for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn run(self: Arc<Self>, _context: DutyContext) -> BoxFuture<'static, ()> {
        async move {
            loop {
                let sleep = match self.pass().await {
                    Ok(sleep) => sleep,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the due schedules");
                        BUFFER_RECHECK
                    }
                };
                self.engine.schedules.passes.send_modify(|n| *n += 1);
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = self.wake.notified() => {}
                }
            }
        }
        .boxed()
    }
}

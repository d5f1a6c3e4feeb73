//! [`Sweeper`]: one leader duty per sweep (timeouts, deadlines, stuck
//! work, queue vacuum). Each run drains its work in batches, one store transaction per
//! batch, then records its counts. Cancelled by dropping its future: the
//! batch in flight commits whole or not at all.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tasker_store::{Store, SweepCounts};

use super::{MAX_BATCHES_PER_RUN, RETRY_AFTER_ERROR};
use crate::{DutyContext, LeaderDuty};

/// Which sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Running steps past their timeout are failed as `timeout`.
    Timeouts,
    /// Running tasks past their deadline fail with `deadline_exceeded`.
    Deadlines,
    /// In-flight steps that cannot make progress are repaired.
    Stuck,
    /// Queue tables with at least `min_dead` dead row versions are vacuumed.
    QueueVacuum { min_dead: u64 },
}

impl Sweep {
    /// Its name in logs and in the cluster view.
    pub fn name(self) -> &'static str {
        match self {
            Sweep::Timeouts => "timeouts",
            Sweep::Deadlines => "deadlines",
            Sweep::Stuck => "stuck",
            Sweep::QueueVacuum { .. } => "queue_vacuum",
        }
    }

    /// One batch: what it changed, by what it counts, and how many tasks
    /// it changed (a full batch means there may be more).
    async fn batch(
        self,
        store: &dyn Store,
        batch: u32,
    ) -> tasker_store::Result<(SweepCounts, u64)> {
        let mut counts = SweepCounts::new();
        let changed = match self {
            Sweep::Timeouts => {
                let (timed_out, lapsed) = store.maintenance_steps_time_out(batch).await?;
                counts.insert("timed_out".into(), timed_out);
                counts.insert("lease_expired".into(), lapsed);
                timed_out + lapsed
            }
            Sweep::Deadlines => {
                let n = store.maintenance_tasks_exceed_deadline(batch).await?;
                counts.insert("deadline_exceeded".into(), n);
                n
            }
            Sweep::Stuck => {
                let mut total = 0;
                for (kind, n) in store.maintenance_stuck_repair(batch).await? {
                    counts.insert(kind.as_str().into(), n);
                    total += n;
                }
                total
            }
            Sweep::QueueVacuum { min_dead } => {
                let vacuumed = store.maintenance_queues_vacuum(min_dead).await?;
                counts.insert("queues_vacuumed".into(), vacuumed.len() as u64);
                counts.insert(
                    "dead_row_versions".into(),
                    vacuumed.iter().map(|(_, dead)| dead).sum(),
                );
                for (namespace, dead) in &vacuumed {
                    tracing::debug!(%namespace, dead, "vacuumed the queue table");
                }
                // One pass over the queues is the whole run.
                0
            }
        };
        Ok((counts, changed))
    }
}

/// The duty that runs one [`Sweep`] every `interval` while this node leads.
#[derive(Debug)]
pub struct Sweeper {
    pub sweep: Sweep,
    pub interval: Duration,
    /// Most tasks per transaction.
    pub batch: u32,
}

impl Sweeper {
    /// One run: batches until one comes back short (or the run's cap),
    /// then the counts are recorded.
    async fn run_once(&self, context: &DutyContext) -> tasker_store::Result<SweepCounts> {
        let mut counts = SweepCounts::new();
        for _ in 0..MAX_BATCHES_PER_RUN {
            let (found, changed) = self.sweep.batch(context.store.as_ref(), self.batch).await?;
            for (key, n) in found {
                *counts.entry(key).or_default() += n;
            }
            if changed < u64::from(self.batch) {
                break;
            }
        }
        context
            .store
            .maintenance_sweep_record(self.sweep.name(), &context.node_id, &counts)
            .await?;
        Ok(counts)
    }
}

impl LeaderDuty for Sweeper {
    fn name(&self) -> &'static str {
        match self.sweep {
            Sweep::Timeouts => "timeout_sweep",
            Sweep::Deadlines => "deadline_sweep",
            Sweep::Stuck => "stuck_sweep",
            Sweep::QueueVacuum { .. } => "queue_vacuum",
        }
    }

    fn run(self: Arc<Self>, context: DutyContext) -> BoxFuture<'static, ()> {
        async move {
            loop {
                let pause = match self.run_once(&context).await {
                    Ok(counts) => {
                        let vacuum = matches!(self.sweep, Sweep::QueueVacuum { .. });
                        if !vacuum && counts.values().any(|&n| n > 0) {
                            tracing::info!(sweep = self.sweep.name(), ?counts, "sweep changed work");
                        }
                        self.interval
                    }
                    Err(error) => {
                        tracing::warn!(sweep = self.sweep.name(), %error, "sweep failed; trying again");
                        RETRY_AFTER_ERROR.min(self.interval)
                    }
                };
                tokio::time::sleep(pause).await;
            }
        }
        .boxed()
    }
}

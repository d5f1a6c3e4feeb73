//! [`RetentionDuty`]: the leader duty that runs retention passes. Each
//! batch is its own statement, so being cancelled between two (leadership
//! lost) leaves nothing half done; the next leader starts a new pass.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tasker_store::{RetentionDeleted, RetentionTasksDelete, Store};
use tokio::sync::watch;

use super::RetentionConfig;
use crate::cluster::{DutyContext, LeaderDuty};

/// What this duty has done since it was made: for logs and for tests that
/// wait for a pass to end instead of sleeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// Passes that ran to the end.
    pub passes: u64,
    /// Delete statements run over tasks (each at most `batch_size` tasks).
    pub task_batches: u64,
    pub deleted: RetentionDeleted,
    pub keys_released: u64,
    pub workers_deleted: u64,
}

#[derive(Debug)]
pub struct RetentionDuty {
    config: RetentionConfig,
    stats: watch::Sender<RetentionStats>,
}

impl RetentionDuty {
    pub fn new(config: RetentionConfig) -> Self {
        Self {
            config,
            stats: watch::Sender::new(RetentionStats::default()),
        }
    }

    /// Changes after every batch and at the end of every pass.
    pub fn stats(&self) -> watch::Receiver<RetentionStats> {
        self.stats.subscribe()
    }

    /// One pass: tasks, then keys, then workers, each in batches until a
    /// batch comes back short. Stops at the first error (the next pass
    /// starts over). Safe to run on several nodes at once: each batch
    /// skips the rows another holds.
    pub async fn pass(&self, store: &dyn Store) -> tasker_store::Result<()> {
        let c = &self.config;
        let batch = RetentionTasksDelete {
            horizons: c.horizons(),
            limit: c.batch_size,
        };
        loop {
            let deleted = store.retention_tasks_delete(&batch).await?;
            self.stats.send_modify(|s| {
                s.task_batches += 1;
                s.deleted.tasks += deleted.tasks;
                s.deleted.steps += deleted.steps;
                s.deleted.transitions += deleted.transitions;
            });
            if deleted.tasks < u64::from(c.batch_size) {
                break;
            }
            tokio::time::sleep(c.batch_pause).await;
        }
        loop {
            let released = store
                .retention_idempotency_keys_release(c.idempotency_key_expiry, c.batch_size)
                .await?;
            self.stats.send_modify(|s| s.keys_released += released);
            if released < u64::from(c.batch_size) {
                break;
            }
            tokio::time::sleep(c.batch_pause).await;
        }
        loop {
            let deleted = store
                .retention_workers_delete(c.worker_expiry, c.batch_size)
                .await?;
            self.stats.send_modify(|s| s.workers_deleted += deleted);
            if deleted < u64::from(c.batch_size) {
                break;
            }
            tokio::time::sleep(c.batch_pause).await;
        }
        Ok(())
    }
}

impl LeaderDuty for RetentionDuty {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn run(self: Arc<Self>, context: DutyContext) -> BoxFuture<'static, ()> {
        async move {
            loop {
                let before = *self.stats.borrow();
                match self.pass(context.store.as_ref()).await {
                    Ok(()) => {
                        self.stats.send_modify(|s| s.passes += 1);
                        let after = *self.stats.borrow();
                        let tasks = after.deleted.tasks - before.deleted.tasks;
                        let keys = after.keys_released - before.keys_released;
                        let workers = after.workers_deleted - before.workers_deleted;
                        if tasks + keys + workers > 0 {
                            tracing::info!(
                                tasks,
                                steps = after.deleted.steps - before.deleted.steps,
                                keys_released = keys,
                                workers,
                                "retention deleted what was past its horizon"
                            );
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "retention pass stopped; the next one starts over")
                    }
                }
                tokio::time::sleep(self.config.interval.max(Duration::from_millis(10))).await;
            }
        }
        .boxed()
    }
}

//! Time and housekeeping on the leader: the sweeps that fail attempts past
//! their timeout and tasks past their deadline and repair stuck work (each
//! a [`LeaderDuty`] that runs only while this node leads), and the
//! operator's view of dead letters with their bulk retry and resolve.
//!
//! ```text
//!  leader ─▶ Sweeper "timeouts"  every maintenance.timeout_sweep_interval
//!          ├ Sweeper "deadlines" every maintenance.deadline_sweep_interval
//!          ├ Sweeper "stuck"     every maintenance.stuck_sweep_interval
//!          └ Sweeper "queue_vacuum" every maintenance.queue_vacuum_interval:
//!             VACUUM of each queue table with enough dead row versions
//!             each run: batches of maintenance.batch_size, one transaction
//!             each, until a batch comes back short; then its counts are
//!             recorded for GET /v1/cluster
//!  any node ─▶ dead letters: list, retry or resolve by ids or by filter
//! ```
//!
//! The sweeps are a safety net, never the only guard: leases are capped at
//! the step's timeout (the queue redelivers a silent worker's step then),
//! heartbeats and results refuse work past its timeout or deadline, and
//! every decision is taken again on the locked rows, so a sweep may run
//! twice (a hand-over) or not at all for a while without harm. They must
//! never hold a transaction across batches.

mod dead_letters;
mod sweeper;

use std::sync::Arc;
use std::time::Duration;

pub use dead_letters::{DeadLetterSelection, MAX_BULK};
pub use sweeper::{Sweep, Sweeper};
use tasker_store::SweepRecord;

use crate::{Engine, LeaderDuty, Result};

/// Settings of the leader's sweeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceConfig {
    /// How often the leader fails attempts past their step's timeout (a
    /// silent worker's step is also redelivered by the queue at its
    /// timeout, since leases are capped there). Default 5 s.
    pub timeout_sweep_interval: Duration,
    /// How often the leader fails tasks past their deadline. Default 5 s.
    pub deadline_sweep_interval: Duration,
    /// How often the leader looks for stuck work (in-flight steps without
    /// a queue message, or whose message outlasts its lease). Default 60 s.
    pub stuck_sweep_interval: Duration,
    /// Most tasks one sweep transaction changes; a sweep runs batches until
    /// one comes back short. Default 500.
    pub batch_size: u32,
    /// How often the leader vacuums the queue tables that need it. Default
    /// 10 s.
    pub queue_vacuum_interval: Duration,
    /// Dead row versions that make a queue table due for a vacuum. Default
    /// 1,000.
    pub queue_vacuum_dead_rows: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            timeout_sweep_interval: Duration::from_secs(5),
            deadline_sweep_interval: Duration::from_secs(5),
            stuck_sweep_interval: Duration::from_secs(60),
            batch_size: 500,
            queue_vacuum_interval: Duration::from_secs(10),
            queue_vacuum_dead_rows: 1_000,
        }
    }
}

impl MaintenanceConfig {
    /// The sweeps as leader duties, to pass to [`Engine::cluster_start`].
    pub fn duties(&self) -> Vec<Arc<dyn LeaderDuty>> {
        [
            (Sweep::Timeouts, self.timeout_sweep_interval),
            (Sweep::Deadlines, self.deadline_sweep_interval),
            (Sweep::Stuck, self.stuck_sweep_interval),
            (
                Sweep::QueueVacuum {
                    min_dead: self.queue_vacuum_dead_rows,
                },
                self.queue_vacuum_interval,
            ),
        ]
        .into_iter()
        .map(|(sweep, interval)| {
            Arc::new(Sweeper {
                sweep,
                interval,
                batch: self.batch_size,
            }) as Arc<dyn LeaderDuty>
        })
        .collect()
    }
}

/// Sweeps that run this many batches back to back stop until their next
/// interval, so that one sweep never monopolizes the database.
const MAX_BATCHES_PER_RUN: u32 = 20;

/// How long a sweep waits after an error before it tries again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

impl Engine {
    /// What each sweep last did (when, on which leader, what it found) and
    /// its totals, as recorded in the database.
    pub async fn maintenance_sweeps(&self) -> Result<Vec<SweepRecord>> {
        Ok(self.store.maintenance_sweep_list().await?)
    }
}

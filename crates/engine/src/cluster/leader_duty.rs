//! [`LeaderDuty`]: work that must run on one node of the cluster at a time
//! (schedules, sweeps, retention, removing records of dead nodes), and
//! [`DutyRunner`], which starts every duty when this node becomes leader
//! and cancels them all when it stops being leader.
//!
//! A duty is cancelled by dropping its future at an `.await`: it must keep
//! every change it makes to one transaction (or one statement), so that
//! being cut off between two never leaves partial state. Duties must never
//! assume they are the only runner forever: a leader that lost the
//! database steps down by its own clock, and the next leader may start the
//! same duty while the old one's last statement is still in flight.

use std::sync::Arc;

use futures::future::BoxFuture;
use tasker_store::Store;
use tokio::task::JoinSet;

/// What a duty gets when it starts.
#[derive(Clone)]
pub struct DutyContext {
    pub store: Arc<dyn Store>,
    /// This node.
    pub node_id: String,
    /// The tenure the duty runs under.
    pub term: u64,
}

impl std::fmt::Debug for DutyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DutyContext")
            .field("node_id", &self.node_id)
            .field("term", &self.term)
            .finish()
    }
}

/// A leader-only duty. `run` is started when this node becomes leader and
/// its future is dropped when leadership ends; it usually loops forever.
pub trait LeaderDuty: Send + Sync + 'static {
    /// For logs, e.g. `node_reaper`.
    fn name(&self) -> &'static str;
    fn run(self: Arc<Self>, context: DutyContext) -> BoxFuture<'static, ()>;
}

/// Runs the duties while this node leads.
pub(crate) struct DutyRunner {
    duties: Vec<Arc<dyn LeaderDuty>>,
    running: JoinSet<()>,
}

impl DutyRunner {
    pub fn new(duties: Vec<Arc<dyn LeaderDuty>>) -> Self {
        Self {
            duties,
            running: JoinSet::new(),
        }
    }

    /// Starts every duty (after cancelling any still running).
    pub fn start(&mut self, context: &DutyContext) {
        self.stop();
        for duty in &self.duties {
            let name = duty.name();
            tracing::debug!(duty = name, term = context.term, "starting leader duty");
            let run = duty.clone().run(context.clone());
            self.running.spawn(async move {
                run.await;
                tracing::debug!(duty = name, "leader duty ended");
            });
        }
    }

    /// Cancels every running duty.
    pub fn stop(&mut self) {
        self.running.abort_all();
        // Aborted tasks are reaped here so the set does not grow.
        while self.running.try_join_next().is_some() {}
    }
}

impl Drop for DutyRunner {
    fn drop(&mut self) {
        self.running.abort_all();
    }
}

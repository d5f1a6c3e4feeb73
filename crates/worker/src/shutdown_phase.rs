//! [`ShutdownPhase`]: how far a worker's shutdown has gone, broadcast from
//! the [`crate::Worker`] to its step runners over a `watch` channel.
//!
//! ```text
//!   Running ──shutdown requested──▶ Draining ──grace ran out──▶ Releasing
//!   take more work                  finish what runs,           abort and release
//!                                   take no more                what still runs
//! ```

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ShutdownPhase {
    /// Not shutting down: a runner may take its next step with a completion.
    Running,
    /// Shutdown requested: running handlers finish and report, but no new
    /// work is taken.
    Draining,
    /// The grace period ran out: abort handlers and release their steps.
    Releasing,
}

/// Whether the worker still takes new work.
pub(crate) fn takes_work(phase: &watch::Receiver<ShutdownPhase>) -> bool {
    *phase.borrow() == ShutdownPhase::Running
}

/// Resolves once the shutdown reaches `target`; never if the sender is gone.
pub(crate) async fn reached(phase: &mut watch::Receiver<ShutdownPhase>, target: ShutdownPhase) {
    if phase.wait_for(|now| *now >= target).await.is_err() {
        std::future::pending::<()>().await;
    }
}

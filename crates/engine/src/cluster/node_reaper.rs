//! [`NodeReaper`]: the leader duty that deletes the registry rows of nodes
//! gone for long (silent for ten node timeouts). A node that stops
//! gracefully deletes its own row; this catches the ones that crashed.
//! Deleting is idempotent, so a second runner during a hand-over is
//! harmless. It must never delete a node still within its timeout.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::leader_duty::{DutyContext, LeaderDuty};

/// How many node timeouts a node must be silent before its row goes.
pub const STALE_AFTER_TIMEOUTS: u32 = 10;

#[derive(Debug)]
pub struct NodeReaper {
    /// `cluster.node_timeout`: the reaper runs this often.
    pub node_timeout: Duration,
}

impl LeaderDuty for NodeReaper {
    fn name(&self) -> &'static str {
        "node_reaper"
    }

    fn run(self: Arc<Self>, context: DutyContext) -> BoxFuture<'static, ()> {
        async move {
            let stale = self.node_timeout * STALE_AFTER_TIMEOUTS;
            loop {
                match context.store.node_delete_stale(stale).await {
                    Ok(0) => {}
                    Ok(removed) => {
                        tracing::info!(removed, "removed the records of nodes gone for long")
                    }
                    Err(error) => tracing::warn!(%error, "cannot remove records of gone nodes"),
                }
                tokio::time::sleep(self.node_timeout).await;
            }
        }
        .boxed()
    }
}

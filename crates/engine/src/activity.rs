//! Reads for an operator's overview: how much work each queue holds and
//! how many tasks started and finished per minute. Both are bounded reads
//! (queue rows, a time-ordered id range), never a scan of every step.

use tasker_model::Timestamp;
use tasker_store::{QueueDepth, TaskActivity};

use crate::{Engine, Result};

impl Engine {
    /// Per namespace: ready, leased and delayed steps, and since when the
    /// oldest ready one waits.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        Ok(self.store.queue_depths().await?)
    }

    /// Tasks started, completed and failed per minute since `since`
    /// (minutes without any are left out).
    pub async fn task_activity(&self, since: Timestamp) -> Result<Vec<TaskActivity>> {
        Ok(self.store.task_activity(since).await?)
    }
}

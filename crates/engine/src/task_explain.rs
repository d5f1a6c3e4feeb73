//! "Why is it waiting?" for one task: the store reads the facts in one
//! snapshot, `tasker_model::explanation` turns them into reasons. This
//! module only joins the two with the engine's liveness window; it must
//! never change anything.

use tasker_model::TaskExplanation;
use tasker_model::explanation::explain;
use uuid::Uuid;

use crate::{Engine, Result};

impl Engine {
    /// Per unfinished step of the task, what it waits for; a worker counts
    /// as live when heard from within `engine.worker_liveness`.
    pub async fn task_explain(&self, id: Uuid) -> Result<TaskExplanation> {
        let facts = self
            .store
            .task_explain_facts(id, self.config.worker_liveness)
            .await?;
        Ok(explain(&facts))
    }
}

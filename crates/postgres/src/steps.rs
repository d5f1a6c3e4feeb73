//! Reading steps: one step by id, or one of a task's steps.

use tasker_model::Step;
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;

/// One step by id; `NotFound` naming it when there is none.
pub async fn get(store: &PgStore, step_id: Uuid) -> Result<Step> {
    let task_id: Uuid = sqlx::query_scalar("SELECT task_id FROM tasker.steps WHERE id = $1")
        .bind(step_id)
        .fetch_optional(&store.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("step {step_id}")))?;
    step_of(store, task_id, step_id).await
}

/// One step of a task; `NotFound` naming it when the task has no such step.
pub async fn step_of(store: &PgStore, task_id: Uuid, step_id: Uuid) -> Result<Step> {
    crate::tasks::steps(store, task_id)
        .await?
        .into_iter()
        .find(|s| s.id == step_id)
        .ok_or_else(|| Error::not_found(format!("step {step_id}")))
}

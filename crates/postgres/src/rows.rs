//! Rows to domain records.

use sqlx::Row;
use sqlx::postgres::PgRow;
use tasker_model::{Step, StepError, Task, TemplateRecord, Transition};
use tasker_store::{Error, Result};

pub const TASK_COLUMNS: &str = "t.id, t.namespace, t.template_id, tp.name AS template_name, \
     tp.version AS template_version, t.state, t.context, t.idempotency_key, t.tags, \
     t.created_at, t.updated_at, t.finished_at, t.deadline_at";

/// `FROM` clause that goes with [`TASK_COLUMNS`].
pub const TASK_FROM: &str = "tasker.tasks t JOIN tasker.templates tp ON tp.id = t.template_id";

pub fn task(row: &PgRow) -> Result<Task> {
    let state: String = row.get("state");
    Ok(Task {
        id: row.get("id"),
        namespace: row.get("namespace"),
        template_id: row.get("template_id"),
        template_name: row.get("template_name"),
        template_version: row.get("template_version"),
        state: state.parse().map_err(invalid)?,
        context: row.get("context"),
        idempotency_key: row.get("idempotency_key"),
        tags: row.get("tags"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        finished_at: row.get("finished_at"),
        deadline_at: row.get("deadline_at"),
    })
}

pub const STEP_COLUMNS: &str = "id, task_id, position, fan_out_of, name, state, attempt, worker_id, \
     lease_expires_at, retry_at, result, error, started_at, finished_at";

pub fn step(row: &PgRow, template: &TemplateRecord) -> Result<Step> {
    let state: String = row.get("state");
    // A fan-out instance runs the template step it is an instance of.
    let position: i32 = row
        .get::<Option<i32>, _>("fan_out_of")
        .unwrap_or_else(|| row.get("position"));
    let def = template
        .definition
        .steps
        .get(position as usize)
        .ok_or_else(|| invalid(format!("step position {position} outside its template")))?;
    let error: Option<serde_json::Value> = row.get("error");
    let attempt: i32 = row.get("attempt");
    Ok(Step {
        id: row.get("id"),
        task_id: row.get("task_id"),
        name: row.get("name"),
        handler: def.handler.clone(),
        state: state.parse().map_err(invalid)?,
        attempt: attempt as u32,
        max_attempts: def.retry.max_attempts,
        depends_on: def.depends_on.clone(),
        worker_id: row.get("worker_id"),
        lease_expires_at: row.get("lease_expires_at"),
        retry_at: row.get("retry_at"),
        result: row.get("result"),
        error: error
            .map(serde_json::from_value::<StepError>)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?,
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
    })
}

pub fn transition(row: &PgRow) -> Transition {
    let attempt: Option<i32> = row.get("attempt");
    Transition {
        id: row.get("id"),
        task_id: row.get("task_id"),
        step_id: row.get("step_id"),
        step_name: row.get("step_name"),
        from_state: row.get("from_state"),
        to_state: row.get("to_state"),
        attempt: attempt.map(|a| a as u32),
        worker_id: row.get("worker_id"),
        node_id: row.get("node_id"),
        reason: row.get("reason"),
        at: row.get("at"),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Database(format!("unexpected row: {}", message.into()).into())
}

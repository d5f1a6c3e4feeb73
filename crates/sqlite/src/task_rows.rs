//! Task, step and transition rows as domain records, and the template a
//! step needs to be read (its handler, attempts and parents live in the
//! template, not in the row). Reading only: the columns here
//! are the ones every task read shares.

use std::sync::Arc;

use sqlx::sqlite::SqliteRow;
use tasker_model::{Step, StepError, Task, Template, TemplateRecord, Transition};
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::columns::{self, get, unexpected};
use crate::{SqliteStore, catalog, db};

pub(crate) const TASK_COLUMNS: &str = "t.id, t.namespace, t.template_id, \
     tp.name AS template_name, tp.version AS template_version, t.state, t.context, \
     t.idempotency_key, t.tags, t.created_at, t.updated_at, t.finished_at, t.deadline_at";

/// `FROM` clause that goes with [`TASK_COLUMNS`].
pub(crate) const TASK_FROM: &str = "tasks t JOIN templates tp ON tp.id = t.template_id";

pub(crate) fn task(row: &SqliteRow) -> Result<Task> {
    let state: String = get(row, "state")?;
    Ok(Task {
        id: columns::uuid(row, "id")?,
        namespace: get(row, "namespace")?,
        template_id: columns::uuid(row, "template_id")?,
        template_name: get(row, "template_name")?,
        template_version: get(row, "template_version")?,
        state: state.parse().map_err(unexpected)?,
        context: columns::json(row, "context")?,
        idempotency_key: get(row, "idempotency_key")?,
        tags: columns::json(row, "tags")?,
        created_at: columns::time(row, "created_at")?,
        updated_at: columns::time(row, "updated_at")?,
        finished_at: columns::time_opt(row, "finished_at")?,
        deadline_at: columns::time_opt(row, "deadline_at")?,
    })
}

pub(crate) const STEP_COLUMNS: &str = "id, task_id, position, fan_out_of, name, state, attempt, \
     worker_id, lease_expires_at, retry_at, result, error, started_at, finished_at";

pub(crate) fn step(row: &SqliteRow, template: &Template) -> Result<Step> {
    let state: String = get(row, "state")?;
    // A fan-out instance runs the template step it is an instance of.
    let position: i64 = match get::<Option<i64>>(row, "fan_out_of")? {
        Some(of) => of,
        None => get(row, "position")?,
    };
    let def = usize::try_from(position)
        .ok()
        .and_then(|p| template.steps.get(p))
        .ok_or_else(|| unexpected(format!("step position {position} outside its template")))?;
    let attempt: i64 = get(row, "attempt")?;
    Ok(Step {
        id: columns::uuid(row, "id")?,
        task_id: columns::uuid(row, "task_id")?,
        name: get(row, "name")?,
        handler: def.handler.clone(),
        state: state.parse().map_err(unexpected)?,
        attempt: u32::try_from(attempt).unwrap_or(0),
        max_attempts: def.retry.max_attempts,
        depends_on: def.depends_on.clone(),
        worker_id: get(row, "worker_id")?,
        lease_expires_at: columns::time_opt(row, "lease_expires_at")?,
        retry_at: columns::time_opt(row, "retry_at")?,
        result: columns::json_opt(row, "result")?,
        error: columns::json_opt::<StepError>(row, "error")?,
        started_at: columns::time_opt(row, "started_at")?,
        finished_at: columns::time_opt(row, "finished_at")?,
    })
}

/// Columns of [`transition`]: a transition joined (left) with its step
/// for the step's name.
pub(crate) const TRANSITION_COLUMNS: &str = "h.id, h.task_id, h.step_id, s.name AS step_name, \
     h.from_state, h.to_state, h.attempt, h.worker_id, h.node_id, h.reason, h.at";

pub(crate) fn transition(row: &SqliteRow) -> Result<Transition> {
    let attempt: Option<i64> = get(row, "attempt")?;
    Ok(Transition {
        id: get(row, "id")?,
        task_id: columns::uuid(row, "task_id")?,
        step_id: columns::uuid_opt(row, "step_id")?,
        step_name: get(row, "step_name")?,
        from_state: get(row, "from_state")?,
        to_state: get(row, "to_state")?,
        attempt: attempt.map(|a| u32::try_from(a).unwrap_or(0)),
        worker_id: get(row, "worker_id")?,
        node_id: get(row, "node_id")?,
        reason: get(row, "reason")?,
        at: columns::time(row, "at")?,
    })
}

/// The template of task `task_id` (from the catalog's cache), or not
/// found naming the task.
pub(crate) async fn template_of_task(
    store: &SqliteStore,
    task_id: Uuid,
) -> Result<Arc<TemplateRecord>> {
    let template_id: String = sqlx::query_scalar("SELECT template_id FROM tasks WHERE id = ?1")
        .bind(task_id.hyphenated())
        .fetch_optional(&store.reader)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("task {task_id}")))?;
    let template_id = Uuid::parse_str(&template_id).map_err(unexpected)?;
    catalog::template_by_id(store, template_id).await
}

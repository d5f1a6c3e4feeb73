//! Reading tasks: one task, a filtered page of tasks (newest first, paged
//! by id), a task's steps and history, one step. Reads only, through the
//! reader pool; ids are UUID v7 stored as hyphenated lowercase text, whose
//! text order is their byte order, so paging and id prefixes compare text.

use tasker_model::{Step, Task, Transition};
use tasker_store::paging::TaskListRead;
use tasker_store::{Error, Result, TaskFilter, TaskPage};
use uuid::Uuid;

use crate::task_rows::{
    self, STEP_COLUMNS, TASK_COLUMNS, TASK_FROM, TRANSITION_COLUMNS, template_of_task,
};
use crate::{SqliteStore, clock, db};

pub(crate) async fn task_get(store: &SqliteStore, id: Uuid) -> Result<Task> {
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.id = ?1"
    ))
    .bind(id.hyphenated())
    .fetch_optional(&store.reader)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    task_rows::task(&row)
}

/// A page of tasks matching `filter`, newest first; `next_cursor` names
/// the last task of a full page.
pub(crate) async fn task_list(store: &SqliteStore, filter: &TaskFilter) -> Result<TaskPage> {
    let read = TaskListRead::of(filter)?;
    let rows = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} \
         WHERE (?1 IS NULL OR t.namespace = ?1) \
           AND (?2 IS NULL OR tp.name = ?2) \
           AND (?3 IS NULL OR t.state = ?3) \
           AND (?4 IS NULL OR t.id < ?4) \
           AND (?6 IS NULL OR t.id BETWEEN ?6 AND ?7) \
           AND (?8 IS NULL OR EXISTS (SELECT 1 FROM json_each(t.tags) WHERE value = ?8)) \
           AND (?9 IS NULL OR t.created_at >= ?9) \
           AND (?10 IS NULL OR t.created_at < ?10) \
         ORDER BY t.id DESC LIMIT ?5"
    ))
    .bind(&filter.namespace)
    .bind(&filter.template)
    .bind(filter.state.map(|s| s.as_str()))
    .bind(read.below.map(|c| c.hyphenated()))
    .bind(i64::from(read.limit) + 1)
    .bind(read.id_range.map(|(low, _)| low.hyphenated()))
    .bind(read.id_range.map(|(_, high)| high.hyphenated()))
    .bind(&filter.tag)
    .bind(clock::micros_opt(filter.created_after))
    .bind(clock::micros_opt(filter.created_before))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    let tasks = rows
        .iter()
        .map(task_rows::task)
        .collect::<Result<Vec<_>>>()?;
    Ok(read.page(tasks))
}

/// A task's steps by position (fan-out instances after the template's
/// steps).
pub(crate) async fn task_steps(store: &SqliteStore, id: Uuid) -> Result<Vec<Step>> {
    let template = template_of_task(store, id).await?;
    let rows = sqlx::query(&format!(
        "SELECT {STEP_COLUMNS} FROM steps WHERE task_id = ?1 ORDER BY position"
    ))
    .bind(id.hyphenated())
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| task_rows::step(r, &template.definition))
        .collect()
}

/// Up to `limit` transitions of a task with an id above `after`, oldest
/// first.
pub(crate) async fn task_history(
    store: &SqliteStore,
    id: Uuid,
    after: i64,
    limit: u32,
) -> Result<Vec<Transition>> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?1)")
        .bind(id.hyphenated())
        .fetch_one(&store.reader)
        .await
        .map_err(db)?;
    if !exists {
        return Err(Error::not_found(format!("task {id}")));
    }
    let rows = sqlx::query(&format!(
        "SELECT {TRANSITION_COLUMNS} \
         FROM transitions h LEFT JOIN steps s ON s.id = h.step_id \
         WHERE h.task_id = ?1 AND h.id > ?2 ORDER BY h.id LIMIT ?3"
    ))
    .bind(id.hyphenated())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter().map(task_rows::transition).collect()
}

/// One step, as in [`task_steps`].
pub(crate) async fn step_get(store: &SqliteStore, step_id: Uuid) -> Result<Step> {
    let not_found = || Error::not_found(format!("step {step_id}"));
    let task_id: String = sqlx::query_scalar("SELECT task_id FROM steps WHERE id = ?1")
        .bind(step_id.hyphenated())
        .fetch_optional(&store.reader)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let task_id = Uuid::parse_str(&task_id).map_err(crate::columns::unexpected)?;
    task_steps(store, task_id)
        .await?
        .into_iter()
        .find(|s| s.id == step_id)
        .ok_or_else(not_found)
}

#[cfg(test)]
#[path = "tasks_read_tests.rs"]
mod tests;

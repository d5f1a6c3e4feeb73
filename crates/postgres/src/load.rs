//! Loading tasks for a `TaskRun` inside a transaction, locked.
//!
//! Task rows are locked in id order (`ORDER BY id FOR UPDATE`) so that
//! transactions touching several tasks (batched completions, batched
//! claims) cannot deadlock each other.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tasker_model::Timestamp;
use tasker_model::task_run::{Instance, StepRow, TaskRow};
use tasker_store::backend::{Backend, Load, LoadedTask, Lock};
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::db;

/// Locks the tasks (reading their contexts, as `load` asks), then loads
/// their steps. Returns the tasks found (by id) and the database clock
/// read after the locks were granted.
pub async fn lock_tasks(
    store: &PgStore,
    conn: &mut PgConnection,
    lock: Lock<'_>,
    load: Load,
) -> Result<(HashMap<Uuid, LoadedTask>, Timestamp)> {
    let (filter, ids, wait) = match lock {
        Lock::Tasks(ids) => ("id = ANY($1)", ids, ""),
        Lock::TasksOfSteps(ids) => (
            "id IN (SELECT task_id FROM tasker.steps WHERE id = ANY($1))",
            ids,
            "",
        ),
        Lock::FreeTasks(ids) => ("id = ANY($1)", ids, " SKIP LOCKED"),
    };
    // Two statements, not one: the steps must be read with a snapshot
    // taken after the locks were granted. One statement reads every table
    // with the snapshot of its start, so steps that a transaction holding
    // the lock changed (and committed while this one waited) would be read
    // as they were before: a sibling's completion missed, a task never
    // finalized. Contexts never change, so they come with the lock.
    let task_rows = sqlx::query(&format!(
        "SELECT id AS t_id, namespace AS t_namespace, template_id AS t_template_id, \
                state AS t_state, finished_at AS t_finished_at, deadline_at AS t_deadline_at, \
                CASE WHEN $2 THEN context END AS t_context \
         FROM tasker.tasks WHERE {filter} ORDER BY id FOR UPDATE{wait}"
    ))
    .bind(ids)
    .bind(load == Load::RowsAndContexts)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut tasks: Vec<(TaskHead, Vec<StepRow>)> = Vec::with_capacity(task_rows.len());
    for row in &task_rows {
        tasks.push((task_head(row)?, Vec::new()));
    }
    let ids: Vec<Uuid> = tasks.iter().map(|(head, _)| head.id).collect();
    let rows = sqlx::query(
        "SELECT task_id, id, state, attempt, lease_token, lease_expires_at, msg_id, retry_at, \
                worker_id, started_at, finished_at, branches, fan_out_count, fan_out_of, \
                fan_out_number, clock_timestamp() AS now \
         FROM tasker.steps WHERE task_id = ANY($1) ORDER BY task_id, position",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;

    let mut now: Option<Timestamp> = None;
    // Both lists are in task id order.
    let mut owners = tasks.iter_mut().peekable();
    for row in &rows {
        now = Some(row.get("now"));
        let task_id: Uuid = row.get("task_id");
        while owners.next_if(|(head, _)| head.id != task_id).is_some() {}
        let Some((_, steps)) = owners.peek_mut() else {
            return Err(corrupt(&format!("step row of task {task_id} out of order")));
        };
        if let Some(step) = step_row(row)? {
            steps.push(step);
        }
    }
    let now = match now {
        Some(now) => now,
        None => sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?,
    };

    let mut loaded = HashMap::with_capacity(tasks.len());
    for (head, steps) in tasks {
        let template = catalog::template_by_id(store, head.template_id).await?;
        let queue = catalog::queue_of(store, &head.namespace).await?;
        let defined = template.definition.steps.len();
        if steps.len() < defined
            || steps[..defined].iter().any(|s| s.instance.is_some())
            || steps[defined..]
                .iter()
                .any(|s| s.instance.is_none_or(|i| i.of >= defined))
        {
            return Err(corrupt(&format!(
                "task {} has {} step rows",
                head.id,
                steps.len()
            )));
        }
        loaded.insert(
            head.id,
            LoadedTask {
                namespace: head.namespace,
                queue,
                template,
                task: head.row,
                steps,
                max_fan_out: store.max_fan_out(),
                context: head.context,
            },
        );
    }
    Ok((loaded, now))
}

/// A locked task's own columns, read from its first row.
struct TaskHead {
    id: Uuid,
    namespace: String,
    template_id: Uuid,
    row: TaskRow,
    context: Option<serde_json::Value>,
}

fn task_head(row: &PgRow) -> Result<TaskHead> {
    let id: Uuid = row.get("t_id");
    let state: String = row.get("t_state");
    Ok(TaskHead {
        id,
        namespace: row.get("t_namespace"),
        template_id: row.get("t_template_id"),
        row: TaskRow {
            id,
            state: state.parse().map_err(|m: String| corrupt(&m))?,
            finished_at: row.get("t_finished_at"),
            deadline_at: row.get("t_deadline_at"),
        },
        context: row.get("t_context"),
    })
}

/// The step of a joined row; `None` for a task without step rows.
fn step_row(row: &PgRow) -> Result<Option<StepRow>> {
    let Some(id) = row.get::<Option<Uuid>, _>("id") else {
        return Ok(None);
    };
    let state: String = row.get("state");
    let attempt: i32 = row.get("attempt");
    Ok(Some(StepRow {
        id,
        state: state.parse().map_err(|m: String| corrupt(&m))?,
        attempt: attempt as u32,
        lease_token: row.get("lease_token"),
        lease_expires_at: row.get("lease_expires_at"),
        msg_id: row.get("msg_id"),
        retry_at: row.get("retry_at"),
        worker_id: row.get("worker_id"),
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
        branches: row.get("branches"),
        fan_out_count: row.get::<Option<i32>, _>("fan_out_count").map(|n| n as u32),
        instance: match (
            row.get::<Option<i32>, _>("fan_out_of"),
            row.get::<Option<i32>, _>("fan_out_number"),
        ) {
            (Some(of), Some(number)) => Some(Instance {
                of: of as usize,
                number: number as u32,
            }),
            _ => None,
        },
    }))
}

fn corrupt(message: &str) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

//! Loading tasks for a `TaskRun` inside a transaction, locked, and
//! committing with the durability asked.
//!
//! Task rows are locked in id order (`ORDER BY id FOR UPDATE`) so that
//! transactions touching several tasks (batched completions, batched
//! claims) cannot deadlock each other.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use tasker_model::Timestamp;
use tasker_model::task_run::{Instance, StepRow, TaskRow};
use tasker_store::backend::{Backend, Durability, LoadedTask, Lock};
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::{commit_error, db};

/// Locks the tasks and loads their steps. Returns the tasks found (by id) and
/// the database clock read after the locks were granted.
pub async fn lock_tasks(
    store: &PgStore,
    conn: &mut PgConnection,
    lock: Lock<'_>,
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
    let task_rows = sqlx::query(&format!(
        "SELECT id, namespace, template_id, state, finished_at, deadline_at FROM tasker.tasks \
         WHERE {filter} ORDER BY id FOR UPDATE{wait}"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let ids: Vec<Uuid> = task_rows.iter().map(|r| r.get("id")).collect();

    let step_rows = sqlx::query(
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
    let mut steps: HashMap<Uuid, Vec<StepRow>> = HashMap::new();
    for row in &step_rows {
        now = Some(row.get("now"));
        let state: String = row.get("state");
        let attempt: i32 = row.get("attempt");
        steps.entry(row.get("task_id")).or_default().push(StepRow {
            id: row.get("id"),
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
        });
    }
    let now = match now {
        Some(now) => now,
        None => sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?,
    };

    let mut loaded = HashMap::with_capacity(task_rows.len());
    for row in task_rows {
        let id: Uuid = row.get("id");
        let namespace: String = row.get("namespace");
        let state: String = row.get("state");
        let template = catalog::template_by_id(store, row.get("template_id")).await?;
        let queue = catalog::queue_of(store, &namespace).await?;
        let steps = steps.remove(&id).unwrap_or_default();
        let defined = template.definition.steps.len();
        if steps.len() < defined
            || steps[..defined].iter().any(|s| s.instance.is_some())
            || steps[defined..]
                .iter()
                .any(|s| s.instance.is_none_or(|i| i.of >= defined))
        {
            return Err(corrupt(&format!("task {id} has {} step rows", steps.len())));
        }
        loaded.insert(
            id,
            LoadedTask {
                namespace,
                queue,
                template,
                task: TaskRow {
                    id,
                    state: state.parse().map_err(|m: String| corrupt(&m))?,
                    finished_at: row.get("finished_at"),
                    deadline_at: row.get("deadline_at"),
                },
                steps,
                max_fan_out: store.max_fan_out(),
            },
        );
    }
    Ok((loaded, now))
}

fn corrupt(message: &str) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

/// Commits `tx`, without waiting for the flush when `durability` allows.
pub async fn commit(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    durability: Durability,
) -> Result<()> {
    if durability == Durability::Relaxed {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(commit_error)
}

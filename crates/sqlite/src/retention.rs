//! Retention: bounded deletes of finished tasks (with their steps and
//! transitions), releases of expired idempotency keys and deletes of worker
//! records long gone.
//!
//! Each batch is one short transaction on the writer. PostgreSQL skips rows
//! other transactions hold (`SKIP LOCKED`); on SQLite a writing transaction
//! holds the whole file, so there is nothing to skip, and a batch is kept
//! small so that it never holds the writer for long. It must never pick a
//! running task or a task with a step in flight (invariant 1: such a step
//! has a queue message).

use std::time::Duration;

use serde_json::json;
use sqlx::SqliteConnection;
use tasker_store::{Event, Result, RetentionDeleted, RetentionTasksDelete};

use crate::columns::{before, to_json_text};
use crate::{SqliteStore, clock, db};

/// Deletes one batch of finished tasks older than their horizon. The rule
/// of the task's namespace and state wins over the rule of its state; a
/// task without a rule has no cutoff and is kept. Steps and transitions
/// are deleted by statement (not by the foreign keys' cascade) so that
/// each table's count is known.
pub(crate) async fn retention_tasks_delete(
    store: &SqliteStore,
    batch: &RetentionTasksDelete,
) -> Result<RetentionDeleted> {
    let now = clock::now();
    // Each rule as {namespace, state, cutoff}: finished before the cutoff
    // is past the horizon.
    let horizons: Vec<serde_json::Value> = batch
        .horizons
        .iter()
        .map(|h| {
            json!({
                "namespace": h.namespace,
                "state": h.state.as_str(),
                "cutoff": before(now, h.keep_for),
            })
        })
        .collect();
    let mut tx = store.begin_write().await?;
    let doomed: Vec<String> = sqlx::query_scalar(
        "WITH horizon AS ( \
           SELECT json_extract(value, '$.namespace') AS namespace, \
                  json_extract(value, '$.state') AS state, \
                  json_extract(value, '$.cutoff') AS cutoff \
             FROM json_each(?1)) \
         SELECT t.id FROM tasks t \
          WHERE t.state IN ('complete', 'failed', 'cancelled') \
            AND t.finished_at < COALESCE( \
                  (SELECT h.cutoff FROM horizon h WHERE h.namespace = t.namespace AND h.state = t.state), \
                  (SELECT h.cutoff FROM horizon h WHERE h.namespace IS NULL AND h.state = t.state)) \
            AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.task_id = t.id AND s.msg_id IS NOT NULL) \
          LIMIT ?2",
    )
    .bind(to_json_text(&horizons))
    .bind(i64::from(batch.limit))
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if doomed.is_empty() {
        return Ok(RetentionDeleted::default());
    }
    let doomed = to_json_text(&doomed);
    let steps = delete_of_tasks(&mut tx, "steps", "task_id", &doomed).await?;
    let transitions = delete_of_tasks(&mut tx, "transitions", "task_id", &doomed).await?;
    let tasks = delete_of_tasks(&mut tx, "tasks", "id", &doomed).await?;
    tx.commit().await.map_err(db)?;
    let deleted = RetentionDeleted {
        tasks,
        steps,
        transitions,
    };
    store.after_commit(
        &[],
        &[
            deleted_event("tasks", deleted.tasks),
            deleted_event("steps", deleted.steps),
            deleted_event("transitions", deleted.transitions),
        ],
    );
    Ok(deleted)
}

/// Deletes the rows of `table` whose `column` names one of `task_ids` (a
/// JSON array); returns how many.
async fn delete_of_tasks(
    tx: &mut SqliteConnection,
    table: &str,
    column: &str,
    task_ids: &str,
) -> Result<u64> {
    let done = sqlx::query(&format!(
        "DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(?1))"
    ))
    .bind(task_ids)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// Releases the keys of one batch of finished tasks created longer than
/// `older_than` ago, so that a key may name a new task; returns how many.
pub(crate) async fn retention_idempotency_keys_release(
    store: &SqliteStore,
    older_than: Duration,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE tasks SET idempotency_key = NULL WHERE id IN ( \
           SELECT id FROM tasks \
            WHERE idempotency_key IS NOT NULL AND state <> 'running' AND created_at < ?1 \
            LIMIT ?2)",
    )
    .bind(before(clock::now(), older_than))
    .bind(i64::from(limit))
    .execute(&store.writer)
    .await
    .map_err(db)?;
    store.after_commit(
        &[],
        &[deleted_event("idempotency_keys", done.rows_affected())],
    );
    Ok(done.rows_affected())
}

/// Deletes one batch of worker records not seen for `older_than`; returns
/// how many.
pub(crate) async fn retention_workers_delete(
    store: &SqliteStore,
    older_than: Duration,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM workers WHERE id IN ( \
           SELECT id FROM workers WHERE last_seen_at < ?1 LIMIT ?2)",
    )
    .bind(before(clock::now(), older_than))
    .bind(i64::from(limit))
    .execute(&store.writer)
    .await
    .map_err(db)?;
    store.after_commit(&[], &[deleted_event("workers", done.rows_affected())]);
    Ok(done.rows_affected())
}

/// What the observer is told of one table's retention.
fn deleted_event(table: &'static str, rows: u64) -> Event {
    Event::RetentionDeleted { table, rows }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;

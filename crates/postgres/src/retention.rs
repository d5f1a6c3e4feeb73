//! Retention: bounded deletes of finished tasks (their steps and
//! transitions in the same statement), releases of expired idempotency
//! keys and deletes of worker records long gone.
//!
//! Each batch is one statement that picks at most `limit` rows with
//! `FOR UPDATE SKIP LOCKED`: a row another transaction holds (a task being
//! cancelled or retried, a transition being appended) is skipped, never
//! waited for, so retention never blocks running work and never holds a
//! lock longer than one batch. It must never pick a running task or a task
//! with a step in flight (invariant 1: such a step has a queue message).

use std::time::Duration;

use tasker_store::{Event, Result, RetentionDeleted, RetentionTasksDelete};

use crate::PgStore;
use crate::error::db;

/// Deletes one batch of finished tasks older than their horizon. The rule
/// of the task's namespace and state wins over the rule of its state; a
/// task without a rule has no cutoff and is kept. Steps and transitions go
/// in sibling statements of the same command (not by the foreign keys'
/// cascade) so that each table's count is known.
pub async fn tasks_delete(
    store: &PgStore,
    batch: &RetentionTasksDelete,
) -> Result<RetentionDeleted> {
    let namespaces: Vec<Option<&str>> = batch
        .horizons
        .iter()
        .map(|h| h.namespace.as_deref())
        .collect();
    let states: Vec<&str> = batch.horizons.iter().map(|h| h.state.as_str()).collect();
    let seconds: Vec<f64> = batch
        .horizons
        .iter()
        .map(|h| h.keep_for.as_secs_f64())
        .collect();
    let (tasks, steps, transitions): (i64, i64, i64) = sqlx::query_as(
        "WITH horizon AS ( \
           SELECT * FROM unnest($1::text[], $2::text[], $3::float8[]) AS h(namespace, state, secs) \
         ), doomed AS ( \
           SELECT t.id FROM tasker.tasks t \
            WHERE t.state IN ('complete', 'failed', 'cancelled') \
              AND t.finished_at < clock_timestamp() - make_interval(secs => COALESCE( \
                    (SELECT h.secs FROM horizon h WHERE h.namespace = t.namespace AND h.state = t.state), \
                    (SELECT h.secs FROM horizon h WHERE h.namespace IS NULL AND h.state = t.state))) \
              AND NOT EXISTS (SELECT 1 FROM tasker.steps s WHERE s.task_id = t.id AND s.msg_id IS NOT NULL) \
            LIMIT $4 \
              FOR UPDATE OF t SKIP LOCKED \
         ), gone_steps AS ( \
           DELETE FROM tasker.steps s USING doomed d WHERE s.task_id = d.id RETURNING 1 \
         ), gone_transitions AS ( \
           DELETE FROM tasker.transitions tr USING doomed d WHERE tr.task_id = d.id RETURNING 1 \
         ), gone_tasks AS ( \
           DELETE FROM tasker.tasks t USING doomed d WHERE t.id = d.id RETURNING 1 \
         ) \
         SELECT (SELECT count(*) FROM gone_tasks), (SELECT count(*) FROM gone_steps), \
                (SELECT count(*) FROM gone_transitions)",
    )
    .bind(&namespaces)
    .bind(&states)
    .bind(&seconds)
    .bind(i64::from(batch.limit))
    .fetch_one(&store.pool)
    .await
    .map_err(db)?;
    let deleted = RetentionDeleted {
        tasks: tasks as u64,
        steps: steps as u64,
        transitions: transitions as u64,
    };
    store.observe(&[
        deleted_event("tasks", deleted.tasks),
        deleted_event("steps", deleted.steps),
        deleted_event("transitions", deleted.transitions),
    ]);
    Ok(deleted)
}

/// Releases the keys of one batch of finished tasks created longer than
/// `older_than` ago.
pub async fn idempotency_keys_release(
    store: &PgStore,
    older_than: Duration,
    limit: u32,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE tasker.tasks SET idempotency_key = NULL WHERE id IN ( \
           SELECT id FROM tasker.tasks \
            WHERE idempotency_key IS NOT NULL AND state <> 'running' \
              AND created_at < clock_timestamp() - make_interval(secs => $1) \
            LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(older_than.as_secs_f64())
    .bind(i64::from(limit))
    .execute(&store.pool)
    .await
    .map_err(db)?;
    store.observe(&[deleted_event("idempotency_keys", done.rows_affected())]);
    Ok(done.rows_affected())
}

/// Deletes one batch of worker records not seen for `older_than`.
pub async fn workers_delete(store: &PgStore, older_than: Duration, limit: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM tasker.workers WHERE id IN ( \
           SELECT id FROM tasker.workers \
            WHERE last_seen_at < clock_timestamp() - make_interval(secs => $1) \
            LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(older_than.as_secs_f64())
    .bind(i64::from(limit))
    .execute(&store.pool)
    .await
    .map_err(db)?;
    store.observe(&[deleted_event("workers", done.rows_affected())]);
    Ok(done.rows_affected())
}

fn deleted_event(table: &'static str, rows: u64) -> Event {
    Event::RetentionDeleted { table, rows }
}

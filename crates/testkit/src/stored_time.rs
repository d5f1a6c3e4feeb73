//! Moving stored times into the past, so that tests of timeouts, deadlines,
//! leases and backoffs wait on conditions instead of sleeping the time out.
//!
//! A step's `started_at`, `lease_expires_at` and `retry_at` move back
//! together with its queue message's visibility (`vt`), so the step looks
//! exactly as it would after that much time: the lease and the message
//! still agree. A task's `created_at` and `deadline_at` move back likewise.
//! The database clock keeps running; only the stored times change.
//!
//! For tests only: it writes Tasker's tables directly and must never be
//! pointed at a database anyone cares about.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// Moves step `step_id`'s stored times and its message's visibility `by`
/// into the past. Fails when there is no such step.
pub async fn step_shift_back(pool: &PgPool, step_id: Uuid, by: Duration) -> anyhow::Result<()> {
    let seconds = by.as_secs_f64();
    let row: Option<(Option<i64>, String)> = sqlx::query_as(
        "UPDATE tasker.steps s SET \
            started_at = s.started_at - make_interval(secs => $2), \
            lease_expires_at = s.lease_expires_at - make_interval(secs => $2), \
            retry_at = s.retry_at - make_interval(secs => $2) \
         FROM tasker.tasks t JOIN tasker.namespaces n ON n.name = t.namespace \
         WHERE s.id = $1 AND t.id = s.task_id \
         RETURNING s.msg_id, n.queue",
    )
    .bind(step_id)
    .bind(seconds)
    .fetch_optional(pool)
    .await?;
    let Some((msg_id, queue)) = row else {
        anyhow::bail!("no step {step_id} to move into the past");
    };
    if let Some(msg_id) = msg_id {
        let table = format!("pgmq.\"q_{}\"", queue.to_lowercase().replace('"', "\"\""));
        sqlx::query(&format!(
            "UPDATE {table} SET vt = vt - make_interval(secs => $2) WHERE msg_id = $1"
        ))
        .bind(msg_id)
        .bind(seconds)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Moves task `task_id`'s creation time and deadline `by` into the past.
/// Fails when there is no such task.
pub async fn task_shift_back(pool: &PgPool, task_id: Uuid, by: Duration) -> anyhow::Result<()> {
    let moved = sqlx::query(
        "UPDATE tasker.tasks SET \
            created_at = created_at - make_interval(secs => $2), \
            deadline_at = deadline_at - make_interval(secs => $2) \
         WHERE id = $1",
    )
    .bind(task_id)
    .bind(by.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected();
    anyhow::ensure!(moved == 1, "no task {task_id} to move into the past");
    Ok(())
}

/// Moves every running step of task `task_id` (and their messages) `by`
/// into the past.
pub async fn running_steps_shift_back(
    pool: &PgPool,
    task_id: Uuid,
    by: Duration,
) -> anyhow::Result<()> {
    let steps: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM tasker.steps WHERE task_id = $1 AND state = 'running'")
            .bind(task_id)
            .fetch_all(pool)
            .await?;
    for step in steps {
        step_shift_back(pool, step, by).await?;
    }
    Ok(())
}

//! The leader's sweeps over the store: attempts past their timeout, tasks
//! past their deadline, in-flight steps whose queue message is gone or
//! disagrees with their lease. Each run is one transaction over at most a
//! batch of tasks, locked in id order with `SKIP LOCKED` (a task a worker
//! is reporting on right now is simply left for the next run), then the
//! queue messages: the one lock order everywhere.
//!
//! ```text
//!  find candidates (plain reads: queue tables by `vt`, tasks by deadline)
//!  BEGIN
//!    lock their tasks (ORDER BY id, FOR UPDATE SKIP LOCKED)
//!    TaskRun::time_out | exceed_deadline | resend_message | align_visibility
//!      (each checks again on the locked rows: repeating is a no-op)
//!    write every run's plan (one statement)
//!  COMMIT
//! ```
//!
//! Nothing here may change a step that is not past its time or truly
//! missing its message: the candidates are read without locks, so every
//! decision is taken again on the locked rows.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use tasker_model::TaskRun;
use tasker_model::task_run::TIMEOUT;
use tasker_store::{Event, Result, StuckKind, SweepCounts, SweepRecord};
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;
use crate::load::{self, Durability, Lock};
use crate::queue::queue_table;
use crate::steps::write_runs;

/// Every namespace with its queue.
async fn queues(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT name, queue FROM tasker.namespaces ORDER BY name")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| (r.get("name"), r.get("queue")))
        .collect())
}

/// Tasks of running steps whose lease has run out: with leases capped at
/// the timeout, every attempt past its timeout is among them. Read through
/// each queue's index on `vt`, so the cost follows the work in flight, not
/// the history.
async fn lapsed_lease_tasks(conn: &mut PgConnection, batch: u32) -> Result<Vec<Uuid>> {
    let mut tasks = Vec::new();
    for (_, queue) in queues(conn).await? {
        let room = i64::from(batch) - tasks.len() as i64;
        if room <= 0 {
            break;
        }
        let table = queue_table(&queue);
        let found: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT s.task_id FROM {table} m \
             JOIN tasker.steps s ON s.id = (m.message->>'step_id')::uuid AND s.msg_id = m.msg_id \
             WHERE m.vt <= clock_timestamp() AND s.state = 'running' \
               AND s.lease_expires_at <= clock_timestamp() \
             LIMIT $1"
        ))
        .bind(room)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        tasks.extend(found);
    }
    Ok(tasks)
}

/// Runs `op` on each of `task_ids` that is free to lock, writes the plans
/// and commits; `op` returns how many changes it made to one run.
async fn sweep_tasks<F>(store: &PgStore, task_ids: &mut Vec<Uuid>, op: F) -> Result<u64>
where
    F: Fn(&mut TaskRun<'_>, &mut Vec<Event>, tasker_model::Timestamp) -> u64,
{
    task_ids.sort_unstable();
    task_ids.dedup();
    if task_ids.is_empty() {
        return Ok(0);
    }
    let mut tx = store.pool.begin().await.map_err(db)?;
    let (loaded, now) = load::lock_tasks(store, &mut tx, Lock::FreeTasks(task_ids)).await?;
    let mut runs: HashMap<Uuid, TaskRun<'_>> =
        loaded.iter().map(|(id, t)| (*id, t.run())).collect();
    let mut changed = 0;
    let mut events = Vec::new();
    for run in runs.values_mut() {
        changed += op(run, &mut events, now);
    }
    let mut written = write_runs(store, &mut tx, &loaded, &mut runs).await?;
    written.events.extend(events);
    load::commit(tx, Durability::Flushed).await?;
    store.after_commit(&written);
    Ok(changed)
}

// Maintenance

/// Fails running steps past their timeout as `timeout`, and hands back
/// those whose lease ran out without a timeout (their worker is gone) as a
/// claim would. Counts both, by `error_type`.
pub async fn steps_time_out(store: &PgStore, batch: u32) -> Result<(u64, u64)> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let mut tasks = lapsed_lease_tasks(&mut conn, batch).await?;
    drop(conn);
    let timed_out = std::sync::atomic::AtomicU64::new(0);
    let lapsed = sweep_tasks(store, &mut tasks, |run, _, now| {
        let mut lapsed = 0;
        for i in 0..run.steps.len() {
            match run.expire_lease(i, now) {
                Some(TIMEOUT) => {
                    timed_out.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Some(_) => lapsed += 1,
                None => {}
            }
        }
        lapsed
    })
    .await?;
    Ok((timed_out.into_inner(), lapsed))
}

/// Fails running tasks past their deadline.
pub async fn tasks_exceed_deadline(store: &PgStore, batch: u32) -> Result<u64> {
    let mut tasks: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM tasker.tasks \
         WHERE deadline_at <= clock_timestamp() AND state = 'running' \
         ORDER BY id LIMIT $1",
    )
    .bind(i64::from(batch))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    sweep_tasks(store, &mut tasks, |run, _, now| {
        u64::from(run.exceed_deadline(now))
    })
    .await
}

/// Finds in-flight steps whose message is gone or hidden past their lease,
/// and repairs them.
pub async fn stuck_repair(store: &PgStore, batch: u32) -> Result<Vec<(StuckKind, u64)>> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let mut tasks: Vec<Uuid> = Vec::new();
    let namespaces = queues(&mut conn).await?;
    for (namespace, queue) in &namespaces {
        let room = i64::from(batch) - tasks.len() as i64;
        if room <= 0 {
            break;
        }
        let table = queue_table(queue);
        let found: Vec<Uuid> = sqlx::query_scalar(&format!(
            "(SELECT s.task_id FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id \
              WHERE t.namespace = $1 AND t.state = 'running' \
                AND s.state IN ('ready', 'running', 'retrying') \
                AND NOT EXISTS (SELECT 1 FROM {table} m WHERE m.msg_id = s.msg_id) \
              LIMIT $2) \
             UNION \
             (SELECT s.task_id FROM {table} m \
              JOIN tasker.steps s ON s.id = (m.message->>'step_id')::uuid AND s.msg_id = m.msg_id \
              WHERE m.vt > clock_timestamp() AND s.state = 'running' \
                AND m.vt > s.lease_expires_at + interval '1 second' \
              LIMIT $2)"
        ))
        .bind(namespace)
        .bind(room)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        tasks.extend(found);
    }
    drop(conn);
    let mut counts: HashMap<StuckKind, u64> = HashMap::new();
    tasks.sort_unstable();
    tasks.dedup();
    if !tasks.is_empty() {
        let mut tx = store.pool.begin().await.map_err(db)?;
        let (loaded, _) = load::lock_tasks(store, &mut tx, Lock::FreeTasks(&tasks)).await?;
        // The messages the locked steps name, as they are now.
        let mut visible_at: HashMap<i64, tasker_model::Timestamp> = HashMap::new();
        let mut by_queue: HashMap<&str, Vec<i64>> = HashMap::new();
        for task in loaded.values() {
            let ids = by_queue.entry(task.queue.as_str()).or_default();
            ids.extend(task.steps.iter().filter_map(|s| s.msg_id));
        }
        for (queue, ids) in &by_queue {
            let table = queue_table(queue);
            let rows = sqlx::query(&format!(
                "SELECT msg_id, vt FROM {table} WHERE msg_id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            for row in rows {
                visible_at.insert(row.get("msg_id"), row.get("vt"));
            }
        }
        let mut runs: HashMap<Uuid, TaskRun<'_>> =
            loaded.iter().map(|(id, t)| (*id, t.run())).collect();
        let mut events = Vec::new();
        for run in runs.values_mut() {
            for i in 0..run.steps.len() {
                let step = &run.steps[i];
                if !step.state.is_in_flight() {
                    continue;
                }
                let running = step.state == tasker_model::StepState::Running;
                let kind = match step.msg_id.and_then(|m| visible_at.get(&m)) {
                    None if run.resend_message(i) => {
                        if running {
                            StuckKind::RunningWithoutMessage
                        } else {
                            StuckKind::QueuedWithoutMessage
                        }
                    }
                    Some(&vt) if run.align_visibility(i, vt) => StuckKind::LeaseMessageMismatch,
                    _ => continue,
                };
                tracing::warn!(
                    task_id = %run.task.id,
                    step = %run.name(i),
                    kind = kind.as_str(),
                    "repaired stuck step"
                );
                *counts.entry(kind).or_default() += 1;
                events.push(Event::StuckRepaired {
                    kind: kind.as_str(),
                });
            }
        }
        let mut written = write_runs(store, &mut tx, &loaded, &mut runs).await?;
        written.events.extend(events);
        load::commit(tx, Durability::Flushed).await?;
        store.after_commit(&written);
    }
    Ok(StuckKind::ALL
        .into_iter()
        .map(|kind| (kind, counts.get(&kind).copied().unwrap_or(0)))
        .collect())
}

/// Records a sweep's run and adds its counts to its totals.
pub async fn sweep_record(
    store: &PgStore,
    name: &str,
    node_id: &str,
    counts: &SweepCounts,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tasker.maintenance_sweeps AS s (name, last_run_at, node_id, last_counts, totals) \
         VALUES ($1, clock_timestamp(), $2, $3, $3) \
         ON CONFLICT (name) DO UPDATE SET \
            last_run_at = excluded.last_run_at, node_id = excluded.node_id, \
            last_counts = excluded.last_counts, \
            totals = coalesce((SELECT jsonb_object_agg(k, \
                        coalesce((s.totals->>k)::bigint, 0) + coalesce((excluded.totals->>k)::bigint, 0)) \
                     FROM (SELECT jsonb_object_keys(s.totals) UNION SELECT jsonb_object_keys(excluded.totals)) AS keys(k)), \
                     '{}')",
    )
    .bind(name)
    .bind(node_id)
    .bind(serde_json::to_value(counts).expect("counts serialize"))
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}

/// Every sweep's record, by name.
pub async fn sweep_list(store: &PgStore) -> Result<Vec<SweepRecord>> {
    let rows = sqlx::query(
        "SELECT name, last_run_at, node_id, last_counts, totals \
         FROM tasker.maintenance_sweeps ORDER BY name",
    )
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|row| {
            let counts = |column: &str| -> Result<SweepCounts> {
                let value: serde_json::Value = row.get(column);
                serde_json::from_value(value).map_err(|e| {
                    tasker_store::Error::Database(format!("unexpected row: {e}").into())
                })
            };
            Ok(SweepRecord {
                name: row.get("name"),
                last_run_at: row.get("last_run_at"),
                node_id: row.get("node_id"),
                last_counts: counts("last_counts")?,
                totals: counts("totals")?,
            })
        })
        .collect()
}

/// Vacuums the queue tables with at least `min_dead` dead row versions.
/// Every message leaves two or three (its insert is updated by the claim
/// and then deleted) and autovacuum visits a database at most once per
/// `autovacuum_naptime` (a minute by default), so a busy queue piles up a
/// minute of them between visits, and every read walks past them in the
/// queue's index. The live part of a queue table is small, so vacuuming
/// it is cheap. `VACUUM` runs outside any transaction and takes no lock
/// that blocks reads or writes.
pub(crate) async fn queues_vacuum(store: &PgStore, min_dead: u64) -> Result<Vec<(String, u64)>> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let due: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT n.name, n.queue, s.n_dead_tup \
         FROM tasker.namespaces n \
         JOIN pg_stat_user_tables s ON s.schemaname = 'pgmq' AND s.relname = 'q_' || lower(n.queue) \
         WHERE s.n_dead_tup >= $1 ORDER BY s.n_dead_tup DESC",
    )
    .bind(i64::try_from(min_dead).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut vacuumed = Vec::with_capacity(due.len());
    for (namespace, queue, dead) in due {
        sqlx::query(&format!("VACUUM {}", queue_table(&queue)))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        vacuumed.push((namespace, dead.max(0) as u64));
    }
    Ok(vacuumed)
}

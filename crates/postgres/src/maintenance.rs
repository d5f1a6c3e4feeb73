//! The sweeps' SQL: the read-only finders of their candidates (queue tables
//! by `vt`, tasks by deadline), the record of each sweep's runs, and the
//! vacuum of the queue tables. The sweeps themselves (lock, re-check on the
//! locked rows, write) are the store crate's orchestration.

use sqlx::{PgConnection, Row};
use tasker_store::{Result, SweepCounts, SweepRecord};
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;
use crate::queue::queue_table;

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
pub async fn lapsed_lease_tasks(store: &PgStore, batch: u32) -> Result<Vec<Uuid>> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let mut tasks = Vec::new();
    for (_, queue) in queues(&mut conn).await? {
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

/// Running tasks past their deadline, in id order.
pub async fn past_deadline_tasks(store: &PgStore, batch: u32) -> Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM tasker.tasks \
         WHERE deadline_at <= clock_timestamp() AND state = 'running' \
         ORDER BY id LIMIT $1",
    )
    .bind(i64::from(batch))
    .fetch_all(&store.pool)
    .await
    .map_err(db)
}

/// Running tasks with an in-flight step whose message is gone, or a running
/// step whose message is hidden more than a second past its lease.
pub async fn maybe_stuck_tasks(store: &PgStore, batch: u32) -> Result<Vec<Uuid>> {
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
    Ok(tasks)
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

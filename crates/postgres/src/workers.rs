//! The worker registry.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Row;
use tasker_store::{Result, Worker, WorkerRegistration};

use crate::PgStore;
use crate::error::db;

const COLUMNS: &str =
    "id, namespaces, handlers, concurrency, version, node_id, registered_at, last_seen_at";

fn worker(row: &sqlx::postgres::PgRow) -> Worker {
    let concurrency: i32 = row.get("concurrency");
    Worker {
        worker_id: row.get("id"),
        namespaces: row.get("namespaces"),
        handlers: row.get("handlers"),
        concurrency: concurrency as u32,
        version: row.get("version"),
        node_id: row.get("node_id"),
        registered_at: row.get("registered_at"),
        last_seen_at: row.get("last_seen_at"),
    }
}

pub async fn register(store: &PgStore, r: &WorkerRegistration) -> Result<Worker> {
    let row = sqlx::query(&format!(
        "INSERT INTO tasker.workers (id, namespaces, handlers, concurrency, version, node_id) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET namespaces = EXCLUDED.namespaces, handlers = EXCLUDED.handlers, \
           concurrency = EXCLUDED.concurrency, version = EXCLUDED.version, node_id = EXCLUDED.node_id, \
           registered_at = clock_timestamp(), last_seen_at = clock_timestamp() \
         RETURNING {COLUMNS}"
    ))
    .bind(&r.worker_id)
    .bind(&r.namespaces)
    .bind(&r.handlers)
    .bind(r.concurrency.min(i32::MAX as u32) as i32)
    .bind(&r.version)
    .bind(store.node_id())
    .fetch_one(&store.pool)
    .await
    .map_err(db)?;
    Ok(worker(&row))
}

pub async fn seen(store: &PgStore, worker_ids: &[String]) -> Result<()> {
    if worker_ids.is_empty() {
        return Ok(());
    }
    // Skip rows touched within the last second: this table should not churn.
    sqlx::query(
        "UPDATE tasker.workers SET last_seen_at = clock_timestamp(), node_id = $2 \
         WHERE id = ANY($1) AND last_seen_at < clock_timestamp() - interval '1 second'",
    )
    .bind(worker_ids)
    .bind(store.node_id())
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn list(store: &PgStore, within: Duration) -> Result<Vec<Worker>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasker.workers \
         WHERE last_seen_at > clock_timestamp() - make_interval(secs => $1) ORDER BY last_seen_at DESC"
    ))
    .bind(within.as_secs_f64())
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    Ok(rows.iter().map(worker).collect())
}

/// One worker, if it was seen within `within`.
pub async fn get(store: &PgStore, worker_id: &str, within: Duration) -> Result<Option<Worker>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasker.workers \
         WHERE id = $1 AND last_seen_at > clock_timestamp() - make_interval(secs => $2)"
    ))
    .bind(worker_id)
    .bind(within.as_secs_f64())
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    Ok(row.as_ref().map(worker))
}

/// Per worker, its steps running under a lease: the hidden messages of
/// every queue whose step is running, so the step table is only read by
/// primary key for work in flight.
pub async fn in_flight(store: &PgStore) -> Result<HashMap<String, u64>> {
    let queues: Vec<String> = sqlx::query_scalar("SELECT queue FROM tasker.namespaces")
        .fetch_all(&store.pool)
        .await
        .map_err(db)?;
    if queues.is_empty() {
        return Ok(HashMap::new());
    }
    // Queue names derive from namespaces checked against `^[a-z][a-z0-9_]*$`
    // (a CHECK constraint), so they are safe identifiers.
    let parts: Vec<String> = queues
        .iter()
        .map(|queue| {
            format!(
                "SELECT s.worker_id FROM pgmq.\"q_{queue}\" m \
                   JOIN tasker.steps s ON s.id = (m.message->>'step_id')::uuid \
                  WHERE m.vt > clock_timestamp() AND s.state = 'running' \
                    AND s.worker_id IS NOT NULL"
            )
        })
        .collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT worker_id, count(*) FROM ({}) leased GROUP BY worker_id",
        parts.join(" UNION ALL ")
    ))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(worker, count)| (worker, u64::try_from(count).unwrap_or(0)))
        .collect())
}

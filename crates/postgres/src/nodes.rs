//! The node registry: each node's row, refreshed by its heartbeat.

use std::time::Duration;

use sqlx::Row;
use tasker_store::{Node, NodeRegistration, Result};

use crate::PgStore;
use crate::error::db;

const COLUMNS: &str = "id, version, address, pid, started_at, last_heartbeat_at";

fn node(row: &sqlx::postgres::PgRow) -> Node {
    let pid: i32 = row.get("pid");
    Node {
        node_id: row.get("id"),
        version: row.get("version"),
        address: row.get("address"),
        pid: u32::try_from(pid).unwrap_or(0),
        started_at: row.get("started_at"),
        last_heartbeat_at: row.get("last_heartbeat_at"),
    }
}

pub async fn heartbeat(store: &PgStore, n: &NodeRegistration) -> Result<Node> {
    let row = sqlx::query(&format!(
        "INSERT INTO tasker.nodes (id, version, address, pid, started_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, address = EXCLUDED.address, \
           pid = EXCLUDED.pid, started_at = EXCLUDED.started_at, \
           last_heartbeat_at = clock_timestamp() \
         RETURNING {COLUMNS}"
    ))
    .bind(&n.node_id)
    .bind(&n.version)
    .bind(&n.address)
    .bind(i32::try_from(n.pid).unwrap_or(i32::MAX))
    .bind(n.started_at)
    .fetch_one(&store.pool)
    .await
    .map_err(db)?;
    Ok(node(&row))
}

pub async fn list(store: &PgStore, within: Duration) -> Result<Vec<Node>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasker.nodes \
         WHERE last_heartbeat_at > clock_timestamp() - make_interval(secs => $1) ORDER BY id"
    ))
    .bind(within.as_secs_f64())
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    Ok(rows.iter().map(node).collect())
}

pub async fn delete(store: &PgStore, node_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM tasker.nodes WHERE id = $1")
        .bind(node_id)
        .execute(&store.pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn delete_stale(store: &PgStore, older_than: Duration) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM tasker.nodes \
         WHERE last_heartbeat_at < clock_timestamp() - make_interval(secs => $1)",
    )
    .bind(older_than.as_secs_f64())
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

//! Queue depths for metrics: counted from the PGMQ queue tables, which hold
//! only in-flight work (messages are deleted when a step finishes), so a
//! scrape never scans the step table. Leased steps are told apart from
//! delayed retries by looking up the steps of hidden messages only.

use sqlx::Row;
use tasker_store::{QueueDepth, Result};

use crate::PgStore;
use crate::error::db;

pub async fn read(store: &PgStore) -> Result<Vec<QueueDepth>> {
    let queues: Vec<(String, String)> =
        sqlx::query_as("SELECT name, queue FROM tasker.namespaces ORDER BY name")
            .fetch_all(&store.pool)
            .await
            .map_err(db)?;
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    // Queue names are `tasker_<namespace>` with namespaces checked against
    // `^[a-z][a-z0-9_]*$` (a CHECK constraint), so they are safe identifiers.
    let parts: Vec<String> = queues
        .iter()
        .enumerate()
        .map(|(i, (_, queue))| {
            format!(
                "SELECT {i} AS i, \
                   (SELECT count(*) FROM pgmq.\"q_{queue}\" WHERE vt <= now) AS ready, \
                   (SELECT min(enqueued_at) FROM pgmq.\"q_{queue}\" WHERE vt <= now) AS oldest_ready, \
                   (SELECT count(*) FROM pgmq.\"q_{queue}\" WHERE vt > now) AS hidden, \
                   (SELECT count(*) FROM pgmq.\"q_{queue}\" m \
                      JOIN tasker.steps s ON s.id = (m.message->>'step_id')::uuid \
                     WHERE m.vt > now AND s.state = 'running') AS leased \
                 FROM (SELECT clock_timestamp() AS now) c"
            )
        })
        .collect();
    let rows = sqlx::query(&parts.join(" UNION ALL "))
        .fetch_all(&store.pool)
        .await
        .map_err(db)?;
    let mut depths: Vec<QueueDepth> = queues
        .into_iter()
        .map(|(namespace, _)| QueueDepth {
            namespace,
            ready: 0,
            leased: 0,
            delayed: 0,
            oldest_ready_at: None,
        })
        .collect();
    for row in rows {
        let i: i32 = row.get("i");
        let count = |name: &str| u64::try_from(row.get::<i64, _>(name)).unwrap_or(0);
        let depth = &mut depths[i as usize];
        depth.ready = count("ready");
        depth.leased = count("leased");
        depth.delayed = count("hidden").saturating_sub(depth.leased);
        depth.oldest_ready_at = row.get("oldest_ready");
    }
    Ok(depths)
}

//! Tasks started, completed and failed per minute, for the dashboard's
//! chart: a range of the primary key, as `tasker_store::task_activity`
//! sets the window.

use sqlx::Row;
use tasker_model::Timestamp;
use tasker_store::{Result, TaskActivity, task_activity};

use crate::PgStore;
use crate::error::db;

pub async fn read(store: &PgStore, since: Timestamp) -> Result<Vec<TaskActivity>> {
    let lowest_id = task_activity::lowest_task_id(since);
    let rows = sqlx::query(
        "WITH recent AS ( \
             SELECT created_at, finished_at, state FROM tasker.tasks \
              WHERE id >= $1 AND (created_at >= $2 OR finished_at >= $2)), \
         events AS ( \
             SELECT date_trunc('minute', created_at) AS minute, 1 AS started, 0 AS completed, 0 AS failed \
               FROM recent WHERE created_at >= $2 \
             UNION ALL \
             SELECT date_trunc('minute', finished_at), 0, \
                    (state = 'complete')::int, (state = 'failed')::int \
               FROM recent WHERE finished_at >= $2) \
         SELECT minute, sum(started)::bigint AS started, sum(completed)::bigint AS completed, \
                sum(failed)::bigint AS failed \
           FROM events GROUP BY minute ORDER BY minute",
    )
    .bind(lowest_id)
    .bind(since)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    Ok(rows
        .iter()
        .map(|row| {
            let count = |name: &str| u64::try_from(row.get::<i64, _>(name)).unwrap_or(0);
            TaskActivity {
                minute: row.get("minute"),
                started: count("started"),
                completed: count("completed"),
                failed: count("failed"),
            }
        })
        .collect())
}

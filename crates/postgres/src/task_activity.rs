//! Tasks started, completed and failed per minute, for the dashboard's
//! chart. Task ids are UUID v7, ordered by creation time, so the read is a
//! range of the primary key: tasks created from a day before the window
//! on. A task that runs longer than that day is not counted when it
//! finishes; the chart is a picture of recent activity, not an audit.

use sqlx::Row;
use tasker_model::Timestamp;
use tasker_store::{Result, TaskActivity};
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;

/// How far before the window a finishing task may have been created.
const LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(1);

pub async fn read(store: &PgStore, since: Timestamp) -> Result<Vec<TaskActivity>> {
    let lowest_id = first_id_at(since - LOOKBACK);
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

/// The smallest UUID v7 of a task created at `at`: its first 48 bits are
/// the creation time in milliseconds, the rest zero.
fn first_id_at(at: Timestamp) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_id_sorts_before_every_id_made_at_that_time() {
        let at: Timestamp = "2026-11-30T12:00:00.123Z".parse().unwrap();
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        );
        let id = Uuid::new_v7(ts);
        assert!(first_id_at(at) <= id);
        assert!(first_id_at(at + chrono::TimeDelta::milliseconds(1)) > id);
    }
}

//! The tasks the leader's sweeps look at: plain reads, without the write
//! lock, each bounded by a batch size. They only nominate: the sweep loads
//! the tasks in its writing transaction and decides again on what it
//! loaded, so a candidate that changed meanwhile is left alone.
//!
//! Must never: write.

use tasker_store::Result;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::{SqliteStore, clock, db};

/// Tasks of running steps whose lease has run out (leases are capped at the
/// timeout, so every attempt past its timeout is among them). Read through
/// the queue's index on visibility: the cost follows the work in flight.
pub async fn lapsed_lease_tasks(store: &SqliteStore, batch: u32) -> Result<Vec<Uuid>> {
    let now = clock::micros(clock::now());
    let ids: Vec<Hyphenated> = sqlx::query_scalar(
        "SELECT DISTINCT s.task_id FROM queue_messages m \
         JOIN steps s ON s.id = json_extract(m.message, '$.step_id') AND s.msg_id = m.msg_id \
         WHERE m.vt <= ?1 AND s.state = 'running' AND s.lease_expires_at <= ?1 \
         LIMIT ?2",
    )
    .bind(now)
    .bind(i64::from(batch))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    Ok(ids.into_iter().map(Hyphenated::into_uuid).collect())
}

/// Running tasks past their deadline, by id.
pub async fn deadline_tasks(store: &SqliteStore, batch: u32) -> Result<Vec<Uuid>> {
    let ids: Vec<Hyphenated> = sqlx::query_scalar(
        "SELECT id FROM tasks WHERE deadline_at <= ? AND state = 'running' ORDER BY id LIMIT ?",
    )
    .bind(clock::micros(clock::now()))
    .bind(i64::from(batch))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    Ok(ids.into_iter().map(Hyphenated::into_uuid).collect())
}

/// Tasks that may have a stuck step: an in-flight step of a running task
/// whose message is gone, or a running step whose message is hidden more
/// than a second past its lease.
pub async fn stuck_tasks(store: &SqliteStore, batch: u32) -> Result<Vec<Uuid>> {
    let ids: Vec<Hyphenated> = sqlx::query_scalar(
        "SELECT task_id FROM ( \
            SELECT s.task_id FROM steps s JOIN tasks t ON t.id = s.task_id \
            WHERE t.state = 'running' AND s.state IN ('ready', 'running', 'retrying') \
              AND NOT EXISTS (SELECT 1 FROM queue_messages m WHERE m.msg_id = s.msg_id) \
            LIMIT ?2) \
         UNION \
         SELECT task_id FROM ( \
            SELECT s.task_id FROM queue_messages m \
            JOIN steps s ON s.id = json_extract(m.message, '$.step_id') AND s.msg_id = m.msg_id \
            WHERE m.vt > ?1 AND s.state = 'running' AND m.vt > s.lease_expires_at + 1000000 \
            LIMIT ?2)",
    )
    .bind(clock::micros(clock::now()))
    .bind(i64::from(batch))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    Ok(ids.into_iter().map(Hyphenated::into_uuid).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteLocation, catalog};

    #[tokio::test]
    async fn past_deadlines_and_missing_messages_are_nominated() {
        let store = SqliteStore::open(SqliteLocation::Memory, "n")
            .await
            .unwrap();
        catalog::migrate(&store).await.unwrap();
        let one = serde_json::json!({
            "namespace": "default", "name": "one", "version": "1",
            "steps": [{"name": "a", "handler": "h"}],
        });
        let deadline = Some(std::time::Duration::from_secs(60));
        let (_, task_id) =
            crate::testing::created_task(&store, one, serde_json::json!({}), deadline).await;
        assert!(deadline_tasks(&store, 10).await.unwrap().is_empty());
        assert!(stuck_tasks(&store, 10).await.unwrap().is_empty());
        assert!(lapsed_lease_tasks(&store, 10).await.unwrap().is_empty());

        // The deadline passes; the ready step's message disappears.
        sqlx::query("UPDATE tasks SET deadline_at = deadline_at - 120000000")
            .execute(&store.writer)
            .await
            .unwrap();
        sqlx::query("DELETE FROM queue_messages")
            .execute(&store.writer)
            .await
            .unwrap();
        assert_eq!(deadline_tasks(&store, 10).await.unwrap(), [task_id]);
        assert_eq!(stuck_tasks(&store, 10).await.unwrap(), [task_id]);
        assert!(deadline_tasks(&store, 0).await.unwrap().is_empty());
    }
}

//! Queue depths for metrics: counted from `queue_messages`, which holds
//! only in-flight work (a message is deleted when its step finishes), so a
//! scrape never scans the step table. Leased steps are told apart from
//! delayed retries by looking up the steps of hidden messages only. One
//! statement, so every namespace's numbers are of one moment.

use tasker_store::{QueueDepth, Result};

use crate::columns::{self, get};
use crate::{SqliteStore, clock, db};

/// Per namespace (by name), the queue's ready, leased and delayed work.
pub(crate) async fn queue_depths(store: &SqliteStore) -> Result<Vec<QueueDepth>> {
    let rows = sqlx::query(
        "SELECT n.name, \
           (SELECT count(*) FROM queue_messages WHERE queue = n.queue AND vt <= ?1) AS ready, \
           (SELECT min(enqueued_at) FROM queue_messages WHERE queue = n.queue AND vt <= ?1) \
             AS oldest_ready, \
           (SELECT count(*) FROM queue_messages WHERE queue = n.queue AND vt > ?1) AS hidden, \
           (SELECT count(*) FROM queue_messages m \
              JOIN steps s ON s.id = json_extract(m.message, '$.step_id') \
             WHERE m.queue = n.queue AND m.vt > ?1 AND s.state = 'running') AS leased \
         FROM namespaces n ORDER BY n.name",
    )
    .bind(clock::micros(clock::now()))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|row| {
            let leased = columns::count(row, "leased")?;
            Ok(QueueDepth {
                namespace: get(row, "name")?,
                ready: columns::count(row, "ready")?,
                leased,
                delayed: columns::count(row, "hidden")?.saturating_sub(leased),
                oldest_ready_at: columns::time_opt(row, "oldest_ready")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, execute, test_store};

    #[tokio::test]
    async fn depths_tell_ready_leased_and_delayed_work_apart_per_namespace() {
        let store = test_store().await;
        testing::namespace(&store, "idle").await;
        let task = testing::task(&store, "default", &["a", "b", "c", "d", "e"]).await;
        // a, b ready; c leased; d a lease that ran out (ready again); e a
        // retry waiting out its backoff.
        testing::run_step(&store, &task.steps[2], "w1", 60).await;
        testing::run_step(&store, &task.steps[3], "w1", -1).await;
        execute(
            &store,
            &format!(
                "UPDATE queue_messages SET vt = vt + 30000000 \
                 WHERE msg_id = (SELECT msg_id FROM steps WHERE id = '{}')",
                task.steps[4]
            ),
        )
        .await;
        execute(
            &store,
            &format!(
                "UPDATE steps SET state = 'retrying', retry_at = 0 WHERE id = '{}'",
                task.steps[4]
            ),
        )
        .await;
        let oldest: i64 = sqlx::query_scalar(
            "SELECT min(enqueued_at) FROM queue_messages WHERE vt <= ?1 AND queue = 'default'",
        )
        .bind(clock::micros(clock::now()))
        .fetch_one(&store.reader)
        .await
        .unwrap();

        let depths = queue_depths(&store).await.unwrap();
        assert_eq!(
            depths,
            vec![
                QueueDepth {
                    namespace: "default".into(),
                    ready: 3,
                    leased: 1,
                    delayed: 1,
                    oldest_ready_at: Some(clock::from_micros(oldest)),
                },
                QueueDepth {
                    namespace: "idle".into(),
                    ready: 0,
                    leased: 0,
                    delayed: 0,
                    oldest_ready_at: None,
                },
            ]
        );
    }
}

//! Tasks started, completed and failed per minute, for the dashboard's
//! chart: a range of the primary key, as `tasker_store::task_activity`
//! sets the window (ids are UUID v7 stored as hyphenated text, whose text
//! order is their byte order).

use tasker_model::Timestamp;
use tasker_store::{Result, TaskActivity, task_activity};

use crate::columns::{self, get};
use crate::{SqliteStore, clock, db};

/// A minute in stored microseconds.
const MINUTE: i64 = 60_000_000;

/// Per minute since `since`, tasks created, completed and failed (only
/// minutes with any), oldest first.
pub(crate) async fn task_activity(
    store: &SqliteStore,
    since: Timestamp,
) -> Result<Vec<TaskActivity>> {
    let lowest_id = task_activity::lowest_task_id(since);
    let rows = sqlx::query(
        "WITH recent AS ( \
             SELECT created_at, finished_at, state FROM tasks \
              WHERE id >= ?1 AND (created_at >= ?2 OR finished_at >= ?2)), \
         events AS ( \
             SELECT created_at / ?3 * ?3 AS minute, 1 AS started, 0 AS completed, 0 AS failed \
               FROM recent WHERE created_at >= ?2 \
             UNION ALL \
             SELECT finished_at / ?3 * ?3, 0, state = 'complete', state = 'failed' \
               FROM recent WHERE finished_at >= ?2) \
         SELECT minute, sum(started) AS started, sum(completed) AS completed, \
                sum(failed) AS failed \
           FROM events GROUP BY minute ORDER BY minute",
    )
    .bind(lowest_id.hyphenated())
    .bind(clock::micros(since))
    .bind(MINUTE)
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|row| {
            Ok(TaskActivity {
                minute: clock::from_micros(get(row, "minute")?),
                started: columns::count(row, "started")?,
                completed: columns::count(row, "completed")?,
                failed: columns::count(row, "failed")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DurationRound, TimeDelta};

    use super::*;
    use crate::testing::{self, execute, test_store};

    #[tokio::test]
    async fn activity_counts_starts_and_ends_per_minute_within_the_window() {
        let store = test_store().await;
        let minute = clock::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
        // Two created this minute; one of them completes, another task
        // created two minutes ago fails this minute.
        let a = testing::task(&store, "default", &["s"]).await;
        let b = testing::task(&store, "default", &["s"]).await;
        let old = testing::task(&store, "default", &["s"]).await;
        let long_ago = testing::task(&store, "default", &["s"]).await;
        let at = |m: Timestamp| clock::micros(m);
        execute(
            &store,
            &format!(
                "UPDATE tasks SET created_at = {} WHERE id IN ('{}', '{}')",
                at(minute),
                a.id,
                b.id
            ),
        )
        .await;
        execute(
            &store,
            &format!(
                "UPDATE tasks SET created_at = {} WHERE id = '{}'",
                at(minute - TimeDelta::minutes(2)),
                old.id
            ),
        )
        .await;
        // Created before the window: only its end counts.
        execute(
            &store,
            &format!(
                "UPDATE tasks SET created_at = {} WHERE id = '{}'",
                at(minute - TimeDelta::hours(2)),
                long_ago.id
            ),
        )
        .await;
        testing::finish_task(&store, &a, "complete", minute + TimeDelta::seconds(1)).await;
        testing::finish_task(&store, &old, "failed", minute + TimeDelta::seconds(2)).await;
        testing::finish_task(&store, &long_ago, "cancelled", minute).await;

        let since = minute - TimeDelta::minutes(5);
        let activity = task_activity(&store, since).await.unwrap();
        assert_eq!(
            activity,
            vec![
                TaskActivity {
                    minute: minute - TimeDelta::minutes(2),
                    started: 1,
                    completed: 0,
                    failed: 0,
                },
                TaskActivity {
                    minute,
                    started: 2,
                    completed: 1,
                    failed: 1,
                },
            ]
        );
        assert!(
            task_activity(&store, minute + TimeDelta::minutes(1))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

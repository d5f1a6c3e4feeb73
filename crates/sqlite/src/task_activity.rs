//! Tasks started, completed and failed per minute, for the dashboard's
//! chart. Task ids are UUID v7, ordered by creation time (and so is their
//! hyphenated text), so the read is a range of the primary key: tasks
//! created from a day before the window on. A task that runs longer than
//! that day is not counted when it finishes; the chart is a picture of
//! recent activity, not an audit.

use tasker_model::Timestamp;
use tasker_store::{Result, TaskActivity};
use uuid::Uuid;

use crate::columns::{self, get};
use crate::{SqliteStore, clock, db};

/// How far before the window a finishing task may have been created.
const LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// A minute in stored microseconds.
const MINUTE: i64 = 60_000_000;

/// Per minute since `since`, tasks created, completed and failed (only
/// minutes with any), oldest first.
pub(crate) async fn task_activity(
    store: &SqliteStore,
    since: Timestamp,
) -> Result<Vec<TaskActivity>> {
    let lowest_id = first_id_at(since - LOOKBACK);
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
    use chrono::{DurationRound, TimeDelta};

    use super::*;
    use crate::testing::{self, execute, test_store};

    #[test]
    fn first_id_sorts_before_every_id_made_at_that_time_also_as_text() {
        let at: Timestamp = "2026-11-30T12:00:00.123Z".parse().unwrap();
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        );
        let id = Uuid::new_v7(ts);
        assert!(first_id_at(at) <= id);
        assert!(first_id_at(at).to_string() <= id.to_string());
        let later = first_id_at(at + TimeDelta::milliseconds(1));
        assert!(later > id);
        assert!(later.to_string() > id.to_string());
    }

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

//! The worker registry: each worker's registration (what it runs) and when
//! it was last heard from, and the steps it holds leases on. Every time is
//! the store's clock ([`crate::clock`]); nothing here decides whether a
//! worker is alive beyond the `within` the caller gives.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::sqlite::SqliteRow;
use tasker_store::{Result, Worker, WorkerRegistration};

use crate::columns::{self, before, get, to_json_text};
use crate::{SqliteStore, clock, db};

const COLUMNS: &str =
    "id, namespaces, handlers, concurrency, version, node_id, registered_at, last_seen_at";

/// Rows touched this recently are not touched again by [`workers_seen`]:
/// the table should not churn with every poll.
const SEEN_RESOLUTION: Duration = Duration::from_secs(1);

fn worker(row: &SqliteRow) -> Result<Worker> {
    let concurrency: i64 = get(row, "concurrency")?;
    Ok(Worker {
        worker_id: get(row, "id")?,
        namespaces: columns::json(row, "namespaces")?,
        handlers: columns::json(row, "handlers")?,
        concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
        version: get(row, "version")?,
        node_id: get(row, "node_id")?,
        registered_at: columns::time(row, "registered_at")?,
        last_seen_at: columns::time(row, "last_seen_at")?,
    })
}

/// Records (or refreshes) a worker's registration, heard by this node now.
pub(crate) async fn worker_register(
    store: &SqliteStore,
    registration: &WorkerRegistration,
) -> Result<Worker> {
    let now = clock::micros(clock::now());
    let row = sqlx::query(&format!(
        "INSERT INTO workers (id, namespaces, handlers, concurrency, version, node_id, \
           registered_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (id) DO UPDATE SET namespaces = excluded.namespaces, \
           handlers = excluded.handlers, concurrency = excluded.concurrency, \
           version = excluded.version, node_id = excluded.node_id, \
           registered_at = excluded.registered_at, last_seen_at = excluded.last_seen_at \
         RETURNING {COLUMNS}"
    ))
    .bind(&registration.worker_id)
    .bind(to_json_text(&registration.namespaces))
    .bind(to_json_text(&registration.handlers))
    .bind(i64::from(registration.concurrency.min(i32::MAX as u32)))
    .bind(&registration.version)
    .bind(store.node_id())
    .bind(now)
    .fetch_one(&store.writer)
    .await
    .map_err(db)?;
    worker(&row)
}

/// Marks workers as seen now by this node, in one statement; unknown
/// workers are ignored, and so are workers marked within the last second.
pub(crate) async fn workers_seen(store: &SqliteStore, worker_ids: &[String]) -> Result<()> {
    if worker_ids.is_empty() {
        return Ok(());
    }
    let now = clock::now();
    sqlx::query(
        "UPDATE workers SET last_seen_at = ?1, node_id = ?2 \
         WHERE id IN (SELECT value FROM json_each(?3)) AND last_seen_at < ?4",
    )
    .bind(clock::micros(now))
    .bind(store.node_id())
    .bind(to_json_text(worker_ids))
    .bind(before(now, SEEN_RESOLUTION))
    .execute(&store.writer)
    .await
    .map_err(db)?;
    Ok(())
}

/// One worker, if it was seen within `within`.
pub(crate) async fn worker_get(
    store: &SqliteStore,
    worker_id: &str,
    within: Duration,
) -> Result<Option<Worker>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM workers WHERE id = ?1 AND last_seen_at > ?2"
    ))
    .bind(worker_id)
    .bind(before(clock::now(), within))
    .fetch_optional(&store.reader)
    .await
    .map_err(db)?;
    row.as_ref().map(worker).transpose()
}

/// Workers seen within `within`, most recent first.
pub(crate) async fn worker_list(store: &SqliteStore, within: Duration) -> Result<Vec<Worker>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM workers WHERE last_seen_at > ?1 ORDER BY last_seen_at DESC, id"
    ))
    .bind(before(clock::now(), within))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter().map(worker).collect()
}

/// Per worker, its steps running under a lease: the hidden messages of the
/// queue whose step is running, so the step table is only read by primary
/// key for work in flight.
pub(crate) async fn worker_in_flight(store: &SqliteStore) -> Result<HashMap<String, u64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.worker_id, count(*) FROM queue_messages m \
           JOIN steps s ON s.id = json_extract(m.message, '$.step_id') \
          WHERE m.vt > ?1 AND s.state = 'running' AND s.worker_id IS NOT NULL \
          GROUP BY s.worker_id",
    )
    .bind(clock::micros(clock::now()))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(worker, count)| (worker, u64::try_from(count).unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, test_store};

    fn registration(id: &str) -> WorkerRegistration {
        WorkerRegistration {
            worker_id: id.into(),
            namespaces: vec!["default".into(), "billing".into()],
            handlers: vec!["h.one".into()],
            concurrency: 4,
            version: Some("1.2.3".into()),
        }
    }

    #[tokio::test]
    async fn a_registration_is_read_back_and_refreshed_by_registering_again() {
        let store = test_store().await;
        let first = worker_register(&store, &registration("w1")).await.unwrap();
        assert_eq!(first.worker_id, "w1");
        assert_eq!(first.namespaces, vec!["default", "billing"]);
        assert_eq!(first.handlers, vec!["h.one"]);
        assert_eq!(first.concurrency, 4);
        assert_eq!(first.version.as_deref(), Some("1.2.3"));
        assert_eq!(first.node_id.as_deref(), Some(testing::NODE));

        let mut changed = registration("w1");
        changed.handlers = vec!["h.two".into(), "h.three".into()];
        changed.concurrency = 1;
        changed.version = None;
        let second = worker_register(&store, &changed).await.unwrap();
        assert_eq!(second.handlers, vec!["h.two", "h.three"]);
        assert_eq!(second.concurrency, 1);
        assert_eq!(second.version, None);
        assert!(second.registered_at >= first.registered_at);

        let read = worker_get(&store, "w1", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(read, Some(second));
        assert_eq!(
            worker_list(&store, Duration::from_secs(60))
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_worker_not_seen_within_the_window_is_not_listed_until_seen_again() {
        let store = test_store().await;
        worker_register(&store, &registration("old")).await.unwrap();
        worker_register(&store, &registration("new")).await.unwrap();
        testing::execute(
            &store,
            "UPDATE workers SET last_seen_at = last_seen_at - 120000000 WHERE id = 'old'",
        )
        .await;
        let within = Duration::from_secs(60);
        assert_eq!(worker_get(&store, "old", within).await.unwrap(), None);
        let listed: Vec<String> = worker_list(&store, within)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.worker_id)
            .collect();
        assert_eq!(listed, vec!["new"]);

        workers_seen(&store, &["old".into(), "unknown".into()])
            .await
            .unwrap();
        let seen = worker_get(&store, "old", within).await.unwrap().unwrap();
        assert_eq!(seen.node_id.as_deref(), Some(testing::NODE));
        // Most recently seen first.
        let listed: Vec<String> = worker_list(&store, within)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.worker_id)
            .collect();
        assert_eq!(listed, vec!["old", "new"]);
    }

    #[tokio::test]
    async fn in_flight_counts_running_steps_under_a_live_lease_per_worker() {
        let store = test_store().await;
        let task = testing::task(&store, "default", &["a", "b", "c"]).await;
        testing::run_step(&store, &task.steps[0], "w1", 60).await;
        testing::run_step(&store, &task.steps[1], "w1", 60).await;
        // A lease that ran out is no longer in flight.
        testing::run_step(&store, &task.steps[2], "w2", -5).await;
        let in_flight = worker_in_flight(&store).await.unwrap();
        assert_eq!(in_flight.get("w1"), Some(&2));
        assert_eq!(in_flight.get("w2"), None);
    }
}

//! Tests of retention against a migrated in-memory store.

use chrono::TimeDelta;
use tasker_model::TaskState;
use tasker_store::{RetentionHorizon, WorkerRegistration};
use uuid::Uuid;

use super::*;
use crate::testing::{self, TestTask, execute, test_store};

fn horizon(namespace: Option<&str>, state: TaskState, hours: u64) -> RetentionHorizon {
    RetentionHorizon {
        namespace: namespace.map(Into::into),
        state,
        keep_for: Duration::from_secs(hours * 3600),
    }
}

async fn transition(store: &SqliteStore, task: &TestTask) {
    sqlx::query(
        "INSERT INTO transitions (task_id, from_state, to_state, at) \
         VALUES (?1, 'running', 'complete', 0)",
    )
    .bind(task.id.hyphenated())
    .execute(&store.writer)
    .await
    .unwrap();
}

async fn exists(store: &SqliteStore, id: Uuid) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?1)")
        .bind(id.hyphenated())
        .fetch_one(&store.reader)
        .await
        .unwrap()
}

/// A task of `namespace` with two steps, finished `hours_ago` in `state`.
async fn finished(store: &SqliteStore, namespace: &str, state: &str, hours_ago: i64) -> TestTask {
    let task = testing::task(store, namespace, &["a", "b"]).await;
    transition(store, &task).await;
    let at = clock::now() - TimeDelta::hours(hours_ago);
    testing::finish_task(store, &task, state, at).await;
    task
}

#[tokio::test]
async fn finished_tasks_past_their_horizon_go_with_their_steps_and_history() {
    let store = test_store().await;
    let old_complete = finished(&store, "default", "complete", 48).await;
    let young_complete = finished(&store, "default", "complete", 2).await;
    let old_failed = finished(&store, "default", "failed", 48).await;
    // billing keeps its completed tasks longer than the general rule.
    let billing_complete = finished(&store, "billing", "complete", 48).await;
    let billing_cancelled = finished(&store, "billing", "cancelled", 48).await;
    let running = testing::task(&store, "default", &["a"]).await;
    execute(
        &store,
        "UPDATE tasks SET created_at = created_at - 360000000000 WHERE state = 'running'",
    )
    .await;

    let batch = RetentionTasksDelete {
        horizons: vec![
            horizon(None, TaskState::Complete, 24),
            horizon(Some("billing"), TaskState::Complete, 24 * 7),
            horizon(None, TaskState::Cancelled, 1),
        ],
        limit: 100,
    };
    let deleted = retention_tasks_delete(&store, &batch).await.unwrap();
    assert_eq!(
        deleted,
        RetentionDeleted {
            tasks: 2,
            steps: 4,
            transitions: 2,
        }
    );
    assert!(!exists(&store, old_complete.id).await);
    assert!(!exists(&store, billing_cancelled.id).await);
    // Too young, no rule for its state, its namespace's rule, running.
    for kept in [&young_complete, &old_failed, &billing_complete, &running] {
        assert!(exists(&store, kept.id).await);
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM steps WHERE task_id NOT IN (SELECT id FROM tasks)) \
              + (SELECT count(*) FROM transitions WHERE task_id NOT IN (SELECT id FROM tasks))",
    )
    .fetch_one(&store.reader)
    .await
    .unwrap();
    assert_eq!(orphans, 0);

    assert_eq!(
        retention_tasks_delete(&store, &batch).await.unwrap(),
        RetentionDeleted::default()
    );
}

/// Keeps what the store tells its observer.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Event>>);

impl tasker_store::Observer for Recorder {
    fn observe(&self, events: &[Event]) {
        self.0.lock().unwrap().extend_from_slice(events);
    }
}

#[tokio::test]
async fn the_observer_is_told_what_each_table_lost() {
    let store = test_store().await;
    let recorder = std::sync::Arc::new(Recorder::default());
    store.set_observer(recorder.clone());
    finished(&store, "default", "complete", 48).await;
    let batch = RetentionTasksDelete {
        horizons: vec![horizon(None, TaskState::Complete, 1)],
        limit: 10,
    };
    retention_tasks_delete(&store, &batch).await.unwrap();
    retention_workers_delete(&store, Duration::from_secs(60), 10)
        .await
        .unwrap();
    let told = recorder.0.lock().unwrap().clone();
    let rows = |table: &str| {
        told.iter().find_map(|e| match e {
            Event::RetentionDeleted { table: t, rows } if *t == table => Some(*rows),
            _ => None,
        })
    };
    assert_eq!(rows("tasks"), Some(1));
    assert_eq!(rows("steps"), Some(2));
    assert_eq!(rows("transitions"), Some(1));
    assert_eq!(rows("workers"), Some(0));
}

#[tokio::test]
async fn a_batch_stops_at_its_limit_and_spares_tasks_with_a_step_in_flight() {
    let store = test_store().await;
    for _ in 0..3 {
        finished(&store, "default", "failed", 10).await;
    }
    // A finished task whose step still has its message (never written by
    // the engine, but retention must not break invariant 1 if it were).
    let odd = finished(&store, "default", "failed", 10).await;
    let msg_id: i64 = sqlx::query_scalar(
        "INSERT INTO queue_messages (queue, vt, enqueued_at, message) \
         VALUES ('default', 0, 0, '{}') RETURNING msg_id",
    )
    .fetch_one(&store.writer)
    .await
    .unwrap();
    execute(
        &store,
        &format!(
            "UPDATE steps SET state = 'ready', msg_id = {msg_id} WHERE id = '{}'",
            odd.steps[0]
        ),
    )
    .await;

    let batch = RetentionTasksDelete {
        horizons: vec![horizon(None, TaskState::Failed, 1)],
        limit: 2,
    };
    assert_eq!(
        retention_tasks_delete(&store, &batch).await.unwrap().tasks,
        2
    );
    assert_eq!(
        retention_tasks_delete(&store, &batch).await.unwrap().tasks,
        1
    );
    assert_eq!(
        retention_tasks_delete(&store, &batch).await.unwrap().tasks,
        0
    );
    assert!(exists(&store, odd.id).await);
}

#[tokio::test]
async fn keys_of_old_finished_tasks_are_released_and_running_ones_kept() {
    let store = test_store().await;
    let old_done = finished(&store, "default", "complete", 1).await;
    let young_done = finished(&store, "default", "complete", 0).await;
    let old_running = testing::task(&store, "default", &["a"]).await;
    for (task, key) in [(&old_done, "k1"), (&young_done, "k2"), (&old_running, "k3")] {
        execute(
            &store,
            &format!(
                "UPDATE tasks SET idempotency_key = '{key}' WHERE id = '{}'",
                task.id
            ),
        )
        .await;
    }
    execute(
        &store,
        &format!(
            "UPDATE tasks SET created_at = created_at - 7200000000 WHERE id IN ('{}', '{}')",
            old_done.id, old_running.id
        ),
    )
    .await;

    let released = retention_idempotency_keys_release(&store, Duration::from_secs(3600), 10)
        .await
        .unwrap();
    assert_eq!(released, 1);
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM tasks WHERE idempotency_key IS NOT NULL ORDER BY 1",
    )
    .fetch_all(&store.reader)
    .await
    .unwrap();
    assert_eq!(keys, vec!["k2", "k3"]);
}

#[tokio::test]
async fn workers_long_gone_are_deleted_in_batches() {
    let store = test_store().await;
    for id in ["gone-1", "gone-2", "gone-3", "live"] {
        crate::workers::worker_register(
            &store,
            &WorkerRegistration {
                worker_id: id.into(),
                namespaces: vec!["default".into()],
                handlers: vec![],
                concurrency: 1,
                version: None,
            },
        )
        .await
        .unwrap();
    }
    execute(
        &store,
        "UPDATE workers SET last_seen_at = last_seen_at - 86400000000 WHERE id LIKE 'gone-%'",
    )
    .await;
    let older_than = Duration::from_secs(3600);
    assert_eq!(
        retention_workers_delete(&store, older_than, 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        retention_workers_delete(&store, older_than, 2)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        retention_workers_delete(&store, older_than, 2)
            .await
            .unwrap(),
        0
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM workers")
        .fetch_all(&store.reader)
        .await
        .unwrap();
    assert_eq!(left, vec!["live"]);
}

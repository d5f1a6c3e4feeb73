//! What a test checks in (or does to) the database behind the store, with
//! one implementation per backend: row counts, queue messages, stored
//! reads. Moving stored times is in `time_shift.rs`, injected faults in
//! `fault.rs`.
//!
//! This reads and writes Tasker's tables directly: it is for checking what
//! the store wrote, never a way around the store for the behaviour under
//! test.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};
use tasker_model::Timestamp;
use tasker_sqlite::clock;
use uuid::Uuid;

/// The test's own connections to the database the store uses.
#[derive(Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Rows a test counts.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    Templates,
    Tasks,
    /// Tasks carrying this tag.
    TasksTagged(&'a str),
    Steps,
    /// Steps in this state (`"ready"`, `"running"`, …).
    StepsIn(&'a str),
    /// Steps of one task in this state.
    StepsOfTaskIn(Uuid, &'a str),
    Transitions,
    /// History rows of these tasks.
    TransitionsOfTasks(&'a [Uuid]),
    /// Steps and history rows whose task is gone.
    Orphans,
    Schedules,
    ScheduleFires,
    /// Schedule fires with this outcome (`"started"`, `"buffered"`, …).
    ScheduleFiresWithOutcome(&'a str),
    /// Schedule fires of this kind (`"scheduled"`, `"manual"`, `"backfill"`).
    ScheduleFiresOfKind(&'a str),
}

impl Database {
    /// The PostgreSQL pool; for tests that only run there.
    pub fn postgres_pool(&self) -> &PgPool {
        match self {
            Database::Postgres(pool) => pool,
            Database::Sqlite(_) => {
                panic!("a PostgreSQL-only test ran on SQLite: guard it with skip_on_sqlite")
            }
        }
    }

    pub async fn count(&self, rows: Rows<'_>) -> i64 {
        match self {
            Database::Postgres(pool) => count_postgres(pool, rows).await,
            Database::Sqlite(pool) => count_sqlite(pool, rows).await,
        }
        .unwrap_or_else(|e| panic!("counting {rows:?}: {e}"))
    }

    /// Messages in `namespace`'s queue, visible or not.
    pub async fn queue_depth(&self, namespace: &str) -> i64 {
        self.queue_count(namespace, false).await
    }

    /// Messages in `namespace`'s queue that a claim could read now.
    pub async fn queue_visible(&self, namespace: &str) -> i64 {
        self.queue_count(namespace, true).await
    }

    async fn queue_count(&self, namespace: &str, visible_only: bool) -> i64 {
        match self {
            Database::Postgres(pool) => {
                let table = self.postgres_queue_table(namespace).await;
                let visible = if visible_only {
                    " WHERE vt <= clock_timestamp()"
                } else {
                    ""
                };
                sqlx::query_scalar(&format!("SELECT count(*) FROM {table}{visible}"))
                    .fetch_one(pool)
                    .await
            }
            Database::Sqlite(pool) => {
                // Every message is visible by the end of time.
                let until = if visible_only {
                    clock::micros(clock::now())
                } else {
                    i64::MAX
                };
                sqlx::query_scalar(
                    "SELECT count(*) FROM queue_messages m JOIN namespaces n ON n.queue = m.queue \
                     WHERE n.name = ?1 AND m.vt <= ?2",
                )
                .bind(namespace)
                .bind(until)
                .fetch_one(pool)
                .await
            }
        }
        .unwrap_or_else(|e| panic!("counting the messages of {namespace}: {e}"))
    }

    /// When the message of step `step_id` becomes visible; `None` when the
    /// step has no message.
    pub async fn message_visible_at(&self, step_id: Uuid) -> Option<Timestamp> {
        match self {
            Database::Postgres(pool) => {
                let table = self.postgres_queue_table_of_step(step_id).await;
                sqlx::query_scalar(&format!(
                    "SELECT vt FROM {table} WHERE (message->>'step_id')::uuid = $1"
                ))
                .bind(step_id)
                .fetch_optional(pool)
                .await
            }
            Database::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
                "SELECT vt FROM queue_messages WHERE json_extract(message, '$.step_id') = ?1",
            )
            .bind(step_id.to_string())
            .fetch_optional(pool)
            .await
            .map(clock::from_micros_opt),
        }
        .unwrap_or_else(|e| panic!("reading the message of step {step_id}: {e}"))
    }

    /// Hides the message of step `step_id` for `by` longer than it was.
    pub async fn message_hide_longer(&self, step_id: Uuid, by: Duration) {
        let moved = match self {
            Database::Postgres(pool) => {
                let table = self.postgres_queue_table_of_step(step_id).await;
                sqlx::query(&format!(
                    "UPDATE {table} SET vt = vt + make_interval(secs => $2) \
                     WHERE (message->>'step_id')::uuid = $1"
                ))
                .bind(step_id)
                .bind(by.as_secs_f64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            }
            Database::Sqlite(pool) => sqlx::query(
                "UPDATE queue_messages SET vt = vt + ?2 \
                 WHERE json_extract(message, '$.step_id') = ?1",
            )
            .bind(step_id.to_string())
            .bind(micros(by))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("hiding the message of step {step_id}: {e}"));
        assert_eq!(moved, 1, "step {step_id} has no message to hide");
    }

    /// Deletes the messages of task `task_id`'s ready steps, as if they had
    /// been lost; the steps stay ready. Returns how many went.
    pub async fn ready_messages_delete(&self, task_id: Uuid) -> u64 {
        match self {
            Database::Postgres(pool) => {
                let queue: String = sqlx::query_scalar(
                    "SELECT n.queue FROM tasker.tasks t JOIN tasker.namespaces n \
                     ON n.name = t.namespace WHERE t.id = $1",
                )
                .bind(task_id)
                .fetch_one(pool)
                .await
                .unwrap_or_else(|e| panic!("the queue of task {task_id}: {e}"));
                sqlx::query(&format!(
                    "DELETE FROM {} WHERE msg_id IN \
                     (SELECT msg_id FROM tasker.steps WHERE task_id = $1 AND state = 'ready')",
                    postgres_queue_table(&queue)
                ))
                .bind(task_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            }
            Database::Sqlite(pool) => sqlx::query(
                "DELETE FROM queue_messages WHERE msg_id IN \
                 (SELECT msg_id FROM steps WHERE task_id = ?1 AND state = 'ready')",
            )
            .bind(task_id.to_string())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("deleting the messages of task {task_id}: {e}"))
    }

    /// The ids of every stored task.
    pub async fn task_ids(&self) -> HashSet<Uuid> {
        match self {
            Database::Postgres(pool) => sqlx::query_scalar("SELECT id FROM tasker.tasks")
                .fetch_all(pool)
                .await
                .map(|ids| ids.into_iter().collect()),
            Database::Sqlite(pool) => sqlx::query_scalar::<_, String>("SELECT id FROM tasks")
                .fetch_all(pool)
                .await
                .map(|ids| ids.iter().map(|id| parse_uuid(id)).collect()),
        }
        .unwrap_or_else(|e| panic!("reading the task ids: {e}"))
    }

    /// Task `task_id`'s idempotency key as stored (`None` once released).
    pub async fn task_idempotency_key(&self, task_id: Uuid) -> Option<String> {
        match self {
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT idempotency_key FROM tasker.tasks WHERE id = $1")
                    .bind(task_id)
                    .fetch_one(pool)
                    .await
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT idempotency_key FROM tasks WHERE id = ?1")
                    .bind(task_id.to_string())
                    .fetch_one(pool)
                    .await
            }
        }
        .unwrap_or_else(|e| panic!("reading the idempotency key of task {task_id}: {e}"))
    }

    /// The ids of the registered workers, sorted.
    pub async fn worker_ids(&self) -> Vec<String> {
        match self {
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT id FROM tasker.workers ORDER BY id")
                    .fetch_all(pool)
                    .await
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT id FROM workers ORDER BY id")
                    .fetch_all(pool)
                    .await
            }
        }
        .unwrap_or_else(|e| panic!("reading the worker ids: {e}"))
    }

    /// The fire times of every recorded schedule fire.
    pub async fn schedule_fire_times(&self) -> Vec<Timestamp> {
        match self {
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT fire_time FROM tasker.schedule_fires ORDER BY fire_time")
                    .fetch_all(pool)
                    .await
            }
            Database::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
                "SELECT fire_time FROM schedule_fires ORDER BY fire_time",
            )
            .fetch_all(pool)
            .await
            .map(|times| times.into_iter().map(clock::from_micros).collect()),
        }
        .unwrap_or_else(|e| panic!("reading the schedule fires: {e}"))
    }

    /// PGMQ's table of `namespace`'s queue.
    async fn postgres_queue_table(&self, namespace: &str) -> String {
        let queue: String =
            sqlx::query_scalar("SELECT queue FROM tasker.namespaces WHERE name = $1")
                .bind(namespace)
                .fetch_one(self.postgres_pool())
                .await
                .unwrap_or_else(|e| panic!("the queue of namespace {namespace}: {e}"));
        postgres_queue_table(&queue)
    }

    /// PGMQ's table of the queue step `step_id`'s task uses.
    pub(super) async fn postgres_queue_table_of_step(&self, step_id: Uuid) -> String {
        let queue: String = sqlx::query_scalar(
            "SELECT n.queue FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id \
             JOIN tasker.namespaces n ON n.name = t.namespace WHERE s.id = $1",
        )
        .bind(step_id)
        .fetch_one(self.postgres_pool())
        .await
        .unwrap_or_else(|e| panic!("the queue of step {step_id}: {e}"));
        postgres_queue_table(&queue)
    }

    /// PGMQ's table of `namespace`'s queue, for the fault injection.
    pub(super) async fn postgres_queue_table_of(&self, namespace: &str) -> String {
        self.postgres_queue_table(namespace).await
    }
}

pub(super) fn postgres_queue_table(queue: &str) -> String {
    format!("pgmq.\"q_{}\"", queue.to_lowercase().replace('"', "\"\""))
}

/// A duration as SQLite stores times: whole microseconds.
pub(super) fn micros(by: Duration) -> i64 {
    i64::try_from(by.as_micros()).expect("a duration a test can use")
}

fn parse_uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap_or_else(|e| panic!("stored id {text:?} is no uuid: {e}"))
}

async fn count_postgres(pool: &PgPool, rows: Rows<'_>) -> sqlx::Result<i64> {
    let (sql, text, ids): (&str, Option<&str>, Option<Vec<Uuid>>) = match rows {
        Rows::Templates => ("SELECT count(*) FROM tasker.templates", None, None),
        Rows::Tasks => ("SELECT count(*) FROM tasker.tasks", None, None),
        Rows::TasksTagged(tag) => (
            "SELECT count(*) FROM tasker.tasks WHERE $1 = ANY(tags)",
            Some(tag),
            None,
        ),
        Rows::Steps => ("SELECT count(*) FROM tasker.steps", None, None),
        Rows::StepsIn(state) => (
            "SELECT count(*) FROM tasker.steps WHERE state = $1",
            Some(state),
            None,
        ),
        Rows::StepsOfTaskIn(task, state) => (
            "SELECT count(*) FROM tasker.steps WHERE state = $1 AND task_id = ANY($2)",
            Some(state),
            Some(vec![task]),
        ),
        Rows::Transitions => ("SELECT count(*) FROM tasker.transitions", None, None),
        Rows::TransitionsOfTasks(tasks) => (
            "SELECT count(*) FROM tasker.transitions WHERE task_id = ANY($1)",
            None,
            Some(tasks.to_vec()),
        ),
        Rows::Orphans => (
            "SELECT (SELECT count(*) FROM tasker.steps s WHERE NOT EXISTS \
               (SELECT 1 FROM tasker.tasks t WHERE t.id = s.task_id)) + \
             (SELECT count(*) FROM tasker.transitions tr WHERE NOT EXISTS \
               (SELECT 1 FROM tasker.tasks t WHERE t.id = tr.task_id))",
            None,
            None,
        ),
        Rows::Schedules => ("SELECT count(*) FROM tasker.schedules", None, None),
        Rows::ScheduleFires => ("SELECT count(*) FROM tasker.schedule_fires", None, None),
        Rows::ScheduleFiresWithOutcome(outcome) => (
            "SELECT count(*) FROM tasker.schedule_fires WHERE outcome = $1",
            Some(outcome),
            None,
        ),
        Rows::ScheduleFiresOfKind(kind) => (
            "SELECT count(*) FROM tasker.schedule_fires WHERE kind = $1",
            Some(kind),
            None,
        ),
    };
    let mut query = sqlx::query_scalar(sql);
    if let Some(text) = text {
        query = query.bind(text);
    }
    if let Some(ids) = ids {
        query = query.bind(ids);
    }
    query.fetch_one(pool).await
}

async fn count_sqlite(pool: &SqlitePool, rows: Rows<'_>) -> sqlx::Result<i64> {
    // Uuids are stored as text; a list of them is bound as one JSON array.
    let (sql, text, ids): (&str, Option<&str>, Option<Vec<Uuid>>) = match rows {
        Rows::Templates => ("SELECT count(*) FROM templates", None, None),
        Rows::Tasks => ("SELECT count(*) FROM tasks", None, None),
        Rows::TasksTagged(tag) => (
            "SELECT count(*) FROM tasks \
             WHERE EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?1)",
            Some(tag),
            None,
        ),
        Rows::Steps => ("SELECT count(*) FROM steps", None, None),
        Rows::StepsIn(state) => (
            "SELECT count(*) FROM steps WHERE state = ?1",
            Some(state),
            None,
        ),
        Rows::StepsOfTaskIn(task, state) => (
            "SELECT count(*) FROM steps WHERE state = ?1 \
             AND task_id IN (SELECT value FROM json_each(?2))",
            Some(state),
            Some(vec![task]),
        ),
        Rows::Transitions => ("SELECT count(*) FROM transitions", None, None),
        Rows::TransitionsOfTasks(tasks) => (
            "SELECT count(*) FROM transitions WHERE task_id IN (SELECT value FROM json_each(?1))",
            None,
            Some(tasks.to_vec()),
        ),
        Rows::Orphans => (
            "SELECT (SELECT count(*) FROM steps s WHERE NOT EXISTS \
               (SELECT 1 FROM tasks t WHERE t.id = s.task_id)) + \
             (SELECT count(*) FROM transitions tr WHERE NOT EXISTS \
               (SELECT 1 FROM tasks t WHERE t.id = tr.task_id))",
            None,
            None,
        ),
        Rows::Schedules => ("SELECT count(*) FROM schedules", None, None),
        Rows::ScheduleFires => ("SELECT count(*) FROM schedule_fires", None, None),
        Rows::ScheduleFiresWithOutcome(outcome) => (
            "SELECT count(*) FROM schedule_fires WHERE outcome = ?1",
            Some(outcome),
            None,
        ),
        Rows::ScheduleFiresOfKind(kind) => (
            "SELECT count(*) FROM schedule_fires WHERE kind = ?1",
            Some(kind),
            None,
        ),
    };
    let mut query = sqlx::query_scalar(sql);
    if let Some(text) = text {
        query = query.bind(text);
    }
    if let Some(ids) = ids {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        query = query.bind(serde_json::to_string(&ids).expect("ids as JSON"));
    }
    query.fetch_one(pool).await
}

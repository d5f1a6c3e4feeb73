//! Moving stored times into the past, per backend, so that tests of
//! timeouts, deadlines, leases, backoffs, retention and leadership wait on
//! conditions instead of sleeping the time out.
//!
//! A step's `started_at`, `lease_expires_at` and `retry_at` move back
//! together with its queue message's visibility, so the step looks exactly
//! as it would after that much time: the lease and the message still agree.
//! The store's clock keeps running; only the stored times change.

use std::time::Duration;

use tasker_model::Timestamp;
use tasker_sqlite::clock;
use tasker_testkit::stored_time;
use uuid::Uuid;

use super::database::{Database, micros};

impl Database {
    /// Moves step `step_id`'s stored times and its message's visibility
    /// `by` into the past.
    pub async fn step_shift_back(&self, step_id: Uuid, by: Duration) {
        match self {
            Database::Postgres(pool) => stored_time::step_shift_back(pool, step_id, by)
                .await
                .unwrap_or_else(|e| panic!("moving step {step_id} back: {e}")),
            Database::Sqlite(pool) => {
                let by = micros(by);
                let msg_id: Option<i64> = sqlx::query_scalar(
                    "UPDATE steps SET started_at = started_at - ?2, \
                       lease_expires_at = lease_expires_at - ?2, retry_at = retry_at - ?2 \
                     WHERE id = ?1 RETURNING msg_id",
                )
                .bind(step_id.to_string())
                .bind(by)
                .fetch_optional(pool)
                .await
                .unwrap_or_else(|e| panic!("moving step {step_id} back: {e}"))
                .unwrap_or_else(|| panic!("no step {step_id} to move into the past"));
                if let Some(msg_id) = msg_id {
                    sqlx::query("UPDATE queue_messages SET vt = vt - ?2 WHERE msg_id = ?1")
                        .bind(msg_id)
                        .bind(by)
                        .execute(pool)
                        .await
                        .unwrap_or_else(|e| panic!("moving the message of {step_id} back: {e}"));
                }
            }
        }
    }

    /// Moves task `task_id`'s creation time and deadline `by` into the past.
    pub async fn task_shift_back(&self, task_id: Uuid, by: Duration) {
        match self {
            Database::Postgres(pool) => stored_time::task_shift_back(pool, task_id, by)
                .await
                .unwrap_or_else(|e| panic!("moving task {task_id} back: {e}")),
            Database::Sqlite(pool) => {
                let moved = sqlx::query(
                    "UPDATE tasks SET created_at = created_at - ?2, \
                       deadline_at = deadline_at - ?2 WHERE id = ?1",
                )
                .bind(task_id.to_string())
                .bind(micros(by))
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("moving task {task_id} back: {e}"))
                .rows_affected();
                assert_eq!(moved, 1, "no task {task_id} to move into the past");
            }
        }
    }

    /// Ages tasks: their creation and finish times move `by` into the past.
    pub async fn tasks_age(&self, task_ids: &[Uuid], by: Duration) {
        let moved = match self {
            Database::Postgres(pool) => sqlx::query(
                "UPDATE tasker.tasks SET created_at = created_at - make_interval(secs => $2), \
                   finished_at = finished_at - make_interval(secs => $2) WHERE id = ANY($1)",
            )
            .bind(task_ids)
            .bind(by.as_secs_f64())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Database::Sqlite(pool) => {
                let ids: Vec<String> = task_ids.iter().map(Uuid::to_string).collect();
                sqlx::query(
                    "UPDATE tasks SET created_at = created_at - ?2, \
                       finished_at = finished_at - ?2 \
                     WHERE id IN (SELECT value FROM json_each(?1))",
                )
                .bind(serde_json::to_string(&ids).expect("ids as JSON"))
                .bind(micros(by))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            }
        }
        .unwrap_or_else(|e| panic!("ageing tasks: {e}"));
        assert_eq!(moved, task_ids.len() as u64, "every task to age exists");
    }

    /// Moves worker `worker_id`'s last sighting `by` into the past.
    pub async fn worker_shift_back(&self, worker_id: &str, by: Duration) {
        let moved = match self {
            Database::Postgres(pool) => sqlx::query(
                "UPDATE tasker.workers SET last_seen_at = last_seen_at - make_interval(secs => $2) \
                 WHERE id = $1",
            )
            .bind(worker_id)
            .bind(by.as_secs_f64())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Database::Sqlite(pool) => {
                sqlx::query("UPDATE workers SET last_seen_at = last_seen_at - ?2 WHERE id = ?1")
                    .bind(worker_id)
                    .bind(micros(by))
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            }
        }
        .unwrap_or_else(|e| panic!("moving worker {worker_id} back: {e}"));
        assert_eq!(moved, 1, "no worker {worker_id} to move into the past");
    }

    /// Sets schedule `schedule_id`'s next fire (and run) time, as a node
    /// that read the schedule before a fire would still see it.
    pub async fn schedule_next_fire_set(&self, schedule_id: Uuid, at: Timestamp) {
        let moved = match self {
            Database::Postgres(pool) => sqlx::query(
                "UPDATE tasker.schedules SET next_fire_at = $1, next_run_at = $1 WHERE id = $2",
            )
            .bind(at)
            .bind(schedule_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Database::Sqlite(pool) => sqlx::query(
                "UPDATE schedules SET next_fire_at = ?1, next_run_at = ?1 WHERE id = ?2",
            )
            .bind(clock::micros(at))
            .bind(schedule_id.to_string())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("setting the next fire of {schedule_id}: {e}"));
        assert_eq!(moved, 1, "no schedule {schedule_id}");
    }

    /// Ends leadership lease `name` now, as if its holder had stopped
    /// renewing it long ago.
    pub async fn leadership_expire(&self, name: &str) {
        let moved = match self {
            Database::Postgres(pool) => sqlx::query(
                "UPDATE tasker.leadership \
                 SET expires_at = greatest(acquired_at, now() - interval '1 second') \
                 WHERE name = $1",
            )
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Database::Sqlite(pool) => sqlx::query(
                "UPDATE leadership SET expires_at = max(acquired_at, ?2) WHERE name = ?1",
            )
            .bind(name)
            .bind(clock::micros(clock::now()) - 1_000_000)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("expiring leadership {name}: {e}"));
        assert_eq!(moved, 1, "no leadership lease {name}");
    }
}

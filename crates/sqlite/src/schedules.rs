//! Schedules and the record of their fires: create, read, change, delete,
//! and the scheduler's two questions (which are due, when is the next).
//! Firing itself (the fire row, the task it starts and the schedule's next
//! times in one transaction) is [`crate::Store::schedule_fire`]'s; it reads
//! its rows back with [`fire`]. The timing logic is
//! `tasker_model::schedule`'s: nothing here computes a time.

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use tasker_model::{Schedule, ScheduleFire, ScheduleSpec, Timestamp};
use tasker_store::schedules::{name_taken, not_found};
use tasker_store::{Result, ScheduleWrite};
use uuid::Uuid;

use crate::columns::{self, get, to_json_text, unexpected};
use crate::{SqliteStore, clock, db};

pub(crate) const COLUMNS: &str = "id, name, namespace, template, version, context, cron, \
     time_zone, interval_text, jitter, overlap, catch_up, paused, anchor_at, next_fire_at, \
     next_run_at, last_task_id, buffered_fire_at, created_at, updated_at";

pub(crate) const FIRE_COLUMNS: &str =
    "schedule_id, fire_time, kind, outcome, task_id, message, node_id, recorded_at";

/// A schedule row as read with [`COLUMNS`].
pub(crate) fn schedule(row: &SqliteRow) -> Result<Schedule> {
    let overlap: String = get(row, "overlap")?;
    let catch_up: String = get(row, "catch_up")?;
    Ok(Schedule {
        id: columns::uuid(row, "id")?,
        spec: ScheduleSpec {
            name: get(row, "name")?,
            namespace: get(row, "namespace")?,
            template: get(row, "template")?,
            version: get(row, "version")?,
            context: columns::json(row, "context")?,
            cron: get(row, "cron")?,
            time_zone: get(row, "time_zone")?,
            interval: get(row, "interval_text")?,
            jitter: get(row, "jitter")?,
            overlap: overlap.parse().map_err(unexpected)?,
            catch_up: catch_up.parse().map_err(unexpected)?,
            paused: get(row, "paused")?,
        },
        anchor_at: columns::time(row, "anchor_at")?,
        next_fire_at: columns::time_opt(row, "next_fire_at")?,
        next_run_at: columns::time_opt(row, "next_run_at")?,
        last_task_id: columns::uuid_opt(row, "last_task_id")?,
        buffered_fire_at: columns::time_opt(row, "buffered_fire_at")?,
        created_at: columns::time(row, "created_at")?,
        updated_at: columns::time(row, "updated_at")?,
    })
}

/// A fire row as read with [`FIRE_COLUMNS`].
pub(crate) fn fire(row: &SqliteRow) -> Result<ScheduleFire> {
    let kind: String = get(row, "kind")?;
    let outcome: String = get(row, "outcome")?;
    Ok(ScheduleFire {
        schedule_id: columns::uuid(row, "schedule_id")?,
        fire_time: columns::time(row, "fire_time")?,
        kind: kind.parse().map_err(unexpected)?,
        outcome: outcome.parse().map_err(unexpected)?,
        task_id: columns::uuid_opt(row, "task_id")?,
        message: get(row, "message")?,
        node_id: get(row, "node_id")?,
        recorded_at: columns::time(row, "recorded_at")?,
    })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds ?1 (the schedule's id) to ?16 (its spec and times) and ?17 (now)
/// in the order both [`schedule_create`] and [`schedule_update`] name the
/// columns.
fn bind_write<'q>(query: Query<'q>, id: Uuid, w: &'q ScheduleWrite, now: Timestamp) -> Query<'q> {
    let s = &w.spec;
    query
        .bind(id.hyphenated())
        .bind(&s.name)
        .bind(&s.namespace)
        .bind(&s.template)
        .bind(&s.version)
        .bind(to_json_text(&s.context))
        .bind(&s.cron)
        .bind(&s.time_zone)
        .bind(&s.interval)
        .bind(&s.jitter)
        .bind(s.overlap.as_str())
        .bind(s.catch_up.as_str())
        .bind(s.paused)
        .bind(clock::micros(w.anchor_at))
        .bind(clock::micros_opt(w.next_fire_at))
        .bind(clock::micros_opt(w.next_run_at))
        .bind(clock::micros(now))
}

/// Stores a new schedule; [`Error::Conflict`] when its name is taken.
pub(crate) async fn schedule_create(
    store: &SqliteStore,
    id: Uuid,
    w: &ScheduleWrite,
) -> Result<Schedule> {
    let sql = format!(
        "INSERT INTO schedules (id, name, namespace, template, version, context, cron, \
           time_zone, interval_text, jitter, overlap, catch_up, paused, anchor_at, next_fire_at, \
           next_run_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17) \
         RETURNING {COLUMNS}"
    );
    let row = bind_write(sqlx::query(&sql), id, w, clock::now())
        .fetch_one(&store.writer)
        .await;
    match row {
        Ok(row) => schedule(&row),
        Err(e) if is_unique_violation(&e) => Err(name_taken(&w.spec.name)),
        Err(e) => Err(db(e)),
    }
}

pub(crate) async fn schedule_get(store: &SqliteStore, id: Uuid) -> Result<Schedule> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1"))
        .bind(id.hyphenated())
        .fetch_optional(&store.reader)
        .await
        .map_err(db)?
        .ok_or_else(|| not_found(id))?;
    schedule(&row)
}

/// Every schedule, by name.
pub(crate) async fn schedule_list(store: &SqliteStore) -> Result<Vec<Schedule>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))
        .fetch_all(&store.reader)
        .await
        .map_err(db)?;
    rows.iter().map(schedule).collect()
}

/// Replaces a schedule's spec and times (its fires stay). A fire waiting
/// under `buffer_one` waits no more when the policy changes: it is recorded
/// as skipped and the schedule forgets it, in the same transaction.
pub(crate) async fn schedule_update(
    store: &SqliteStore,
    id: Uuid,
    w: &ScheduleWrite,
) -> Result<Schedule> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "UPDATE schedule_fires SET outcome = 'skipped_overlap', \
           message = 'waited for the previous run; the overlap policy changed' \
         WHERE schedule_id = ?1 AND outcome = 'buffered' AND ?2 <> 'buffer_one'",
    )
    .bind(id.hyphenated())
    .bind(w.spec.overlap.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let sql = format!(
        "UPDATE schedules SET name = ?2, namespace = ?3, template = ?4, version = ?5, \
           context = ?6, cron = ?7, time_zone = ?8, interval_text = ?9, jitter = ?10, \
           overlap = ?11, catch_up = ?12, paused = ?13, anchor_at = ?14, next_fire_at = ?15, \
           next_run_at = ?16, updated_at = ?17, \
           buffered_fire_at = CASE WHEN ?11 = 'buffer_one' THEN buffered_fire_at END \
         WHERE id = ?1 RETURNING {COLUMNS}"
    );
    let row = bind_write(sqlx::query(&sql), id, w, clock::now())
        .fetch_optional(&mut *tx)
        .await;
    let updated = match row {
        Ok(Some(row)) => schedule(&row)?,
        Ok(None) => return Err(not_found(id)),
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&w.spec.name)),
        Err(e) => return Err(db(e)),
    };
    tx.commit().await.map_err(db)?;
    Ok(updated)
}

/// Deletes a schedule and its fire records (tasks it started stay).
pub(crate) async fn schedule_delete(store: &SqliteStore, id: Uuid) -> Result<()> {
    // The fires go by the foreign key's cascade (foreign keys are on for
    // every connection of the store).
    let done = sqlx::query("DELETE FROM schedules WHERE id = ?1")
        .bind(id.hyphenated())
        .execute(&store.writer)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// Up to `limit` schedules to look at now: not paused with
/// `next_run_at <= now`, or holding a buffered fire; oldest due first.
pub(crate) async fn schedule_due(
    store: &SqliteStore,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<Schedule>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules \
         WHERE (NOT paused AND next_run_at <= ?1) OR buffered_fire_at IS NOT NULL \
         ORDER BY next_run_at NULLS LAST, id LIMIT ?2"
    ))
    .bind(clock::micros(now))
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter().map(schedule).collect()
}

/// The earliest `next_run_at` of the schedules not paused.
pub(crate) async fn schedule_next_run(store: &SqliteStore) -> Result<Option<Timestamp>> {
    let next: Option<i64> =
        sqlx::query_scalar("SELECT min(next_run_at) FROM schedules WHERE NOT paused")
            .fetch_one(&store.reader)
            .await
            .map_err(db)?;
    Ok(clock::from_micros_opt(next))
}

/// A schedule's fires, newest fire time first, at most `limit` (1 to 1000).
pub(crate) async fn schedule_fires(
    store: &SqliteStore,
    id: Uuid,
    limit: u32,
) -> Result<Vec<ScheduleFire>> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM schedules WHERE id = ?1)")
        .bind(id.hyphenated())
        .fetch_one(&store.reader)
        .await
        .map_err(db)?;
    if !exists {
        return Err(not_found(id));
    }
    let rows = sqlx::query(&format!(
        "SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE schedule_id = ?1 \
         ORDER BY fire_time DESC LIMIT ?2"
    ))
    .bind(id.hyphenated())
    .bind(i64::from(limit.clamp(1, 1000)))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter().map(fire).collect()
}

#[cfg(test)]
#[path = "schedules_tests.rs"]
mod tests;

//! Schedules and their fires.
//!
//! A fire is one transaction: its row in `tasker.schedule_fires` (unique by
//! schedule and fire time), the task it starts (written by the task
//! creation code, with its queue messages) and the schedule's next times.
//! Two nodes firing the same time meet at the fire row's key: the second
//! waits for the first's commit, then finds the row and writes nothing.
//! A schedule's task must never be written outside a fire's transaction.

use sqlx::Row;
use sqlx::postgres::PgRow;
use tasker_model::schedule::FireKind;
use tasker_model::{Schedule, ScheduleFire, ScheduleSpec, Task, Timestamp};
use tasker_store::orchestration::task_creation;
use tasker_store::schedules::{Started, name_taken, not_found};
use tasker_store::{
    Error, FireAction, FireRequest, FireResult, NextFire, Result, ScheduleWrite, TaskCreate,
};
use uuid::Uuid;

use crate::PgStore;
use crate::error::{commit_error, db};
use crate::tasks;

const COLUMNS: &str = "id, name, namespace, template, version, context, cron, time_zone, \
     interval_text, jitter, overlap, catch_up, paused, anchor_at, next_fire_at, next_run_at, \
     last_task_id, buffered_fire_at, created_at, updated_at";

const FIRE_COLUMNS: &str =
    "schedule_id, fire_time, kind, outcome, task_id, message, node_id, recorded_at";

fn unexpected(message: String) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

fn schedule(row: &PgRow) -> Result<Schedule> {
    let overlap: String = row.get("overlap");
    let catch_up: String = row.get("catch_up");
    Ok(Schedule {
        id: row.get("id"),
        spec: ScheduleSpec {
            name: row.get("name"),
            namespace: row.get("namespace"),
            template: row.get("template"),
            version: row.get("version"),
            context: row.get("context"),
            cron: row.get("cron"),
            time_zone: row.get("time_zone"),
            interval: row.get("interval_text"),
            jitter: row.get("jitter"),
            overlap: overlap.parse().map_err(unexpected)?,
            catch_up: catch_up.parse().map_err(unexpected)?,
            paused: row.get("paused"),
        },
        anchor_at: row.get("anchor_at"),
        next_fire_at: row.get("next_fire_at"),
        next_run_at: row.get("next_run_at"),
        last_task_id: row.get("last_task_id"),
        buffered_fire_at: row.get("buffered_fire_at"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn fire(row: &PgRow) -> Result<ScheduleFire> {
    let kind: String = row.get("kind");
    let outcome: String = row.get("outcome");
    Ok(ScheduleFire {
        schedule_id: row.get("schedule_id"),
        fire_time: row.get("fire_time"),
        kind: kind.parse().map_err(unexpected)?,
        outcome: outcome.parse().map_err(unexpected)?,
        task_id: row.get("task_id"),
        message: row.get("message"),
        node_id: row.get("node_id"),
        recorded_at: row.get("recorded_at"),
    })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}

/// Binds $1 (the schedule's id) to $16 (its spec and times) in the order
/// both [`create`] and [`update`] name the columns.
fn bind_write<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    id: Uuid,
    w: &'q ScheduleWrite,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let s = &w.spec;
    query
        .bind(id)
        .bind(&s.name)
        .bind(&s.namespace)
        .bind(&s.template)
        .bind(&s.version)
        .bind(&s.context)
        .bind(&s.cron)
        .bind(&s.time_zone)
        .bind(&s.interval)
        .bind(&s.jitter)
        .bind(s.overlap.as_str())
        .bind(s.catch_up.as_str())
        .bind(s.paused)
        .bind(w.anchor_at)
        .bind(w.next_fire_at)
        .bind(w.next_run_at)
}

pub async fn create(store: &PgStore, id: Uuid, w: &ScheduleWrite) -> Result<Schedule> {
    let s = &w.spec;
    let sql = format!(
        "INSERT INTO tasker.schedules (id, name, namespace, template, version, context, cron, \
           time_zone, interval_text, jitter, overlap, catch_up, paused, anchor_at, next_fire_at, \
           next_run_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         RETURNING {COLUMNS}"
    );
    let row = bind_write(sqlx::query(&sql), id, w)
        .fetch_one(&store.pool)
        .await;
    match row {
        Ok(row) => schedule(&row),
        Err(e) if is_unique_violation(&e) => Err(name_taken(&s.name)),
        Err(e) => Err(db(e)),
    }
}

pub async fn get(store: &PgStore, id: Uuid) -> Result<Schedule> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasker.schedules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?
    .ok_or_else(|| not_found(id))?;
    schedule(&row)
}

pub async fn list(store: &PgStore) -> Result<Vec<Schedule>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasker.schedules ORDER BY name"
    ))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter().map(schedule).collect()
}

pub async fn update(store: &PgStore, id: Uuid, w: &ScheduleWrite) -> Result<Schedule> {
    let s = &w.spec;
    // A fire waiting under buffer_one waits no more when the policy changes.
    let sql = format!(
        "WITH dropped AS ( \
           UPDATE tasker.schedule_fires SET outcome = 'skipped_overlap', \
             message = 'waited for the previous run; the overlap policy changed' \
           WHERE schedule_id = $1 AND outcome = 'buffered' AND $11 <> 'buffer_one' \
         ) \
         UPDATE tasker.schedules SET name = $2, namespace = $3, template = $4, version = $5, \
           context = $6, cron = $7, time_zone = $8, interval_text = $9, jitter = $10, \
           overlap = $11, catch_up = $12, paused = $13, anchor_at = $14, next_fire_at = $15, \
           next_run_at = $16, updated_at = clock_timestamp(), \
           buffered_fire_at = CASE WHEN $11 = 'buffer_one' THEN buffered_fire_at END \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = bind_write(sqlx::query(&sql), id, w)
        .fetch_optional(&store.pool)
        .await;
    match row {
        Ok(Some(row)) => schedule(&row),
        Ok(None) => Err(not_found(id)),
        Err(e) if is_unique_violation(&e) => Err(name_taken(&s.name)),
        Err(e) => Err(db(e)),
    }
}

pub async fn delete(store: &PgStore, id: Uuid) -> Result<()> {
    let done = sqlx::query("DELETE FROM tasker.schedules WHERE id = $1")
        .bind(id)
        .execute(&store.pool)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub async fn due(store: &PgStore, now: Timestamp, limit: u32) -> Result<Vec<Schedule>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasker.schedules \
         WHERE (NOT paused AND next_run_at <= $1) OR buffered_fire_at IS NOT NULL \
         ORDER BY next_run_at NULLS LAST, id LIMIT $2"
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter().map(schedule).collect()
}

pub async fn next_run(store: &PgStore) -> Result<Option<Timestamp>> {
    sqlx::query_scalar("SELECT min(next_run_at) FROM tasker.schedules WHERE NOT paused")
        .fetch_one(&store.pool)
        .await
        .map_err(db)
}

pub async fn fires(store: &PgStore, id: Uuid, limit: u32) -> Result<Vec<ScheduleFire>> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.schedules WHERE id = $1)")
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .map_err(db)?;
    if !exists {
        return Err(not_found(id));
    }
    let rows = sqlx::query(&format!(
        "SELECT {FIRE_COLUMNS} FROM tasker.schedule_fires WHERE schedule_id = $1 \
         ORDER BY fire_time DESC LIMIT $2"
    ))
    .bind(id)
    .bind(i64::from(limit.clamp(1, 1000)))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter().map(fire).collect()
}

/// Records one fire and does what it asks, in one transaction.
pub async fn fire_once(store: &PgStore, request: &FireRequest) -> Result<FireResult> {
    let create = request.action.task_create();
    let items: Vec<TaskCreate> = create.into_iter().cloned().collect();
    let prepared = match create {
        Some(_) => Some(task_creation::prepare(store, &items).await?),
        None => None,
    };

    let mut tx = store.pool.begin().await.map_err(db)?;
    // The fire's row first: a second node firing the same time waits here
    // for the first one's commit, then finds the row.
    let claimed = match request.action.row_to_insert() {
        None => sqlx::query(
            "SELECT 1 FROM tasker.schedule_fires \
             WHERE schedule_id = $1 AND fire_time = $2 AND outcome = 'buffered' FOR UPDATE",
        )
        .bind(request.schedule_id)
        .bind(request.fire_time)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .is_some(),
        Some((placeholder, message)) => {
            let inserted = sqlx::query(
                "INSERT INTO tasker.schedule_fires (schedule_id, fire_time, kind, outcome, message, node_id) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(request.schedule_id)
            .bind(request.fire_time)
            .bind(request.kind.as_str())
            .bind(placeholder.as_str())
            .bind(message)
            .bind(store.node_id())
            .fetch_optional(&mut *tx)
            .await;
            match inserted {
                Ok(row) => row.is_some(),
                // The schedule was deleted meanwhile.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23503") => {
                    return Err(not_found(request.schedule_id));
                }
                Err(e) => return Err(db(e)),
            }
        }
    };
    if !claimed {
        drop(tx);
        if let Some(next) = request.advance {
            advance(store, request, next).await?;
        }
        return Ok(FireResult::AlreadyFired);
    }

    let mut task: Option<Task> = None;
    let mut ready = Vec::new();
    if let Some(prepared) = prepared {
        let mut inserted = tasks::write(store, &mut tx, &items, prepared).await?;
        ready = inserted.ready;
        let started = Started::of(inserted.answers.pop().expect("one answer"))?;
        let (outcome, message) = (started.outcome, started.message);
        task = started.task;
        let task_id = task.as_ref().map(|t| t.id);
        sqlx::query(
            "UPDATE tasker.schedule_fires SET outcome = $3, task_id = $4, message = $5, \
               node_id = $6, recorded_at = clock_timestamp() \
             WHERE schedule_id = $1 AND fire_time = $2",
        )
        .bind(request.schedule_id)
        .bind(request.fire_time)
        .bind(outcome.as_str())
        .bind(task_id)
        .bind(message)
        .bind(store.node_id())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }

    if let FireAction::FailBuffered { message } = &request.action {
        sqlx::query(
            "UPDATE tasker.schedule_fires SET outcome = 'failed', message = $3, node_id = $4, \
               recorded_at = clock_timestamp() \
             WHERE schedule_id = $1 AND fire_time = $2",
        )
        .bind(request.schedule_id)
        .bind(request.fire_time)
        .bind(message)
        .bind(store.node_id())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }

    let (set_next, next_fire_at, next_run_at) = request.next_times();
    let buffered = request.action.buffered_set();
    sqlx::query(
        "UPDATE tasker.schedules SET \
           next_fire_at = CASE WHEN $2 AND (next_fire_at IS NULL OR next_fire_at <= $7) \
                          THEN $3 ELSE next_fire_at END, \
           next_run_at = CASE WHEN $2 AND (next_fire_at IS NULL OR next_fire_at <= $7) \
                         THEN $4 ELSE next_run_at END, \
           last_task_id = COALESCE($5, last_task_id), \
           buffered_fire_at = CASE WHEN $6 IS NULL THEN buffered_fire_at \
                              WHEN $6 THEN $7 ELSE NULL END \
         WHERE id = $1",
    )
    .bind(request.schedule_id)
    .bind(set_next)
    .bind(next_fire_at)
    .bind(next_run_at)
    .bind(task.as_ref().map(|t| t.id))
    .bind(buffered)
    .bind(request.fire_time)
    .execute(&mut *tx)
    .await
    .map_err(db)?;

    let row = sqlx::query(&format!(
        "SELECT {FIRE_COLUMNS} FROM tasker.schedule_fires WHERE schedule_id = $1 AND fire_time = $2"
    ))
    .bind(request.schedule_id)
    .bind(request.fire_time)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let recorded = fire(&row)?;
    tx.commit().await.map_err(commit_error)?;
    store.announce(&ready);
    Ok(FireResult::Recorded {
        fire: recorded,
        task: task.map(Box::new),
    })
}

/// Moves a schedule that was read before another node fired its time on
/// to the next time (never backwards).
async fn advance(store: &PgStore, request: &FireRequest, next: NextFire) -> Result<()> {
    debug_assert_eq!(request.kind, FireKind::Scheduled);
    sqlx::query(
        "UPDATE tasker.schedules SET next_fire_at = $2, next_run_at = $3 \
         WHERE id = $1 AND next_fire_at <= $4",
    )
    .bind(request.schedule_id)
    .bind(next.next_fire_at)
    .bind(next.next_run_at)
    .bind(request.fire_time)
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}

//! One fire of a schedule, in one writing transaction: the fire's row
//! (unique by schedule and fire time), the task it starts (written by the
//! task creation code, with its queue messages) and the schedule's next
//! times. The fire row's key makes a second fire of the same time a no-op:
//! it finds the row and writes nothing but the schedule's advance.
//!
//! Must never: write a schedule's task outside a fire's transaction.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tasker_model::schedule::{FireKind, FireOutcome};
use tasker_model::{ScheduleFire, Task};
use tasker_store::orchestration::task_creation;
use tasker_store::schedules::{Started, not_found};
use tasker_store::{Error, FireAction, FireRequest, FireResult, NextFire, Result, TaskCreate};
use uuid::fmt::Hyphenated;

use crate::{SqliteStore, clock, db, task_create};

const FIRE_COLUMNS: &str =
    "schedule_id, fire_time, kind, outcome, task_id, message, node_id, recorded_at";

/// Records one fire and does what it asks; see the module doc.
pub async fn fire_once(store: &SqliteStore, request: &FireRequest) -> Result<FireResult> {
    let create = request.action.task_create();
    let items: Vec<TaskCreate> = create.into_iter().cloned().collect();
    let prepared = match create {
        Some(_) => Some(task_creation::prepare(store, &items).await?),
        None => None,
    };
    let schedule_id = request.schedule_id.hyphenated();
    let fire_time = clock::micros(request.fire_time);

    let mut tx = store.begin_write().await?;
    let claimed = match request.action.row_to_insert() {
        None => sqlx::query(
            "SELECT 1 FROM schedule_fires \
             WHERE schedule_id = ? AND fire_time = ? AND outcome = 'buffered'",
        )
        .bind(schedule_id)
        .bind(fire_time)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .is_some(),
        Some((placeholder, message)) => {
            let inserted = sqlx::query(
                "INSERT INTO schedule_fires (schedule_id, fire_time, kind, outcome, message, \
                                             node_id, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(schedule_id)
            .bind(fire_time)
            .bind(request.kind.as_str())
            .bind(placeholder.as_str())
            .bind(message)
            .bind(store.node_id())
            .bind(clock::micros(clock::now()))
            .fetch_optional(&mut *tx)
            .await;
            match inserted {
                Ok(row) => row.is_some(),
                // The schedule was deleted meanwhile.
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation =>
                {
                    return Err(not_found(request.schedule_id));
                }
                Err(e) => return Err(db(e)),
            }
        }
    };
    if !claimed {
        if let Some(next) = request.advance {
            advance(&mut tx, request, next).await?;
        }
        tx.commit().await.map_err(db)?;
        return Ok(FireResult::AlreadyFired);
    }

    let mut task: Option<Task> = None;
    let mut ready = Vec::new();
    if let Some(prepared) = prepared {
        let mut inserted = task_create::write(store, &mut tx, &items, prepared).await?;
        ready = inserted.ready;
        let started = Started::of(inserted.answers.pop().expect("one answer"))?;
        let task_id = started.task.as_ref().map(|t| t.id);
        let (outcome, message) = (started.outcome, started.message);
        task = started.task;
        record_outcome(&mut tx, store, request, outcome, task_id, message).await?;
    }
    if let FireAction::FailBuffered { message } = &request.action {
        let message = Some(message.clone());
        record_outcome(&mut tx, store, request, FireOutcome::Failed, None, message).await?;
    }

    let (set_next, next_fire_at, next_run_at) = request.next_times();
    let buffered = request.action.buffered_set();
    sqlx::query(
        "UPDATE schedules SET \
           next_fire_at = CASE WHEN ?2 AND (next_fire_at IS NULL OR next_fire_at <= ?7) \
                          THEN ?3 ELSE next_fire_at END, \
           next_run_at = CASE WHEN ?2 AND (next_fire_at IS NULL OR next_fire_at <= ?7) \
                         THEN ?4 ELSE next_run_at END, \
           last_task_id = coalesce(?5, last_task_id), \
           buffered_fire_at = CASE WHEN ?6 IS NULL THEN buffered_fire_at \
                              WHEN ?6 THEN ?7 ELSE NULL END \
         WHERE id = ?1",
    )
    .bind(schedule_id)
    .bind(set_next)
    .bind(clock::micros_opt(next_fire_at))
    .bind(clock::micros_opt(next_run_at))
    .bind(task.as_ref().map(|t| t.id.hyphenated()))
    .bind(buffered)
    .bind(fire_time)
    .execute(&mut *tx)
    .await
    .map_err(db)?;

    let row = sqlx::query(&format!(
        "SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE schedule_id = ? AND fire_time = ?"
    ))
    .bind(schedule_id)
    .bind(fire_time)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let recorded = fire(&row)?;
    tx.commit().await.map_err(db)?;
    store.after_commit(&ready, &[]);
    Ok(FireResult::Recorded {
        fire: recorded,
        task: task.map(Box::new),
    })
}

/// Sets the final outcome of the fire's row.
async fn record_outcome(
    conn: &mut sqlx::SqliteConnection,
    store: &SqliteStore,
    request: &FireRequest,
    outcome: FireOutcome,
    task_id: Option<uuid::Uuid>,
    message: Option<String>,
) -> Result<()> {
    sqlx::query(
        "UPDATE schedule_fires SET outcome = ?, task_id = ?, message = ?, node_id = ?, \
           recorded_at = ? \
         WHERE schedule_id = ? AND fire_time = ?",
    )
    .bind(outcome.as_str())
    .bind(task_id.map(|id| id.hyphenated()))
    .bind(message)
    .bind(store.node_id())
    .bind(clock::micros(clock::now()))
    .bind(request.schedule_id.hyphenated())
    .bind(clock::micros(request.fire_time))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Moves a schedule that was read before its time was fired on to the next
/// time (never backwards).
async fn advance(
    conn: &mut sqlx::SqliteConnection,
    request: &FireRequest,
    next: NextFire,
) -> Result<()> {
    debug_assert_eq!(request.kind, FireKind::Scheduled);
    sqlx::query(
        "UPDATE schedules SET next_fire_at = ?, next_run_at = ? \
         WHERE id = ? AND next_fire_at <= ?",
    )
    .bind(clock::micros_opt(next.next_fire_at))
    .bind(clock::micros_opt(next.next_run_at))
    .bind(request.schedule_id.hyphenated())
    .bind(clock::micros(request.fire_time))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

fn fire(row: &SqliteRow) -> Result<ScheduleFire> {
    let unexpected = |m: String| Error::Database(format!("unexpected row: {m}").into());
    let kind: String = row.get("kind");
    let outcome: String = row.get("outcome");
    Ok(ScheduleFire {
        schedule_id: row.get::<Hyphenated, _>("schedule_id").into_uuid(),
        fire_time: clock::from_micros(row.get("fire_time")),
        kind: kind.parse().map_err(unexpected)?,
        outcome: outcome.parse().map_err(unexpected)?,
        task_id: row
            .get::<Option<Hyphenated>, _>("task_id")
            .map(Hyphenated::into_uuid),
        message: row.get("message"),
        node_id: row.get("node_id"),
        recorded_at: clock::from_micros(row.get("recorded_at")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedules;
    use crate::testing::test_store;
    use tasker_model::schedule::{CatchUp, OverlapPolicy};
    use tasker_model::{ScheduleSpec, Template, TemplateRecord};
    use tasker_store::ScheduleWrite;
    use uuid::Uuid;

    async fn store_with_schedule() -> (SqliteStore, TemplateRecord, Uuid) {
        let store = test_store().await;
        let template = Template::from_json(serde_json::json!({
            "namespace": "default", "name": "nightly", "version": "1",
            "steps": [{"name": "a", "handler": "h"}],
        }))
        .unwrap();
        let (record, _) = tasker_store::catalog::template_register(&store, &template)
            .await
            .unwrap();
        let now = clock::now();
        let id = Uuid::now_v7();
        schedules::schedule_create(
            &store,
            id,
            &ScheduleWrite {
                spec: ScheduleSpec {
                    name: "nightly".into(),
                    namespace: "default".into(),
                    template: "nightly".into(),
                    version: None,
                    context: serde_json::json!({}),
                    cron: None,
                    time_zone: None,
                    interval: Some("1h".into()),
                    jitter: None,
                    overlap: OverlapPolicy::Allow,
                    catch_up: CatchUp::RunOnce,
                    paused: false,
                },
                anchor_at: now,
                next_fire_at: Some(now),
                next_run_at: Some(now),
            },
        )
        .await
        .unwrap();
        (store, record, id)
    }

    fn start(record: &TemplateRecord, id: Uuid, at: tasker_model::Timestamp) -> FireRequest {
        FireRequest {
            schedule_id: id,
            fire_time: at,
            kind: FireKind::Scheduled,
            action: FireAction::Start(TaskCreate {
                template_id: record.id,
                context: serde_json::json!({}),
                idempotency_key: None,
                tags: Vec::new(),
                deadline: None,
            }),
            advance: Some(NextFire {
                next_fire_at: Some(clock::after(at, std::time::Duration::from_secs(3600))),
                next_run_at: Some(clock::after(at, std::time::Duration::from_secs(3600))),
            }),
        }
    }

    #[tokio::test]
    async fn a_fire_starts_its_task_once_and_moves_the_schedule_on() {
        let (store, record, id) = store_with_schedule().await;
        let at = schedules::schedule_get(&store, id)
            .await
            .unwrap()
            .next_fire_at
            .unwrap();
        let FireResult::Recorded { fire, task } =
            fire_once(&store, &start(&record, id, at)).await.unwrap()
        else {
            panic!("recorded");
        };
        let task = task.expect("a task started");
        assert_eq!(fire.outcome, FireOutcome::Started);
        assert_eq!(fire.task_id, Some(task.id));
        assert_eq!(fire.fire_time, at);
        let schedule = schedules::schedule_get(&store, id).await.unwrap();
        assert_eq!(schedule.last_task_id, Some(task.id));
        assert!(schedule.next_fire_at.unwrap() > at);

        // The same time again writes nothing.
        let again = fire_once(&store, &start(&record, id, at)).await.unwrap();
        assert!(matches!(again, FireResult::AlreadyFired));
        let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(tasks, 1);
    }

    #[tokio::test]
    async fn a_fire_whose_task_cannot_start_is_recorded_failed() {
        let (store, record, id) = store_with_schedule().await;
        let mut request = start(&record, id, clock::now());
        request.action = FireAction::Start(TaskCreate {
            template_id: Uuid::now_v7(),
            context: serde_json::json!({}),
            idempotency_key: None,
            tags: Vec::new(),
            deadline: None,
        });
        let FireResult::Recorded { fire, task } = fire_once(&store, &request).await.unwrap() else {
            panic!("recorded");
        };
        assert!(task.is_none());
        assert_eq!(fire.outcome, FireOutcome::Failed);
        assert!(fire.message.unwrap().contains("not found"));
    }

    #[tokio::test]
    async fn a_fire_of_a_deleted_schedule_is_not_found() {
        let (store, record, id) = store_with_schedule().await;
        schedules::schedule_delete(&store, id).await.unwrap();
        let error = fire_once(&store, &start(&record, id, clock::now()))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_buffered_fire_is_started_later_once() {
        let (store, record, id) = store_with_schedule().await;
        let at = clock::now();
        let mut buffer = start(&record, id, at);
        buffer.action = FireAction::Buffer;
        buffer.advance = None;
        fire_once(&store, &buffer).await.unwrap();
        let schedule = schedules::schedule_get(&store, id).await.unwrap();
        assert_eq!(schedule.buffered_fire_at, Some(at));

        let mut later = start(&record, id, at);
        let FireAction::Start(create) = later.action.clone() else {
            unreachable!()
        };
        later.action = FireAction::StartBuffered(create);
        later.advance = None;
        let FireResult::Recorded { fire, task } = fire_once(&store, &later).await.unwrap() else {
            panic!("recorded");
        };
        assert!(task.is_some());
        assert_eq!(fire.outcome, FireOutcome::Started);
        let schedule = schedules::schedule_get(&store, id).await.unwrap();
        assert_eq!(schedule.buffered_fire_at, None);
        assert!(matches!(
            fire_once(&store, &later).await.unwrap(),
            FireResult::AlreadyFired
        ));
    }
}

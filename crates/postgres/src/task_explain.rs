//! The facts behind "why is it waiting?": a task, its steps with their
//! queue messages and lease holders, and the live workers, read in one
//! read-only snapshot so that a step and its message agree. The reasons
//! themselves are worked out in `tasker_model::explanation`; nothing here
//! decides anything.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Row;
use tasker_model::Timestamp;
use tasker_model::explanation::{ExplainFacts, LiveWorker, MessageFacts, StepFacts};
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::error::db;
use crate::rows::{self, TASK_COLUMNS, TASK_FROM};
use crate::{PgStore, catalog};

pub async fn facts(store: &PgStore, id: Uuid, worker_within: Duration) -> Result<ExplainFacts> {
    let mut tx = store.pool.begin().await.map_err(db)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS}, n.queue, clock_timestamp() AS now FROM {TASK_FROM} \
           JOIN tasker.namespaces n ON n.name = t.namespace WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    let task = rows::task(&row)?;
    let queue: String = row.get("queue");
    let now: Timestamp = row.get("now");
    let template = catalog::template_by_id(store, task.template_id).await?;

    // The holder's node is read whatever its liveness: a silent worker's
    // last node is what an operator needs to find it.
    let step_rows = sqlx::query(&format!(
        "SELECT s.*, (SELECT w.node_id FROM tasker.workers w \
                       WHERE w.id = s.worker_id AND s.state = 'running') AS holder_node \
         FROM (SELECT {}, msg_id FROM tasker.steps WHERE task_id = $1) s ORDER BY s.position",
        rows::STEP_COLUMNS
    ))
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let msg_ids: Vec<i64> = step_rows
        .iter()
        .filter_map(|r| r.get::<Option<i64>, _>("msg_id"))
        .collect();

    // Queue names derive from namespaces checked against
    // `^[a-z][a-z0-9_]*$` (a CHECK constraint), so they are safe identifiers.
    let messages: HashMap<i64, MessageFacts> = if msg_ids.is_empty() {
        HashMap::new()
    } else {
        sqlx::query(&format!(
            "SELECT msg_id, enqueued_at, vt FROM pgmq.\"q_{queue}\" WHERE msg_id = ANY($1)"
        ))
        .bind(&msg_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            (
                r.get("msg_id"),
                MessageFacts {
                    enqueued_at: r.get("enqueued_at"),
                    visible_at: r.get("vt"),
                },
            )
        })
        .collect()
    };

    let workers = sqlx::query(
        "SELECT id, namespaces, handlers, node_id FROM tasker.workers \
         WHERE last_seen_at > clock_timestamp() - make_interval(secs => $1) ORDER BY id",
    )
    .bind(worker_within.as_secs_f64())
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?
    .iter()
    .map(|r| LiveWorker {
        worker_id: r.get("id"),
        namespaces: r.get("namespaces"),
        handlers: r.get("handlers"),
        node_id: r.get("node_id"),
    })
    .collect();
    tx.commit().await.map_err(db)?;

    let steps = step_rows
        .iter()
        .map(|r| {
            let msg_id: Option<i64> = r.get("msg_id");
            Ok(StepFacts {
                step: rows::step(r, &template)?,
                message: msg_id.and_then(|m| messages.get(&m).copied()),
                holder_node: r.get("holder_node"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ExplainFacts {
        task,
        steps,
        workers,
        now,
    })
}

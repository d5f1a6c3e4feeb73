//! PGMQ calls, always on the caller's transaction so that queue messages
//! commit or roll back with the state they belong to.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use tasker_model::Timestamp;
use tasker_store::Result;
use uuid::Uuid;

use crate::error::db;

/// The body of a queue message: which step of which task is ready.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StepMessage {
    pub task_id: Uuid,
    pub step_id: Uuid,
}

/// A message just read, invisible to others until `visible_at`.
#[derive(Debug, Clone, Copy)]
pub struct ReadMessage {
    pub msg_id: i64,
    pub visible_at: Timestamp,
    /// When the message was first sent.
    pub enqueued_at: Timestamp,
    pub body: Option<StepMessage>,
}

/// Sends messages; returns their ids in the order of `bodies`.
pub async fn send(
    conn: &mut PgConnection,
    queue: &str,
    bodies: &[StepMessage],
) -> Result<Vec<i64>> {
    send_visible_at(conn, queue, bodies, None).await
}

/// Sends messages hidden until `visible_at` (`None`: visible now); returns
/// their ids in the order of `bodies`.
pub async fn send_visible_at(
    conn: &mut PgConnection,
    queue: &str,
    bodies: &[StepMessage],
    visible_at: Option<Timestamp>,
) -> Result<Vec<i64>> {
    let json: Vec<serde_json::Value> = bodies
        .iter()
        .map(|b| serde_json::to_value(b).expect("message serializes"))
        .collect();
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT * FROM pgmq.send_batch($1, $2::jsonb[], coalesce($3::timestamptz, clock_timestamp()))",
    )
    .bind(queue)
    .bind(&json)
    .bind(visible_at)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    // Ids come from one sequence in insertion order.
    ids.sort_unstable();
    Ok(ids)
}

pub async fn delete(conn: &mut PgConnection, queue: &str, msg_ids: &[i64]) -> Result<()> {
    sqlx::query("SELECT count(*) FROM pgmq.delete($1, $2::bigint[])")
        .bind(queue)
        .bind(msg_ids)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Makes messages visible again at once (a claim that read them but could
/// not use them now). Their read count stays as it is.
pub async fn make_visible(conn: &mut PgConnection, queue: &str, msg_ids: &[i64]) -> Result<()> {
    sqlx::query(
        "SELECT count(*) FROM unnest($2::bigint[]) AS m(id), LATERAL pgmq.set_vt($1, m.id, 0)",
    )
    .bind(queue)
    .bind(msg_ids)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Reads up to `max` visible messages and hides them for `lease_secs`.
pub async fn read(
    conn: &mut PgConnection,
    queue: &str,
    lease_secs: i32,
    max: i32,
) -> Result<Vec<ReadMessage>> {
    let rows = sqlx::query("SELECT msg_id, vt, enqueued_at, message FROM pgmq.read($1, $2, $3)")
        .bind(queue)
        .bind(lease_secs)
        .bind(max)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let body: serde_json::Value = row.get("message");
            ReadMessage {
                msg_id: row.get("msg_id"),
                visible_at: row.get("vt"),
                enqueued_at: row.get("enqueued_at"),
                body: serde_json::from_value(body).ok(),
            }
        })
        .collect())
}

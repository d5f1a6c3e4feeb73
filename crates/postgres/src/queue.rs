//! Queue statements, always on the caller's transaction so that queue
//! messages commit or roll back with the state they belong to.
//!
//! The queues are PGMQ tables (created with `pgmq.create`, so PGMQ's own
//! tools still read them), but messages are sent, read, hidden and deleted
//! with plain statements on each queue's table rather than through PGMQ's
//! functions: those build their SQL with `format` and run it with `EXECUTE`,
//! so PostgreSQL parses and plans it again on every call and every message,
//! where a statement named here is prepared once per connection and queue.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use tasker_model::Timestamp;
use tasker_store::Result;
use tasker_store::backend::{MessageTarget, ReadMessage};

use crate::error::db;

/// A step message's body ([`tasker_store::backend::StepMessage`]) built in SQL from the columns
/// `task_id`, `id` (the step's) and `handler` of the rows it is sent for:
/// the plan writer's and task creation's statements send messages this way.
pub(crate) const MESSAGE_BODY: &str =
    "jsonb_build_object('task_id', task_id, 'step_id', id, 'handler', handler)";

pub async fn delete(conn: &mut PgConnection, queue: &str, msg_ids: &[i64]) -> Result<()> {
    let table = queue_table(queue);
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE msg_id = ANY($1::bigint[])"
    ))
    .bind(msg_ids)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Makes messages visible again at once (a claim that read them but could
/// not use them now). Their read count stays as it is.
pub async fn make_visible(conn: &mut PgConnection, queue: &str, msg_ids: &[i64]) -> Result<()> {
    let table = queue_table(queue);
    sqlx::query(&format!(
        "UPDATE {table} SET vt = clock_timestamp() WHERE msg_id = ANY($1::bigint[])"
    ))
    .bind(msg_ids)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Reads up to `max` visible messages and hides them for `lease_secs`.
/// With `handlers`, only messages naming one of them are read (and those
/// without a handler, sent before messages carried one: the claim then
/// routes them by their step's handler); the others stay visible for
/// workers that run their handler. Like `pgmq.read`, one
/// statement that locks what it reads with `FOR UPDATE SKIP LOCKED`; unlike
/// it, one plan for both cases (a NULL `handlers` matches every message).
pub async fn read(
    conn: &mut PgConnection,
    queue: &str,
    lease_secs: i32,
    max: i32,
    handlers: &[String],
) -> Result<Vec<ReadMessage>> {
    // Without handlers every message matches: `$3` is then NULL.
    let handlers = (!handlers.is_empty()).then_some(handlers);
    let table = queue_table(queue);
    let rows = sqlx::query(&format!(
        "WITH cte AS ( \
            SELECT msg_id FROM {table} \
            WHERE vt <= clock_timestamp() \
              AND ($3::text[] IS NULL OR coalesce(message->>'handler' = ANY($3::text[]), true)) \
            ORDER BY msg_id ASC LIMIT $2 FOR UPDATE SKIP LOCKED) \
         UPDATE {table} m SET last_read_at = clock_timestamp(), \
            vt = clock_timestamp() + make_interval(secs => $1), read_ct = read_ct + 1 \
         FROM cte WHERE m.msg_id = cte.msg_id \
         RETURNING m.msg_id, m.vt, m.enqueued_at, m.message"
    ))
    .bind(f64::from(lease_secs))
    .bind(max)
    .bind(handlers)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut messages: Vec<ReadMessage> = rows
        .into_iter()
        .map(|row| {
            let body: serde_json::Value = row.get("message");
            ReadMessage {
                msg_id: row.get("msg_id"),
                visible_at: row.get("vt"),
                enqueued_at: row.get("enqueued_at"),
                body: serde_json::from_value::<MessageTarget>(body).ok(),
            }
        })
        .collect();
    messages.sort_unstable_by_key(|m| m.msg_id);
    Ok(messages)
}

/// How long until the first hidden message of a queue becomes visible (a
/// retry waiting out its backoff, a lease running out); `None` when no
/// message is hidden. Served by the queue's index on `vt`, starting at the
/// statement's time: `clock_timestamp()` changes while a statement runs, so
/// as a bound it would only filter, and the scan would walk past every
/// visible message of a backlog first.
pub async fn next_visible_in(
    conn: &mut PgConnection,
    queue: &str,
) -> Result<Option<std::time::Duration>> {
    let table = queue_table(queue);
    let seconds: Option<f64> = sqlx::query_scalar(&format!(
        "SELECT extract(epoch FROM min(vt) - clock_timestamp())::float8 FROM {table} \
         WHERE vt > statement_timestamp()"
    ))
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Ok(seconds.map(|s| std::time::Duration::from_secs_f64(s.max(0.0))))
}

/// The PGMQ table of a queue, quoted. Queue names are made by
/// `catalog::queue_name` from validated namespace names; the quoting keeps
/// any other name harmless all the same.
pub(crate) fn queue_table(queue: &str) -> String {
    // As pgmq.format_table_name: the table is "q_" and the lower-cased name.
    let name = format!("q_{}", queue.to_lowercase()).replace('"', "\"\"");
    format!("pgmq.\"{name}\"")
}

/// When each of `msg_ids` that still exists becomes visible.
pub async fn visible_at(
    conn: &mut PgConnection,
    queue: &str,
    msg_ids: &[i64],
) -> Result<HashMap<i64, Timestamp>> {
    let table = queue_table(queue);
    let rows = sqlx::query(&format!(
        "SELECT msg_id, vt FROM {table} WHERE msg_id = ANY($1)"
    ))
    .bind(msg_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(rows
        .iter()
        .map(|row| (row.get("msg_id"), row.get("vt")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_store::backend::StepMessage;
    use uuid::Uuid;

    /// The statements build the message body themselves: it must name every
    /// field of the body the rest of the store reads and writes.
    #[test]
    fn the_message_body_names_every_field_of_a_step_message() {
        let body = serde_json::to_value(StepMessage {
            task_id: Uuid::nil(),
            step_id: Uuid::nil(),
            handler: "h".into(),
        })
        .unwrap();
        let built = MESSAGE_BODY
            .strip_prefix("jsonb_build_object(")
            .and_then(|rest| rest.strip_suffix(')'))
            .expect("the body is built with jsonb_build_object");
        let mut keys: Vec<&str> = built
            .split(',')
            .step_by(2)
            .map(|key| key.trim().trim_matches('\''))
            .collect();
        let mut expected: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        expected.sort_unstable();
        keys.sort_unstable();
        assert_eq!(keys, expected, "{MESSAGE_BODY}");
    }
}

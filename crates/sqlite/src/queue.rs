//! Queue statements on the one `queue_messages` table, always on the
//! caller's connection (inside its transaction) so that messages commit or
//! roll back with the state they belong to.
//!
//! ```text
//!  send ──▶ row (queue, vt = now or a later time, read_ct 0)
//!  read ──▶ visible rows (vt <= now) of one queue, oldest first:
//!           vt = now + lease, read_ct + 1        ◀─ hidden while leased
//!  delete / make visible / hide until           ◀─ by msg_id
//! ```
//!
//! A message is visible once `vt` has come by the store's clock (the
//! process's, see [`crate::clock`]). Lists of ids travel as one JSON array
//! bound to `json_each`, so every statement has one text whatever the
//! number of ids. Must never: be called outside a writing transaction for
//! anything but a read of depths.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{Row, SqliteConnection};
use tasker_model::Timestamp;
use tasker_store::Result;
pub use tasker_store::backend::StepMessage;
use tasker_store::backend::{MessageTarget, ReadMessage};

use crate::{clock, db};

/// A list of ids as the JSON array `json_each` reads.
pub fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    serde_json::to_string(&ids.into_iter().collect::<Vec<i64>>()).expect("ids serialize")
}

/// Sends messages hidden until `visible_at` (`None`: visible now), in one
/// statement; returns their ids in the order of `bodies`.
pub async fn send(
    conn: &mut SqliteConnection,
    queue: &str,
    bodies: &[StepMessage],
    visible_at: Option<Timestamp>,
) -> Result<Vec<i64>> {
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    let now = clock::micros(clock::now());
    let vt = visible_at.map_or(now, clock::micros);
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO queue_messages (queue, vt, enqueued_at, message) \
         SELECT ?, ?, ?, value FROM json_each(?) ORDER BY key \
         RETURNING msg_id",
    )
    .bind(queue)
    .bind(vt)
    .bind(now)
    .bind(serde_json::to_string(bodies).expect("messages serialize"))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    // Rows are inserted in the order of `bodies`, and AUTOINCREMENT ids
    // grow with every insert.
    ids.sort_unstable();
    Ok(ids)
}

/// Reads up to `max` visible messages of `queue`, oldest first, and hides
/// them for `lease_for` (counting the read). With `handlers`, only messages
/// naming one of them are read (and those naming none: the claim routes
/// them by their step's handler); the others stay visible.
pub async fn read(
    conn: &mut SqliteConnection,
    queue: &str,
    lease_for: Duration,
    max: u32,
    handlers: &[String],
) -> Result<Vec<ReadMessage>> {
    let now = clock::now();
    let until = clock::micros(now) + i64::try_from(lease_for.as_micros()).unwrap_or(i64::MAX / 2);
    let handlers =
        (!handlers.is_empty()).then(|| serde_json::to_string(handlers).expect("names serialize"));
    let rows = sqlx::query(
        "UPDATE queue_messages SET vt = ?1, read_ct = read_ct + 1 \
         WHERE msg_id IN ( \
            SELECT msg_id FROM queue_messages \
            WHERE queue = ?2 AND vt <= ?3 \
              AND (?4 IS NULL OR json_extract(message, '$.handler') IS NULL \
                   OR json_extract(message, '$.handler') IN (SELECT value FROM json_each(?4))) \
            ORDER BY msg_id LIMIT ?5) \
         RETURNING msg_id, vt, enqueued_at, message",
    )
    .bind(until)
    .bind(queue)
    .bind(clock::micros(now))
    .bind(handlers)
    .bind(i64::from(max))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut messages: Vec<ReadMessage> = rows
        .iter()
        .map(|row| {
            let body: String = row.get("message");
            ReadMessage {
                msg_id: row.get("msg_id"),
                visible_at: clock::from_micros(row.get("vt")),
                enqueued_at: clock::from_micros(row.get("enqueued_at")),
                body: serde_json::from_str::<MessageTarget>(&body).ok(),
            }
        })
        .collect();
    messages.sort_unstable_by_key(|m| m.msg_id);
    Ok(messages)
}

/// Deletes messages of `queue`; unknown ids are ignored.
pub async fn delete(conn: &mut SqliteConnection, queue: &str, msg_ids: &[i64]) -> Result<()> {
    if msg_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM queue_messages \
         WHERE queue = ? AND msg_id IN (SELECT value FROM json_each(?))",
    )
    .bind(queue)
    .bind(id_list(msg_ids.iter().copied()))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Makes messages visible again at once (a claim that read them but could
/// not use them now). Their read count stays as it is.
pub async fn make_visible(conn: &mut SqliteConnection, queue: &str, msg_ids: &[i64]) -> Result<()> {
    if msg_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE queue_messages SET vt = ? \
         WHERE queue = ? AND msg_id IN (SELECT value FROM json_each(?))",
    )
    .bind(clock::micros(clock::now()))
    .bind(queue)
    .bind(id_list(msg_ids.iter().copied()))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Moves the visibility of messages of `queue` to the given times (hides
/// them, or shows them for a time already past), in one statement.
pub async fn hide(
    conn: &mut SqliteConnection,
    queue: &str,
    until: &[(i64, Timestamp)],
) -> Result<()> {
    if until.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(i64, i64)> = until
        .iter()
        .map(|&(id, at)| (id, clock::micros(at)))
        .collect();
    sqlx::query(
        "UPDATE queue_messages SET vt = u.vt \
         FROM (SELECT value ->> '$[0]' AS id, value ->> '$[1]' AS vt FROM json_each(?)) AS u \
         WHERE queue_messages.msg_id = u.id AND queue_messages.queue = ?",
    )
    .bind(serde_json::to_string(&pairs).expect("pairs serialize"))
    .bind(queue)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// When each of these messages of `queue` becomes (or became) visible;
/// messages that do not exist are left out.
pub async fn visible_at(
    conn: &mut SqliteConnection,
    queue: &str,
    msg_ids: &[i64],
) -> Result<HashMap<i64, Timestamp>> {
    if msg_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT msg_id, vt FROM queue_messages \
         WHERE queue = ? AND msg_id IN (SELECT value FROM json_each(?))",
    )
    .bind(queue)
    .bind(id_list(msg_ids.iter().copied()))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(rows
        .iter()
        .map(|row| (row.get("msg_id"), clock::from_micros(row.get("vt"))))
        .collect())
}

/// How long until the first hidden message of a queue becomes visible (a
/// retry waiting out its backoff, a lease running out); `None` when no
/// message is hidden. Served by the index on (queue, vt).
pub async fn next_visible_in(conn: &mut SqliteConnection, queue: &str) -> Result<Option<Duration>> {
    let now = clock::micros(clock::now());
    let first: Option<i64> =
        sqlx::query_scalar("SELECT min(vt) FROM queue_messages WHERE queue = ? AND vt > ?")
            .bind(queue)
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    Ok(first.map(|vt| Duration::from_micros(u64::try_from(vt - now).unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteLocation, SqliteStore, catalog};
    use uuid::Uuid;

    fn body(handler: &str) -> StepMessage {
        StepMessage {
            task_id: Uuid::now_v7(),
            step_id: Uuid::now_v7(),
            handler: handler.into(),
        }
    }

    #[tokio::test]
    async fn read_takes_visible_messages_of_its_queue_and_handlers_oldest_first() {
        let store = SqliteStore::open(SqliteLocation::Memory, "n")
            .await
            .unwrap();
        catalog::migrate(&store).await.unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let ids = send(&mut tx, "a", &[body("x"), body("y"), body("x")], None)
            .await
            .unwrap();
        send(&mut tx, "b", &[body("x")], None).await.unwrap();
        let later = clock::from_micros(clock::micros(clock::now()) + 60_000_000);
        let hidden = send(&mut tx, "a", &[body("x")], Some(later)).await.unwrap();

        let lease = Duration::from_secs(30);
        let read_x = read(&mut tx, "a", lease, 10, &["x".into()]).await.unwrap();
        assert_eq!(
            read_x.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
            [ids[0], ids[2]]
        );
        assert!(read_x[0].visible_at > clock::now());
        // Read messages are hidden: a second read finds only "y".
        let rest = read(&mut tx, "a", lease, 10, &[]).await.unwrap();
        assert_eq!(rest.iter().map(|m| m.msg_id).collect::<Vec<_>>(), [ids[1]]);
        assert!(read(&mut tx, "a", lease, 10, &[]).await.unwrap().is_empty());

        let wait = next_visible_in(&mut tx, "a").await.unwrap().unwrap();
        assert!(wait <= lease, "{wait:?}");
        make_visible(&mut tx, "a", &[ids[0]]).await.unwrap();
        let again = read(&mut tx, "a", lease, 10, &[]).await.unwrap();
        assert_eq!(again.iter().map(|m| m.msg_id).collect::<Vec<_>>(), [ids[0]]);
        // Another queue's ids are not this queue's.
        delete(&mut tx, "b", &[ids[1]]).await.unwrap();
        delete(&mut tx, "a", &[ids[0], hidden[0]]).await.unwrap();
        let seen = visible_at(&mut tx, "a", &[ids[0], ids[1]]).await.unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen.contains_key(&ids[1]));
        let read_ct: i64 =
            sqlx::query_scalar("SELECT read_ct FROM queue_messages WHERE msg_id = ?")
                .bind(ids[1])
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(read_ct, 1);
    }
}

//! What a claim's payloads need besides the locked rows: task contexts,
//! parents' results and fan-out instances' items, in at most two queries.

use sqlx::{PgConnection, Row};
use tasker_store::Result;
use tasker_store::backend::{PayloadRequest, Payloads};
use uuid::Uuid;

use crate::error::db;

/// Reads contexts and results in one query, items (only when some instance
/// was claimed) in a second.
pub async fn load(conn: &mut PgConnection, request: &PayloadRequest) -> Result<Payloads> {
    let mut payloads = Payloads::default();
    let (parent_tasks, parent_positions): (Vec<Uuid>, Vec<i32>) = request
        .results
        .iter()
        .map(|&(task_id, position)| (task_id, position as i32))
        .unzip();
    let rows = sqlx::query(
        "SELECT id AS task_id, NULL::int4 AS position, context AS value FROM tasker.tasks WHERE id = ANY($1) \
         UNION ALL \
         SELECT s.task_id, s.position, s.result FROM tasker.steps s \
         JOIN unnest($2::uuid[], $3::int4[]) AS p(task_id, position) \
           ON s.task_id = p.task_id AND s.position = p.position",
    )
    .bind(&request.contexts)
    .bind(&parent_tasks)
    .bind(&parent_positions)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for row in rows {
        let task_id: Uuid = row.get("task_id");
        let position: Option<i32> = row.get("position");
        let value: serde_json::Value = row
            .get::<Option<serde_json::Value>, _>("value")
            .unwrap_or_default();
        match position {
            None => {
                payloads.contexts.insert(task_id, value);
            }
            Some(p) => {
                payloads.results.insert((task_id, p as usize), value);
            }
        }
    }
    if !request.items.is_empty() {
        let rows = sqlx::query("SELECT id, items FROM tasker.steps WHERE id = ANY($1)")
            .bind(&request.items)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        for row in rows {
            let list = match row.get::<Option<serde_json::Value>, _>("items") {
                Some(serde_json::Value::Array(list)) => list,
                _ => Vec::new(),
            };
            payloads.items.insert(row.get("id"), list);
        }
    }
    Ok(payloads)
}

//! Dead letters: steps that failed for good in tasks that an operator can
//! still reopen (running or failed), listed with their last error, oldest
//! step first. A read only: retrying and resolving them are the single-step
//! operations (the orchestration's `task_operations::retry` and `resolve`).
//!
//! Not served by an index: an index on the step state would stop the
//! in-place (HOT) updates every claim and result make. The list is an
//! operator's query, paged by step id.

use sqlx::Row;
use tasker_model::StepError;
use tasker_store::paging::DeadLetterRead;
use tasker_store::{DeadLetter, DeadLetterFilter, DeadLetterPage, Error, Result};

use crate::PgStore;
use crate::error::db;

// Maintenance

pub async fn list(
    store: &PgStore,
    filter: &DeadLetterFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<DeadLetterPage> {
    let read = DeadLetterRead::of(cursor, limit)?;
    let rows = sqlx::query(
        "SELECT s.id, s.task_id, t.state AS task_state, t.namespace, tp.name AS template_name, \
                tp.version AS template_version, s.name AS step_name, \
                tp.definition->'steps'->COALESCE(s.fan_out_of, s.position)->>'handler' AS handler, \
                s.attempt, s.error, s.finished_at \
         FROM tasker.steps s \
         JOIN tasker.tasks t ON t.id = s.task_id \
         JOIN tasker.templates tp ON tp.id = t.template_id \
         WHERE s.state = 'failed' AND t.state IN ('running', 'failed') \
           AND ($1::text IS NULL OR t.namespace = $1) \
           AND ($2::text IS NULL OR tp.name = $2) \
           AND ($3::text IS NULL OR tp.definition->'steps'->COALESCE(s.fan_out_of, s.position)->>'handler' = $3) \
           AND ($4::text IS NULL OR s.error->>'error_type' = $4) \
           AND ($5::timestamptz IS NULL OR s.finished_at >= $5) \
           AND ($6::timestamptz IS NULL OR s.finished_at < $6) \
           AND ($7::uuid IS NULL OR s.id > $7) \
         ORDER BY s.id LIMIT $8",
    )
    .bind(&filter.namespace)
    .bind(&filter.template)
    .bind(&filter.handler)
    .bind(&filter.error_type)
    .bind(filter.failed_since)
    .bind(filter.failed_until)
    .bind(read.after)
    .bind(i64::from(read.limit) + 1)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut dead_letters = Vec::with_capacity(rows.len());
    for row in rows.iter().take(read.limit as usize) {
        let task_state: String = row.get("task_state");
        let attempt: i32 = row.get("attempt");
        let error: Option<serde_json::Value> = row.get("error");
        dead_letters.push(DeadLetter {
            step_id: row.get("id"),
            task_id: row.get("task_id"),
            task_state: task_state.parse().map_err(corrupt)?,
            namespace: row.get("namespace"),
            template_name: row.get("template_name"),
            template_version: row.get("template_version"),
            step_name: row.get("step_name"),
            handler: row.get::<Option<String>, _>("handler").unwrap_or_default(),
            attempt: attempt as u32,
            error: error
                .map(serde_json::from_value::<StepError>)
                .transpose()
                .map_err(|e| corrupt(e.to_string()))?,
            failed_at: row.get("finished_at"),
        });
    }
    Ok(read.page(dead_letters, rows.len() > read.limit as usize))
}

fn corrupt(message: String) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

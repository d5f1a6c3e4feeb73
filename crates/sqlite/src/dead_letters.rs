//! Dead letters: steps that failed for good in tasks that an operator can
//! still reopen (running or failed), listed with their last error, oldest
//! step first, paged by step id. A read only: retrying and resolving them
//! are the single-step operations.

use sqlx::sqlite::SqliteRow;
use tasker_model::StepError;
use tasker_store::paging::DeadLetterRead;
use tasker_store::{DeadLetter, DeadLetterFilter, DeadLetterPage, Result};

use crate::columns::{self, get, unexpected};
use crate::{SqliteStore, clock, db};

/// The handler of a step row `s` of a task of template `tp`: the template
/// step it is (or, for a fan-out instance, it is an instance of).
const HANDLER: &str =
    "json_extract(tp.definition, '$.steps[' || COALESCE(s.fan_out_of, s.position) || '].handler')";

/// Failed steps of tasks that can still be reopened matching `filter`,
/// oldest first; `cursor` from a previous page, `limit` capped at 500.
pub(crate) async fn dead_letter_list(
    store: &SqliteStore,
    filter: &DeadLetterFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<DeadLetterPage> {
    let read = DeadLetterRead::of(cursor, limit)?;
    let rows = sqlx::query(&format!(
        "SELECT s.id, s.task_id, t.state AS task_state, t.namespace, tp.name AS template_name, \
                tp.version AS template_version, s.name AS step_name, {HANDLER} AS handler, \
                s.attempt, s.error, s.finished_at \
         FROM steps s \
         JOIN tasks t ON t.id = s.task_id \
         JOIN templates tp ON tp.id = t.template_id \
         WHERE s.state = 'failed' AND t.state IN ('running', 'failed') \
           AND (?1 IS NULL OR t.namespace = ?1) \
           AND (?2 IS NULL OR tp.name = ?2) \
           AND (?3 IS NULL OR {HANDLER} = ?3) \
           AND (?4 IS NULL OR json_extract(s.error, '$.error_type') = ?4) \
           AND (?5 IS NULL OR s.finished_at >= ?5) \
           AND (?6 IS NULL OR s.finished_at < ?6) \
           AND (?7 IS NULL OR s.id > ?7) \
         ORDER BY s.id LIMIT ?8"
    ))
    .bind(&filter.namespace)
    .bind(&filter.template)
    .bind(&filter.handler)
    .bind(&filter.error_type)
    .bind(clock::micros_opt(filter.failed_since))
    .bind(clock::micros_opt(filter.failed_until))
    .bind(read.after.map(|a| a.hyphenated()))
    .bind(i64::from(read.limit) + 1)
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    let dead_letters = rows
        .iter()
        .take(read.limit as usize)
        .map(dead_letter)
        .collect::<Result<Vec<_>>>()?;
    Ok(read.page(dead_letters, rows.len() > read.limit as usize))
}

fn dead_letter(row: &SqliteRow) -> Result<DeadLetter> {
    let task_state: String = get(row, "task_state")?;
    let attempt: i64 = get(row, "attempt")?;
    Ok(DeadLetter {
        step_id: columns::uuid(row, "id")?,
        task_id: columns::uuid(row, "task_id")?,
        task_state: task_state.parse().map_err(unexpected)?,
        namespace: get(row, "namespace")?,
        template_name: get(row, "template_name")?,
        template_version: get(row, "template_version")?,
        step_name: get(row, "step_name")?,
        handler: get::<Option<String>>(row, "handler")?.unwrap_or_default(),
        attempt: u32::try_from(attempt).unwrap_or(0),
        error: columns::json_opt::<StepError>(row, "error")?,
        failed_at: columns::time_opt(row, "finished_at")?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;
    use tasker_model::TaskState;

    use tasker_store::Error;
    use uuid::Uuid;

    use super::*;
    use crate::testing::{self, execute, test_store};

    fn error(kind: &str) -> serde_json::Value {
        json!({"error_type": kind, "message": "it broke", "details": {}, "retryable": false})
    }

    fn step_ids(page: &DeadLetterPage) -> Vec<Uuid> {
        page.dead_letters.iter().map(|d| d.step_id).collect()
    }

    #[tokio::test]
    async fn failed_steps_of_reopenable_tasks_are_listed_filtered_and_paged() {
        let store = test_store().await;
        let task = testing::task(&store, "default", &["fetch", "parse", "store"]).await;
        testing::end_step(
            &store,
            &task.steps[0],
            "failed",
            None,
            Some(error("timeout")),
        )
        .await;
        testing::end_step(&store, &task.steps[1], "failed", None, Some(error("boom"))).await;
        let billing = testing::task(&store, "billing", &["charge"]).await;
        testing::end_step(
            &store,
            &billing.steps[0],
            "failed",
            None,
            Some(error("boom")),
        )
        .await;
        testing::finish_task(&store, &billing, "failed", clock::now()).await;
        // A cancelled task cannot be reopened: its failed step is no dead letter.
        let cancelled = testing::task(&store, "default", &["x"]).await;
        testing::end_step(
            &store,
            &cancelled.steps[0],
            "failed",
            None,
            Some(error("boom")),
        )
        .await;
        testing::finish_task(&store, &cancelled, "cancelled", clock::now()).await;

        let all = dead_letter_list(&store, &DeadLetterFilter::default(), None, 50)
            .await
            .unwrap();
        assert_eq!(
            step_ids(&all),
            vec![task.steps[0], task.steps[1], billing.steps[0]]
        );
        assert_eq!(all.next_cursor, None);
        let first = &all.dead_letters[0];
        assert_eq!(first.task_id, task.id);
        assert_eq!(first.task_state, TaskState::Running);
        assert_eq!(first.namespace, "default");
        assert_eq!(first.template_name, "t");
        assert_eq!(first.step_name, "fetch");
        assert_eq!(first.handler, "h.fetch");
        assert_eq!(first.attempt, 1);
        assert_eq!(first.error.as_ref().unwrap().error_type, "timeout");
        assert!(first.failed_at.is_some());
        assert_eq!(all.dead_letters[2].task_state, TaskState::Failed);

        let list = |filter: DeadLetterFilter| {
            let store = store.clone();
            async move { step_ids(&dead_letter_list(&store, &filter, None, 50).await.unwrap()) }
        };
        let by_namespace = DeadLetterFilter {
            namespace: Some("billing".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(by_namespace).await, vec![billing.steps[0]]);
        let by_handler = DeadLetterFilter {
            handler: Some("h.parse".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(by_handler).await, vec![task.steps[1]]);
        let by_error = DeadLetterFilter {
            error_type: Some("boom".into()),
            template: Some("t".into()),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(by_error).await, vec![task.steps[1], billing.steps[0]]);

        // Failed an hour ago: outside `failed_since`, inside `failed_until`.
        execute(
            &store,
            &format!(
                "UPDATE steps SET finished_at = finished_at - 3600000000 WHERE id = '{}'",
                task.steps[0]
            ),
        )
        .await;
        let half_an_hour_ago = clock::now() - TimeDelta::minutes(30);
        let recent = DeadLetterFilter {
            failed_since: Some(half_an_hour_ago),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(recent).await, vec![task.steps[1], billing.steps[0]]);
        let old = DeadLetterFilter {
            failed_until: Some(half_an_hour_ago),
            ..DeadLetterFilter::default()
        };
        assert_eq!(list(old).await, vec![task.steps[0]]);

        // Pages of one.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = dead_letter_list(&store, &DeadLetterFilter::default(), cursor.as_deref(), 1)
                .await
                .unwrap();
            seen.extend(step_ids(&page));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, step_ids(&all));

        let bad = dead_letter_list(&store, &DeadLetterFilter::default(), Some("nope"), 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&bad, Error::Invalid { field, .. } if field == "cursor"),
            "{bad}"
        );
    }
}

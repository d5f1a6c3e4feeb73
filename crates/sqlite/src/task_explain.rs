//! The facts behind "why is it waiting?": a task, its steps with their
//! queue messages and lease holders, and the live workers, read in one
//! read transaction (one snapshot of the file) so that a step and its
//! message agree. The reasons themselves are worked out in
//! `tasker_model::explanation`; nothing here decides anything.

use std::collections::HashMap;
use std::time::Duration;

use tasker_model::explanation::{ExplainFacts, LiveWorker, MessageFacts, StepFacts};
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::columns::{self, before, get, to_json_text};
use crate::task_rows::{self, STEP_COLUMNS, TASK_COLUMNS, TASK_FROM};
use crate::{SqliteStore, catalog, clock, db};

/// What "why is it waiting?" needs of task `id`, with the workers heard
/// from within `worker_within`.
pub(crate) async fn task_explain_facts(
    store: &SqliteStore,
    id: Uuid,
    worker_within: Duration,
) -> Result<ExplainFacts> {
    let mut tx = store.reader.begin().await.map_err(db)?;
    let now = clock::now();
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.id = ?1"
    ))
    .bind(id.hyphenated())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    let task = task_rows::task(&row)?;

    // The holder's node is read whatever its liveness: a silent worker's
    // last node is what an operator needs to find it.
    let step_rows = sqlx::query(&format!(
        "SELECT {STEP_COLUMNS}, msg_id, \
           (SELECT w.node_id FROM workers w WHERE w.id = s.worker_id AND s.state = 'running') \
             AS holder_node \
         FROM steps s WHERE task_id = ?1 ORDER BY position"
    ))
    .bind(id.hyphenated())
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let msg_ids = step_rows
        .iter()
        .map(|r| get::<Option<i64>>(r, "msg_id"))
        .filter_map(Result::transpose)
        .collect::<Result<Vec<i64>>>()?;

    let mut messages: HashMap<i64, MessageFacts> = HashMap::new();
    if !msg_ids.is_empty() {
        let rows = sqlx::query(
            "SELECT msg_id, enqueued_at, vt FROM queue_messages \
             WHERE msg_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(to_json_text(&msg_ids))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for r in &rows {
            let facts = MessageFacts {
                enqueued_at: columns::time(r, "enqueued_at")?,
                visible_at: columns::time(r, "vt")?,
            };
            messages.insert(get(r, "msg_id")?, facts);
        }
    }

    let workers = sqlx::query(
        "SELECT id, namespaces, handlers, node_id FROM workers \
         WHERE last_seen_at > ?1 ORDER BY id",
    )
    .bind(before(now, worker_within))
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok(LiveWorker {
            worker_id: get(r, "id")?,
            namespaces: columns::json(r, "namespaces")?,
            handlers: columns::json(r, "handlers")?,
            node_id: get(r, "node_id")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    tx.commit().await.map_err(db)?;
    // Templates never change once written: read from the catalog's cache.
    let template = catalog::template_by_id(store, task.template_id).await?;

    let steps = step_rows
        .iter()
        .map(|r| {
            let msg_id: Option<i64> = get(r, "msg_id")?;
            Ok(StepFacts {
                step: task_rows::step(r, &template.definition)?,
                message: msg_id.and_then(|m| messages.get(&m).copied()),
                holder_node: get(r, "holder_node")?,
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

#[cfg(test)]
mod tests {
    use tasker_model::StepState;
    use tasker_store::WorkerRegistration;

    use super::*;
    use crate::testing::{self, execute, test_store};
    use crate::workers::worker_register;

    #[tokio::test]
    async fn facts_pair_each_step_with_its_message_and_its_holders_node() {
        let store = test_store().await;
        let task = testing::task(&store, "default", &["a", "b", "c"]).await;
        for id in ["w1", "silent"] {
            worker_register(
                &store,
                &WorkerRegistration {
                    worker_id: id.into(),
                    namespaces: vec!["default".into()],
                    handlers: vec![],
                    concurrency: 1,
                    version: None,
                },
            )
            .await
            .unwrap();
        }
        execute(
            &store,
            "UPDATE workers SET last_seen_at = last_seen_at - 600000000, node_id = 'n-old' \
             WHERE id = 'silent'",
        )
        .await;
        testing::run_step(&store, &task.steps[0], "w1", 60).await;
        testing::run_step(&store, &task.steps[1], "silent", 60).await;
        testing::end_step(&store, &task.steps[2], "complete", None, None).await;

        let facts = task_explain_facts(&store, task.id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(facts.task.id, task.id);
        assert_eq!(facts.steps.len(), 3);
        let [a, b, c] = &facts.steps[..] else {
            unreachable!()
        };
        assert_eq!(a.step.state, StepState::Running);
        assert_eq!(a.holder_node.as_deref(), Some(testing::NODE));
        let message = a.message.unwrap();
        assert!(message.visible_at > facts.now);
        assert!(message.enqueued_at <= facts.now);
        // The silent worker's last node is named though it is not live.
        assert_eq!(b.holder_node.as_deref(), Some("n-old"));
        assert_eq!(c.step.state, StepState::Complete);
        assert_eq!(c.message, None);
        assert_eq!(c.holder_node, None);
        let live: Vec<&str> = facts.workers.iter().map(|w| w.worker_id.as_str()).collect();
        assert_eq!(live, vec!["w1"]);
        assert_eq!(facts.workers[0].namespaces, vec!["default"]);

        let missing = Uuid::now_v7();
        assert_eq!(
            task_explain_facts(&store, missing, Duration::from_secs(60))
                .await
                .unwrap_err()
                .code(),
            "not_found"
        );
    }
}

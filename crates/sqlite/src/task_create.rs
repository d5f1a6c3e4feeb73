//! Task creation, one or many in one transaction: the task rows (a row
//! whose idempotency key exists in its namespace is not written and is
//! answered with the task the key names), the messages of the root steps,
//! every step row and the first transitions.
//!
//! The answers are the store crate's (`orchestration::task_creation`): each
//! item is answered on its own (a template gone refuses only its item), a
//! database error fails them all and writes nothing, and items of one batch
//! sharing a key are written once, by the first. Must never: write a task
//! without its steps and root messages in the same transaction.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};
use tasker_model::{Task, TaskRun, Timestamp};
use tasker_store::orchestration::task_creation::{self, Inserted, Prepared};
use tasker_store::{Error, Result, TaskCreate};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::queue::{self, StepMessage};
use crate::{SqliteStore, clock, db, plan_writer};

/// Writes the prepared tasks in the caller's writing transaction. Returns
/// each item's answer and, per namespace, how many steps became ready (for
/// after the commit).
pub async fn write(
    store: &SqliteStore,
    tx: &mut SqliteConnection,
    items: &[TaskCreate],
    prepared: Prepared,
) -> Result<Inserted> {
    let Prepared {
        resolved,
        mut answers,
        same_key_as,
        rows,
    } = prepared;

    let mut ready: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let item = &items[row.item];
        let (template, queue_name) = task_creation::resolved_of(&resolved, items, row);
        let now = clock::now();
        let deadline_at = task_creation::deadline_of(item, template).map(|d| clock::after(now, d));
        let inserted = sqlx::query(
            "INSERT INTO tasks (id, namespace, template_id, state, context, idempotency_key, \
                                tags, created_at, updated_at, deadline_at) \
             VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL \
             DO NOTHING RETURNING id",
        )
        .bind(row.task_id.hyphenated())
        .bind(&template.namespace)
        .bind(template.id.hyphenated())
        .bind(item.context.to_string())
        .bind(&item.idempotency_key)
        .bind(serde_json::to_string(&item.tags).expect("tags serialize"))
        .bind(clock::micros(now))
        .bind(clock::micros(now))
        .bind(clock::micros_opt(deadline_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if inserted.is_none() {
            // The key names a task already: hand it back, write nothing.
            let key = item.idempotency_key.as_deref();
            let existing = task_by_key(tx, &template.namespace, key.unwrap_or_default()).await?;
            answers[row.item] = Some(
                existing
                    .map(|task| (task, false))
                    .ok_or_else(|| task_creation::existing_key_missing(&template.namespace, key)),
            );
            continue;
        }

        let definition = &template.definition;
        let step_ids: Vec<Uuid> = definition.steps.iter().map(|_| Uuid::now_v7()).collect();
        let run = TaskRun::create(definition, row.task_id, &step_ids, now);
        let bodies: Vec<StepMessage> = run
            .plan
            .enqueue
            .iter()
            .map(|&s| StepMessage {
                task_id: row.task_id,
                step_id: step_ids[s],
                handler: definition.steps[s].handler.clone(),
            })
            .collect();
        let msg_ids = queue::send(tx, queue_name, &bodies, None).await?;
        let mut msg_of: Vec<Option<i64>> = vec![None; step_ids.len()];
        for (&s, id) in run.plan.enqueue.iter().zip(msg_ids) {
            msg_of[s] = Some(id);
        }
        if !bodies.is_empty() {
            *ready.entry(template.namespace.clone()).or_default() += bodies.len();
        }
        // Every step in one statement, its rows as one JSON array.
        let steps: Vec<serde_json::Value> = definition
            .steps
            .iter()
            .enumerate()
            .map(|(s, step)| {
                serde_json::json!([
                    step_ids[s],
                    s,
                    step.name,
                    run.steps[s].state.as_str(),
                    msg_of[s]
                ])
            })
            .collect();
        sqlx::query(
            "INSERT INTO steps (id, task_id, position, name, state, msg_id) \
             SELECT value ->> '$[0]', ?, value ->> '$[1]', value ->> '$[2]', value ->> '$[3]', \
                    value ->> '$[4]' \
             FROM json_each(?)",
        )
        .bind(row.task_id.hyphenated())
        .bind(serde_json::Value::Array(steps).to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        plan_writer::insert_transitions(tx, store.node_id(), &run.plan.transitions).await?;
        answers[row.item] = Some(Ok((
            task_creation::created_task(
                item,
                template,
                row.task_id,
                run.task.state,
                now,
                deadline_at,
            ),
            true,
        )));
    }
    Ok(Inserted {
        answers: task_creation::finish(answers, &same_key_as),
        ready: ready.into_iter().collect(),
    })
}

/// The task an idempotency key names in a namespace.
async fn task_by_key(
    conn: &mut SqliteConnection,
    namespace: &str,
    key: &str,
) -> Result<Option<Task>> {
    let row = sqlx::query(
        "SELECT t.id, t.namespace, t.template_id, tp.name AS template_name, \
                tp.version AS template_version, t.state, t.context, t.idempotency_key, t.tags, \
                t.created_at, t.updated_at, t.finished_at, t.deadline_at \
         FROM tasks t JOIN templates tp ON tp.id = t.template_id \
         WHERE t.namespace = ? AND t.idempotency_key = ?",
    )
    .bind(namespace)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(|row| task_from_row(&row)).transpose()
}

/// A task row with its template's name and version.
pub(crate) fn task_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Task> {
    let unexpected = |m: String| Error::Database(format!("unexpected row: {m}").into());
    let state: String = row.get("state");
    let context: String = row.get("context");
    let tags: String = row.get("tags");
    let time = |column: &str| -> Timestamp { clock::from_micros(row.get(column)) };
    Ok(Task {
        id: row.get::<Hyphenated, _>("id").into_uuid(),
        namespace: row.get("namespace"),
        template_id: row.get::<Hyphenated, _>("template_id").into_uuid(),
        template_name: row.get("template_name"),
        template_version: row.get("template_version"),
        state: state.parse().map_err(unexpected)?,
        context: serde_json::from_str(&context).map_err(|e| unexpected(e.to_string()))?,
        idempotency_key: row.get("idempotency_key"),
        tags: serde_json::from_str(&tags).map_err(|e| unexpected(e.to_string()))?,
        created_at: time("created_at"),
        updated_at: time("updated_at"),
        finished_at: clock::from_micros_opt(row.get("finished_at")),
        deadline_at: clock::from_micros_opt(row.get("deadline_at")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteLocation, catalog};
    use tasker_model::{TaskState, Template, TemplateRecord};

    async fn store_with_template() -> (SqliteStore, TemplateRecord) {
        let store = SqliteStore::open(SqliteLocation::Memory, "node-1")
            .await
            .unwrap();
        catalog::migrate(&store).await.unwrap();
        let template = Template::from_json(serde_json::json!({
            "namespace": "default",
            "name": "diamond",
            "version": "1",
            "deadline": "1h",
            "steps": [
                {"name": "a", "handler": "h.a"},
                {"name": "b", "handler": "h.b", "depends_on": ["a"]},
                {"name": "c", "handler": "h.c"},
            ],
        }))
        .unwrap();
        let (record, _) = tasker_store::catalog::template_register(&store, &template)
            .await
            .unwrap();
        (store, record)
    }

    fn item(template: &TemplateRecord, key: Option<&str>) -> TaskCreate {
        TaskCreate {
            template_id: template.id,
            context: serde_json::json!({"n": 1}),
            idempotency_key: key.map(str::to_owned),
            tags: vec!["t1".into()],
            deadline: None,
        }
    }

    #[tokio::test]
    async fn a_task_is_written_with_its_steps_and_its_roots_queued() {
        let (store, template) = store_with_template().await;
        let (task, created) = task_creation::create(&store, &item(&template, None))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(task.state, TaskState::Running);
        assert_eq!(task.template_name, "diamond");
        let deadline = task.deadline_at.expect("the template's deadline") - task.created_at;
        assert_eq!(deadline.num_seconds(), 3600);

        let states: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT name, state, msg_id FROM steps WHERE task_id = ? ORDER BY position",
        )
        .bind(task.id.hyphenated())
        .fetch_all(&store.reader)
        .await
        .unwrap();
        assert_eq!(states[0].1, "ready");
        assert_eq!(states[1].1, "pending");
        assert_eq!(states[2].1, "ready");
        assert!(states[0].2.is_some() && states[1].2.is_none() && states[2].2.is_some());
        let queued: Vec<String> =
            sqlx::query_scalar("SELECT message FROM queue_messages WHERE queue = 'default'")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(queued.len(), 2);
        assert!(queued[0].contains("\"handler\":\"h.a\""));
        let transitions: i64 = sqlx::query_scalar("SELECT count(*) FROM transitions")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        // The task's "created" and each root's release.
        assert_eq!(transitions, 3);
    }

    #[tokio::test]
    async fn an_idempotency_key_names_one_task_within_and_across_batches() {
        let (store, template) = store_with_template().await;
        let answers = task_creation::create_many(
            &store,
            &[
                item(&template, Some("k")),
                item(&template, Some("k")),
                item(&template, None),
            ],
        )
        .await
        .unwrap();
        let (first, created) = answers[0].as_ref().unwrap();
        assert!(created);
        let (same, created) = answers[1].as_ref().unwrap();
        assert!(!created);
        assert_eq!(same.id, first.id);
        assert!(answers[2].as_ref().unwrap().1);

        let (again, created) = task_creation::create(&store, &item(&template, Some("k")))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again.id, first.id);
        assert_eq!(again.tags, ["t1"]);
        let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(tasks, 2);
    }

    #[tokio::test]
    async fn an_item_of_an_unknown_template_is_refused_alone() {
        let (store, template) = store_with_template().await;
        let mut gone = item(&template, None);
        gone.template_id = Uuid::now_v7();
        let answers = task_creation::create_many(&store, &[gone, item(&template, None)])
            .await
            .unwrap();
        assert!(matches!(answers[0], Err(Error::NotFound { .. })));
        assert!(answers[1].is_ok());
    }
}

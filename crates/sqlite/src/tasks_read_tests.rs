//! Tests of the task reads against a migrated in-memory store.

use chrono::TimeDelta;
use serde_json::json;
use tasker_model::{StepState, TaskState};

use super::*;
use crate::testing::{self, execute, test_store};

fn ids(page: &TaskPage) -> Vec<Uuid> {
    page.tasks.iter().map(|t| t.id).collect()
}

async fn transition(store: &SqliteStore, task: Uuid, step: Option<Uuid>, to: &str, reason: &str) {
    sqlx::query(
        "INSERT INTO transitions (task_id, step_id, from_state, to_state, attempt, worker_id, \
           node_id, reason, at) VALUES (?1, ?2, 'pending', ?3, 1, 'w1', 'n1', ?4, ?5)",
    )
    .bind(task.hyphenated())
    .bind(step.map(|s| s.hyphenated()))
    .bind(to)
    .bind(reason)
    .bind(clock::micros(clock::now()))
    .execute(&store.writer)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_task_reads_back_with_its_template_context_and_tags() {
    let store = test_store().await;
    let template = testing::template(&store, "billing", "invoice", "2.0.0", &["a"]).await;
    let task = testing::task_of(&store, "billing", template, &["a"], &["vip", "eu"]).await;
    let read = task_get(&store, task.id).await.unwrap();
    assert_eq!(read.id, task.id);
    assert_eq!(read.namespace, "billing");
    assert_eq!(read.template_id, template);
    assert_eq!(
        (read.template_name.as_str(), read.template_version.as_str()),
        ("invoice", "2.0.0")
    );
    assert_eq!(read.state, TaskState::Running);
    assert_eq!(read.context, json!({"order": 7}));
    assert_eq!(read.tags, vec!["vip", "eu"]);
    assert_eq!(read.finished_at, None);
    assert_eq!(read.deadline_at, None);

    let missing = Uuid::now_v7();
    let error = task_get(&store, missing).await.unwrap_err();
    assert_eq!(error.code(), "not_found");
    assert_eq!(error.to_string(), format!("task {missing} not found"));
}

#[tokio::test]
async fn a_list_filters_and_pages_newest_first() {
    let store = test_store().await;
    let invoice = testing::template(&store, "billing", "invoice", "1", &["a"]).await;
    let refund = testing::template(&store, "billing", "refund", "1", &["a"]).await;
    let mut all = Vec::new();
    for i in 0..5 {
        let (template, tags): (Uuid, &[&str]) = if i % 2 == 0 {
            (invoice, &["vip"])
        } else {
            (refund, &[])
        };
        all.push(testing::task_of(&store, "billing", template, &["a"], tags).await);
    }
    let other = testing::task(&store, "default", &["a"]).await;
    testing::finish_task(&store, &all[4], "complete", clock::now()).await;
    let newest_first: Vec<Uuid> = all.iter().rev().map(|t| t.id).collect();

    let everything = task_list(&store, &TaskFilter::default()).await.unwrap();
    assert_eq!(everything.tasks.len(), 6);
    assert_eq!(everything.tasks[0].id, other.id);
    assert_eq!(everything.next_cursor, None);

    let billing = TaskFilter {
        namespace: Some("billing".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&task_list(&store, &billing).await.unwrap()),
        newest_first
    );

    // Pages of two, each after the previous page's cursor.
    let mut paged = Vec::new();
    let mut filter = TaskFilter {
        limit: Some(2),
        ..billing.clone()
    };
    loop {
        let page = task_list(&store, &filter).await.unwrap();
        paged.extend(ids(&page));
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);

    let by_template = TaskFilter {
        template: Some("invoice".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&task_list(&store, &by_template).await.unwrap()),
        vec![all[4].id, all[2].id, all[0].id]
    );
    let by_tag = TaskFilter {
        tag: Some("vip".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&task_list(&store, &by_tag).await.unwrap()),
        vec![all[4].id, all[2].id, all[0].id]
    );
    let complete = TaskFilter {
        state: Some(TaskState::Complete),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&task_list(&store, &complete).await.unwrap()),
        vec![all[4].id]
    );
    let prefix = TaskFilter {
        id_prefix: Some(all[1].id.to_string()[..13].to_string()),
        ..TaskFilter::default()
    };
    assert!(ids(&task_list(&store, &prefix).await.unwrap()).contains(&all[1].id));
    let exact = TaskFilter {
        id_prefix: Some(all[1].id.simple().to_string()),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&task_list(&store, &exact).await.unwrap()),
        vec![all[1].id]
    );
}

#[tokio::test]
async fn a_list_filters_by_creation_time() {
    let store = test_store().await;
    let old = testing::task(&store, "default", &["a"]).await;
    let new = testing::task(&store, "default", &["a"]).await;
    let an_hour = testing::secs(3600);
    execute(
        &store,
        &format!(
            "UPDATE tasks SET created_at = created_at - {an_hour} WHERE id = '{}'",
            old.id
        ),
    )
    .await;
    let half_an_hour_ago = clock::now() - TimeDelta::minutes(30);
    let after = TaskFilter {
        created_after: Some(half_an_hour_ago),
        ..TaskFilter::default()
    };
    assert_eq!(ids(&task_list(&store, &after).await.unwrap()), vec![new.id]);
    let before = TaskFilter {
        created_before: Some(half_an_hour_ago),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&task_list(&store, &before).await.unwrap()),
        vec![old.id]
    );
}

#[tokio::test]
async fn a_bad_cursor_or_prefix_is_refused_naming_the_field() {
    let store = test_store().await;
    let bad_cursor = TaskFilter {
        cursor: Some("page-2".into()),
        ..TaskFilter::default()
    };
    let error = task_list(&store, &bad_cursor).await.unwrap_err();
    assert!(
        matches!(&error, Error::Invalid { field, .. } if field == "cursor"),
        "{error}"
    );
    let bad_prefix = TaskFilter {
        id_prefix: Some("xyz".into()),
        ..TaskFilter::default()
    };
    let error = task_list(&store, &bad_prefix).await.unwrap_err();
    assert!(
        matches!(&error, Error::Invalid { field, .. } if field == "id_prefix"),
        "{error}"
    );
}

#[tokio::test]
async fn steps_read_with_their_template_definition_in_position_order() {
    let store = test_store().await;
    let task = testing::task(&store, "default", &["fetch", "parse", "store"]).await;
    testing::run_step(&store, &task.steps[1], "w1", 30).await;
    testing::end_step(
        &store,
        &task.steps[0],
        "complete",
        Some(json!({"rows": 3})),
        None,
    )
    .await;
    let error = json!({"error_type": "boom", "message": "no", "details": {}, "retryable": false});
    testing::end_step(&store, &task.steps[2], "failed", None, Some(error)).await;

    let steps = task_steps(&store, task.id).await.unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["fetch", "parse", "store"]);
    assert_eq!(steps[0].state, StepState::Complete);
    assert_eq!(steps[0].result, Some(json!({"rows": 3})));
    assert_eq!(steps[1].state, StepState::Running);
    assert_eq!(steps[1].handler, "h.parse");
    assert_eq!(steps[1].depends_on, vec!["fetch"]);
    assert_eq!(steps[1].max_attempts, 3);
    assert_eq!(steps[1].attempt, 1);
    assert_eq!(steps[1].worker_id.as_deref(), Some("w1"));
    assert!(steps[1].lease_expires_at.is_some());
    assert_eq!(steps[2].state, StepState::Failed);
    assert_eq!(steps[2].error.as_ref().unwrap().error_type, "boom");

    assert_eq!(step_get(&store, task.steps[1]).await.unwrap(), steps[1]);
    let missing = Uuid::now_v7();
    assert_eq!(
        step_get(&store, missing).await.unwrap_err().to_string(),
        format!("step {missing} not found")
    );
    assert_eq!(
        task_steps(&store, missing).await.unwrap_err().code(),
        "not_found"
    );
}

#[tokio::test]
async fn history_is_read_after_an_id_oldest_first_with_step_names() {
    let store = test_store().await;
    let task = testing::task(&store, "default", &["a", "b"]).await;
    transition(&store, task.id, None, "running", "created").await;
    transition(&store, task.id, Some(task.steps[0]), "ready", "root").await;
    transition(&store, task.id, Some(task.steps[1]), "ready", "parent done").await;
    let other = testing::task(&store, "default", &["a"]).await;
    transition(&store, other.id, None, "running", "created").await;

    let all = task_history(&store, task.id, 0, 100).await.unwrap();
    let reasons: Vec<&str> = all.iter().filter_map(|t| t.reason.as_deref()).collect();
    assert_eq!(reasons, vec!["created", "root", "parent done"]);
    assert_eq!(all[0].step_id, None);
    assert_eq!(all[0].step_name, None);
    assert_eq!(all[1].step_name.as_deref(), Some("a"));
    assert_eq!(all[1].attempt, Some(1));
    assert_eq!(all[1].node_id.as_deref(), Some("n1"));
    assert_eq!(all[1].from_state.as_deref(), Some("pending"));

    let page = task_history(&store, task.id, all[0].id, 1).await.unwrap();
    assert_eq!(page, vec![all[1].clone()]);
    assert!(
        task_history(&store, task.id, all[2].id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        task_history(&store, Uuid::now_v7(), 0, 10)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

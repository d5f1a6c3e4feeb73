//! The SQLite store end to end through the `Store` trait, on a database
//! file: a task is created, claimed and completed; it is still there after
//! the store is closed and the file opened again; and a second store on
//! the same directory is refused while the first is open.

use std::time::Duration;

use tasker_model::{TaskState, Template};
use tasker_sqlite::{SqliteLocation, SqliteStore};
use tasker_store::{StepClaim, StepCompletion, Store, TaskCreate};

fn template() -> Template {
    Template::from_json(serde_json::json!({
        "namespace": "default",
        "name": "pair",
        "version": "1",
        "steps": [
            {"name": "first", "handler": "smoke.first"},
            {"name": "second", "handler": "smoke.second", "depends_on": ["first"]},
        ],
    }))
    .expect("template")
}

fn claim(handler: &str) -> StepClaim {
    StepClaim {
        namespace: "default".into(),
        worker_id: "worker-1".into(),
        max: 5,
        lease_for: Duration::from_secs(30),
        handlers: vec![handler.into()],
    }
}

#[tokio::test]
async fn a_task_runs_to_completion_and_survives_a_reopen() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let location = SqliteLocation::Directory(dir.path().to_owned());
    let store = SqliteStore::open(location.clone(), "node-1").await?;
    store.migrate().await?;
    assert!(store.readiness().await?.is_ready());

    let (record, _) = store.template_register(&template()).await?;
    let (task, created) = store
        .task_create(TaskCreate {
            template_id: record.id,
            context: serde_json::json!({"order": 7}),
            idempotency_key: Some("order-7".into()),
            tags: vec!["smoke".into()],
            deadline: None,
        })
        .await?;
    assert!(created);

    // Only the root is ready; a worker of the second handler gets nothing.
    assert!(store.step_claim(claim("smoke.second")).await?.is_empty());
    let first = store.step_claim(claim("smoke.first")).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].step_name, "first");
    assert_eq!(first[0].context, serde_json::json!({"order": 7}));
    let recorded = store
        .step_complete(vec![StepCompletion {
            lease: first[0].lease,
            result: serde_json::json!({"picked": true}),
        }])
        .await?;
    recorded.into_iter().collect::<Result<Vec<_>, _>>()?;

    let second = store.step_claim(claim("smoke.second")).await?;
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].parent_results.get("first"),
        Some(&serde_json::json!({"picked": true}))
    );
    store
        .step_complete(vec![StepCompletion {
            lease: second[0].lease,
            result: serde_json::json!("shipped"),
        }])
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let done = store.task_get(task.id).await?;
    assert_eq!(done.state, TaskState::Complete);
    assert!(done.finished_at.is_some());
    store.close().await;
    drop(store);

    // The file keeps everything; the key still names the task.
    let reopened = SqliteStore::open(location, "node-1").await?;
    reopened.migrate().await?;
    let found = reopened.task_get(task.id).await?;
    assert_eq!(found.state, TaskState::Complete);
    let steps = reopened.task_steps(task.id).await?;
    assert_eq!(steps[1].result, Some(serde_json::json!("shipped")));
    let (again, created) = reopened
        .task_create(TaskCreate {
            template_id: record.id,
            context: serde_json::json!({"order": 7}),
            idempotency_key: Some("order-7".into()),
            tags: Vec::new(),
            deadline: None,
        })
        .await?;
    assert!(!created);
    assert_eq!(again.id, task.id);
    Ok(())
}

#[tokio::test]
async fn a_second_server_on_the_same_directory_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let location = SqliteLocation::Directory(dir.path().to_owned());
    let first = SqliteStore::open(location.clone(), "node-1").await?;
    let refused = SqliteStore::open(location.clone(), "node-2")
        .await
        .expect_err("the directory is in use");
    assert_eq!(refused.code(), "database_in_use");
    let message = refused.to_string();
    assert!(message.contains("another Tasker server"), "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");

    // Once the first store is gone, the directory can be opened again.
    first.close().await;
    drop(first);
    SqliteStore::open(location, "node-2").await?;
    Ok(())
}

//! The reads of the SQLite store through the `Store` trait, on tasks that
//! task creation wrote: the rows one half of the backend writes are the
//! rows the other half reads.

use std::time::Duration;

use serde_json::json;
use tasker_model::{StepError, StepState, TaskState, Template};
use tasker_sqlite::{SqliteLocation, SqliteStore};
use tasker_store::{
    DeadLetterFilter, StepClaim, StepFailure, Store, TaskCreate, TaskFilter, WorkerRegistration,
};

async fn store() -> anyhow::Result<SqliteStore> {
    let store = SqliteStore::open(SqliteLocation::Memory, "node-1").await?;
    store.migrate().await?;
    Ok(store)
}

fn template() -> anyhow::Result<Template> {
    Ok(Template::from_json(json!({
        "namespace": "default",
        "name": "diamond",
        "version": "1",
        "steps": [
            {"name": "a", "handler": "h.a"},
            {"name": "b", "handler": "h.b", "depends_on": ["a"]},
            {"name": "c", "handler": "h.c", "depends_on": ["a"]},
            {"name": "d", "handler": "h.d", "depends_on": ["b", "c"]},
        ],
    }))?)
}

#[tokio::test]
async fn created_tasks_read_back_through_the_store() -> anyhow::Result<()> {
    let store = store().await?;
    let (record, _) = store.template_register(&template()?).await?;
    let create = |tags: &[&str]| TaskCreate {
        template_id: record.id,
        context: json!({"order": 42}),
        idempotency_key: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        deadline: None,
    };
    let (first, _) = store.task_create(create(&["vip"])).await?;
    let (second, _) = store.task_create(create(&[])).await?;

    let read = store.task_get(first.id).await?;
    assert_eq!(read, first);
    assert_eq!(read.state, TaskState::Running);
    assert_eq!(read.tags, vec!["vip"]);

    let page = store.task_list(&TaskFilter::default()).await?;
    let ids: Vec<_> = page.tasks.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![second.id, first.id]);
    let tagged = store
        .task_list(&TaskFilter {
            tag: Some("vip".into()),
            ..TaskFilter::default()
        })
        .await?;
    assert_eq!(tagged.tasks.len(), 1);
    assert_eq!(tagged.tasks[0].id, first.id);

    let steps = store.task_steps(first.id).await?;
    let states: Vec<(&str, StepState)> = steps.iter().map(|s| (s.name.as_str(), s.state)).collect();
    assert_eq!(
        states,
        vec![
            ("a", StepState::Ready),
            ("b", StepState::Pending),
            ("c", StepState::Pending),
            ("d", StepState::Pending),
        ]
    );
    assert_eq!(steps[3].depends_on, vec!["b", "c"]);
    assert_eq!(store.step_get(steps[0].id).await?, steps[0]);

    // Creation's history: the task and its root's readiness at least.
    let history = store.task_history(first.id, 0, 100).await?;
    assert!(!history.is_empty());
    assert!(
        history
            .iter()
            .any(|t| t.step_name.as_deref() == Some("a") && t.to_state == "ready"),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .all(|t| t.node_id.as_deref() == Some("node-1"))
    );

    // Two root messages are waiting in the default queue.
    let depths = store.queue_depths().await?;
    let default = depths.iter().find(|d| d.namespace == "default").unwrap();
    assert_eq!((default.ready, default.leased, default.delayed), (2, 0, 0));
    assert!(default.oldest_ready_at.is_some());

    let activity = store
        .task_activity(first.created_at - chrono::TimeDelta::minutes(1))
        .await?;
    assert_eq!(activity.iter().map(|a| a.started).sum::<u64>(), 2);

    store
        .worker_register(&WorkerRegistration {
            worker_id: "w1".into(),
            namespaces: vec!["default".into()],
            handlers: vec!["h.a".into()],
            concurrency: 2,
            version: None,
        })
        .await?;
    let facts = store
        .task_explain_facts(first.id, Duration::from_secs(60))
        .await?;
    assert_eq!(facts.steps.len(), 4);
    assert!(facts.steps[0].message.is_some());
    assert!(facts.steps[1].message.is_none());
    assert_eq!(facts.workers.len(), 1);
    Ok(())
}

#[tokio::test]
async fn claims_and_failures_show_in_the_operational_reads() -> anyhow::Result<()> {
    let store = store().await?;
    let template = Template::from_json(json!({
        "namespace": "default",
        "name": "once",
        "version": "1",
        "steps": [{"name": "only", "handler": "h.only", "retry": {"max_attempts": 1}}],
    }))?;
    let (record, _) = store.template_register(&template).await?;
    let (task, _) = store
        .task_create(TaskCreate {
            template_id: record.id,
            context: json!({}),
            idempotency_key: None,
            tags: Vec::new(),
            deadline: None,
        })
        .await?;
    let claimed = store
        .step_claim(StepClaim {
            namespace: "default".into(),
            worker_id: "w1".into(),
            max: 1,
            lease_for: Duration::from_secs(30),
            handlers: Vec::new(),
        })
        .await?;
    assert_eq!(claimed.len(), 1);

    // Leased: in flight for its worker, counted as leased in the queue.
    assert_eq!(store.worker_in_flight().await?.get("w1"), Some(&1));
    let depths = store.queue_depths().await?;
    let default = depths.iter().find(|d| d.namespace == "default").unwrap();
    assert_eq!((default.ready, default.leased, default.delayed), (0, 1, 0));
    let facts = store
        .task_explain_facts(task.id, Duration::from_secs(60))
        .await?;
    assert_eq!(
        facts.steps[0].message.map(|m| m.visible_at),
        Some(claimed[0].lease_expires_at)
    );

    store
        .step_fail(StepFailure {
            lease: claimed[0].lease,
            error: StepError {
                error_type: "boom".into(),
                message: "the handler gave up".into(),
                details: json!({}),
                retryable: false,
            },
        })
        .await?;
    assert!(store.worker_in_flight().await?.is_empty());
    let failed = store.task_get(task.id).await?;
    assert_eq!(failed.state, TaskState::Failed);
    let step = store.step_get(claimed[0].lease.step_id).await?;
    assert_eq!(step.state, StepState::Failed);
    assert_eq!(
        step.error.as_ref().map(|e| e.error_type.as_str()),
        Some("boom")
    );

    // A failed step of a failed task is a dead letter, named by its handler.
    let page = store
        .dead_letter_list(
            &DeadLetterFilter {
                handler: Some("h.only".into()),
                ..DeadLetterFilter::default()
            },
            None,
            50,
        )
        .await?;
    assert_eq!(page.dead_letters.len(), 1);
    let dead = &page.dead_letters[0];
    assert_eq!(dead.step_id, step.id);
    assert_eq!(dead.task_state, TaskState::Failed);
    assert_eq!(dead.attempt, 1);
    assert_eq!(dead.failed_at, step.finished_at);

    // The history names the worker of the attempt.
    let history = store.task_history(task.id, 0, 100).await?;
    assert!(
        history
            .iter()
            .any(|t| t.to_state == "failed" && t.worker_id.as_deref() == Some("w1")),
        "{history:?}"
    );
    Ok(())
}

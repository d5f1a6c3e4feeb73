//! Creating many tasks at once: one transaction for the batch, each item
//! answered on its own, idempotency keys within and across batches, and
//! the roots of every task queued and claimable.

mod support;

use std::collections::HashSet;

use serde_json::json;
use support::{DIAMOND, Fault, LINEAR, Rows, harness, harness_with, template};
use tasker_engine::{EngineConfig, MAX_BATCH_TASKS, NewTask};

fn task(template: &str, context: serde_json::Value) -> NewTask {
    NewTask::new("default", template).context(context)
}

#[tokio::test]
async fn a_bad_item_fails_alone_and_the_good_ones_are_created() {
    let h = harness_with(EngineConfig {
        max_payload_bytes: 1_000,
        ..EngineConfig::default()
    })
    .await;
    h.register(&template("default", "linear", LINEAR)).await;
    h.register(
        "name: typed\nversion: \"1\"\ncontext_schema: { type: object, required: [n] }\nsteps:\n  - { name: a, handler: h.a }\n",
    )
    .await;

    let answers = h
        .engine
        .task_create_many(vec![
            task("linear", json!({"i": 0})),
            task("linera", json!({})),
            task("linear", json!([1, 2])),
            task("linear", json!({"i": 3})),
            task("linear", json!({"blob": "x".repeat(2_000)})),
            task("typed", json!({})),
            task("typed", json!({"n": 6})),
            task("linear", json!({"bad": "nul\u{0}"})),
            NewTask::new("nowhere", "linear"),
            task("linera", json!({"again": true})),
        ])
        .await
        .expect("the batch is answered");
    let codes: Vec<&str> = answers
        .iter()
        .map(|a| match a {
            Ok((_, true)) => "created",
            Ok((_, false)) => "existing",
            Err(e) => e.code(),
        })
        .collect();
    assert_eq!(
        codes,
        [
            "created",
            "not_found",
            "invalid",
            "created",
            "payload_too_large",
            "context_invalid",
            "created",
            "invalid",
            "not_found",
            "not_found",
        ]
    );
    // The same unknown template gets the same answer, hints and all.
    assert_eq!(
        answers[9].as_ref().unwrap_err().to_string(),
        answers[1].as_ref().unwrap_err().to_string()
    );
    let near = answers[1].as_ref().unwrap_err().to_string();
    assert!(near.contains("did you mean default/linear"), "{near}");
    let nul = answers[7].as_ref().unwrap_err().to_string();
    assert!(nul.contains("context.bad"), "{nul}");

    // What was created is what the answers say, each with its own context.
    for (i, answer) in answers.iter().enumerate() {
        if let Ok((created, true)) = answer {
            let stored = h.engine.task_get(created.id).await.unwrap();
            assert_eq!(&stored, created, "item {i}");
        }
    }
    assert_eq!(h.count(Rows::Tasks).await, 3);
    assert_eq!(h.count(Rows::Steps).await, 4 + 4 + 1);
    assert_eq!(h.queue_depth("default").await, 3);
}

#[tokio::test]
async fn the_batch_is_one_transaction() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    // A history write that fails for the last task of the batch only.
    h.db.fault_inject(Fault::TransitionsOfTasksWith("last", "yes"))
        .await;

    let mut batch: Vec<NewTask> = (0..20)
        .map(|i| task("linear", json!({"i": i})).idempotency_key(format!("k{i}")))
        .collect();
    batch.push(task("linear", json!({"last": "yes"})));
    let err = h.engine.task_create_many(batch.clone()).await.unwrap_err();
    assert_eq!(err.code(), "internal", "{err}");
    assert_eq!(h.count(Rows::Tasks).await, 0);
    assert_eq!(h.count(Rows::Steps).await, 0);
    assert_eq!(h.count(Rows::Transitions).await, 0);
    assert_eq!(h.queue_depth("default").await, 0, "no message survives");

    // Without the last task the same batch goes through, keys and all:
    // the failed attempt left none of them behind.
    batch.pop();
    let answers = h.engine.task_create_many(batch).await.unwrap();
    assert!(answers.iter().all(|a| matches!(a, Ok((_, true)))));
    assert_eq!(h.count(Rows::Tasks).await, 20);
}

#[tokio::test]
async fn idempotency_keys_hold_within_and_across_batches() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    h.register(&template("default", "diamond", DIAMOND)).await;

    let answers = h
        .engine
        .task_create_many(vec![
            task("linear", json!({"n": 1})).idempotency_key("a"),
            task("linear", json!({"n": 1})).idempotency_key("a"),
            task("linear", json!({"n": 2})).idempotency_key("a"),
            task("diamond", json!({"n": 1})).idempotency_key("a"),
            task("linear", json!({"n": 1})).idempotency_key("b"),
        ])
        .await
        .unwrap();
    let (first, created) = answers[0].as_ref().unwrap();
    assert!(created);
    let (again, created) = answers[1].as_ref().unwrap();
    assert!(
        !created,
        "the second item with the key gets the first's task"
    );
    assert_eq!(again.id, first.id);
    assert_eq!(
        answers[2].as_ref().unwrap_err().code(),
        "idempotency_conflict"
    );
    let conflict = answers[3].as_ref().unwrap_err().to_string();
    assert!(
        conflict.contains("of template default/linear@1"),
        "{conflict}"
    );
    let (b, created) = answers[4].as_ref().unwrap();
    assert!(created);
    assert_eq!(h.count(Rows::Tasks).await, 2);
    assert_eq!(h.queue_depth("default").await, 2, "one root per task");

    // Across batches: existing keys are answered with their tasks, new
    // keys create.
    let answers = h
        .engine
        .task_create_many(vec![
            task("linear", json!({"n": 1})).idempotency_key("b"),
            task("linear", json!({"n": 3})).idempotency_key("c"),
            task("linear", json!({"n": 9})).idempotency_key("a"),
            task("linear", json!({"n": 1})).idempotency_key("a"),
        ])
        .await
        .unwrap();
    let (existing, created) = answers[0].as_ref().unwrap();
    assert_eq!((existing.id, *created), (b.id, false));
    assert!(matches!(answers[1], Ok((_, true))));
    assert_eq!(
        answers[2].as_ref().unwrap_err().code(),
        "idempotency_conflict"
    );
    let (existing, created) = answers[3].as_ref().unwrap();
    assert_eq!((existing.id, *created), (first.id, false));
    assert_eq!(h.count(Rows::Tasks).await, 3);

    // A single create sees the batch's keys too.
    let (existing, created) = h
        .engine
        .task_create(task("linear", json!({"n": 3})).idempotency_key("c"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(existing.context, json!({"n": 3}));
}

#[tokio::test]
async fn the_roots_of_every_task_are_queued_and_claimable() {
    let h = harness().await;
    h.engine.namespace_create("other").await.unwrap();
    h.register(&template("default", "linear", LINEAR)).await;
    h.register(&template("default", "diamond", DIAMOND)).await;
    h.register(&template("other", "linear", LINEAR)).await;
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(task("linear", json!({"i": i})));
        batch.push(task("diamond", json!({"i": i})).tags(["t"]));
        batch.push(NewTask::new("other", "linear").context(json!({"i": i})));
    }
    let answers = h.engine.task_create_many(batch).await.unwrap();
    let ids: HashSet<_> = answers.iter().map(|a| a.as_ref().unwrap().0.id).collect();
    assert_eq!(ids.len(), 90);
    assert_eq!(h.queue_depth("default").await, 60);
    assert_eq!(h.queue_depth("other").await, 30);
    assert_eq!(h.count(Rows::StepsIn("ready")).await, 90);

    let mut claimed = h.claim("default", 100).await;
    claimed.extend(h.claim("other", 100).await);
    assert_eq!(claimed.len(), 90);
    assert!(claimed.iter().all(|s| s.step_name == "a"));
    let claimed_tasks: HashSet<_> = claimed.iter().map(|s| s.task_id).collect();
    assert_eq!(claimed_tasks, ids, "one root of every task");

    // And the tasks run on: completing a diamond's root readies both children.
    let diamond = claimed
        .iter()
        .find(|s| s.handler == "h.a" && s.task_id == answers[1].as_ref().unwrap().0.id)
        .unwrap();
    h.engine
        .step_complete(diamond.lease, json!("done"))
        .await
        .unwrap();
    let steps = h.engine.task_steps(diamond.task_id).await.unwrap();
    let ready: Vec<&str> = steps
        .iter()
        .filter(|s| s.state == tasker_model::StepState::Ready)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(ready, ["b", "c"]);
    let history = h.engine.task_history(diamond.task_id).await.unwrap();
    assert!(
        history
            .iter()
            .all(|t| t.node_id.as_deref() == Some("node-a"))
    );
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    let batch = vec![task("linear", json!({})); MAX_BATCH_TASKS + 1];
    let err = h.engine.task_create_many(batch).await.unwrap_err();
    assert_eq!(err.code(), "invalid");
    assert!(err.to_string().contains("1000"), "{err}");
    assert_eq!(h.count(Rows::Tasks).await, 0);
    assert!(
        h.engine
            .task_create_many(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
}

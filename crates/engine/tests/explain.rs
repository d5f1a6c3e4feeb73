//! "Why is it waiting?" against the store: each reason the explanation
//! gives comes from what the database holds (steps, queue messages, the
//! workers table), not from what the test set up in memory.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Harness, harness, template};
use tasker_model::{StepError, StepExplanation, StepState, TaskExplanation, TaskState, WaitReason};
use tasker_store::WorkerRegistration;
use uuid::Uuid;

const PAIR: &str = "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b, depends_on: [a] }
";

async fn register_worker(h: &Harness, id: &str, namespaces: &[&str], handlers: &[&str]) {
    h.engine
        .worker_register(WorkerRegistration {
            worker_id: id.into(),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            handlers: handlers.iter().map(|s| s.to_string()).collect(),
            concurrency: 1,
            version: None,
        })
        .await
        .expect("worker registers");
}

fn step<'a>(explanation: &'a TaskExplanation, name: &str) -> &'a StepExplanation {
    explanation
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("step {name} is explained: {explanation:#?}"))
}

#[tokio::test]
async fn an_unknown_task_is_not_found() {
    let h = harness().await;
    let error = h.engine.task_explain(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(error.code(), "not_found", "{error:?}");
}

#[tokio::test]
async fn a_step_waiting_on_a_namespace_no_worker_serves_is_explained_as_such() {
    let h = harness().await;
    h.engine.namespace_create("orders").await.unwrap();
    h.register(&template("orders", "pair", PAIR)).await;
    // A live worker, but of another namespace.
    register_worker(&h, "billing-1", &["default"], &[]).await;
    let task = h.create("orders", "pair", json!({})).await;

    let explanation = h.engine.task_explain(task.id).await.unwrap();
    assert_eq!(explanation.state, TaskState::Running);
    assert_eq!(explanation.summary, "running; 2 of 2 steps not finished");
    let a = step(&explanation, "a");
    assert_eq!(a.state, StepState::Ready);
    let WaitReason::Queued { since, visible_at } = a.reasons[0] else {
        panic!("a waits in the queue: {:?}", a.reasons)
    };
    assert!(since <= explanation.at && visible_at <= explanation.at);
    assert_eq!(
        a.reasons[1],
        WaitReason::NoWorkerServesNamespace {
            namespace: "orders".into()
        }
    );
    let b = step(&explanation, "b");
    let WaitReason::ParentsNotDone { parents } = &b.reasons[0] else {
        panic!("b waits for a: {:?}", b.reasons)
    };
    assert_eq!(parents.len(), 1);
    assert_eq!(
        (parents[0].name.as_str(), parents[0].state),
        ("a", StepState::Ready)
    );
}

#[tokio::test]
async fn workers_of_the_namespace_without_the_handler_are_named() {
    let h = harness().await;
    h.register(&template("default", "pair", PAIR)).await;
    register_worker(&h, "only-b", &["default"], &["h.b"]).await;
    let task = h.create("default", "pair", json!({})).await;

    let explanation = h.engine.task_explain(task.id).await.unwrap();
    assert_eq!(
        step(&explanation, "a").reasons[1],
        WaitReason::NoWorkerRunsHandler {
            namespace: "default".into(),
            handler: "h.a".into(),
            workers: vec!["only-b".into()],
        }
    );
    // The same worker does run b's handler.
    assert_eq!(
        step(&explanation, "b").reasons[1],
        WaitReason::ServedBy {
            workers: vec!["only-b".into()]
        }
    );
}

#[tokio::test]
async fn a_running_step_names_the_worker_holding_its_lease_and_until_when() {
    let h = harness().await;
    h.register(&template("default", "pair", PAIR)).await;
    register_worker(&h, "worker-1", &["default"], &[]).await;
    let task = h.create("default", "pair", json!({})).await;
    let claimed = h.claim_one("default").await;

    let explanation = h.engine.task_explain(task.id).await.unwrap();
    let a = step(&explanation, "a");
    assert_eq!((a.state, a.attempt), (StepState::Running, 1));
    assert_eq!(
        a.reasons,
        [WaitReason::Leased {
            worker_id: Some("worker-1".into()),
            node_id: Some("node-a".into()),
            until: claimed.lease_expires_at,
            expired: false,
            worker_live: true,
        }]
    );

    // Once the lease has run out, the explanation says so.
    h.db.step_shift_back(claimed.lease.step_id, Duration::from_secs(3600))
        .await;
    let explanation = h.engine.task_explain(task.id).await.unwrap();
    let a = step(&explanation, "a");
    assert!(
        matches!(a.reasons[0], WaitReason::Leased { expired: true, .. }),
        "{:?}",
        a.reasons
    );
}

#[tokio::test]
async fn a_retrying_step_says_when_its_next_attempt_runs() {
    let h = harness().await;
    h.register(&template(
        "default",
        "slow_retry",
        "  - { name: a, handler: h.a, retry: { max_attempts: 4, backoff: { initial: 1h, max: 1h, jitter: 0 } } }\n",
    ))
    .await;
    let task = h.create("default", "slow_retry", json!({})).await;
    let claimed = h.claim_one("default").await;
    h.engine
        .step_fail(
            claimed.lease,
            StepError {
                error_type: "transient".into(),
                message: "try later".into(),
                details: json!({}),
                retryable: true,
            },
        )
        .await
        .unwrap();

    let stored = h.engine.step_get(claimed.lease.step_id).await.unwrap();
    let explanation = h.engine.task_explain(task.id).await.unwrap();
    let a = step(&explanation, "a");
    assert_eq!(a.state, StepState::Retrying);
    assert_eq!(
        a.reasons[0],
        WaitReason::RetryScheduled {
            at: stored.retry_at.expect("a retry time"),
            attempt: 1,
            max_attempts: 4,
        }
    );
    assert!(stored.retry_at.unwrap() > explanation.at + chrono::Duration::minutes(50));
}

#[tokio::test]
async fn a_failed_parent_blocks_its_dependents_and_a_finished_task_gets_one_line() {
    let h = harness().await;
    h.register(&template(
        "default",
        "fragile",
        "  - { name: a, handler: h.a, retry: { max_attempts: 1 } }\n  - { name: b, handler: h.b, depends_on: [a] }\n",
    ))
    .await;
    let task = h.create("default", "fragile", json!({})).await;
    let claimed = h.claim_one("default").await;
    h.engine
        .step_fail(
            claimed.lease,
            StepError {
                error_type: "invalid_order".into(),
                message: "no such customer".into(),
                details: json!({}),
                retryable: false,
            },
        )
        .await
        .unwrap();

    let explanation = h.engine.task_explain(task.id).await.unwrap();
    assert_eq!(explanation.state, TaskState::Failed);
    assert!(
        explanation.summary.starts_with("failed at "),
        "{}",
        explanation.summary
    );
    let a = step(&explanation, "a");
    assert!(
        a.reasons[0]
            .sentence()
            .contains("invalid_order: no such customer"),
        "{:?}",
        a.reasons
    );
    let b = step(&explanation, "b");
    let WaitReason::BlockedByParent { blocking } = &b.reasons[0] else {
        panic!("b is blocked: {:?}", b.reasons)
    };
    assert_eq!(
        (blocking[0].name.as_str(), blocking[0].state),
        ("a", StepState::Failed)
    );

    // Resolving a and completing b finishes the task: one line, no steps.
    h.engine
        .step_resolve(claimed.lease.step_id, None)
        .await
        .unwrap();
    let b = h.claim_one("default").await;
    h.engine.step_complete(b.lease, json!({})).await.unwrap();
    let explanation = h.engine.task_explain(task.id).await.unwrap();
    assert_eq!(explanation.state, TaskState::Complete);
    assert!(
        explanation.summary.starts_with("complete at "),
        "{}",
        explanation.summary
    );
    assert!(explanation.steps.is_empty());
}

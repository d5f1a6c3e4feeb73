//! The design's invariants 1-6, each shown by a test that fails without it.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{DIAMOND, Fault, LINEAR, Rows, harness, harness_with, template};
use tasker_engine::{EngineConfig, Error};
use tasker_model::{
    HeartbeatOutcome, Lease, LeaseError, Recorded, StepError, StepState, TaskState,
};
use tasker_store::Error as StoreError;

fn lease_error(result: Result<impl std::fmt::Debug, Error>) -> LeaseError {
    match result {
        Err(Error::Store(StoreError::Lease(e))) => e,
        Err(Error::Store(StoreError::Operation(tasker_model::OperationError::Lease(e)))) => e,
        other => panic!("expected a lease error, got {other:?}"),
    }
}

fn retryable(message: &str) -> StepError {
    StepError {
        error_type: "transient".into(),
        message: message.into(),
        details: json!(null),
        retryable: true,
    }
}

/// Invariant 1: a fault between the state change and the enqueue leaves
/// neither behind.
#[tokio::test]
async fn atomic_dispatch_survives_injected_faults() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;

    // Fault in the enqueue: the queue insert fails after the task insert.
    h.db.fault_inject(Fault::MessageSends("default")).await;
    let err = h
        .engine
        .task_create(tasker_engine::NewTask {
            namespace: "default".into(),
            template: "linear".into(),
            context: json!({}),
            ..Default::default()
        })
        .await;
    assert!(err.is_err(), "create must fail when the enqueue fails");
    assert_eq!(h.count(Rows::Tasks).await, 0);
    assert_eq!(h.count(Rows::Steps).await, 0);
    assert_eq!(h.queue_depth("default").await, 0);
    h.db.fault_clear(Fault::MessageSends("default")).await;

    // Fault after the enqueue: completing `a` sends b's message, then the
    // history insert fails. Neither b's message nor any state change remains.
    let task = h.create("default", "linear", json!({})).await;
    let a = h.claim_one("default").await;
    h.db.fault_inject(Fault::Transitions).await;
    assert!(
        h.engine
            .step_complete(a.lease, json!({"ok": 1}))
            .await
            .is_err()
    );
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Running);
    assert_eq!(steps[1].state, StepState::Pending);
    assert_eq!(
        h.queue_depth("default").await,
        1,
        "only a's message remains"
    );
    h.db.fault_clear(Fault::Transitions).await;

    // Once the fault is gone the same lease completes normally.
    assert_eq!(
        h.engine
            .step_complete(a.lease, json!({"ok": 1}))
            .await
            .unwrap(),
        Recorded::Applied
    );
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[1].state, StepState::Ready);
    assert_eq!(
        h.queue_depth("default").await,
        1,
        "a's message deleted, b's sent"
    );
}

/// Invariant 2: a stale lease cannot heartbeat, complete or fail.
#[tokio::test]
async fn stale_leases_are_fenced_and_change_nothing() {
    let h = harness().await;
    h.register(&template(
        "default",
        "retrying",
        "  - { name: a, handler: h.a, retry: { max_attempts: 3, backoff: { initial: 0ms, max: 0ms, jitter: 0 } } }\n",
    ))
    .await;
    let task = h.create("default", "retrying", json!({})).await;
    let first = h.claim_one("default").await;
    h.engine
        .step_fail(first.lease, retryable("boom"))
        .await
        .unwrap();
    let second = h.claim_one("default").await;
    assert_eq!(second.lease.attempt, 2);

    let before_steps = h.engine.task_steps(task.id).await.unwrap();
    let before_history = h.engine.task_history(task.id).await.unwrap();
    let stale_attempt = first.lease;
    let stale_token = Lease {
        token: uuid::Uuid::new_v4(),
        ..second.lease
    };
    for stale in [stale_attempt, stale_token] {
        assert_eq!(
            lease_error(h.engine.step_heartbeat(&stale).await),
            LeaseError::LeaseMismatch
        );
        assert_eq!(
            lease_error(h.engine.step_complete(stale, json!({"stale": true})).await),
            LeaseError::LeaseMismatch
        );
        assert_eq!(
            lease_error(h.engine.step_fail(stale, retryable("stale")).await),
            LeaseError::LeaseMismatch
        );
    }
    assert_eq!(h.engine.task_steps(task.id).await.unwrap(), before_steps);
    assert_eq!(
        h.engine.task_history(task.id).await.unwrap(),
        before_history
    );

    // The current lease still works, and a re-sent result is not recorded twice.
    assert_eq!(
        h.engine
            .step_complete(second.lease, json!(1))
            .await
            .unwrap(),
        Recorded::Applied
    );
    assert_eq!(
        h.engine
            .step_complete(second.lease, json!(2))
            .await
            .unwrap(),
        Recorded::Duplicate
    );
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[0].result, Some(json!(1)));
}

/// Invariant 3: two siblings completing concurrently finalize exactly once.
#[tokio::test]
async fn concurrent_sibling_completions_finalize_exactly_once() {
    let h = harness().await;
    h.register(&template(
        "default",
        "fan_in",
        "  - { name: a, handler: h.a }\n  - { name: b, handler: h.b }\n  - { name: c, handler: h.c }\n",
    ))
    .await;
    let node_b = h.other_node(EngineConfig::default()).await;
    for _ in 0..15 {
        let task = h.create("default", "fan_in", json!({})).await;
        let steps = h.claim("default", 3).await;
        assert_eq!(steps.len(), 3);
        let (r1, r2, r3) = tokio::join!(
            h.engine.step_complete(steps[0].lease, json!(0)),
            node_b.step_complete(steps[1].lease, json!(1)),
            h.engine.step_complete(steps[2].lease, json!(2)),
        );
        for r in [r1, r2, r3] {
            assert_eq!(r.unwrap(), Recorded::Applied);
        }
        let history = h.engine.task_history(task.id).await.unwrap();
        let finals = history
            .iter()
            .filter(|t| t.step_id.is_none() && t.to_state == "complete")
            .count();
        assert_eq!(finals, 1, "task finalized exactly once");
        assert_eq!(
            h.engine.task_get(task.id).await.unwrap().state,
            TaskState::Complete
        );
    }
}

/// Invariant 4: no step becomes ready before all its parents are done.
#[tokio::test]
async fn dependencies_hold_in_a_diamond() {
    let h = harness().await;
    h.register(&template("default", "diamond", DIAMOND)).await;
    let task = h.create("default", "diamond", json!({"n": 1})).await;

    let a = h.claim("default", 10).await;
    assert_eq!(a.len(), 1, "only the root is ready");
    assert_eq!(a[0].step_name, "a");
    h.engine
        .step_complete(a[0].lease, json!({"from": "a"}))
        .await
        .unwrap();

    let mut bc = h.claim("default", 10).await;
    bc.sort_by(|x, y| x.step_name.cmp(&y.step_name));
    assert_eq!(
        bc.iter().map(|s| s.step_name.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(bc[0].parent_results["a"], json!({"from": "a"}));
    h.engine
        .step_complete(bc[0].lease, json!("b"))
        .await
        .unwrap();
    assert!(h.claim("default", 10).await.is_empty(), "d must wait for c");
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[3].state, StepState::Pending);

    h.engine
        .step_complete(bc[1].lease, json!("c"))
        .await
        .unwrap();
    let d = h.claim_one("default").await;
    assert_eq!(d.step_name, "d");
    assert_eq!(d.parent_results["b"], json!("b"));
    assert_eq!(d.parent_results["c"], json!("c"));
    assert_eq!(d.context, json!({"n": 1}));
    h.engine.step_complete(d.lease, json!("d")).await.unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );
    assert_eq!(
        h.queue_depth("default").await,
        0,
        "finished steps leave no messages"
    );
}

/// Invariant 5: a lease that expires makes the step claimable again, attempt+1.
#[tokio::test]
async fn expired_lease_redelivers_with_the_next_attempt() {
    let h = harness_with(EngineConfig {
        lease_duration: Duration::from_secs(1),
        ..EngineConfig::default()
    })
    .await;
    h.register(&template("default", "linear", LINEAR)).await;
    let task = h.create("default", "linear", json!({})).await;
    let lost = h.claim_one("default").await;
    assert_eq!(lost.lease.attempt, 1);
    assert!(
        h.claim("default", 1).await.is_empty(),
        "leased step is invisible"
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = h.claim_one("default").await;
    assert_eq!(again.lease.step_id, lost.lease.step_id);
    assert_eq!(again.lease.attempt, 2);
    assert_ne!(again.lease.token, lost.lease.token);
    assert_eq!(
        lease_error(h.engine.step_complete(lost.lease, json!("late")).await),
        LeaseError::LeaseMismatch
    );
    assert!(matches!(
        h.engine.step_heartbeat(&again.lease).await.unwrap(),
        HeartbeatOutcome::Extended { .. }
    ));
    h.engine
        .step_complete(again.lease, json!("ok"))
        .await
        .unwrap();
    let history = h.engine.task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("lease expired"))
    );
}

/// An expired lease is refused even before anyone else claims the step.
#[tokio::test]
async fn expired_lease_cannot_complete_before_redelivery() {
    let h = harness_with(EngineConfig {
        lease_duration: Duration::from_secs(1),
        ..EngineConfig::default()
    })
    .await;
    h.register(&template("default", "linear", LINEAR)).await;
    h.create("default", "linear", json!({})).await;
    let lost = h.claim_one("default").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        lease_error(h.engine.step_complete(lost.lease, json!("late")).await),
        LeaseError::LeaseExpired
    );
    assert_eq!(
        lease_error(h.engine.step_heartbeat(&lost.lease).await),
        LeaseError::LeaseExpired
    );
}

/// Invariant 6: backoff and max_attempts come from the template.
#[tokio::test]
async fn retry_backoff_and_attempts_come_from_the_template() {
    let h = harness().await;
    h.register(&template(
        "default",
        "backoff",
        "  - { name: a, handler: h.a, retry: { max_attempts: 2, backoff: { initial: 1500ms, max: 10s, multiplier: 2, jitter: 0 } } }\n",
    ))
    .await;
    let task = h.create("default", "backoff", json!({})).await;
    let first = h.claim_one("default").await;
    h.engine
        .step_fail(first.lease, retryable("first"))
        .await
        .unwrap();
    let step = &h.engine.task_steps(task.id).await.unwrap()[0];
    assert_eq!(step.state, StepState::Retrying);
    let waited = step.retry_at.unwrap() - step.finished_at.unwrap_or(step.started_at.unwrap());
    assert!(
        waited >= chrono::TimeDelta::milliseconds(1400)
            && waited <= chrono::TimeDelta::milliseconds(1600),
        "retry_at should be 1.5s after the failure, was {waited}"
    );
    assert!(
        h.claim("default", 1).await.is_empty(),
        "not visible during backoff"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = h.claim_one("default").await;
    assert_eq!(second.lease.attempt, 2);
    h.engine
        .step_fail(second.lease, retryable("second"))
        .await
        .unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
    let step = &h.engine.task_steps(task.id).await.unwrap()[0];
    assert_eq!(step.state, StepState::Failed);
    assert_eq!(step.attempt, 2);
}

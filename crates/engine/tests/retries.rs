//! Retry semantics at the edges.

mod support;

use serde_json::json;
use support::{harness, template};
use tasker_model::{StepError, StepState, TaskState};

fn error(retryable: bool) -> StepError {
    StepError {
        error_type: if retryable {
            "transient"
        } else {
            "invalid_order"
        }
        .into(),
        message: "handler said no".into(),
        details: json!({"code": 42}),
        retryable,
    }
}

const NO_WAIT: &str = "backoff: { initial: 0ms, max: 0ms, jitter: 0 }";

#[tokio::test]
async fn max_attempts_one_never_retries() {
    let h = harness().await;
    h.register(&template(
        "default",
        "once",
        &format!("  - {{ name: a, handler: h.a, retry: {{ max_attempts: 1, {NO_WAIT} }} }}\n"),
    ))
    .await;
    let task = h.create("default", "once", json!({})).await;
    let a = h.claim_one("default").await;
    h.engine.step_fail(a.lease, error(true)).await.unwrap();
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Failed);
    assert_eq!(steps[0].attempt, 1);
    assert_eq!(
        steps[0].error.as_ref().unwrap().details,
        json!({"code": 42})
    );
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
    assert!(h.claim("default", 5).await.is_empty());
    assert_eq!(h.queue_depth("default").await, 0);
}

#[tokio::test]
async fn exhaustion_fails_the_step_and_the_task() {
    let h = harness().await;
    h.register(&template(
        "default",
        "thrice",
        &format!(
            "  - {{ name: a, handler: h.a, retry: {{ max_attempts: 3, {NO_WAIT} }} }}\n  - {{ name: b, handler: h.b, depends_on: [a] }}\n"
        ),
    ))
    .await;
    let task = h.create("default", "thrice", json!({})).await;
    for attempt in 1..=3 {
        let a = h.claim_one("default").await;
        assert_eq!(a.lease.attempt, attempt);
        h.engine.step_fail(a.lease, error(true)).await.unwrap();
    }
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Failed);
    assert_eq!(steps[1].state, StepState::Pending, "dependent never ran");
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
    let history = h.engine.task_history(task.id).await.unwrap();
    let retries = history.iter().filter(|t| t.to_state == "retrying").count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn a_retry_that_succeeds_completes_the_task() {
    let h = harness().await;
    h.register(&template(
        "default",
        "flaky",
        &format!("  - {{ name: a, handler: h.a, retry: {{ max_attempts: 3, {NO_WAIT} }} }}\n"),
    ))
    .await;
    let task = h.create("default", "flaky", json!({})).await;
    let first = h.claim_one("default").await;
    h.engine.step_fail(first.lease, error(true)).await.unwrap();
    let second = h.claim_one("default").await;
    assert_eq!(second.lease.attempt, 2);
    h.engine
        .step_complete(second.lease, json!({"ok": true}))
        .await
        .unwrap();
    let task = h.engine.task_get(task.id).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[0].result, Some(json!({"ok": true})));
    assert_eq!(steps[0].attempt, 2);
}

#[tokio::test]
async fn a_non_retryable_failure_fails_at_once() {
    let h = harness().await;
    h.register(&template(
        "default",
        "strict",
        &format!("  - {{ name: a, handler: h.a, retry: {{ max_attempts: 5, {NO_WAIT} }} }}\n"),
    ))
    .await;
    let task = h.create("default", "strict", json!({})).await;
    let a = h.claim_one("default").await;
    h.engine.step_fail(a.lease, error(false)).await.unwrap();
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Failed);
    assert_eq!(steps[0].attempt, 1);
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
}

#[tokio::test]
async fn a_failure_waits_for_running_siblings_before_failing_the_task() {
    let h = harness().await;
    h.register(&template(
        "default",
        "siblings",
        &format!(
            "  - {{ name: a, handler: h.a, retry: {{ max_attempts: 1, {NO_WAIT} }} }}\n  - {{ name: b, handler: h.b }}\n"
        ),
    ))
    .await;
    let task = h.create("default", "siblings", json!({})).await;
    let mut steps = h.claim("default", 2).await;
    steps.sort_by(|x, y| x.step_name.cmp(&y.step_name));
    h.engine
        .step_fail(steps[0].lease, error(true))
        .await
        .unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Running
    );
    h.engine
        .step_complete(steps[1].lease, json!("b"))
        .await
        .unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
}

#[tokio::test]
async fn a_later_successful_attempt_clears_the_earlier_error() {
    let h = harness().await;
    h.register(&template(
        "default",
        "flaky",
        &format!("  - {{ name: a, handler: h.a, retry: {{ max_attempts: 3, {NO_WAIT} }} }}\n"),
    ))
    .await;
    let task = h.create("default", "flaky", json!({})).await;
    let first = h.claim_one("default").await;
    h.engine.step_fail(first.lease, error(true)).await.unwrap();
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert!(
        steps[0].error.is_some(),
        "the failed attempt's error is shown"
    );

    let second = h.claim_one("default").await;
    h.engine
        .step_complete(second.lease, json!({"ok": true}))
        .await
        .unwrap();
    let step = h.engine.step_get(first.lease.step_id).await.unwrap();
    assert_eq!(step.state, StepState::Complete);
    assert_eq!(step.error, None, "the step no longer carries the old error");
    assert_eq!(step.result, Some(json!({"ok": true})));
    // The history still tells what happened to the first attempt.
    let history = h.engine.task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("transient: handler said no")),
        "{history:?}"
    );
}

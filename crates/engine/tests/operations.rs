//! Operator-facing operations: idempotent creation, cancel, manual retry and
//! resolve, listing with filters and cursors, history.

mod support;

use serde_json::json;
use support::{DIAMOND, LINEAR, Rows, harness, skip_on_sqlite, template};
use tasker_engine::NewTask;
use tasker_model::{HeartbeatOutcome, StepError, StepState, TaskState};
use tasker_store::TaskFilter;

#[tokio::test]
async fn an_idempotency_key_returns_the_existing_task() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    let new = NewTask {
        namespace: "default".into(),
        template: "linear".into(),
        context: json!({"order": 1}),
        idempotency_key: Some("order-1".into()),
        tags: vec!["vip".into()],
        ..NewTask::default()
    };
    let (first, created) = h.engine.task_create(new.clone()).await.unwrap();
    assert!(created);
    let (second, created) = h.engine.task_create(new).await.unwrap();
    assert!(!created);
    assert_eq!(first.id, second.id);
    assert_eq!(second.tags, vec!["vip".to_string()]);
    assert_eq!(h.count(Rows::Tasks).await, 1);
    assert_eq!(h.queue_depth("default").await, 1, "no second dispatch");
}

#[tokio::test]
async fn cancel_stops_further_steps_and_the_running_handler_learns_of_it() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    let task = h.create("default", "linear", json!({})).await;
    let a = h.claim_one("default").await;
    let cancelled = h
        .engine
        .task_cancel(task.id, Some("customer gave up"))
        .await
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    assert_eq!(
        h.engine.step_heartbeat(&a.lease).await.unwrap(),
        HeartbeatOutcome::Cancelled
    );
    let err = h.engine.step_complete(a.lease, json!(1)).await.unwrap_err();
    assert_eq!(err.code(), "task_cancelled");
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert!(steps.iter().all(|s| s.state == StepState::Cancelled));
    assert_eq!(h.queue_depth("default").await, 0);
    assert!(h.claim("default", 5).await.is_empty());
    let err = h.engine.task_cancel(task.id, None).await.unwrap_err();
    assert_eq!(err.code(), "task_finished");
}

#[tokio::test]
async fn manual_retry_and_resolve_recover_a_failed_task() {
    let h = harness().await;
    h.register(&template(
        "default",
        "diamond",
        &DIAMOND.replace("h.b,", "h.b, retry: { max_attempts: 1 },"),
    ))
    .await;
    let task = h.create("default", "diamond", json!({})).await;
    let a = h.claim_one("default").await;
    h.engine.step_complete(a.lease, json!("a")).await.unwrap();
    let mut bc = h.claim("default", 2).await;
    bc.sort_by(|x, y| x.step_name.cmp(&y.step_name));
    let permanent = StepError {
        error_type: "bad".into(),
        message: "no".into(),
        details: json!(null),
        retryable: false,
    };
    h.engine
        .step_fail(bc[0].lease, permanent.clone())
        .await
        .unwrap();
    h.engine
        .step_complete(bc[1].lease, json!("c"))
        .await
        .unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );

    // Manual retry reopens the task and runs b again from attempt 1.
    let b_id = bc[0].lease.step_id;
    let b = h.engine.step_retry(b_id).await.unwrap();
    assert_eq!(b.state, StepState::Ready);
    assert!(b.error.is_none());
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Running
    );
    let b = h.claim_one("default").await;
    assert_eq!(b.lease.attempt, 1);
    h.engine.step_fail(b.lease, permanent).await.unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );

    // Resolving b lets d run with the given result.
    let resolved = h
        .engine
        .step_resolve(b_id, Some(json!("fixed by hand")))
        .await
        .unwrap();
    assert_eq!(resolved.state, StepState::Resolved);
    let d = h.claim_one("default").await;
    assert_eq!(d.parent_results["b"], json!("fixed by hand"));
    h.engine.step_complete(d.lease, json!("d")).await.unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );

    let err = h
        .engine
        .step_resolve(d.lease.step_id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "task_finished");

    let history = h.engine.task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("manual retry"))
    );
    assert!(history.iter().any(|t| t.to_state == "resolved"));
    assert!(
        history
            .iter()
            .all(|t| t.node_id.as_deref() == Some("node-a"))
    );
    assert!(
        history
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at <= w[1].at)
    );
}

#[tokio::test]
async fn lists_filter_and_page_with_a_cursor() {
    let h = harness().await;
    h.engine.namespace_create("other").await.unwrap();
    h.register(&template("default", "linear", LINEAR)).await;
    h.register(&template("default", "diamond", DIAMOND)).await;
    h.register(&template("other", "linear", LINEAR)).await;
    let mut linear = Vec::new();
    for _ in 0..7 {
        linear.push(h.create("default", "linear", json!({})).await.id);
    }
    let diamond = h.create("default", "diamond", json!({})).await.id;
    h.create("other", "linear", json!({})).await;
    h.engine.task_cancel(diamond, None).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = h
            .engine
            .task_list(&TaskFilter {
                namespace: Some("default".into()),
                template: Some("linear".into()),
                cursor,
                limit: Some(3),
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert!(page.tasks.len() <= 3);
        seen.extend(page.tasks.iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    linear.reverse();
    assert_eq!(seen, linear, "newest first, every task once");

    let cancelled = h
        .engine
        .task_list(&TaskFilter {
            state: Some(TaskState::Cancelled),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        cancelled.tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![diamond]
    );

    let all = h.engine.task_list(&TaskFilter::default()).await.unwrap();
    assert_eq!(all.tasks.len(), 9);
    let err = h
        .engine
        .task_list(&TaskFilter {
            cursor: Some("not-a-cursor".into()),
            ..TaskFilter::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid");
    let templates = h.engine.template_list(Some("default")).await.unwrap();
    assert_eq!(templates.len(), 2);
    let namespaces = h.engine.namespace_list().await.unwrap();
    assert_eq!(
        namespaces
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["default", "other"]
    );
}

#[tokio::test]
async fn a_lease_taken_on_one_node_is_heartbeated_and_completed_on_another() {
    if skip_on_sqlite("SQLite serves one node: no second node can hold a lease") {
        return;
    }
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    let task = h.create("default", "linear", json!({})).await;
    let node_b = h.other_node(tasker_engine::EngineConfig::default()).await;
    let a = h.claim_one("default").await;
    assert!(matches!(
        node_b.step_heartbeat(&a.lease).await.unwrap(),
        HeartbeatOutcome::Extended { .. }
    ));
    node_b.step_complete(a.lease, json!("a")).await.unwrap();
    let history = h.engine.task_history(task.id).await.unwrap();
    let completion = history.iter().find(|t| t.to_state == "complete").unwrap();
    assert_eq!(completion.node_id.as_deref(), Some("node-b"));
}

#[tokio::test]
async fn a_released_step_is_delivered_again_at_once_without_counting_the_attempt() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    let task = h.create("default", "linear", json!({})).await;
    let a = h.claim_one("default").await;
    assert_eq!(a.lease.attempt, 1);
    h.engine.step_release(&a.lease).await.unwrap();
    // The old lease is dead.
    let err = h.engine.step_complete(a.lease, json!(1)).await.unwrap_err();
    assert_eq!(err.code(), "lease_mismatch");
    let again = h.claim_one("default").await;
    assert_eq!(again.lease.step_id, a.lease.step_id);
    assert_eq!(
        again.lease.attempt, 1,
        "the released attempt was not counted"
    );
    assert_ne!(again.lease.token, a.lease.token);
    h.engine.step_complete(again.lease, json!(1)).await.unwrap();
    let history = h.engine.task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("released by its worker"))
    );
}

#[tokio::test]
async fn completing_can_lease_the_next_ready_step_in_the_same_transaction() {
    let h = harness().await;
    h.register(&template("default", "linear", LINEAR)).await;
    let task = h.create("default", "linear", json!({"n": 7})).await;
    let namespaces = ["default".to_string()];
    let mut current = h.claim_one("default").await;
    for expected in ["b", "c", "d"] {
        let (recorded, next) = h
            .engine
            .step_complete_and_claim(
                current.lease,
                json!({"done": current.step_name}),
                "worker-1",
                &namespaces,
                &[],
                1,
            )
            .await
            .unwrap();
        assert_eq!(recorded, tasker_model::Recorded::Applied);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].step_name, expected);
        assert_eq!(next[0].context, json!({"n": 7}));
        assert_eq!(
            next[0].parent_results.len(),
            1,
            "the parent's result came along"
        );
        assert!(
            h.claim("default", 5).await.is_empty(),
            "nothing left for others"
        );
        current = next.into_iter().next().unwrap();
    }
    let (_, next) = h
        .engine
        .step_complete_and_claim(current.lease, json!("d"), "worker-1", &namespaces, &[], 1)
        .await
        .unwrap();
    assert!(next.is_empty());
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );
    assert_eq!(h.queue_depth("default").await, 0);

    // A re-sent report changes nothing and leases nothing.
    h.create("default", "linear", json!({})).await;
    let (recorded, next) = h
        .engine
        .step_complete_and_claim(
            current.lease,
            json!("again"),
            "worker-1",
            &namespaces,
            &[],
            1,
        )
        .await
        .unwrap();
    assert_eq!(recorded, tasker_model::Recorded::Duplicate);
    assert!(next.is_empty());
    assert_eq!(
        h.claim("default", 5).await.len(),
        1,
        "the new task's root is still there"
    );
}

#[tokio::test]
async fn a_step_leased_with_a_completion_comes_back_when_its_lease_expires() {
    let h = support::harness_with(tasker_engine::EngineConfig {
        lease_duration: std::time::Duration::from_secs(1),
        ..tasker_engine::EngineConfig::default()
    })
    .await;
    h.register(&template("default", "linear", LINEAR)).await;
    h.create("default", "linear", json!({})).await;
    let a = h.claim_one("default").await;
    let (_, next) = h
        .engine
        .step_complete_and_claim(
            a.lease,
            json!("a"),
            "worker-1",
            &["default".to_string()],
            &[],
            1,
        )
        .await
        .unwrap();
    let lost = next
        .into_iter()
        .next()
        .expect("b leased with the completion");
    assert!(
        h.claim("default", 1).await.is_empty(),
        "b is leased, its message hidden"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let again = h.claim_one("default").await;
    assert_eq!(again.lease.step_id, lost.lease.step_id);
    assert_eq!(again.lease.attempt, 2);
    let err = h
        .engine
        .step_complete(lost.lease, json!("late"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "lease_mismatch");
}

#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<tasker_store::Event>>);

impl tasker_store::Observer for Recorder {
    fn observe(&self, events: &[tasker_store::Event]) {
        self.0.lock().unwrap().extend_from_slice(events);
    }
}

#[tokio::test]
async fn committed_changes_are_reported_to_the_observer() {
    use tasker_store::{AttemptOutcome, Event};
    let h = support::harness_with(tasker_engine::EngineConfig {
        lease_duration: std::time::Duration::from_secs(1),
        ..tasker_engine::EngineConfig::default()
    })
    .await;
    let recorder = std::sync::Arc::new(Recorder::default());
    h.store.set_observer(recorder.clone());
    h.register(&template(
        "default",
        "pair",
        "  - { name: a, handler: h.a, retry: { max_attempts: 3, backoff: { initial: 0ms, max: 0ms, jitter: 0 } } }\n  - { name: b, handler: h.b, depends_on: [a] }\n",
    ))
    .await;
    h.create("default", "pair", json!({})).await;
    let a = h.claim_one("default").await;
    let transient = StepError {
        error_type: "transient".into(),
        message: "again".into(),
        details: json!(null),
        retryable: true,
    };
    h.engine.step_fail(a.lease, transient).await.unwrap();
    let _lost = h.claim_one("default").await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let a = h.claim_one("default").await;
    assert_eq!(a.lease.attempt, 3);
    h.engine.step_complete(a.lease, json!(1)).await.unwrap();
    let b = h.claim_one("default").await;
    h.engine.step_complete(b.lease, json!(2)).await.unwrap();

    let events = recorder.0.lock().unwrap().clone();
    let claims = events
        .iter()
        .filter(|e| matches!(e, Event::StepClaimed { .. }))
        .count();
    assert_eq!(claims, 4);
    let ended: Vec<AttemptOutcome> = events
        .iter()
        .filter_map(|e| match e {
            Event::AttemptEnded { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        [
            AttemptOutcome::Retrying,
            AttemptOutcome::Completed,
            AttemptOutcome::Completed
        ]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::LeaseExpired { .. }))
            .count(),
        1
    );
    let finished: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::TaskFinished { .. }))
        .collect();
    assert_eq!(
        finished,
        [&Event::TaskFinished {
            namespace: "default".into(),
            template: "pair".into(),
            state: TaskState::Complete
        }]
    );
    // The redelivered step had waited about as long as the lease was lost.
    let waits: Vec<std::time::Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepClaimed { queue_wait, .. } => Some(*queue_wait),
            _ => None,
        })
        .collect();
    assert!(
        waits[2] < std::time::Duration::from_millis(1000),
        "{waits:?}"
    );
}

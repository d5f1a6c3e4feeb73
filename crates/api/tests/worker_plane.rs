//! The worker plane: register, poll, heartbeat, complete (also with the
//! worker's next step) and fail, with the lease fencing that makes stale
//! reports 409; and the manual step operations retry and resolve.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use tasker_engine::EngineConfig;

async fn with_linear() -> TestApp {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app
}

async fn step_of(app: &TestApp, task: &Value, name: &str) -> Value {
    let id = task["id"].as_str().unwrap();
    let steps = app
        .get(&format!("/v1/tasks/{id}/steps?include=result"))
        .await
        .json();
    steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .expect("step")
}

#[tokio::test]
async fn register_tells_the_worker_its_timings() {
    let app = test_app().await;
    let reply = app
        .register_worker_handling("worker-1", &["default"], &["h.a"])
        .await;
    assert_eq!(reply["worker"]["worker_id"], "worker-1");
    assert_eq!(reply["worker"]["handlers"], json!(["h.a"]));
    assert_eq!(reply["worker"]["node_id"], "node-a");
    assert_eq!(reply["lease_seconds"], 30);
    assert_eq!(reply["heartbeat_interval_ms"], 10_000);
    assert_eq!(reply["max_poll_wait_ms"], 30_000);

    let reply = app
        .call(
            Method::POST,
            "/v1/workers/register",
            Some(WORKER),
            Some(json!({"worker_id": "w", "namespaces": []})),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid");
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/register",
            Some(WORKER),
            Some(json!({"worker_id": "w"})),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
}

#[tokio::test]
async fn a_step_runs_from_poll_to_complete() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({"n": 1})).await;
    app.register_worker("worker-1", &["default"]).await;

    let claimed = app.poll_one("default").await;
    assert_eq!(claimed["step_name"], "a");
    assert_eq!(claimed["handler"], "h.a");
    assert_eq!(claimed["task_id"], task["id"]);
    assert_eq!(claimed["context"], json!({"n": 1}));
    assert_eq!(claimed["lease"]["attempt"], 1);
    assert_eq!(claimed["timeout_ms"], 300_000);
    assert!(claimed["lease_expires_at"].is_string());

    let beat = app
        .report(&claimed, "heartbeat", json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(beat["cancelled"], false);
    assert!(beat["lease_expires_at"].is_string());

    let done = app
        .report(&claimed, "complete", json!({"result": {"total": 3}}))
        .await
        .expect(StatusCode::OK)
        .json();
    // Without `next`, nothing is leased with the result.
    assert_eq!(done, json!({"recorded": "applied", "next": []}));
    // A re-send of the same report is safe.
    let again = app
        .report(&claimed, "complete", json!({"result": {"total": 3}}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again, json!({"recorded": "duplicate", "next": []}));

    // The child is ready with its parent's result.
    let child = app.poll_one("default").await;
    assert_eq!(child["step_name"], "b");
    assert_eq!(child["parent_results"], json!({"a": {"total": 3}}));
    app.report(&child, "complete", json!({}))
        .await
        .expect(StatusCode::OK);
    let id = task["id"].as_str().unwrap();
    let task = app.get(&format!("/v1/tasks/{id}")).await.json();
    assert_eq!(task["state"], "complete");
}

#[tokio::test]
async fn stale_leases_are_409_and_change_nothing() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({})).await;
    let claimed = app.poll_one("default").await;

    let mut forged = claimed.clone();
    forged["lease"]["token"] = json!("0190b5a0-0000-7000-8000-00000000beef");
    for action in ["heartbeat", "complete"] {
        let reply = app
            .report(&forged, action, json!({}))
            .await
            .expect(StatusCode::CONFLICT);
        assert_eq!(reply.error_code(), "lease_mismatch", "{action}");
    }
    let reply = app
        .report(
            &forged,
            "fail",
            json!({"error_type": "boom", "message": "x"}),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "lease_mismatch");
    let mut old_attempt = claimed.clone();
    old_attempt["lease"]["attempt"] = json!(7);
    let reply = app
        .report(&old_attempt, "complete", json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "lease_mismatch");

    let step = step_of(&app, &task, "a").await;
    assert_eq!(step["state"], "running");
    assert_eq!(step["result"], Value::Null);

    let metrics = app.call(Method::GET, "/metrics", None, None).await.text();
    assert!(
        metrics.contains("tasker_lease_refusals_total{code=\"lease_mismatch\"} 4"),
        "{metrics}"
    );

    // Unknown step, malformed step id, malformed lease token.
    let missing = "/v1/steps/0190b5a0-0000-7000-8000-000000000000/complete";
    let lease = json!({"attempt": 1, "token": "0190b5a0-0000-7000-8000-000000000001"});
    // A lease on a step that does not exist is simply not the current lease.
    let reply = app
        .call(Method::POST, missing, Some(WORKER), Some(lease))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "lease_mismatch");
    let reply = app
        .call(
            Method::POST,
            "/v1/steps/nope/complete",
            Some(WORKER),
            Some(json!({})),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    let reply = app
        .report(&claimed, "complete", json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["recorded"], "applied");
    let mut bad_token = claimed.clone();
    bad_token["lease"]["token"] = json!("not-a-uuid");
    let reply = app
        .report(&bad_token, "heartbeat", json!({}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    // The step is done: its lease no longer lets anyone heartbeat.
    let reply = app
        .report(&claimed, "heartbeat", json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "step_not_running");
}

#[tokio::test]
async fn failures_retry_then_fail_and_manual_retry_and_resolve_recover() {
    let app = test_app().await;
    let steps = "
  - { name: a, handler: h.a, retry: { max_attempts: 2, backoff: { initial: 1ms, max: 1ms, jitter: 0 } } }
  - { name: b, handler: h.b, depends_on: [a] }
";
    app.register_yaml(&template("default", "flaky", steps))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "flaky", json!({})).await;
    let id = task["id"].as_str().unwrap();

    let first = app.poll_one("default").await;
    let reply = app
        .report(
            &first,
            "fail",
            json!({"error_type": "io", "message": "disk full", "details": {"disk": "/"}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["recorded"], "applied");
    assert_eq!(step_of(&app, &task, "a").await["state"], "retrying");

    // After the backoff the step is delivered again as attempt 2.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = app.poll_one("default").await;
    assert_eq!(second["lease"]["attempt"], 2);
    app.report(
        &second,
        "fail",
        json!({"error_type": "io", "message": "still full", "retryable": false}),
    )
    .await
    .expect(StatusCode::OK);
    let step = step_of(&app, &task, "a").await;
    assert_eq!(step["state"], "failed");
    assert_eq!(step["error"]["error_type"], "io");
    assert_eq!(step["error"]["retryable"], false);
    assert_eq!(
        app.get(&format!("/v1/tasks/{id}")).await.json()["state"],
        "failed"
    );

    // Retry is for failed steps only.
    let pending = step_of(&app, &task, "b").await;
    let b_id = pending["id"].as_str().unwrap();
    let reply = app
        .call(
            Method::POST,
            &format!("/v1/steps/{b_id}/retry"),
            Some(OPERATOR),
            None,
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "wrong_state");

    let a_id = step["id"].as_str().unwrap().to_owned();
    let retried = app
        .call(
            Method::POST,
            &format!("/v1/steps/{a_id}/retry"),
            Some(OPERATOR),
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(retried["state"], "ready");
    assert_eq!(
        app.get(&format!("/v1/tasks/{id}")).await.json()["state"],
        "running"
    );

    // Fail it for good again, then resolve it by hand: b runs with the result.
    let third = app.poll_one("default").await;
    app.report(
        &third,
        "fail",
        json!({"error_type": "io", "message": "x", "retryable": false}),
    )
    .await
    .expect(StatusCode::OK);
    let resolved = app
        .post(
            &format!("/v1/steps/{a_id}/resolve"),
            json!({"result": {"manual": true}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(resolved["state"], "resolved");
    let child = app.poll_one("default").await;
    assert_eq!(child["step_name"], "b");
    assert_eq!(child["parent_results"], json!({"a": {"manual": true}}));

    let missing = "/v1/steps/0190b5a0-0000-7000-8000-000000000000";
    for action in ["retry", "resolve"] {
        let reply = app
            .call(
                Method::POST,
                &format!("{missing}/{action}"),
                Some(ADMIN),
                None,
            )
            .await
            .expect(StatusCode::NOT_FOUND);
        assert_eq!(reply.error_code(), "not_found");
    }
    let metrics = app.call(Method::GET, "/metrics", None, None).await.text();
    for expected in [
        "tasker_steps_failed_total{retryable=\"true\",recorded=\"applied\"} 1",
        "tasker_steps_failed_total{retryable=\"false\",recorded=\"applied\"} 2",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn fail_needs_an_error_type() {
    let app = with_linear().await;
    app.create_task("default", "linear", json!({})).await;
    let claimed = app.poll_one("default").await;
    let reply = app
        .report(&claimed, "fail", json!({"error_type": "", "message": "x"}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid");
    let reply = app
        .report(&claimed, "fail", json!({"message": "x"}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
}

#[tokio::test]
async fn cancellation_reaches_the_worker_through_heartbeats() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({})).await;
    let claimed = app.poll_one("default").await;
    let id = task["id"].as_str().unwrap();
    app.post(&format!("/v1/tasks/{id}/cancel"), json!({"reason": "stop"}))
        .await
        .expect(StatusCode::OK);
    let beat = app
        .report(&claimed, "heartbeat", json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(beat, json!({"lease_expires_at": null, "cancelled": true}));
    let reply = app
        .report(&claimed, "complete", json!({"result": 1}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "task_cancelled");
}

#[tokio::test]
async fn an_attempt_past_its_timeout_is_told_so_at_heartbeat() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "slow",
        "  - { name: a, handler: h.a, timeout: 300ms }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    let task = app.create_task("default", "slow", json!({})).await;
    let claimed = app.poll_one("default").await;
    assert_eq!(claimed["timeout_ms"], 300);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = app
        .report(&claimed, "heartbeat", json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "step_timed_out");
    let step = step_of(&app, &task, "a").await;
    assert_eq!(step["error"]["error_type"], "timeout");
}

#[tokio::test]
async fn poll_defaults_to_the_registered_namespaces() {
    let app = test_app().await;
    app.post("/v1/namespaces", json!({"name": "billing"}))
        .await
        .expect(StatusCode::CREATED);
    app.register_yaml(&template(
        "billing",
        "charge",
        "  - { name: a, handler: h.a }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    app.create_task("billing", "charge", json!({})).await;
    app.register_worker("biller", &["billing"]).await;
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/biller/poll",
            Some(WORKER),
            Some(json!({"wait_ms": 0})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["steps"].as_array().unwrap().len(), 1);
    assert_eq!(reply["steps"][0]["namespace"], "billing");

    // No body at all: every field defaults (here nothing is left, so the
    // poll waits, bounded by the engine's max wait, not asserted here).
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/stranger/poll",
            Some(WORKER),
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "worker_not_registered");
}

#[tokio::test]
async fn poll_claims_up_to_max_and_returns_empty_at_the_deadline() {
    let app = with_linear().await;
    for _ in 0..3 {
        app.create_task("default", "linear", json!({})).await;
    }
    assert_eq!(app.poll("worker-1", &["default"], 2).await.len(), 2);
    assert_eq!(app.poll("worker-1", &["default"], 5).await.len(), 1);
    let started = std::time::Instant::now();
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/worker-1/poll",
            Some(WORKER),
            Some(json!({"namespaces": ["default"], "wait_ms": 300})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply, json!({"steps": []}));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_node_shutting_down_refuses_new_polls() {
    let app = test_app_with(EngineConfig::default(), |_| {}).await;
    app.state.engine.begin_shutdown();
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/w/poll",
            Some(WORKER),
            Some(json!({"namespaces": ["default"]})),
        )
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "shutting_down");
}

#[tokio::test]
async fn a_released_step_is_delivered_again_without_counting_the_attempt() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({})).await;
    let claimed = app.poll_one("default").await;
    let mut stale = claimed.clone();
    stale["lease"]["token"] = json!("0190b5a0-0000-7000-8000-00000000beef");
    let reply = app
        .report(&stale, "release", json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "lease_mismatch");

    let reply = app
        .report(&claimed, "release", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
    let step = step_of(&app, &task, "a").await;
    assert_eq!(step["state"], "ready");
    assert_eq!(step["attempt"], 0);
    // The old lease is dead; the step comes back at once as attempt 1.
    let reply = app
        .report(&claimed, "complete", json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "lease_mismatch");
    let again = app.poll_one("default").await;
    assert_eq!(again["step_name"], "a");
    assert_eq!(again["lease"]["attempt"], 1);
    assert_ne!(again["lease"]["token"], claimed["lease"]["token"]);
    let metrics = app.call(Method::GET, "/metrics", None, None).await.text();
    assert!(
        metrics.contains("tasker_steps_released_total 1"),
        "{metrics}"
    );
}

/// `a` then `b` and `c`, both children of `a`.
const FAN_OUT: &str = "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b, depends_on: [a] }
  - { name: c, handler: h.c, depends_on: [a] }
";

#[tokio::test]
async fn complete_with_next_leases_a_child_with_its_parent_results_up_to_max() {
    let app = test_app().await;
    app.register_yaml(&template("default", "fan", FAN_OUT))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "fan", json!({"n": 1})).await;
    app.register_worker("worker-1", &["default"]).await;
    let a = app.poll_one("default").await;

    // No namespaces: the worker's registered ones, as for a poll.
    let done = app
        .report(
            &a,
            "complete",
            json!({"result": {"total": 3}, "next": {"worker_id": "worker-1", "max": 1}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(done["recorded"], "applied");
    let next = done["next"].as_array().unwrap();
    assert_eq!(next.len(), 1, "b and c became ready; max is 1: {done}");
    let child = &next[0];
    let name = child["step_name"].as_str().unwrap();
    assert!(name == "b" || name == "c", "{child}");
    assert_eq!(child["task_id"], task["id"]);
    assert_eq!(child["context"], json!({"n": 1}));
    assert_eq!(child["parent_results"], json!({"a": {"total": 3}}));
    assert_eq!(child["lease"]["attempt"], 1);
    let step = step_of(&app, &task, name).await;
    assert_eq!(step["state"], "running");
    assert_eq!(step["worker_id"], "worker-1");
    // The lease is a real one: it heartbeats and completes like a polled one.
    app.report(child, "heartbeat", json!({}))
        .await
        .expect(StatusCode::OK);

    // The other child was left ready for anyone.
    let other = app.poll_one("default").await;
    assert_ne!(other["step_name"], child["step_name"]);

    // A re-send after a lost reply leases nothing, though work is ready.
    app.create_task("default", "fan", json!({"n": 2})).await;
    let again = app
        .report(
            &a,
            "complete",
            json!({"result": {"total": 3}, "next": {"worker_id": "worker-1", "namespaces": ["default"], "max": 1}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again, json!({"recorded": "duplicate", "next": []}));
    assert_eq!(app.poll_one("default").await["context"], json!({"n": 2}));

    // Steps leased with a completion count as claimed, like polled ones.
    let metrics = app.call(Method::GET, "/metrics", None, None).await.text();
    assert!(
        metrics.contains("tasker_steps_claimed_total{namespace=\"default\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn complete_with_next_takes_namespaces_in_order_and_never_more_than_max() {
    let app = test_app().await;
    app.post("/v1/namespaces", json!({"name": "billing"}))
        .await
        .expect(StatusCode::CREATED);
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app.register_yaml(&template(
        "billing",
        "charge",
        "  - { name: a, handler: h.a }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    let task = app.create_task("default", "linear", json!({})).await;
    let a = app.poll_one("default").await;
    for _ in 0..3 {
        app.create_task("billing", "charge", json!({})).await;
    }
    // The child that the completion released comes first, then the
    // namespaces in order: billing before default.
    let done = app
        .report(
            &a,
            "complete",
            json!({"next": {"worker_id": "w2", "namespaces": ["billing", "default"], "max": 3}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let next = done["next"].as_array().unwrap();
    assert_eq!(next.len(), 3, "{done}");
    assert_eq!(next[0]["step_name"], "b", "{done}");
    assert!(
        next[1..].iter().all(|s| s["namespace"] == "billing"),
        "{done}"
    );
    assert_eq!(step_of(&app, &task, "b").await["state"], "running");
    // max 0 is a plain complete.
    let b = app.poll_one("billing").await;
    let done = app
        .report(
            &b,
            "complete",
            json!({"next": {"worker_id": "w2", "namespaces": ["billing"], "max": 0}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(done, json!({"recorded": "applied", "next": []}));
    assert!(app.poll("w3", &["billing"], 5).await.is_empty());
}

#[tokio::test]
async fn a_bad_next_is_refused_before_anything_is_recorded() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({})).await;
    let a = app.poll_one("default").await;
    let long = "w".repeat(129);
    for (next, status, code) in [
        (json!({"worker_id": ""}), StatusCode::BAD_REQUEST, "invalid"),
        (
            json!({"worker_id": long}),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        // No namespaces and not registered: nothing to lease from.
        (
            json!({"worker_id": "stranger"}),
            StatusCode::NOT_FOUND,
            "worker_not_registered",
        ),
        (
            json!({"worker_id": "w", "namespaces": ["nowhere"]}),
            StatusCode::NOT_FOUND,
            "namespace_not_found",
        ),
        (json!({"max": 1}), StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let reply = app
            .report(&a, "complete", json!({"result": 1, "next": next}))
            .await
            .expect(status);
        assert_eq!(reply.error_code(), code, "{next}");
    }
    let step = step_of(&app, &task, "a").await;
    assert_eq!(step["state"], "running");
    assert_eq!(step["result"], Value::Null);
}

#[tokio::test]
async fn a_node_shutting_down_records_the_result_but_leases_nothing_with_it() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({})).await;
    let a = app.poll_one("default").await;
    app.state.engine.begin_shutdown();
    let done = app
        .report(
            &a,
            "complete",
            json!({"next": {"worker_id": "worker-1", "namespaces": ["default"]}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(done, json!({"recorded": "applied", "next": []}));
    assert_eq!(step_of(&app, &task, "a").await["state"], "complete");
    assert_eq!(step_of(&app, &task, "b").await["state"], "ready");
}

/// The two 404s of a poll need different reactions, so they have different
/// codes: an unregistered worker registers again; an unknown namespace is a
/// configuration problem that registering again would not fix.
#[tokio::test]
async fn a_poll_tells_an_unregistered_worker_from_an_unknown_namespace() {
    let app = with_linear().await;
    // Registering may name namespaces that do not exist yet (workers may
    // start before their templates are registered).
    app.register_worker("early", &["later"]).await;
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/early/poll",
            Some(WORKER),
            Some(json!({"wait_ms": 0})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "namespace_not_found");
    assert!(reply.text().contains("\\\"later\\\""), "{}", reply.text());
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/early/poll",
            Some(WORKER),
            Some(json!({"namespaces": ["default", "ghosts"], "wait_ms": 0})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "namespace_not_found");

    let reply = app
        .call(
            Method::POST,
            "/v1/workers/nobody/poll",
            Some(WORKER),
            Some(json!({"wait_ms": 0})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "worker_not_registered");

    // Once the namespace exists, the same worker polls fine.
    app.post("/v1/namespaces", json!({"name": "later"}))
        .await
        .expect(StatusCode::CREATED);
    app.call(
        Method::POST,
        "/v1/workers/early/poll",
        Some(WORKER),
        Some(json!({"wait_ms": 0})),
    )
    .await
    .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_step_is_read_by_its_id() {
    let app = with_linear().await;
    let task = app.create_task("default", "linear", json!({})).await;
    let a = step_of(&app, &task, "a").await;
    let id = a["id"].as_str().unwrap();
    let step = app
        .get(&format!("/v1/steps/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(step, a, "the same record as in the task's step list");

    let claimed = app.poll_one("default").await;
    app.report(&claimed, "complete", json!({"result": {"n": 1}}))
        .await
        .expect(StatusCode::OK);
    let step = app
        .get(&format!("/v1/steps/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        (step["state"].clone(), step["result"].clone()),
        (json!("complete"), json!({"n": 1}))
    );

    let missing = uuid::Uuid::now_v7();
    let reply = app
        .get(&format!("/v1/steps/{missing}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    assert!(
        reply.text().contains(&format!("step {missing}")),
        "{}",
        reply.text()
    );
    app.get("/v1/steps/not-a-uuid")
        .await
        .expect(StatusCode::BAD_REQUEST);
    // A worker token may not read it: it is a management endpoint.
    app.call(Method::GET, &format!("/v1/steps/{id}"), Some(WORKER), None)
        .await
        .expect(StatusCode::FORBIDDEN);
}

/// A step that failed once and then succeeded shows no error; the history
/// keeps the failed attempt.
#[tokio::test]
async fn a_step_that_succeeds_after_a_failure_has_no_error() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "flaky",
        "  - { name: a, handler: h.a, retry: { max_attempts: 3, backoff: { initial: 0ms, max: 0ms, jitter: 0 } } }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    let task = app.create_task("default", "flaky", json!({})).await;
    let first = app.poll_one("default").await;
    app.report(
        &first,
        "fail",
        json!({"error_type": "flaky", "message": "try again"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        step_of(&app, &task, "a").await["error"]["error_type"],
        "flaky"
    );
    let second = app.poll_one("default").await;
    app.report(&second, "complete", json!({"result": 2}))
        .await
        .expect(StatusCode::OK);
    let step = step_of(&app, &task, "a").await;
    assert_eq!(step["state"], "complete");
    assert_eq!(step["error"], Value::Null);
    let id = task["id"].as_str().unwrap();
    let history = app.get(&format!("/v1/tasks/{id}/history")).await.json();
    assert!(
        history.to_string().contains("flaky: try again"),
        "{history}"
    );
}

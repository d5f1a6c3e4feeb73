//! Probes, metrics, the OpenAPI document, the docs page and unknown routes:
//! all open without a token.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;

#[tokio::test]
async fn health_and_ready_answer_without_a_token() {
    let app = test_app().await;
    let health = app
        .call(Method::GET, "/health", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok", "database": true}));

    let ready = app
        .call(Method::GET, "/ready", None, None)
        .await
        .expect(StatusCode::OK);
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["shutting_down"], false);
    for check in [
        "database",
        "migrations_applied",
        "queues_installed",
        "default_namespace",
    ] {
        assert_eq!(body["checks"][check], true, "{check}: {body}");
    }
}

#[tokio::test]
async fn a_node_shutting_down_is_not_ready() {
    let app = test_app().await;
    app.state.engine.begin_shutdown();
    let ready = app
        .call(Method::GET, "/ready", None, None)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["ready"], false);
    assert_eq!(ready.json()["shutting_down"], true);
}

// An unreachable database (a real one, cut away by a proxy) and what the
// probes answer then: tests/outage.rs.

#[tokio::test]
async fn metrics_expose_requests_tasks_queues_and_pool() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app.create_task("default", "linear", json!({})).await;
    app.create_task("default", "linear", json!({})).await;
    app.register_worker("worker-1", &["default"]).await;
    let claimed = app.poll_one("default").await;
    app.report(&claimed, "complete", json!({"result": 1}))
        .await
        .expect(StatusCode::OK);
    app.get("/v1/tasks/0190b5a0-0000-7000-8000-000000000000")
        .await
        .expect(StatusCode::NOT_FOUND);

    let reply = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .expect(StatusCode::OK);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{}",
        reply.content_type()
    );
    let text = reply.text();
    for expected in [
        "tasker_tasks_created_total{namespace=\"default\",template=\"linear\"} 2",
        "tasker_steps_claimed_total{namespace=\"default\"} 1",
        "tasker_steps_completed_total{recorded=\"applied\"} 1",
        // Task 1's second step became ready; task 2's first step still waits.
        "tasker_queue_depth{namespace=\"default\"} 2",
        "tasker_leases_in_flight{namespace=\"default\"} 0",
        "tasker_queue_delayed{namespace=\"default\"} 0",
        // One report, written in one transaction; the poll went through the
        // namespace's claim loop and nobody waits now.
        "tasker_reports_written_total 1",
        "tasker_report_transactions_total 1",
        "tasker_claim_loop_claims_total{namespace=\"default\"}",
        "tasker_polls_waiting{namespace=\"default\"} 0",
        "tasker_db_pool_connections{state=\"idle\"}",
        "tasker_db_pool_connections{state=\"used\"}",
        "tasker_build_info{version=",
        // The route template, never the raw path.
        "tasker_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/tasks/{id}\",status=\"404\"} 1",
        "tasker_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/tasks\",status=\"201\",le=\"",
        "# TYPE tasker_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("0190b5a0"),
        "raw path leaked into labels:\n{text}"
    );
}

#[tokio::test]
async fn metrics_count_leased_steps() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app.create_task("default", "linear", json!({})).await;
    app.poll_one("default").await;
    let text = app.call(Method::GET, "/metrics", None, None).await.text();
    assert!(
        text.contains("tasker_leases_in_flight{namespace=\"default\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tasker_queue_depth{namespace=\"default\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn apps_in_one_process_keep_separate_metrics() {
    let first = test_app().await;
    let second = test_app().await;
    first
        .register_yaml(&template("default", "linear", LINEAR))
        .await;
    first.create_task("default", "linear", json!({})).await;
    let text = second
        .call(Method::GET, "/metrics", None, None)
        .await
        .text();
    assert!(!text.contains("tasker_tasks_created_total"), "{text}");
}

#[tokio::test]
async fn openapi_lists_every_documented_path() {
    let app = test_app().await;
    let reply = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .expect(StatusCode::OK);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/v1/cluster", "get"),
        ("/v1/namespaces", "post"),
        ("/v1/namespaces", "get"),
        ("/v1/templates", "post"),
        ("/v1/templates", "get"),
        ("/v1/templates/{namespace}/{name}", "get"),
        ("/v1/tasks", "post"),
        ("/v1/tasks/batch", "post"),
        ("/v1/tasks", "get"),
        ("/v1/tasks/{id}", "get"),
        ("/v1/tasks/{id}/cancel", "post"),
        ("/v1/tasks/{id}/steps", "get"),
        ("/v1/tasks/{id}/history", "get"),
        ("/v1/tasks/{id}/explain", "get"),
        ("/v1/steps/{id}", "get"),
        ("/v1/steps/{id}/retry", "post"),
        ("/v1/steps/{id}/resolve", "post"),
        ("/v1/workers/register", "post"),
        ("/v1/workers/{worker_id}/poll", "post"),
        ("/v1/steps/{id}/heartbeat", "post"),
        ("/v1/steps/{id}/complete", "post"),
        ("/v1/steps/{id}/fail", "post"),
        ("/v1/steps/{id}/release", "post"),
        ("/v1/steps/reports", "post"),
        ("/v1/schedules", "post"),
        ("/v1/schedules", "get"),
        ("/v1/schedules/{id}", "get"),
        ("/v1/schedules/{id}", "put"),
        ("/v1/schedules/{id}", "delete"),
        ("/v1/schedules/{id}/pause", "post"),
        ("/v1/schedules/{id}/resume", "post"),
        ("/v1/schedules/{id}/trigger", "post"),
        ("/v1/schedules/{id}/backfill", "post"),
        ("/v1/schedules/{id}/fires", "get"),
        ("/v1/dead-letters", "get"),
        ("/v1/dead-letters/retry", "post"),
        ("/v1/dead-letters/resolve", "post"),
        ("/v1/steps/{id}/result", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let mut operation_ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    assert_eq!(operation_ids.len(), 41, "every operation has an id");
    operation_ids.sort_unstable();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), 41, "operation ids are unique");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Task",
        "Step",
        "ClaimedStep",
        "TemplateRecord",
        "ErrorBody",
        "Worker",
        "NextRequest",
        "Schedule",
        "ScheduleSpec",
        "ScheduleFire",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    // A complete answers with the steps leased with it.
    assert_eq!(
        schemas["CompleteReply"]["properties"]["next"]["items"]["$ref"],
        "#/components/schemas/ClaimedStep"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn docs_page_is_self_contained_html() {
    let app = test_app().await;
    let reply = app
        .call(Method::GET, "/docs", None, None)
        .await
        .expect(StatusCode::OK);
    assert!(reply.content_type().starts_with("text/html"));
    let html = reply.text();
    assert!(html.contains("api-docs/openapi.json"));
    // Nothing is loaded from another host: the page works offline.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external reference in /docs"
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = test_app().await;
    let reply = app
        .call(Method::GET, "/v1/nothing-here", None, None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
}

#[tokio::test]
async fn wrong_methods_are_json_405s() {
    let app = test_app().await;
    let reply = app
        .call(Method::DELETE, "/v1/tasks", Some(ADMIN), None)
        .await
        .expect(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error_code(), "method_not_allowed");
}

#[tokio::test]
async fn metrics_report_finished_tasks_queue_waits_run_times_and_retries() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "single",
        "  - { name: a, handler: h.a, retry: { max_attempts: 2, backoff: { initial: 0ms, max: 0ms, jitter: 0 } } }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    app.register_worker("worker-1", &["default"]).await;
    app.create_task("default", "single", json!({})).await;
    let first = app.poll_one("default").await;
    app.report(
        &first,
        "fail",
        json!({"retryable": true, "error_type": "flaky", "message": "again"}),
    )
    .await
    .expect(StatusCode::OK);
    let second = app.poll_one("default").await;
    app.report(&second, "complete", json!({"result": 1}))
        .await
        .expect(StatusCode::OK);

    let text = app.call(Method::GET, "/metrics", None, None).await.text();
    for expected in [
        "tasker_tasks_finished_total{namespace=\"default\",template=\"single\",state=\"complete\"} 1",
        "tasker_step_retries_total{namespace=\"default\"} 1",
        "tasker_step_queue_wait_seconds_count{namespace=\"default\"} 2",
        "tasker_step_run_seconds_count{namespace=\"default\",outcome=\"retrying\"} 1",
        "tasker_step_run_seconds_count{namespace=\"default\",outcome=\"completed\"} 1",
        "# TYPE tasker_step_queue_wait_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

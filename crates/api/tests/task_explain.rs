//! `GET /v1/tasks/{id}/explain`: why a task is waiting, through the router.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;

const MISSING: &str = "0190b5a0-0000-7000-8000-000000000000";

#[tokio::test]
async fn a_task_waiting_on_a_namespace_no_worker_serves_is_explained_as_such() {
    let app = test_app().await;
    app.post("/v1/namespaces", json!({"name": "orders"}))
        .await
        .expect(StatusCode::CREATED);
    app.register_yaml(&template("orders", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    // Live, but serving another namespace.
    app.register_worker("elsewhere", &["default"]).await;
    let task = app.create_task("orders", "linear", json!({})).await;
    let id = task["id"].as_str().unwrap();

    let explanation = app
        .call(
            Method::GET,
            &format!("/v1/tasks/{id}/explain"),
            Some(OPERATOR),
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(explanation["task_id"], id);
    assert_eq!(explanation["state"], "running");
    let steps = explanation["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{explanation}");
    assert_eq!(steps[0]["name"], "a");
    assert_eq!(steps[0]["reasons"][0]["kind"], "queued");
    assert_eq!(
        steps[0]["reasons"][1],
        json!({"kind": "no_worker_serves_namespace", "namespace": "orders"})
    );
    assert_eq!(
        steps[1]["reasons"][0],
        json!({"kind": "parents_not_done", "parents": [{"name": "a", "state": "ready"}]})
    );

    // Once a worker of the namespace registers, it is named instead.
    app.register_worker("orders-1", &["orders"]).await;
    let explanation = app
        .get(&format!("/v1/tasks/{id}/explain"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        explanation["steps"][0]["reasons"][1],
        json!({"kind": "served_by", "workers": ["orders-1"]})
    );
}

#[tokio::test]
async fn explain_takes_a_management_token_and_a_known_task() {
    let app = test_app().await;
    let reply = app
        .get(&format!("/v1/tasks/{MISSING}/explain"))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    app.call(
        Method::GET,
        &format!("/v1/tasks/{MISSING}/explain"),
        Some(WORKER),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    app.call(
        Method::GET,
        &format!("/v1/tasks/{MISSING}/explain"),
        None,
        None,
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
}

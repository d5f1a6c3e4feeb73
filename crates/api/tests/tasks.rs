//! Tasks: create, idempotency, context schema, size limits, get, list,
//! cancel, steps and history.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use tasker_engine::EngineConfig;

const MISSING: &str = "0190b5a0-0000-7000-8000-000000000000";

async fn with_linear() -> TestApp {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app
}

#[tokio::test]
async fn tasks_are_created_and_read_back() {
    let app = with_linear().await;
    let task = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "context": {"order": 7}, "tags": ["vip"]}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(task["namespace"], "default");
    assert_eq!(task["template_name"], "linear");
    assert_eq!(task["template_version"], "1");
    assert_eq!(task["state"], "running");
    assert_eq!(task["context"], json!({"order": 7}));
    assert_eq!(task["tags"], json!(["vip"]));
    assert_eq!(task["finished_at"], Value::Null);

    let id = task["id"].as_str().unwrap();
    let got = app
        .get(&format!("/v1/tasks/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(got, task);

    let steps = app
        .get(&format!("/v1/tasks/{id}/steps"))
        .await
        .expect(StatusCode::OK)
        .json();
    let steps = steps["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[0]["name"].as_str(), steps[0]["state"].as_str()),
        (Some("a"), Some("ready"))
    );
    assert_eq!(
        (steps[1]["name"].as_str(), steps[1]["state"].as_str()),
        (Some("b"), Some("pending"))
    );
    assert_eq!(steps[1]["depends_on"], json!(["a"]));
    assert_eq!(steps[0]["max_attempts"], 3);

    let history = app
        .get(&format!("/v1/tasks/{id}/history"))
        .await
        .expect(StatusCode::OK)
        .json();
    let transitions = history["transitions"].as_array().unwrap();
    assert!(!transitions.is_empty());
    assert!(
        transitions
            .iter()
            .all(|t| t["task_id"] == task["id"] && t["at"].is_string())
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_task() {
    let app = with_linear().await;
    let body = json!({"template": "linear", "idempotency_key": "order-42"});
    let first = app
        .post("/v1/tasks", body.clone())
        .await
        .expect(StatusCode::CREATED)
        .json();
    let second = app
        .post("/v1/tasks", body)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(first["id"], second["id"]);
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "idempotency_key": ""}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid");
}

#[tokio::test]
async fn contexts_violating_the_schema_are_422_with_every_issue() {
    let app = test_app().await;
    let yaml = format!(
        "{}context_schema:\n  type: object\n  required: [order_id]\n  properties:\n    order_id: {{ type: integer }}\n    email: {{ type: string }}\n",
        template("default", "typed", LINEAR)
    );
    app.register_yaml(&yaml).await.expect(StatusCode::CREATED);
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "typed", "context": {"email": 5}}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error_code(), "context_invalid");
    let details = reply.json()["error"]["details"].clone();
    let paths: Vec<&str> = details
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"context/email"), "{details}");
    assert_eq!(paths.len(), 2, "{details}");
    app.post(
        "/v1/tasks",
        json!({"template": "typed", "context": {"order_id": 1}}),
    )
    .await
    .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn bad_create_requests() {
    let app = with_linear().await;
    let reply = app
        .post("/v1/tasks", json!({"template": "nothing"}))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let reply = app
        .post_raw(
            "/v1/tasks",
            Some("application/json"),
            "{\"template\": \"linear\",",
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "tags": "not-a-list"}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    let reply = app
        .post_raw(
            "/v1/tasks",
            Some("application/x-www-form-urlencoded"),
            "template=linear",
        )
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");
}

#[tokio::test]
async fn oversized_bodies_and_payloads_are_413() {
    let engine = EngineConfig {
        max_payload_bytes: 16 * 1024,
        ..EngineConfig::default()
    };
    let app = test_app_with(engine, |c| c.max_body_bytes = 64 * 1024).await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await;

    // Over the body limit: refused before it is parsed.
    let huge = "x".repeat(100 * 1024);
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "context": {"blob": huge}}),
        )
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");

    // Under the body limit, over the engine's payload limit.
    let big = "x".repeat(20 * 1024);
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "context": {"blob": big}}),
        )
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context")
    );

    // Templates and optional bodies have the same limit.
    let reply = app
        .post_raw("/v1/templates", Some("application/yaml"), huge.clone())
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");
    let reply = app
        .post(
            &format!("/v1/tasks/{MISSING}/cancel"),
            json!({"reason": huge}),
        )
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");
}

#[tokio::test]
async fn unknown_and_malformed_task_ids() {
    let app = test_app().await;
    for path in [
        format!("/v1/tasks/{MISSING}"),
        format!("/v1/tasks/{MISSING}/steps"),
        format!("/v1/tasks/{MISSING}/history"),
    ] {
        let reply = app.get(&path).await.expect(StatusCode::NOT_FOUND);
        assert_eq!(reply.error_code(), "not_found", "{path}");
    }
    let reply = app
        .post(&format!("/v1/tasks/{MISSING}/cancel"), json!({}))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let reply = app
        .get("/v1/tasks/not-a-uuid")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
}

#[tokio::test]
async fn tasks_are_listed_with_filters_and_cursors() {
    let app = with_linear().await;
    app.register_yaml(&template("default", "other", LINEAR))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_task("default", "linear", json!({})).await["id"].clone());
    }
    app.create_task("default", "other", json!({})).await;
    let other = app.create_task("default", "other", json!({})).await;
    app.post(
        &format!("/v1/tasks/{}/cancel", other["id"].as_str().unwrap()),
        json!({}),
    )
    .await
    .expect(StatusCode::OK);

    let page = app
        .get("/v1/tasks?template=linear&limit=2")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["tasks"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = app
        .get(&format!(
            "/v1/tasks?template=linear&limit=2&cursor={cursor}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(rest["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let mut seen: Vec<Value> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["tasks"].as_array().unwrap())
        .map(|t| t["id"].clone())
        .collect();
    seen.sort_by_key(|v| v.to_string());
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(seen, ids);

    let cancelled = app
        .get("/v1/tasks?state=cancelled")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cancelled["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["tasks"][0]["id"], other["id"]);
    // Empty parameters mean "no filter".
    let all = app
        .get("/v1/tasks?namespace=&state=&limit=")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(all["tasks"].as_array().unwrap().len(), 5);

    let reply = app
        .get("/v1/tasks?state=sleeping")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid");
    let reply = app
        .get("/v1/tasks?limit=many")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
}

#[tokio::test]
async fn cancel_takes_an_optional_reason_and_happens_once() {
    let app = with_linear().await;
    let first = app.create_task("default", "linear", json!({})).await;
    let id = first["id"].as_str().unwrap();
    // No body at all.
    let cancelled = app
        .call(
            Method::POST,
            &format!("/v1/tasks/{id}/cancel"),
            Some(OPERATOR),
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    let reply = app
        .post(
            &format!("/v1/tasks/{id}/cancel"),
            json!({"reason": "again"}),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "task_finished");

    let second = app.create_task("default", "linear", json!({})).await;
    let id = second["id"].as_str().unwrap();
    app.post(
        &format!("/v1/tasks/{id}/cancel"),
        json!({"reason": "customer asked"}),
    )
    .await
    .expect(StatusCode::OK);
    let history = app.get(&format!("/v1/tasks/{id}/history")).await.json();
    assert!(
        history["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["reason"] == "customer asked"),
        "{history}"
    );
    let steps = app.get(&format!("/v1/tasks/{id}/steps")).await.json();
    assert!(
        steps["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "cancelled")
    );
}

//! Every request body in the OpenAPI description carries an example, and
//! each example is a request its route accepts: the API page's "Try it"
//! starts from these, so an example that fails sends a reader astray.

mod support;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use support::{ADMIN, WORKER, test_app};

/// The example of an operation's JSON request body: the media type's own,
/// else its schema's (through an optional body's `oneOf` and a `$ref`).
fn body_example(doc: &Value, operation: &Value) -> Option<Value> {
    let media = &operation["requestBody"]["content"]["application/json"];
    if let Some(example) = media.get("example") {
        return Some(example.clone());
    }
    let mut schema = &media["schema"];
    if let Some(variants) = schema["oneOf"].as_array() {
        schema = variants.iter().find(|s| s["type"] != "null")?;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next()?;
        schema = &doc["components"]["schemas"][name];
    }
    schema.get("example").cloned()
}

#[tokio::test]
async fn every_request_body_example_is_accepted_by_its_route() {
    let app = test_app().await;
    let doc = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .expect(StatusCode::OK)
        .json();

    // What a fresh `scripts/dev` server has: the example templates.
    app.post("/v1/namespaces", serde_json::json!({"name": "examples"}))
        .await
        .expect(StatusCode::CREATED);
    let linear = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../templates/linear.yaml"
    ))
    .unwrap();
    app.register_yaml(&linear).await.expect(StatusCode::CREATED);

    let mut with_body = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("requestBody").is_some() {
                with_body.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }

    // In an order where each example can work: the task created first
    // gives the ids the later paths need.
    let mut task_id = String::new();
    let mut pending_step = String::new();
    let mut ready_step = String::new();
    let mut schedule_id = String::new();
    let mut tried = BTreeSet::new();
    for (method, path, token, accepted) in [
        ("POST", "/v1/namespaces", ADMIN, StatusCode::CREATED),
        ("POST", "/v1/templates", ADMIN, StatusCode::CREATED),
        ("POST", "/v1/tasks", ADMIN, StatusCode::CREATED),
        ("POST", "/v1/steps/{id}/resolve", ADMIN, StatusCode::OK),
        ("POST", "/v1/workers/register", WORKER, StatusCode::OK),
        (
            "POST",
            "/v1/workers/{worker_id}/poll",
            WORKER,
            StatusCode::OK,
        ),
        // The lease examples carry a made-up lease: the body is accepted
        // and the lease refused, which is what a reader trying them sees.
        (
            "POST",
            "/v1/steps/{id}/heartbeat",
            WORKER,
            StatusCode::CONFLICT,
        ),
        (
            "POST",
            "/v1/steps/{id}/complete",
            WORKER,
            StatusCode::CONFLICT,
        ),
        ("POST", "/v1/steps/{id}/fail", WORKER, StatusCode::CONFLICT),
        (
            "POST",
            "/v1/steps/{id}/release",
            WORKER,
            StatusCode::CONFLICT,
        ),
        // Answered 200, each made-up lease refused on its own.
        ("POST", "/v1/steps/reports", WORKER, StatusCode::OK),
        ("POST", "/v1/tasks/{id}/cancel", ADMIN, StatusCode::OK),
        ("POST", "/v1/tasks/batch", ADMIN, StatusCode::OK),
        ("POST", "/v1/schedules", ADMIN, StatusCode::CREATED),
        ("PUT", "/v1/schedules/{id}", ADMIN, StatusCode::OK),
        ("POST", "/v1/schedules/{id}/backfill", ADMIN, StatusCode::OK),
        // Accepted, acting on whatever dead letters there are (none).
        ("POST", "/v1/dead-letters/retry", ADMIN, StatusCode::OK),
        ("POST", "/v1/dead-letters/resolve", ADMIN, StatusCode::OK),
    ] {
        let key = format!("{method} {path}");
        tried.insert(key.clone());
        let operation = &doc["paths"][path][method.to_lowercase()];
        let example = body_example(&doc, operation)
            .unwrap_or_else(|| panic!("{key}: the request body has no example"));
        let step = if path.ends_with("resolve") {
            &pending_step
        } else {
            &ready_step
        };
        let url = match path {
            "/v1/tasks/{id}/cancel" => path.replace("{id}", &task_id),
            "/v1/workers/{worker_id}/poll" => path.replace("{worker_id}", "billing-7f9c"),
            _ if path.starts_with("/v1/schedules/") => path.replace("{id}", &schedule_id),
            _ => path.replace("{id}", step),
        };
        let reply = app
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &url,
                Some(token),
                Some(example.clone()),
            )
            .await;
        assert_eq!(
            reply.status,
            accepted,
            "{key} with its example {example}: {}",
            reply.text()
        );
        if accepted == StatusCode::CONFLICT {
            assert_eq!(reply.error_code(), "lease_mismatch", "{key}");
        }
        if path == "/v1/tasks" {
            task_id = reply.json()["id"].as_str().unwrap().to_owned();
            let steps = app.get(&format!("/v1/tasks/{task_id}/steps")).await.json();
            ready_step = steps["steps"][0]["id"].as_str().unwrap().to_owned();
            pending_step = steps["steps"][1]["id"].as_str().unwrap().to_owned();
        }
        if path == "/v1/schedules" {
            schedule_id = reply.json()["id"].as_str().unwrap().to_owned();
        }
        if path == "/v1/schedules/{id}/backfill" {
            let fires = reply.json()["fires"].as_array().unwrap().len();
            assert!(fires > 0, "{key}: the example range holds fire times");
        }
        if path == "/v1/tasks/batch" {
            // 200 answers a valid request; each item must be created too.
            let results = reply.json()["results"].as_array().unwrap().clone();
            assert!(!results.is_empty(), "{key}: the example creates tasks");
            for result in results {
                assert_eq!(result["created"], true, "{key}: {result}");
            }
        }
        if path == "/v1/steps/reports" {
            let results = reply.json()["results"].as_array().unwrap().clone();
            assert!(results.len() > 1, "{key}: the example has several reports");
            for result in results {
                assert_eq!(result["status"], 409, "{key}: {result}");
                assert_eq!(result["error"]["code"], "lease_mismatch", "{key}: {result}");
            }
        }
        if path == "/v1/workers/{worker_id}/poll" {
            let claimed = reply.json()["steps"].as_array().unwrap().len();
            assert_eq!(claimed, 1, "the poll example claims the ready step");
        }
    }
    assert_eq!(tried, with_body, "every operation with a body is tried");

    // The YAML form of the template example registers too.
    let yaml = doc["paths"]["/v1/templates"]["post"]["requestBody"]["content"]["application/yaml"]
        ["example"]
        .as_str()
        .expect("a YAML example")
        .replace("name: hello", "name: hello_yaml");
    app.register_yaml(&yaml).await.expect(StatusCode::CREATED);
}

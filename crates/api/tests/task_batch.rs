//! `POST /v1/tasks/batch`: many tasks in one request, each item answered
//! on its own, through the router.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

async fn with_linear() -> TestApp {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app
}

fn results(reply: Reply) -> Vec<Value> {
    reply.expect(StatusCode::OK).json()["results"]
        .as_array()
        .expect("results")
        .clone()
}

#[tokio::test]
async fn each_item_is_answered_in_order_and_bad_ones_fail_alone() {
    let app = with_linear().await;
    let body = json!({"tasks": [
        {"template": "linear", "context": {"n": 0}, "tags": ["vip"]},
        {"template": "linera"},
        {"template": "linear", "contxt": {}},
        {"template": "linear", "context": [1]},
        {"template": "linear", "context": {"n": "nul\u{0}"}},
        {"template": "linear", "idempotency_key": "k", "context": {"n": 5}},
        {"template": "linear", "idempotency_key": "k", "context": {"n": 5}},
        {"template": "linear", "idempotency_key": "k", "context": {"n": 7}},
        42,
    ]});
    let results = results(app.post("/v1/tasks/batch", body).await);
    assert_eq!(results.len(), 9);
    let codes: Vec<String> = results
        .iter()
        .map(|r| match (&r["task"], &r["error"]) {
            (Value::Object(_), _) if r["created"] == true => "created".to_owned(),
            (Value::Object(_), _) => "existing".to_owned(),
            (_, error) => error["code"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(
        codes,
        [
            "created",
            "not_found",
            "bad_request",
            "invalid",
            "invalid",
            "created",
            "existing",
            "idempotency_conflict",
            "bad_request",
        ]
    );
    assert_eq!(results[0]["task"]["tags"], json!(["vip"]));
    assert_eq!(results[0]["task"]["context"], json!({"n": 0}));
    assert_eq!(
        results[1]["error"]["details"]["did_you_mean"],
        json!(["default/linear"])
    );
    assert_eq!(results[2]["error"]["details"]["field"], "contxt");
    assert_eq!(results[4]["error"]["details"]["field"], "context.n");
    assert_eq!(results[5]["task"]["id"], results[6]["task"]["id"]);

    // What the answers say exists, and nothing else.
    let id = results[0]["task"]["id"].as_str().unwrap();
    let got = app
        .get(&format!("/v1/tasks/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(got, results[0]["task"]);
    let listed = app.get("/v1/tasks").await.expect(StatusCode::OK).json();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 2);

    // Created tasks are counted as single creates count them.
    let text = app.call(Method::GET, "/metrics", None, None).await.text();
    let line = "tasker_tasks_created_total{namespace=\"default\",template=\"linear\"} 2";
    assert!(text.contains(line), "missing {line:?} in\n{text}");

    // The key is the same key for a single create.
    let existing = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "idempotency_key": "k", "context": {"n": 5}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(existing["id"], results[5]["task"]["id"]);
}

#[tokio::test]
async fn a_malformed_or_oversized_batch_is_refused_whole() {
    let app = with_linear().await;
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"template": "linear"})).collect();
    let reply = app
        .post("/v1/tasks/batch", json!({"tasks": too_many}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000")
    );

    app.post("/v1/tasks/batch", json!([{"template": "linear"}]))
        .await
        .expect(StatusCode::BAD_REQUEST);
    let reply = app
        .post("/v1/tasks/batch", json!({"tasks": [], "extra": 1}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["details"]["field"], "extra");
    app.post_raw("/v1/tasks/batch", Some("text/plain"), "{}")
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let listed = app.get("/v1/tasks").await.expect(StatusCode::OK).json();
    assert!(listed["tasks"].as_array().unwrap().is_empty());

    assert!(results(app.post("/v1/tasks/batch", json!({"tasks": []})).await).is_empty());
}

#[tokio::test]
async fn the_batch_needs_a_management_token() {
    let app = with_linear().await;
    let body = json!({"tasks": [{"template": "linear"}]});
    app.call(Method::POST, "/v1/tasks/batch", None, Some(body.clone()))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.call(Method::POST, "/v1/tasks/batch", Some(WORKER), Some(body))
        .await
        .expect(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn roots_of_a_batch_are_polled_by_workers() {
    let app = with_linear().await;
    let tasks: Vec<Value> = (0..25)
        .map(|i| json!({"template": "linear", "context": {"i": i}}))
        .collect();
    let results = results(app.post("/v1/tasks/batch", json!({"tasks": tasks})).await);
    assert!(results.iter().all(|r| r["created"] == true));
    app.register_worker("worker-1", &["default"]).await;
    let mut claimed = Vec::new();
    while claimed.len() < 25 {
        let got = app.poll("worker-1", &["default"], 10).await;
        assert!(!got.is_empty(), "every root is claimable");
        claimed.extend(got);
    }
    let mut ids: Vec<&str> = claimed
        .iter()
        .map(|s| s["task_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25);
}

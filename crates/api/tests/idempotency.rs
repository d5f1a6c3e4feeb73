//! The idempotency key's rule: the same key with the same template (and
//! version, when named) and the same context returns the existing task with
//! 200; the key with anything else is 409 `idempotency_conflict`, and
//! nothing is created.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{LINEAR, template, test_app};

#[tokio::test]
async fn a_key_reused_for_another_task_is_a_conflict() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app.register_yaml(&template("default", "other", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let first = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "context": {"order": 1, "lines": [1, 2]}, "idempotency_key": "order-1"}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();

    // The same request again (key order in the context does not matter,
    // nor do tags): the same task.
    let again = app
        .post(
            "/v1/tasks",
            json!({"context": {"lines": [1, 2], "order": 1}, "template": "linear", "idempotency_key": "order-1", "version": "1", "tags": ["retry"]}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again["id"], first["id"]);

    for (body, differs) in [
        (
            json!({"template": "other", "context": {"order": 1, "lines": [1, 2]}, "idempotency_key": "order-1"}),
            "default/linear@1",
        ),
        (
            json!({"template": "linear", "context": {"order": 2, "lines": [1, 2]}, "idempotency_key": "order-1"}),
            "different context",
        ),
    ] {
        let reply = app
            .post("/v1/tasks", body.clone())
            .await
            .expect(StatusCode::CONFLICT);
        assert_eq!(reply.error_code(), "idempotency_conflict", "{body}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("order-1"), "{message}");
        assert!(message.contains(first["id"].as_str().unwrap()), "{message}");
        assert!(message.contains(differs), "{message}");
    }

    // A version named and different from the task's is a conflict too.
    app.register_yaml(
        &template("default", "linear", LINEAR).replace("version: \"1\"", "version: \"2\""),
    )
    .await
    .expect(StatusCode::CREATED);
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "version": "2", "context": {"order": 1, "lines": [1, 2]}, "idempotency_key": "order-1"}),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "idempotency_conflict");
    // Without a version the re-send still finds its task, though a newer
    // version is now the default one.
    app.post(
        "/v1/tasks",
        json!({"template": "linear", "context": {"order": 1, "lines": [1, 2]}, "idempotency_key": "order-1"}),
    )
    .await
    .expect(StatusCode::OK);

    let list = app.get("/v1/tasks").await.json();
    assert_eq!(
        list["tasks"].as_array().unwrap().len(),
        1,
        "nothing created"
    );
}

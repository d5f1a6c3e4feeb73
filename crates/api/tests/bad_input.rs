//! Bad input through the router: every refusal is a 4xx naming what is
//! wrong, never a 500, and changes nothing.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{LINEAR, WORKER, template, test_app};

/// The `details.field` of a 400 `invalid`.
fn invalid_field(reply: support::Reply) -> String {
    let reply = reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid", "{}", reply.text());
    reply.json()["error"]["details"]["field"]
        .as_str()
        .expect("a field")
        .to_owned()
}

#[tokio::test]
async fn nul_characters_are_400_naming_the_field_everywhere() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "linear", json!({})).await;
    let task_id = task["id"].as_str().unwrap();

    // Task create: context (with its path), key, tags, names.
    let create = |patch: Value| {
        let mut body = json!({"template": "linear", "context": {"customer": {"name": "ok"}}});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (patch, field) in [
        (
            json!({"context": {"customer": {"name": "Ann\u{0}"}}}),
            "context.customer.name",
        ),
        (
            json!({"context": {"items": [1, "\u{0}"]}}),
            "context.items[1]",
        ),
        (json!({"idempotency_key": "key\u{0}"}), "idempotency_key"),
        (json!({"tags": ["fine", "bad\u{0}"]}), "tags[1]"),
        (json!({"template": "lin\u{0}ear"}), "template"),
        (json!({"namespace": "def\u{0}ault"}), "namespace"),
        (json!({"version": "1\u{0}"}), "version"),
    ] {
        let reply = app.post("/v1/tasks", create(patch.clone())).await;
        assert_eq!(invalid_field(reply), field, "{patch}");
    }

    // Templates (JSON and YAML), namespaces, cancel reasons.
    let reply = app
        .post(
            "/v1/templates",
            json!({"name": "t", "version": "1", "steps": [{"name": "a", "handler": "h\u{0}"}]}),
        )
        .await;
    assert_eq!(invalid_field(reply), "steps[0].handler");
    let yaml = template(
        "default",
        "t",
        "  - { name: a, handler: h, config: { k: \"v\\0\" } }\n",
    );
    let reply = app.register_yaml(&yaml).await;
    assert_eq!(invalid_field(reply), "steps[0].config.k");
    let reply = app.post("/v1/namespaces", json!({"name": "n\u{0}"})).await;
    assert_eq!(invalid_field(reply), "name");
    let reply = app
        .post(
            &format!("/v1/tasks/{task_id}/cancel"),
            json!({"reason": "because\u{0}"}),
        )
        .await;
    assert_eq!(invalid_field(reply), "reason");

    // Worker plane: register, poll, complete, fail.
    let register = |body: Value| {
        app.call(
            Method::POST,
            "/v1/workers/register",
            Some(WORKER),
            Some(body),
        )
    };
    let reply = register(json!({"worker_id": "w\u{0}", "namespaces": ["default"]})).await;
    assert_eq!(invalid_field(reply), "worker_id");
    let reply =
        register(json!({"worker_id": "w", "namespaces": ["default"], "handlers": ["h\u{0}"]}))
            .await;
    assert_eq!(invalid_field(reply), "handlers[0]");
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/w%00x/poll",
            Some(WORKER),
            Some(json!({"namespaces": ["default"], "wait_ms": 0})),
        )
        .await;
    assert_eq!(invalid_field(reply), "worker_id");
    let claimed = app.poll_one("default").await;
    for (action, body, field) in [
        (
            "complete",
            json!({"result": {"note": "x\u{0}"}}),
            "result.note",
        ),
        (
            "complete",
            json!({"result": 1, "next": {"worker_id": "w\u{0}"}}),
            "next.worker_id",
        ),
        (
            "fail",
            json!({"error_type": "e", "message": "m\u{0}"}),
            "message",
        ),
        (
            "fail",
            json!({"error_type": "e", "message": "m", "details": {"trace": ["\u{0}"]}}),
            "details.trace[0]",
        ),
        (
            "fail",
            json!({"error_type": "e\u{0}", "message": "m"}),
            "error_type",
        ),
    ] {
        let reply = app.report(&claimed, action, body.clone()).await;
        assert_eq!(invalid_field(reply), field, "{action} {body}");
    }
    // The lease is untouched: the real result is still accepted.
    app.report(&claimed, "complete", json!({"result": 1}))
        .await
        .expect(StatusCode::OK);

    // Resolve results, path and query parameters.
    let steps = app.get(&format!("/v1/tasks/{task_id}/steps")).await.json();
    let b = steps["steps"][1]["id"].as_str().unwrap().to_owned();
    let reply = app
        .post(
            &format!("/v1/steps/{b}/resolve"),
            json!({"result": {"k\u{0}": 1}}),
        )
        .await;
    assert_eq!(invalid_field(reply), "result.k\\u0000");
    let reply = app.get("/v1/tasks?template=a%00b").await;
    assert_eq!(invalid_field(reply), "template");
    let reply = app.get("/v1/templates/default/lin%00ear").await;
    assert_eq!(invalid_field(reply), "name");

    // Nothing was created by any of it.
    let list = app.get("/v1/tasks").await.json();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_fields_are_refused_naming_the_field() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let reply = app
        .post(
            "/v1/tasks",
            json!({"template": "linear", "idempotencyKey": "order-1"}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    assert!(reply.text().contains("idempotencyKey"), "{}", reply.text());
    assert_eq!(reply.json()["error"]["details"]["field"], "idempotencyKey");
    assert!(
        app.get("/v1/tasks").await.json()["tasks"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let task = app.create_task("default", "linear", json!({})).await;
    let task_id = task["id"].as_str().unwrap();
    let step_id = app.get(&format!("/v1/tasks/{task_id}/steps")).await.json()["steps"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.register_worker("w", &["default"]).await;
    let claimed = app.poll_one("default").await;
    let management = [
        (
            "/v1/namespaces".to_owned(),
            json!({"name": "orders", "nmae": 1}),
        ),
        (
            format!("/v1/tasks/{task_id}/cancel"),
            json!({"reason": "x", "force": true}),
        ),
        (format!("/v1/steps/{step_id}/resolve"), json!({"value": 1})),
    ];
    for (path, body) in management {
        let reply = app
            .post(&path, body.clone())
            .await
            .expect(StatusCode::BAD_REQUEST);
        let unknown = body
            .as_object()
            .unwrap()
            .keys()
            .find(|k| !["name", "reason"].contains(&k.as_str()))
            .unwrap()
            .clone();
        assert!(reply.text().contains(&unknown), "{path}: {}", reply.text());
    }
    let worker_plane = [
        (
            "/v1/workers/register".to_owned(),
            json!({"worker_id": "w", "namespaces": ["default"], "workerId": "x"}),
            "workerId",
        ),
        (
            "/v1/workers/w/poll".to_owned(),
            json!({"namespaces": ["default"], "waitMs": 0}),
            "waitMs",
        ),
    ];
    for (path, body, unknown) in worker_plane {
        let reply = app
            .call(Method::POST, &path, Some(WORKER), Some(body))
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert!(reply.text().contains(unknown), "{path}: {}", reply.text());
    }
    for (action, body, unknown) in [
        ("heartbeat", json!({"extra": 1}), "extra"),
        ("release", json!({"extra": 1}), "extra"),
        ("complete", json!({"output": 1}), "output"),
        ("complete", json!({"next": {"worker": "w"}}), "next.worker"),
        (
            "fail",
            json!({"error_type": "e", "message": "m", "retriable": false}),
            "retriable",
        ),
    ] {
        let reply = app
            .report(&claimed, action, body)
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.json()["error"]["details"]["field"],
            unknown,
            "{action}: {}",
            reply.text()
        );
    }
    // None of it changed the step.
    app.report(&claimed, "complete", json!({"result": 1}))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_context_that_is_not_an_object_is_refused() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    for context in [json!("str"), json!([1, 2]), json!(7), json!(true)] {
        let reply = app
            .post(
                "/v1/tasks",
                json!({"template": "linear", "context": context}),
            )
            .await;
        assert_eq!(invalid_field(reply), "context", "{context}");
    }
    // Absent and null both mean the empty object.
    for body in [
        json!({"template": "linear"}),
        json!({"template": "linear", "context": null}),
    ] {
        let task = app
            .post("/v1/tasks", body)
            .await
            .expect(StatusCode::CREATED)
            .json();
        assert_eq!(task["context"], json!({}));
    }
}

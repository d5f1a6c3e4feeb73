//! Namespaces, templates and the cluster view.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;

#[tokio::test]
async fn namespaces_are_created_once_and_listed() {
    let app = test_app().await;
    let created = app
        .post("/v1/namespaces", json!({"name": "orders"}))
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(created["name"], "orders");
    assert_eq!(created["queue"], "tasker_orders");
    assert!(created["created_at"].is_string());
    let again = app
        .post("/v1/namespaces", json!({"name": "orders"}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again, created);

    let list = app
        .get("/v1/namespaces")
        .await
        .expect(StatusCode::OK)
        .json();
    let names: Vec<&str> = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"default") && names.contains(&"orders"),
        "{names:?}"
    );
}

#[tokio::test]
async fn bad_namespace_requests_are_400() {
    let app = test_app().await;
    let reply = app
        .post("/v1/namespaces", json!({"name": "Not Valid"}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid");
    // Malformed JSON.
    let reply = app
        .post_raw("/v1/namespaces", Some("application/json"), "{\"name\": ")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    // Valid JSON of the wrong shape.
    let reply = app
        .post("/v1/namespaces", json!({"nom": "orders"}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
    // Not JSON by its content type.
    let reply = app
        .post_raw(
            "/v1/namespaces",
            Some("text/plain"),
            "{\"name\": \"orders\"}",
        )
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");
    let reply = app
        .post_raw("/v1/namespaces", None, "{\"name\": \"orders\"}")
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");
}

#[tokio::test]
async fn templates_register_from_yaml_and_json() {
    let app = test_app().await;
    let yaml = template("default", "linear", LINEAR);
    for content_type in ["application/yaml", "text/yaml", "application/x-yaml"] {
        let reply = app
            .post_raw("/v1/templates", Some(content_type), yaml.clone())
            .await;
        let expected = if content_type == "application/yaml" {
            StatusCode::CREATED
        } else {
            StatusCode::OK // identical content again: a no-op
        };
        let record = reply.expect(expected).json();
        assert_eq!(record["name"], "linear");
        assert_eq!(record["version"], "1");
        assert_eq!(record["definition"]["steps"][1]["depends_on"], json!(["a"]));
    }

    let json_form = json!({
        "namespace": "default", "name": "single", "version": "2",
        "steps": [{"name": "only", "handler": "h.only", "config": {"k": 1}}]
    });
    let record = app
        .post("/v1/templates", json_form.clone())
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(record["definition"]["steps"][0]["config"], json!({"k": 1}));
    // Without a content type the body is read as JSON.
    app.post_raw("/v1/templates", None, json_form.to_string())
        .await
        .expect(StatusCode::OK);

    let got = app
        .get("/v1/templates/default/single")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(got["id"], record["id"]);
    let got = app
        .get("/v1/templates/default/single?version=2")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(got["content_hash"], record["content_hash"]);

    let list = app
        .get("/v1/templates?namespace=default")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(list["templates"].as_array().unwrap().len(), 2);
    let list = app
        .get("/v1/templates?namespace=other")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(list["templates"], json!([]));
}

#[tokio::test]
async fn template_conflicts_are_409() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let changed = template("default", "linear", "  - { name: a, handler: h.other }\n");
    let reply = app
        .register_yaml(&changed)
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "template_conflict");
}

#[tokio::test]
async fn invalid_templates_are_422_with_every_issue() {
    let app = test_app().await;
    let steps = "
  - { name: a, handler: h.a, depends_on: [b] }
  - { name: b, handler: h.b, depends_on: [a] }
  - { name: c, handler: h.c, depends_on: [nowhere] }
";
    let reply = app
        .register_yaml(&template("default", "broken", steps))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error_code(), "template_invalid");
    let details = reply.json()["error"]["details"].clone();
    let issues = details.as_array().expect("details is a list");
    assert!(issues.len() >= 2, "{details}");
    for issue in issues {
        assert!(
            issue["path"].is_string() && issue["message"].is_string(),
            "{issue}"
        );
    }
    assert!(
        issues
            .iter()
            .any(|i| i["message"].as_str().unwrap().contains("nowhere")),
        "{details}"
    );

    // A context schema that is not a JSON Schema is a template problem too.
    let bad_schema = format!(
        "{}context_schema: {{ type: 17 }}\n",
        template("default", "schema", LINEAR)
    );
    let reply = app
        .register_yaml(&bad_schema)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error_code(), "template_invalid");
    assert_eq!(
        reply.json()["error"]["details"][0]["path"],
        "context_schema.type"
    );
}

#[tokio::test]
async fn unparseable_templates_are_400() {
    let app = test_app().await;
    let reply = app
        .register_yaml("steps: [unclosed")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "template_parse");
    let reply = app
        .post_raw("/v1/templates", Some("application/json"), "{not json")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
}

#[tokio::test]
async fn unknown_templates_are_404() {
    let app = test_app().await;
    let reply = app
        .get("/v1/templates/default/nothing")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    app.register_yaml(&template("default", "linear", LINEAR))
        .await;
    app.get("/v1/templates/default/linear?version=9")
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cluster_shows_this_node_and_live_workers() {
    let app = test_app().await;
    app.register_worker("worker-7", &["default"]).await;
    let cluster = app
        .call(Method::GET, "/v1/cluster", Some(OPERATOR), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cluster["node_id"], "node-a");
    assert_eq!(cluster["version"], env!("CARGO_PKG_VERSION"));
    assert!(cluster["started_at"].is_string());
    assert!(cluster["uptime_seconds"].is_u64());
    let workers = cluster["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["worker_id"], "worker-7");
    assert_eq!(workers[0]["namespaces"], json!(["default"]));
    assert_eq!(workers[0]["concurrency"], 2);
}

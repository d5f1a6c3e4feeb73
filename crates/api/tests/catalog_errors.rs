//! Catalog errors that say what to do: a missing namespace names the command
//! that creates it, an unknown template names the near ones, and an invalid
//! context schema lists every problem with its path.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;

#[tokio::test]
async fn registering_into_a_missing_namespace_says_how_to_create_it() {
    let app = test_app().await;
    let reply = app
        .register_yaml(&template("billing", "charge", LINEAR))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let error = &reply.json()["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("namespace \"billing\" not found"),
        "{message}"
    );
    assert!(
        message.contains("tasker namespace create billing"),
        "{message}"
    );
    assert!(
        error["details"]["hint"]
            .as_str()
            .unwrap()
            .contains("tasker namespace create billing"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_template_suggests_near_names_and_other_namespaces() {
    let app = test_app().await;
    app.post("/v1/namespaces", json!({"name": "examples"}))
        .await
        .expect(StatusCode::CREATED);
    for (namespace, name) in [
        ("default", "linear"),
        ("examples", "linear"),
        ("examples", "diamond"),
    ] {
        app.register_yaml(&template(namespace, name, LINEAR))
            .await
            .expect(StatusCode::CREATED);
    }

    // A typo: the near name here and the same name elsewhere.
    let reply = app
        .get("/v1/templates/default/linera")
        .await
        .expect(StatusCode::NOT_FOUND);
    let error = &reply.json()["error"];
    assert_eq!(
        error["message"],
        "template default/linera not found; did you mean default/linear or examples/linear?"
    );
    assert_eq!(
        error["details"]["did_you_mean"],
        json!(["default/linear", "examples/linear"])
    );

    // The right name in the wrong namespace, through task create.
    let reply = app
        .post("/v1/tasks", json!({"template": "diamond", "context": {}}))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json()["error"]["message"],
        "template default/diamond not found; did you mean examples/diamond?"
    );

    // A version that does not exist: the ones that do.
    let reply = app
        .get("/v1/templates/default/linear?version=9")
        .await
        .expect(StatusCode::NOT_FOUND);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("template default/linear@9 not found; registered versions: 1"),
        "{message}"
    );

    // Nothing near: the plain answer.
    let reply = app
        .get("/v1/templates/default/payments")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json()["error"]["message"],
        "template default/payments not found"
    );
}

#[tokio::test]
async fn an_invalid_context_schema_reports_every_problem_with_its_path() {
    let app = test_app().await;
    let yaml = format!(
        "{}context_schema:\n  type: object\n  required: n\n  properties:\n    n: {{ type: integr }}\n    s: {{ minLength: -1 }}\n",
        template("default", "schema", LINEAR)
    );
    let reply = app
        .register_yaml(&yaml)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error_code(), "template_invalid");
    let details = reply.json()["error"]["details"].clone();
    let paths: Vec<&str> = details
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    for expected in [
        "context_schema.required",
        "context_schema.properties.n.type",
        "context_schema.properties.s.minLength",
    ] {
        assert!(paths.contains(&expected), "{expected} missing: {details}");
    }
}

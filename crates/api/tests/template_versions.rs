//! Which version `namespace/name` without a version means: the highest in
//! version order, not the one registered last.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;

async fn register(app: &TestApp, name: &str, version: &str) {
    app.post(
        "/v1/templates",
        json!({"namespace": "default", "name": name, "version": version,
               "steps": [{"name": "only", "handler": "h.only"}]}),
    )
    .await
    .expect(StatusCode::CREATED);
}

async fn newest(app: &TestApp, name: &str) -> (String, String) {
    let got = app
        .get(&format!("/v1/templates/default/{name}"))
        .await
        .expect(StatusCode::OK)
        .json();
    let task = app.create_task("default", name, json!({})).await;
    (
        got["version"].as_str().unwrap().to_owned(),
        task["template_version"].as_str().unwrap().to_owned(),
    )
}

fn versions_listed(list: &Value, name: &str) -> Vec<String> {
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == name)
        .map(|t| t["version"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_patch_to_an_old_line_registered_last_is_not_the_newest() {
    let app = test_app().await;
    register(&app, "one", "2.0.0").await;
    register(&app, "one", "1.0.1").await;
    assert_eq!(newest(&app, "one").await, ("2.0.0".into(), "2.0.0".into()));

    // A pre-release ranks below its release, whatever the order of arrival.
    register(&app, "one", "3.0.0").await;
    register(&app, "one", "3.0.0-rc.1").await;
    assert_eq!(newest(&app, "one").await.1, "3.0.0");

    // A version can still be asked for by name.
    let task = app
        .post(
            "/v1/tasks",
            json!({"template": "one", "version": "1.0.1", "context": {}}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(task["template_version"], "1.0.1");

    let list = app.get("/v1/templates").await.expect(StatusCode::OK).json();
    assert_eq!(
        versions_listed(&list, "one"),
        ["1.0.1", "2.0.0", "3.0.0-rc.1", "3.0.0"]
    );
}

#[tokio::test]
async fn integer_versions_rank_by_value_and_names_below_numbers() {
    let app = test_app().await;
    register(&app, "ints", "10").await;
    register(&app, "ints", "9").await;
    register(&app, "ints", "2").await;
    assert_eq!(newest(&app, "ints").await.1, "10");

    // Versions that are not numbers rank below numbers; among themselves
    // the later registration is newer.
    register(&app, "named", "blue").await;
    register(&app, "named", "1").await;
    register(&app, "named", "green").await;
    assert_eq!(newest(&app, "named").await.1, "1");
    register(&app, "words", "blue").await;
    register(&app, "words", "amber").await;
    assert_eq!(newest(&app, "words").await.1, "amber");

    let list = app.get("/v1/templates").await.expect(StatusCode::OK).json();
    assert_eq!(versions_listed(&list, "ints"), ["2", "9", "10"]);
    assert_eq!(versions_listed(&list, "named"), ["blue", "green", "1"]);
}

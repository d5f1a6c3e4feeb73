//! `GET /v1/tasks?id_prefix=`: finding tasks by the first digits of their id.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;

fn ids(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tasks_are_found_by_a_prefix_of_their_id() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let mut created = Vec::new();
    for _ in 0..3 {
        let task = app.create_task("default", "linear", json!({})).await;
        created.push(task["id"].as_str().unwrap().to_owned());
    }
    created.reverse(); // the list is newest first

    // Ids made together share their leading (time) digits.
    let common: String = created[0]
        .chars()
        .zip(created[1].chars())
        .zip(created[2].chars())
        .take_while(|((a, b), c)| a == b && b == c)
        .map(|((a, _), _)| a)
        .collect();
    assert!(!common.is_empty(), "{created:?}");
    let page = app
        .get(&format!("/v1/tasks?id_prefix={common}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(&page), created);

    // A longer prefix (with its dash, in capitals) names one task.
    let one = &created[1];
    let page = app
        .get(&format!("/v1/tasks?id_prefix={}", one[..30].to_uppercase()))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(&page), vec![one.clone()]);
    let page = app
        .get(&format!("/v1/tasks?id_prefix={one}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(&page), vec![one.clone()], "a whole id is a prefix too");

    // Another first digit matches nothing; it combines with other filters.
    let other = if one.starts_with('f') { "e" } else { "f" };
    let page = app
        .get(&format!("/v1/tasks?id_prefix={other}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(ids(&page).is_empty(), "{page}");
    let page = app
        .get(&format!("/v1/tasks?id_prefix={common}&state=cancelled"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(ids(&page).is_empty(), "{page}");
    let page = app
        .get("/v1/tasks?id_prefix=")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(&page).len(), 3, "empty means unset");

    for bad in ["xyz", "0123456789abcdef0123456789abcdef0"] {
        let reply = app
            .get(&format!("/v1/tasks?id_prefix={bad}"))
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(reply.error_code(), "invalid");
        assert!(reply.text().contains("id_prefix"), "{}", reply.text());
    }
}

#[tokio::test]
async fn the_id_prefix_parameter_is_documented() {
    let app = test_app().await;
    let doc = app
        .call(
            axum::http::Method::GET,
            "/api-docs/openapi.json",
            None,
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let params = doc["paths"]["/v1/tasks"]["get"]["parameters"]
        .as_array()
        .expect("task_list parameters");
    let prefix = params
        .iter()
        .find(|p| p["name"] == "id_prefix")
        .expect("id_prefix documented");
    assert_eq!(prefix["in"], "query");
    assert!(
        prefix["description"]
            .as_str()
            .is_some_and(|d| d.contains("hex digits")),
        "{prefix}"
    );
}

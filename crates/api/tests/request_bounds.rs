//! Bounds on what one request may cost, through the router: text longer
//! than the protocol allows, and the other limits of a request, each
//! answered with a 4xx naming what is wrong, and nothing changed.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{LINEAR, WORKER, template, test_app};
use tasker_model::limits::{MAX_CANCEL_REASON_LEN, MAX_ERROR_MESSAGE_LEN, MAX_ERROR_TYPE_LEN};

/// The `details.field` of a 400 `invalid`, with its message.
fn invalid(reply: support::Reply) -> (String, String) {
    let reply = reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid", "{}", reply.text());
    let body = reply.json();
    (
        body["error"]["details"]["field"]
            .as_str()
            .expect("a field")
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn text_longer_than_the_protocol_allows_is_refused_naming_the_field() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "linear", json!({})).await;
    let task_id = task["id"].as_str().unwrap();

    // A cancel reason is copied into every cancelled step's transition.
    let reply = app
        .post(
            &format!("/v1/tasks/{task_id}/cancel"),
            json!({"reason": "r".repeat(MAX_CANCEL_REASON_LEN + 1)}),
        )
        .await;
    let (field, message) = invalid(reply);
    assert_eq!(field, "reason");
    assert!(
        message.contains(&MAX_CANCEL_REASON_LEN.to_string()),
        "{message}"
    );

    app.register_worker("w", &["default"]).await;
    let claimed = app.poll_one("default").await;
    for (body, field) in [
        (
            json!({"error_type": "e", "message": "m".repeat(MAX_ERROR_MESSAGE_LEN + 1)}),
            "message",
        ),
        (
            json!({"error_type": "e".repeat(MAX_ERROR_TYPE_LEN + 1), "message": "m"}),
            "error_type",
        ),
    ] {
        let reply = app.report(&claimed, "fail", body).await;
        assert_eq!(invalid(reply).0, field);
    }
    // The same through the batch of reports.
    let lease = &claimed["lease"];
    let reply = app
        .call(
            Method::POST,
            "/v1/steps/reports",
            Some(WORKER),
            Some(json!({"reports": [{
                "type": "fail", "step_id": lease["step_id"], "attempt": lease["attempt"],
                "token": lease["token"],
                "error_type": "e", "message": "m".repeat(MAX_ERROR_MESSAGE_LEN + 1)
            }]})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let result = &reply["results"][0];
    assert_eq!(result["status"], 400, "{result}");
    assert_eq!(result["error"]["details"]["field"], "message", "{result}");

    // Nothing changed: the step still runs, the task was not cancelled, and
    // text at the limit is accepted.
    let steps = app.get(&format!("/v1/tasks/{task_id}/steps")).await.json();
    assert_eq!(steps["steps"][0]["state"], "running");
    app.report(
        &claimed,
        "fail",
        json!({"error_type": "e".repeat(MAX_ERROR_TYPE_LEN), "message": "m".repeat(MAX_ERROR_MESSAGE_LEN), "retryable": false}),
    )
    .await
    .expect(StatusCode::OK);
    let reason = "r".repeat(MAX_CANCEL_REASON_LEN);
    let cancelled: Value = app
        .post(
            &format!("/v1/tasks/{task_id}/cancel"),
            json!({"reason": reason}),
        )
        .await
        .json();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
}

//! Dead letters and deadlines over HTTP: a failed step is listed with its
//! last error, retried in bulk by a filter and its task resumes; bad
//! selections and filters are refused naming the field; a task's deadline
//! shows on the task.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{template, test_app};

#[tokio::test]
async fn a_dead_letter_is_listed_retried_by_filter_and_its_task_resumes() {
    let app = test_app().await;
    let steps = "
  - { name: charge, handler: h.charge, retry: { max_attempts: 1 } }
  - { name: ship, handler: h.ship, depends_on: [charge] }
";
    app.register_yaml(&template("default", "order", steps))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "order", json!({})).await;
    app.register_worker("worker-1", &["default"]).await;
    let claimed = app.poll_one("default").await;
    app.report(
        &claimed,
        "fail",
        json!({"error_type": "card_declined", "message": "declined", "retryable": true}),
    )
    .await
    .expect(StatusCode::OK);
    let task_id = task["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/tasks/{task_id}")).await.json()["state"],
        "failed"
    );

    let page = app
        .get("/v1/dead-letters?namespace=default&error_type=card_declined&limit=10")
        .await
        .expect(StatusCode::OK)
        .json();
    let dead = page["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{page}");
    assert_eq!(dead[0]["step_id"], claimed["lease"]["step_id"]);
    assert_eq!(dead[0]["handler"], "h.charge");
    assert_eq!(dead[0]["error"]["message"], "declined");
    assert!(page["next_cursor"].is_null());
    let none = app
        .get("/v1/dead-letters?handler=h.ship")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(none["dead_letters"].as_array().unwrap().is_empty());

    let outcome = app
        .post(
            "/v1/dead-letters/retry",
            json!({"filter": {"namespace": "default", "error_type": "card_declined"}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(outcome["matched"], 1);
    assert_eq!(outcome["applied"], 1);
    assert_eq!(outcome["more"], false);
    assert_eq!(
        app.get(&format!("/v1/tasks/{task_id}")).await.json()["state"],
        "running"
    );
    // A second retry of the same step is refused for it alone.
    let again = app
        .post(
            "/v1/dead-letters/retry",
            json!({"ids": [claimed["lease"]["step_id"]]}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again["applied"], 0);
    assert_eq!(again["refused"][0]["code"], "wrong_state");

    for _ in 0..2 {
        let step = app.poll_one("default").await;
        app.report(&step, "complete", json!({"result": {}}))
            .await
            .expect(StatusCode::OK);
    }
    assert_eq!(
        app.get(&format!("/v1/tasks/{task_id}")).await.json()["state"],
        "complete"
    );
}

#[tokio::test]
async fn bad_selections_and_filters_are_refused_naming_the_field() {
    let app = test_app().await;
    let neither = app
        .post("/v1/dead-letters/retry", json!({}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(neither.error_code(), "invalid");
    assert!(neither.text().contains("ids"), "{}", neither.text());
    let too_many = app
        .post(
            "/v1/dead-letters/resolve",
            json!({"filter": {}, "limit": 5000}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(too_many.text().contains("limit"), "{}", too_many.text());
    let unknown = app
        .post("/v1/dead-letters/retry", json!({"filter": {"queue": "x"}}))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(unknown.text().contains("queue"), "{}", unknown.text());
    let bad_time = app
        .get("/v1/dead-letters?failed_since=yesterday")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(bad_time.json()["error"]["details"]["field"], "failed_since");
}

#[tokio::test]
async fn a_task_carries_its_deadline_and_a_bad_one_is_refused() {
    let app = test_app().await;
    let yaml = "namespace: default\nname: timed\nversion: \"1\"\ndeadline: 2h\nsteps:\n  - { name: a, handler: h.a }\n";
    app.register_yaml(yaml).await.expect(StatusCode::CREATED);
    let task = app.create_task("default", "timed", json!({})).await;
    let created: chrono::DateTime<chrono::Utc> =
        task["created_at"].as_str().unwrap().parse().unwrap();
    let deadline: chrono::DateTime<chrono::Utc> =
        task["deadline_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(deadline - created, chrono::TimeDelta::hours(2));
    let own = app
        .post("/v1/tasks", json!({"template": "timed", "deadline": "15m"}))
        .await
        .expect(StatusCode::CREATED)
        .json();
    let created: chrono::DateTime<chrono::Utc> =
        own["created_at"].as_str().unwrap().parse().unwrap();
    let deadline: chrono::DateTime<chrono::Utc> =
        own["deadline_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(deadline - created, chrono::TimeDelta::minutes(15));
    let refused = app
        .post(
            "/v1/tasks",
            json!({"template": "timed", "deadline": "9999h"}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"]["details"]["field"], "deadline");
    let bad_template = app
        .register_yaml("namespace: default\nname: t2\nversion: \"1\"\ndeadline: 0s\nsteps:\n  - { name: a, handler: h.a }\n")
        .await;
    assert_eq!(bad_template.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_template.text().contains("deadline"),
        "{}",
        bad_template.text()
    );
}

//! `/v1/schedules` through the router: create, read, replace, pause,
//! resume, trigger, backfill, fires and delete; bad input answered 422
//! naming the field; roles.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN, OPERATOR, WORKER, template, test_app};

fn nightly() -> Value {
    json!({
        "name": "nightly", "template": "tick", "cron": "0 2 * * *",
        "time_zone": "Europe/Berlin", "context": {"n": 1}
    })
}

#[tokio::test]
async fn a_schedule_is_created_read_changed_fired_and_deleted() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "tick",
        "  - { name: a, handler: h.a }\n",
    ))
    .await
    .expect(StatusCode::CREATED);

    let created = app
        .call(
            Method::POST,
            "/v1/schedules",
            Some(OPERATOR),
            Some(nightly()),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["overlap"], "skip", "the default policy");
    assert_eq!(created["catch_up"], "run_once");
    assert_eq!(created["next_fire_at"], created["upcoming"][0]);
    let upcoming = created["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 5);
    // 02:00 in Berlin is 00:00 or 01:00 UTC.
    for time in upcoming {
        let time = time.as_str().unwrap();
        assert!(
            time.contains("T00:00:00") || time.contains("T01:00:00"),
            "{time}"
        );
    }

    let listed = app.get("/v1/schedules").await.expect(StatusCode::OK).json();
    assert_eq!(listed["schedules"][0]["id"], created["id"]);
    app.get(&format!("/v1/schedules/{id}"))
        .await
        .expect(StatusCode::OK);

    let mut every_hour = nightly();
    every_hour["cron"] = json!("0 * * * *");
    every_hour["overlap"] = json!("allow");
    let replaced = app
        .call(
            Method::PUT,
            &format!("/v1/schedules/{id}"),
            Some(ADMIN),
            Some(every_hour),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(replaced["cron"], "0 * * * *");
    assert_eq!(replaced["overlap"], "allow");

    let paused = app
        .post(&format!("/v1/schedules/{id}/pause"), json!(null))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["next_fire_at"], Value::Null);
    assert_eq!(paused["upcoming"], json!([]));
    let resumed = app
        .post(&format!("/v1/schedules/{id}/resume"), json!(null))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(resumed["next_fire_at"].is_string());

    let fired = app
        .post(&format!("/v1/schedules/{id}/trigger"), json!(null))
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(fired["fire"]["kind"], "manual");
    assert_eq!(fired["fire"]["outcome"], "started");
    assert_eq!(fired["task"]["context"], json!({"n": 1}));
    assert_eq!(fired["fire"]["task_id"], fired["task"]["id"]);

    let backfilled = app
        .post(
            &format!("/v1/schedules/{id}/backfill"),
            json!({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(backfilled["fires"].as_array().unwrap().len(), 3);
    assert_eq!(backfilled["already_fired"], json!([]));

    let fires = app
        .get(&format!("/v1/schedules/{id}/fires?limit=2"))
        .await
        .expect(StatusCode::OK)
        .json();
    let fires = fires["fires"].as_array().unwrap();
    assert_eq!(fires.len(), 2);
    assert_eq!(fires[0]["kind"], "manual", "newest first");

    app.call(
        Method::DELETE,
        &format!("/v1/schedules/{id}"),
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let gone = app
        .get(&format!("/v1/schedules/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(gone.error_code(), "not_found");
}

#[tokio::test]
async fn bad_input_is_422_naming_the_field() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "tick",
        "  - { name: a, handler: h.a }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    for (change, field) in [
        (json!({"cron": "0 2 * *"}), "cron"),
        (json!({"cron": "every day"}), "cron"),
        (json!({"time_zone": "Europe/Nowhere"}), "time_zone"),
        (
            json!({"cron": null, "interval": "10 minutes", "time_zone": null}),
            "interval",
        ),
        (json!({"cron": null, "interval": "10m"}), "time_zone"),
        (
            json!({"cron": null, "interval": "0s", "time_zone": null}),
            "interval",
        ),
        (json!({"jitter": "-1s"}), "jitter"),
    ] {
        let mut body = nightly();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let reply = app
            .post("/v1/schedules", body)
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.error_code(), "schedule_invalid", "{change}");
        assert_eq!(reply.json()["error"]["details"]["field"], field, "{change}");
    }
    let reply = app
        .post(
            "/v1/schedules",
            json!({"name": "x", "template": "tick", "cron": "* * * * *", "colour": 1}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["details"]["field"], "colour");

    let id = app
        .post("/v1/schedules", nightly())
        .await
        .expect(StatusCode::CREATED)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post("/v1/schedules", nightly())
        .await
        .expect(StatusCode::CONFLICT);
    for range in [
        json!({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}),
        json!({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}),
        json!({"start": "2026-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"}),
    ] {
        let reply = app
            .post(&format!("/v1/schedules/{id}/backfill"), range.clone())
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.json()["error"]["details"]["field"], "end", "{range}");
    }
}

#[tokio::test]
async fn workers_cannot_read_or_change_schedules() {
    let app = test_app().await;
    for (method, path) in [
        (Method::GET, "/v1/schedules"),
        (Method::POST, "/v1/schedules"),
    ] {
        let reply = app.call(method, path, Some(WORKER), Some(nightly())).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
    }
}

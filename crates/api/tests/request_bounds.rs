//! Bounds on what one request may cost, through the router: text longer
//! than the protocol allows, and the other limits of a request, each
//! answered with a 4xx naming what is wrong, and nothing changed.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

use support::{LINEAR, WORKER, template, test_app, test_app_with};
use tasker_engine::EngineConfig;
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

/// The value of `tasker_queue_depth{namespace="default"}` in a scrape.
async fn default_depth(app: &support::TestApp) -> Option<f64> {
    let text = app.get("/metrics").await.expect(StatusCode::OK).text();
    text.lines()
        .find(|l| l.starts_with("tasker_queue_depth{namespace=\"default\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_serve_database_gauges_from_a_background_reading_not_per_scrape() {
    // Refreshed once an hour: scrapes keep serving the first reading.
    let app = test_app_with(EngineConfig::default(), |c| {
        c.metrics_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(default_depth(&app).await, Some(0.0));
    app.create_task("default", "linear", json!({})).await;
    for _ in 0..3 {
        assert_eq!(
            default_depth(&app).await,
            Some(0.0),
            "served from the cache"
        );
    }

    // Refreshed every 100 ms: the new depth shows up without a scrape
    // asking the database.
    let app = test_app_with(EngineConfig::default(), |c| {
        c.metrics_refresh_interval = Duration::from_millis(100);
    })
    .await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(default_depth(&app).await, Some(0.0));
    app.create_task("default", "linear", json!({})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while default_depth(&app).await != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reading was never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_poll_for_an_unknown_namespace_is_refused_before_anything_waits_for_it() {
    let app = test_app().await;
    app.register_worker("w", &["default"]).await;
    let started = tokio::time::Instant::now();
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/w/poll",
            Some(WORKER),
            Some(json!({"namespaces": ["ghosts"], "wait_ms": 20000})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "namespace_not_found");
    assert!(reply.text().contains("ghosts"), "{}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not after the wait"
    );
    // No claim loop was started for it: nothing waits, nothing is counted.
    assert!(
        app.state
            .engine
            .waiters()
            .stats()
            .iter()
            .all(|(ns, _, _)| ns != "ghosts")
    );
    let metrics = app.get("/metrics").await.text();
    assert!(!metrics.contains("namespace=\"ghosts\""), "{metrics}");
}

#[tokio::test]
async fn history_comes_in_pages_and_a_bad_page_request_names_its_parameter() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "linear", json!({})).await;
    let task_id = task["id"].as_str().unwrap();
    app.register_worker("w", &["default"]).await;
    for _ in 0..2 {
        let claimed = app.poll_one("default").await;
        app.report(&claimed, "complete", json!({"result": 1}))
            .await
            .expect(StatusCode::OK);
    }
    let path = format!("/v1/tasks/{task_id}/history");
    let whole = app.get(&path).await.expect(StatusCode::OK).json();
    assert_eq!(whole["next_cursor"], Value::Null);
    let whole = whole["transitions"].as_array().unwrap().clone();
    assert!(whole.len() > 6, "{whole:?}");

    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&format!("{path}?limit=3&cursor={cursor}"))
            .await
            .expect(StatusCode::OK)
            .json();
        let transitions = page["transitions"].as_array().unwrap();
        assert!(transitions.len() <= 3);
        paged.extend(transitions.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        paged, whole,
        "the pages together are the whole history, in order"
    );

    for (query, field) in [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=yesterday", "cursor"),
    ] {
        let (got, message) = invalid(app.get(&format!("{path}?{query}")).await);
        assert_eq!(got, field, "{query}: {message}");
    }
}

#[tokio::test]
async fn lists_leave_out_contexts_and_results_unless_asked() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let task = app
        .create_task("default", "linear", json!({"big": "x".repeat(1000)}))
        .await;
    let task_id = task["id"].as_str().unwrap();
    app.register_worker("w", &["default"]).await;
    let claimed = app.poll_one("default").await;
    app.report(&claimed, "complete", json!({"result": {"value": 4}}))
        .await
        .expect(StatusCode::OK);

    let list = app.get("/v1/tasks").await.expect(StatusCode::OK).json();
    let listed = &list["tasks"][0];
    assert_eq!(listed["id"], task["id"]);
    assert!(listed.get("context").is_none(), "{listed}");
    let list = app.get("/v1/tasks?include=context").await.json();
    assert_eq!(list["tasks"][0]["context"], task["context"]);

    let steps_path = format!("/v1/tasks/{task_id}/steps");
    let steps = app.get(&steps_path).await.expect(StatusCode::OK).json();
    assert_eq!(steps["steps"][0]["state"], "complete");
    assert!(steps["steps"][0].get("result").is_none(), "{steps}");
    let steps = app
        .get(&format!("{steps_path}?include=result"))
        .await
        .json();
    assert_eq!(steps["steps"][0]["result"], json!({"value": 4}));
    // One task and one step always carry theirs.
    assert_eq!(
        app.get(&format!("/v1/tasks/{task_id}")).await.json()["context"],
        task["context"]
    );
    let step_id = steps["steps"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/steps/{step_id}")).await.json()["result"],
        json!({"value": 4})
    );

    for path in [
        "/v1/tasks?include=result".to_owned(),
        format!("{steps_path}?include=context,result"),
    ] {
        let (field, message) = invalid(app.get(&path).await);
        assert_eq!(field, "include", "{path}");
        assert!(message.contains("cannot be included"), "{message}");
    }
}

const JOIN: &str = "
  - { name: small, handler: h.small }
  - { name: big, handler: h.big }
  - { name: join, handler: h.join, depends_on: [small, big] }
";

/// An app whose claims carry at most 1 KiB of parent results, with the
/// `join` template and one task whose `big` parent returned 4 KB.
async fn joined_task() -> (support::TestApp, String) {
    let app = test_app_with(
        EngineConfig {
            max_parent_results_bytes: 1024,
            ..EngineConfig::default()
        },
        |_| {},
    )
    .await;
    app.register_yaml(&template("default", "join", JOIN))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "join", json!({})).await;
    app.register_worker("w", &["default"]).await;
    for _ in 0..2 {
        let claimed = app.poll_one("default").await;
        let result = match claimed["step_name"].as_str().unwrap() {
            "small" => json!({"n": 1}),
            _ => json!({"blob": "b".repeat(4000)}),
        };
        app.report(&claimed, "complete", json!({ "result": result }))
            .await
            .expect(StatusCode::OK);
    }
    (app, task["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn parent_results_over_the_claim_budget_are_sent_by_reference() {
    let (app, task_id) = joined_task().await;
    let claimed = app.poll_one("default").await;
    assert_eq!(claimed["step_name"], "join");
    assert_eq!(claimed["parent_results"], json!({"small": {"n": 1}}));
    let steps = app.get(&format!("/v1/tasks/{task_id}/steps")).await.json();
    let big_id = steps["steps"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(claimed["parent_result_refs"], json!({ "big": big_id }));
    // The worker fetches it with its own token.
    let fetched = app
        .call(
            Method::GET,
            &format!("/v1/steps/{big_id}/result"),
            Some(WORKER),
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(fetched["result"]["blob"].as_str().unwrap().len(), 4000);
    let missing = app
        .call(
            Method::GET,
            "/v1/steps/0190b5a0-0000-7000-8000-000000000000/result",
            Some(WORKER),
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_fetches_parent_results_sent_by_reference() {
    let (app, task_id) = joined_task().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client =
        tasker_client::Client::new(&format!("http://{address}"), Some(WORKER.into())).unwrap();
    let worker = tasker_worker::Worker::builder(client)
        .worker_id("joiner")
        .namespace("default")
        .poll_wait(Duration::from_millis(500))
        .handler(
            "h.join",
            tasker_worker::handler_fn(|ctx: tasker_worker::StepContext| async move {
                let blob = ctx.parent("big").expect("the big parent")["blob"]
                    .as_str()
                    .unwrap()
                    .len();
                Ok(json!({ "small": ctx.parent("small").cloned(), "blob": blob }))
            }),
        )
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let task = loop {
        let task = app.get(&format!("/v1/tasks/{task_id}")).await.json();
        if task["state"] != "running" {
            break task;
        }
        assert!(tokio::time::Instant::now() < deadline, "the join never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert_eq!(task["state"], "complete");
    let steps = app
        .get(&format!("/v1/tasks/{task_id}/steps?include=result"))
        .await
        .json();
    assert_eq!(
        steps["steps"][2]["result"],
        json!({"small": {"n": 1}, "blob": 4000})
    );
}

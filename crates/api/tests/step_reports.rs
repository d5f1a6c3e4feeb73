//! `POST /v1/steps/reports`: several lease reports in one request, each
//! answered on its own as its single endpoint answers it, with the rows
//! each one writes; the limit on reports per request; `next` per complete;
//! the worker-plane token.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

const FLAKY: &str = "
  - { name: a, handler: h.a, retry: { max_attempts: 3, backoff: { initial: 1h, max: 1h, jitter: 0 } } }
";

async fn with_templates() -> TestApp {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app.register_yaml(&template("default", "flaky", FLAKY))
        .await
        .expect(StatusCode::CREATED);
    app.register_worker("worker-1", &["default"]).await;
    app
}

async fn steps_of(app: &TestApp, task: &Value) -> Vec<Value> {
    let id = task["id"].as_str().unwrap();
    app.get(&format!("/v1/tasks/{id}/steps?include=result"))
        .await
        .json()["steps"]
        .as_array()
        .unwrap()
        .clone()
}

async fn step_of(app: &TestApp, task: &Value, name: &str) -> Value {
    steps_of(app, task)
        .await
        .into_iter()
        .find(|s| s["name"] == name)
        .expect("step")
}

/// Creates one task of `template` and claims its first step.
async fn claimed(app: &TestApp, template: &str, context: Value) -> (Value, Value) {
    let task = app.create_task("default", template, context).await;
    let mut steps = app.poll("worker-1", &["default"], 1).await;
    assert_eq!(steps.len(), 1, "the task's first step is claimed");
    let step = steps.pop().unwrap();
    assert_eq!(step["task_id"], task["id"]);
    (task, step)
}

/// A report item of `kind` for `claimed`'s lease, with `extra` fields.
fn item(kind: &str, claimed: &Value, extra: Value) -> Value {
    let lease = &claimed["lease"];
    let mut item = json!({
        "type": kind,
        "step_id": lease["step_id"],
        "attempt": lease["attempt"],
        "token": lease["token"],
    });
    for (key, value) in extra.as_object().unwrap() {
        item[key] = value.clone();
    }
    item
}

async fn send_reports(app: &TestApp, reports: Vec<Value>) -> Vec<Value> {
    let reply = app
        .call(
            Method::POST,
            "/v1/steps/reports",
            Some(WORKER),
            Some(json!({ "reports": reports })),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    reply["results"].as_array().expect("results").clone()
}

fn metric(text: &str, series: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("no {series} in the metrics"))
        .to_owned()
}

#[tokio::test]
async fn a_mixed_batch_is_answered_report_by_report_with_the_right_rows() {
    let app = with_templates().await;
    let (t1, a1) = claimed(&app, "linear", json!({"n": 1})).await;
    let (t2, a2) = claimed(&app, "linear", json!({"n": 2})).await;
    let (t3, f3) = claimed(&app, "flaky", json!({"n": 3})).await;
    let (t4, a4) = claimed(&app, "linear", json!({"n": 4})).await;
    let (t5, a5) = claimed(&app, "linear", json!({"n": 5})).await;
    // The first complete of a1 went through; its reply was "lost".
    app.report(&a1, "complete", json!({"result": {"first": true}}))
        .await
        .expect(StatusCode::OK);
    let mut stale = a2.clone();
    stale["lease"]["token"] = json!(uuid::Uuid::new_v4());
    let mut unknown = a2.clone();
    unknown["lease"]["step_id"] = json!(uuid::Uuid::new_v4());
    let batches_before = app.state.engine.report_batches();

    let results = send_reports(
        &app,
        vec![
            item("complete", &a1, json!({"result": {"first": false}})),
            item("complete", &stale, json!({"result": "stale"})),
            item("complete", &a2, json!({"result": {"value": 2}})),
            item(
                "fail",
                &f3,
                json!({"error_type": "io", "message": "disk full", "details": {"disk": "/"}}),
            ),
            item("release", &a4, json!({})),
            item("complete", &unknown, json!({})),
            item("heartbeat", &a5, json!({})),
            json!({"type": "finish", "step_id": a5["lease"]["step_id"]}),
            item("fail", &a5, json!({"error_type": "", "message": "no type"})),
        ],
    )
    .await;

    assert_eq!(results.len(), 9, "{results:?}");
    assert_eq!(
        results[0],
        json!({"status": 200, "recorded": "duplicate", "next": []})
    );
    assert_eq!(results[1]["status"], 409, "{}", results[1]);
    assert_eq!(results[1]["error"]["code"], "lease_mismatch");
    assert_eq!(
        results[2],
        json!({"status": 200, "recorded": "applied", "next": []})
    );
    assert_eq!(results[3], json!({"status": 200, "recorded": "applied"}));
    assert_eq!(results[4], json!({"status": 204}));
    assert_eq!(results[5]["status"], 409, "{}", results[5]);
    assert_eq!(results[5]["error"]["code"], "lease_mismatch");
    assert_eq!(results[6]["status"], 200, "{}", results[6]);
    assert_eq!(results[6]["cancelled"], false);
    assert!(results[6]["lease_expires_at"].is_string(), "{}", results[6]);
    assert_eq!(results[7]["status"], 400, "{}", results[7]);
    assert_eq!(results[7]["error"]["code"], "bad_request");
    assert!(
        results[7]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finish"),
        "{}",
        results[7]
    );
    assert_eq!(results[8]["status"], 400, "{}", results[8]);
    assert_eq!(results[8]["error"]["code"], "invalid");
    assert_eq!(results[8]["error"]["details"]["field"], "error_type");
    // Everything the checks let through was written in one transaction.
    assert_eq!(app.state.engine.report_batches() - batches_before, 1);

    // The rows: the first result stands, the re-send changed nothing.
    let a = step_of(&app, &t1, "a").await;
    assert_eq!(
        (a["state"].clone(), a["result"].clone()),
        ("complete".into(), json!({"first": true}))
    );
    // The stale report did not stop the current one.
    let a = step_of(&app, &t2, "a").await;
    assert_eq!(
        (a["state"].clone(), a["result"].clone()),
        ("complete".into(), json!({"value": 2}))
    );
    assert_eq!(step_of(&app, &t2, "b").await["state"], "ready");
    let f = step_of(&app, &t3, "a").await;
    assert_eq!(f["state"], "retrying");
    assert_eq!(f["error"]["error_type"], "io");
    assert_eq!(f["error"]["details"], json!({"disk": "/"}));
    assert_eq!(step_of(&app, &t4, "a").await["state"], "ready");
    // The refused fail left a5 running, its lease extended by the heartbeat.
    let a = step_of(&app, &t5, "a").await;
    assert_eq!(a["state"], "running");
    assert_eq!(a["error"], Value::Null);

    // The released step comes back with its attempt not counted; the `b`
    // steps of t1 and t2 are the others ready, with their parents' results.
    let again = app.poll("worker-1", &["default"], 5).await;
    let mut seen: Vec<(Value, Value, Value, Value)> = again
        .iter()
        .map(|s| {
            (
                s["task_id"].clone(),
                s["step_name"].clone(),
                s["lease"]["attempt"].clone(),
                s["parent_results"].clone(),
            )
        })
        .collect();
    seen.sort_by_key(|s| s.0.to_string());
    let mut expected = vec![
        (
            t1["id"].clone(),
            json!("b"),
            json!(1),
            json!({"a": {"first": true}}),
        ),
        (
            t2["id"].clone(),
            json!("b"),
            json!(1),
            json!({"a": {"value": 2}}),
        ),
        (t4["id"].clone(), json!("a"), json!(1), json!({})),
    ];
    expected.sort_by_key(|s| s.0.to_string());
    assert_eq!(seen, expected);

    // Metrics count per report, as the single endpoints count.
    let metrics = app.get("/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            "tasker_steps_completed_total{recorded=\"applied\"}"
        ),
        "tasker_steps_completed_total{recorded=\"applied\"} 2"
    );
    assert_eq!(
        metric(
            &metrics,
            "tasker_steps_completed_total{recorded=\"duplicate\"}"
        ),
        "tasker_steps_completed_total{recorded=\"duplicate\"} 1"
    );
    assert_eq!(
        metric(
            &metrics,
            "tasker_lease_refusals_total{code=\"lease_mismatch\"}"
        ),
        "tasker_lease_refusals_total{code=\"lease_mismatch\"} 2"
    );
    assert_eq!(
        metric(&metrics, "tasker_steps_released_total"),
        "tasker_steps_released_total 1"
    );
    assert!(
        metrics.contains("tasker_steps_failed_total{retryable=\"true\",recorded=\"applied\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_batch_answers_each_report_as_its_single_endpoint_would() {
    let app = with_templates().await;
    let (_, a) = claimed(&app, "linear", json!({})).await;
    let too_big = json!({"result": "x".repeat(1024 * 1024 + 10)});
    let single = app.report(&a, "complete", too_big.clone()).await;
    let results = send_reports(&app, vec![item("complete", &a, too_big)]).await;
    assert_eq!(results[0]["status"], single.status.as_u16());
    assert_eq!(results[0]["error"], single.json()["error"]);

    let nul = json!({"result": {"name": "a\u{0}b"}});
    let single = app.report(&a, "complete", nul.clone()).await;
    let results = send_reports(&app, vec![item("complete", &a, nul)]).await;
    assert_eq!(results[0]["status"], single.status.as_u16());
    assert_eq!(results[0]["error"]["code"], single.error_code());
    assert_eq!(results[0]["error"]["details"]["field"], "result.name");
}

#[tokio::test]
async fn more_reports_than_the_limit_are_refused_naming_it() {
    let app = with_templates().await;
    let (task, a) = claimed(&app, "linear", json!({})).await;
    let limit = tasker_model::MAX_REPORTS_PER_REQUEST;
    let over: Vec<Value> = (0..=limit)
        .map(|_| item("complete", &a, json!({})))
        .collect();
    let reply = app
        .call(
            Method::POST,
            "/v1/steps/reports",
            Some(WORKER),
            Some(json!({ "reports": over })),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid");
    let error = &reply.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&limit.to_string()),
        "{error}"
    );
    assert_eq!(error["details"]["limit"], limit);
    assert_eq!(step_of(&app, &task, "a").await["state"], "running");

    // At the limit: every report answered (the first applied, the rest
    // duplicates of it).
    let at: Vec<Value> = (0..limit)
        .map(|_| item("complete", &a, json!({})))
        .collect();
    let results = send_reports(&app, at).await;
    assert_eq!(results.len(), limit);
    assert_eq!(results[0]["recorded"], "applied");
    assert!(results[1..].iter().all(|r| r["recorded"] == "duplicate"));
}

#[tokio::test]
async fn next_leases_steps_for_each_complete_in_the_same_commit() {
    let app = with_templates().await;
    let (t1, a1) = claimed(&app, "linear", json!({"n": 1})).await;
    let (t2, a2) = claimed(&app, "linear", json!({"n": 2})).await;
    let (t3, a3) = claimed(&app, "linear", json!({"n": 3})).await;
    let next = json!({"next": {"worker_id": "worker-1", "max": 1}});
    let results = send_reports(
        &app,
        vec![
            item("complete", &a1, next.clone()),
            item(
                "complete",
                &a3,
                json!({"next": {"worker_id": "worker-1", "namespaces": ["nowhere"]}}),
            ),
            item("complete", &a2, next),
            item("complete", &a1, json!({"next": {"worker_id": ""}})),
        ],
    )
    .await;
    // Each complete gets the child it released: its own task's `b`.
    for (result, task) in [(&results[0], &t1), (&results[2], &t2)] {
        assert_eq!(result["recorded"], "applied", "{result}");
        let leased = result["next"].as_array().unwrap();
        assert_eq!(leased.len(), 1, "{result}");
        assert_eq!(leased[0]["task_id"], task["id"]);
        assert_eq!(leased[0]["step_name"], "b");
        assert_eq!(step_of(&app, task, "b").await["state"], "running");
    }
    // An unknown namespace refuses its report alone, before it is recorded.
    assert_eq!(results[1]["status"], 404, "{}", results[1]);
    assert_eq!(results[1]["error"]["code"], "namespace_not_found");
    assert_eq!(step_of(&app, &t3, "a").await["state"], "running");
    assert_eq!(results[3]["status"], 400, "{}", results[3]);
    assert_eq!(results[3]["error"]["details"]["field"], "next.worker_id");

    let metrics = app.get("/metrics").await.text();
    // 5 polled one by one, 2 leased with completes.
    assert!(
        metrics.contains("tasker_steps_claimed_total{namespace=\"default\"} 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn reports_take_a_worker_token_and_a_list() {
    let app = with_templates().await;
    let body = json!({"reports": []});
    let reply = app
        .call(Method::POST, "/v1/steps/reports", None, Some(body.clone()))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");
    let reply = app
        .call(
            Method::POST,
            "/v1/steps/reports",
            Some(OPERATOR),
            Some(body.clone()),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "forbidden");
    let reply = app
        .call(Method::POST, "/v1/steps/reports", Some(ADMIN), Some(body))
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json(), json!({"results": []}));
    let reply = app
        .call(
            Method::POST,
            "/v1/steps/reports",
            Some(WORKER),
            Some(json!({"reports": {"type": "complete"}})),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");
}

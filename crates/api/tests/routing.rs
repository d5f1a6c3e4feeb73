//! Routing steps to workers by handler: a worker that declared its handlers
//! is leased only steps naming one of them, by poll and by complete-with-
//! `next`; one that declared none takes any step of its namespaces. A step
//! no polling worker runs waits without spending an attempt.

mod support;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;

/// Two independent steps, one per handler.
const PAIR: &str = "
  - { name: a, handler: h.a, retry: { max_attempts: 1 } }
  - { name: b, handler: h.b, retry: { max_attempts: 1 } }
";

/// `a` (h.a), then `b` (h.b) once `a` is done.
const CHAIN: &str = "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b, depends_on: [a] }
";

fn handlers_of(steps: &[Value]) -> BTreeSet<String> {
    steps
        .iter()
        .map(|s| s["handler"].as_str().unwrap().to_owned())
        .collect()
}

async fn step_of(app: &TestApp, task: &Value, name: &str) -> Value {
    let id = task["id"].as_str().unwrap();
    let steps = app
        .get(&format!("/v1/tasks/{id}/steps?include=result"))
        .await
        .json();
    steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .expect("step")
}

#[tokio::test]
async fn workers_with_disjoint_handlers_each_get_only_their_own_steps() {
    let app = test_app().await;
    app.register_yaml(&template("default", "pair", PAIR))
        .await
        .expect(StatusCode::CREATED);
    for n in 0..4 {
        app.create_task("default", "pair", json!({ "n": n })).await;
    }
    app.register_worker_handling("runs-a", &["default"], &["h.a"])
        .await;
    app.register_worker_handling("runs-b", &["default"], &["h.b"])
        .await;

    // `b` messages come between the `a` ones: the claim reads past them.
    let for_a = app.poll("runs-a", &["default"], 10).await;
    assert_eq!(for_a.len(), 4, "one `a` per task: {for_a:?}");
    assert_eq!(handlers_of(&for_a), BTreeSet::from(["h.a".to_owned()]));
    assert!(app.poll("runs-a", &["default"], 10).await.is_empty());

    let for_b = app.poll("runs-b", &["default"], 10).await;
    assert_eq!(for_b.len(), 4, "one `b` per task: {for_b:?}");
    assert_eq!(handlers_of(&for_b), BTreeSet::from(["h.b".to_owned()]));
}

#[tokio::test]
async fn a_worker_that_declared_no_handlers_gets_every_step() {
    let app = test_app().await;
    app.register_yaml(&template("default", "pair", PAIR))
        .await
        .expect(StatusCode::CREATED);
    app.create_task("default", "pair", json!({})).await;
    app.register_worker("anything", &["default"]).await;

    let steps = app.poll("anything", &["default"], 10).await;
    assert_eq!(
        handlers_of(&steps),
        BTreeSet::from(["h.a".to_owned(), "h.b".to_owned()])
    );
}

#[tokio::test]
async fn a_step_for_another_handler_waits_without_spending_its_only_attempt() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "only_b",
        "  - { name: b, handler: h.b, retry: { max_attempts: 1 } }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    let task = app.create_task("default", "only_b", json!({})).await;
    app.register_worker_handling("runs-a", &["default"], &["h.a"])
        .await;

    // Polled twice: a misrouted lease would have been released or failed
    // by the worker, spending the only attempt.
    for _ in 0..2 {
        assert!(app.poll("runs-a", &["default"], 5).await.is_empty());
    }
    let step = step_of(&app, &task, "b").await;
    assert_eq!(step["state"], "ready", "{step}");
    assert_eq!(step["attempt"], 0, "{step}");

    app.register_worker_handling("runs-b", &["default"], &["h.b"])
        .await;
    let steps = app.poll("runs-b", &["default"], 5).await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["lease"]["attempt"], 1);
}

#[tokio::test]
async fn complete_with_next_leases_only_the_workers_handlers() {
    let app = test_app().await;
    app.register_yaml(&template("default", "chain", CHAIN))
        .await
        .expect(StatusCode::CREATED);
    let first = app.create_task("default", "chain", json!({ "n": 1 })).await;
    app.register_worker_handling("runs-a", &["default"], &["h.a"])
        .await;
    let a = app.poll("runs-a", &["default"], 1).await.pop().unwrap();

    // Another task's `a` is waiting in the queue: that one the worker runs.
    let second = app.create_task("default", "chain", json!({ "n": 2 })).await;
    let done = app
        .report(
            &a,
            "complete",
            json!({"result": 1, "next": {"worker_id": "runs-a", "max": 5}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let next = done["next"].as_array().unwrap();
    assert_eq!(next.len(), 1, "only the other task's `a`: {done}");
    assert_eq!(next[0]["handler"], "h.a");
    assert_eq!(next[0]["task_id"], second["id"]);
    // The child `b` this completion released was left for an h.b worker.
    let b = step_of(&app, &first, "b").await;
    assert_eq!(b["state"], "ready", "{b}");
    assert_eq!(b["attempt"], 0, "{b}");

    app.register_worker_handling("runs-b", &["default"], &["h.b"])
        .await;
    let steps = app.poll("runs-b", &["default"], 5).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["task_id"], first["id"]);
    assert_eq!(steps[0]["step_name"], "b");
}

#[tokio::test]
async fn complete_with_next_by_a_worker_without_handlers_takes_any_child() {
    let app = test_app().await;
    app.register_yaml(&template("default", "chain", CHAIN))
        .await
        .expect(StatusCode::CREATED);
    app.create_task("default", "chain", json!({})).await;
    app.register_worker("anything", &["default"]).await;
    let a = app.poll("anything", &["default"], 1).await.pop().unwrap();
    let done = app
        .report(
            &a,
            "complete",
            json!({"result": 1, "next": {"worker_id": "anything"}}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let next = done["next"].as_array().unwrap();
    assert_eq!(next.len(), 1, "{done}");
    assert_eq!(next[0]["handler"], "h.b");
}

/// The handlers named by the queue messages of `default`, by step.
async fn message_handlers(app: &TestApp) -> Vec<Option<String>> {
    sqlx::query_scalar("SELECT message->>'handler' FROM pgmq.q_tasker_default ORDER BY msg_id")
        .fetch_all(app.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_queued_before_they_named_their_handler_get_it_from_the_migration() {
    let app = test_app().await;
    app.register_yaml(&template("default", "pair", PAIR))
        .await
        .expect(StatusCode::CREATED);
    app.create_task("default", "pair", json!({})).await;
    assert_eq!(
        message_handlers(&app).await,
        [Some("h.a".to_owned()), Some("h.b".to_owned())]
    );

    // As queued by an older server: no handler in the body.
    sqlx::query("UPDATE pgmq.q_tasker_default SET message = message - 'handler'")
        .execute(app.store.pool())
        .await
        .unwrap();
    app.create_task("default", "pair", json!({})).await;
    sqlx::query("UPDATE pgmq.q_tasker_default SET message = message - 'handler'")
        .execute(app.store.pool())
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../../postgres/migrations/20261130000001_message_handlers.sql"
    ))
    .execute(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        message_handlers(&app).await,
        [
            Some("h.a".to_owned()),
            Some("h.b".to_owned()),
            Some("h.a".to_owned()),
            Some("h.b".to_owned())
        ]
    );
    app.register_worker_handling("runs-b", &["default"], &["h.b"])
        .await;
    let steps = app.poll("runs-b", &["default"], 10).await;
    assert_eq!(handlers_of(&steps), BTreeSet::from(["h.b".to_owned()]));
    assert_eq!(steps.len(), 2);
}

/// A message that does not name its handler (sent before messages did) is
/// read by any claim, and leased by the handler of its step all the same.
#[tokio::test]
async fn a_message_without_a_handler_is_routed_by_its_step() {
    let app = test_app().await;
    app.register_yaml(&template("default", "pair", PAIR))
        .await
        .expect(StatusCode::CREATED);
    app.create_task("default", "pair", json!({})).await;
    sqlx::query("UPDATE pgmq.q_tasker_default SET message = message - 'handler'")
        .execute(app.store.pool())
        .await
        .unwrap();
    app.register_worker_handling("runs-b", &["default"], &["h.b"])
        .await;
    let steps = app.poll("runs-b", &["default"], 10).await;
    assert_eq!(handlers_of(&steps), BTreeSet::from(["h.b".to_owned()]));
    assert_eq!(steps.len(), 1);
    // The other step stays queued, visible, for a worker that runs it.
    app.register_worker_handling("runs-a", &["default"], &["h.a"])
        .await;
    let steps = app.poll("runs-a", &["default"], 10).await;
    assert_eq!(handlers_of(&steps), BTreeSet::from(["h.a".to_owned()]));
}

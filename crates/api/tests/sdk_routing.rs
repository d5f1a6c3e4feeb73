//! Routing by handler end to end: two SDK workers, each running one
//! handler of the same namespace, over HTTP against the real router. Each
//! step runs once, on the worker that has its handler, even with no retry
//! to spare.

mod support;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;
use tasker_worker::{Worker, handler_fn};

/// `a` (h.a) then `b` (h.b), and `c` (h.a) beside them; no retries.
const STEPS: &str = "
  - { name: a, handler: h.a, retry: { max_attempts: 1 } }
  - { name: b, handler: h.b, depends_on: [a], retry: { max_attempts: 1 } }
  - { name: c, handler: h.a, retry: { max_attempts: 1 } }
";

fn worker(client: &tasker_client::Client, id: &str, handler: &str) -> Worker {
    let name = handler.to_owned();
    Worker::builder(client.clone())
        .worker_id(id)
        .namespace("default")
        .concurrency(2)
        .poll_wait(Duration::from_millis(500))
        .handler(
            handler,
            handler_fn(move |_| {
                let name = name.clone();
                async move { Ok(json!({ "ran": name })) }
            }),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_workers_with_disjoint_handlers_run_only_their_own_steps() {
    let app = test_app().await;
    app.register_yaml(&template("default", "routed", STEPS))
        .await
        .expect(StatusCode::CREATED);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client =
        tasker_client::Client::new(&format!("http://{address}"), Some(WORKER.into())).unwrap();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    for (id, handler) in [("runs-a", "h.a"), ("runs-b", "h.b")] {
        let mut stopped = stopped.clone();
        let worker = worker(&client, id, handler);
        running.push(tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }

    let mut tasks = Vec::new();
    for n in 0..6 {
        tasks.push(
            app.create_task("default", "routed", json!({ "n": n }))
                .await,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for task in &tasks {
        let id = task["id"].as_str().unwrap();
        let state = loop {
            let state = app.get(&format!("/v1/tasks/{id}")).await.json()["state"].clone();
            if state != "running" || Instant::now() > deadline {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(state, "complete", "task {id}");
        let steps: Value = app
            .get(&format!("/v1/tasks/{id}/steps?include=result"))
            .await
            .json();
        for step in steps["steps"].as_array().unwrap() {
            let expected = if step["name"] == "b" {
                "runs-b"
            } else {
                "runs-a"
            };
            assert_eq!(step["worker_id"], expected, "{step}");
            assert_eq!(step["attempt"], 1, "{step}");
        }
    }

    stop.send(true).unwrap();
    for worker in running {
        worker.await.unwrap().unwrap();
    }
}

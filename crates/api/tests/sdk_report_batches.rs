//! The SDK's group commit of reports, end to end over HTTP against the real
//! router: results that finish together reach the server in fewer requests
//! than there are results, and every step still completes exactly once.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;
use tasker_worker::{Worker, handler_fn};

const TASKS: usize = 120;
const SLOTS: usize = 16;

/// The sum of the series of `name` whose labels hold `label`.
fn metric_sum(metrics: &str, name: &str, label: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_that_finish_together_are_sent_in_fewer_requests_each_recorded_once() {
    let app = test_app().await;
    app.register_yaml(&template(
        "default",
        "one",
        "  - { name: a, handler: h.a, retry: { max_attempts: 1 } }\n",
    ))
    .await
    .expect(StatusCode::CREATED);
    let mut ids = Vec::new();
    for n in 0..TASKS {
        let task = app.create_task("default", "one", json!({ "n": n })).await;
        ids.push((task["id"].as_str().unwrap().to_owned(), n));
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client =
        tasker_client::Client::new(&format!("http://{address}"), Some(WORKER.into())).unwrap();

    // The first wave of handlers waits until every slot runs one, so their
    // results finish together; later ones return at once.
    let started = Arc::new(AtomicUsize::new(0));
    let (go, gate) = tokio::sync::watch::channel(false);
    let counted = started.clone();
    let worker = Worker::builder(client)
        .worker_id("batcher")
        .namespace("default")
        .concurrency(SLOTS)
        .poll_wait(Duration::from_millis(500))
        .handler(
            "h.a",
            handler_fn(move |ctx: tasker_worker::StepContext| {
                let counted = counted.clone();
                let mut gate = gate.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    Ok(json!({ "n": ctx.context()["n"] }))
                }
            }),
        )
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));

    let deadline = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::SeqCst) < SLOTS {
        assert!(
            Instant::now() < deadline,
            "waited for {SLOTS} handlers to start; {} did",
            started.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    go.send_replace(true);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = app
            .get("/v1/tasks?state=complete&limit=500&template=one")
            .await
            .json();
        let done = page["tasks"].as_array().unwrap().len();
        if done == TASKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {TASKS} tasks to complete; {done} did"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();

    for (id, n) in &ids {
        let steps: Value = app
            .get(&format!("/v1/tasks/{id}/steps?include=result"))
            .await
            .json();
        let step = &steps["steps"][0];
        assert_eq!(step["state"], "complete", "{step}");
        assert_eq!(step["attempt"], 1, "{step}");
        assert_eq!(step["result"], json!({ "n": n }), "{step}");
        let history: Value = app.get(&format!("/v1/tasks/{id}/history")).await.json();
        let completions = history["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["to_state"] == "complete" && t["step_id"].is_string())
            .count();
        assert_eq!(completions, 1, "one completion of the step: {history}");
    }

    let metrics = app.get("/metrics").await.text();
    let applied = metric_sum(
        &metrics,
        "tasker_steps_completed_total",
        "recorded=\"applied\"",
    );
    let duplicates = metric_sum(
        &metrics,
        "tasker_steps_completed_total",
        "recorded=\"duplicate\"",
    );
    assert_eq!((applied, duplicates), (TASKS as u64, 0), "{metrics}");
    let requests = |route: &str| {
        metric_sum(
            &metrics,
            "tasker_http_request_duration_seconds_count",
            &format!("route=\"{route}\""),
        )
    };
    let batched = requests("/v1/steps/reports");
    let single = requests("/v1/steps/{id}/complete");
    assert!(
        batched >= 1,
        "results that finished together went in one request: {metrics}"
    );
    assert!(
        batched + single < TASKS as u64,
        "{TASKS} results in {batched} batch and {single} single requests"
    );
}

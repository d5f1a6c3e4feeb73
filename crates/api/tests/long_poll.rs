//! The long-poll is woken by database notifications, still finds work when
//! notifications are lost, and ends at once when the server shuts down.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;
use tasker_engine::EngineConfig;
use tasker_postgres::Notifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn app_with_recheck(recheck: Duration) -> TestApp {
    let engine = EngineConfig {
        poll_recheck_interval: recheck,
        ..EngineConfig::default()
    };
    let app = test_app_with(engine, |_| {}).await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app
}

fn poll_request(wait_ms: u64) -> axum::http::Request<axum::body::Body> {
    request(
        Method::POST,
        "/v1/workers/worker-1/poll",
        Some(WORKER),
        Some(json!({"namespaces": ["default"], "max": 1, "wait_ms": wait_ms})),
    )
}

/// Polls (waiting up to 10 s) and creates a task 200 ms later; returns how
/// long after the creation the poll answered, and what it claimed.
async fn poll_then_create(app: &TestApp) -> (Duration, serde_json::Value) {
    let poll = tokio::spawn(send(app.router(), poll_request(10_000)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !poll.is_finished(),
        "the poll returned before there was work"
    );
    app.create_task("default", "linear", json!({})).await;
    let created = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .expect("the poll answers within its wait")
        .expect("poll task");
    (created.elapsed(), reply.expect(StatusCode::OK).json())
}

#[tokio::test]
async fn a_notification_wakes_the_waiting_poll() {
    // A re-check interval far beyond the test: only the notification can
    // deliver the step in time.
    let app = app_with_recheck(Duration::from_secs(30)).await;
    let listening = Arc::new(AtomicBool::new(false));
    let waiters = app.state.engine.waiters().clone();
    let flag = listening.clone();
    let _notifier = Notifier::start(
        app.db.url.clone(),
        Arc::new(move |namespace| {
            flag.store(true, Ordering::SeqCst);
            waiters.wake(namespace);
        }),
    );
    // The notifier wakes everyone once its LISTEN is in place.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the notifier never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (after, reply) = poll_then_create(&app).await;
    let steps = reply["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{reply}");
    assert_eq!(steps[0]["step_name"], "a");
    assert!(after < Duration::from_secs(5), "woken only after {after:?}");
}

#[tokio::test]
async fn with_notifications_lost_the_recheck_still_finds_work() {
    // No notifier at all: every notification is lost.
    let app = app_with_recheck(Duration::from_millis(300)).await;
    let (after, reply) = poll_then_create(&app).await;
    assert_eq!(reply["steps"].as_array().unwrap().len(), 1, "{reply}");
    assert!(after < Duration::from_secs(3), "found only after {after:?}");
}

#[tokio::test]
async fn shutdown_ends_waiting_polls_and_finishes_them() {
    let app = app_with_recheck(Duration::from_secs(30)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tasker_api::serve(listener, app.state.clone(), async move {
        let _ = stopped.await;
    }));

    let body = json!({"namespaces": ["default"], "wait_ms": 20_000}).to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/workers/worker-1/poll HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {WORKER}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = Instant::now();
    stop.send(()).unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("the waiting poll answers once shutdown begins")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("{\"steps\":[]}"), "{response}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after the requests in flight finished")
        .unwrap()
        .unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the listener is closed after shutdown"
    );
}

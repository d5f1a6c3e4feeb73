//! The worker runtime against a scripted in-process worker plane: what it
//! reports for each way an attempt can end, heartbeats and cancellation,
//! concurrency, next steps taken with a completion, retries through
//! unavailability, and graceful shutdown. The real server is exercised by
//! the end-to-end tests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tasker_client::{ClaimedStep, Client, Lease};
use tasker_worker::{Backoff, CancelReason, HandlerError, StepContext, Worker, handler_fn};
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Reported {
    kind: &'static str,
    step_id: Uuid,
    body: Value,
    /// Polls the plane had received when this report arrived.
    polls_before: usize,
}

#[derive(Default)]
struct Plane {
    queue: VecDeque<ClaimedStep>,
    /// Steps handed out only with a complete that asks for `next`, never
    /// by a poll.
    chain: VecDeque<ClaimedStep>,
    /// Answer completes after this long (the report is logged on arrival).
    complete_delay: Duration,
    /// Answer completes that ask for `next` with 404 (as a server does for
    /// a namespace it does not know), counting them here.
    next_refused: Option<usize>,
    registrations: Vec<Value>,
    polls: Vec<Value>,
    reports: Vec<Reported>,
    heartbeats: HashMap<Uuid, usize>,
    /// Heartbeats of these steps answer `cancelled: true`.
    cancelled: HashSet<Uuid>,
    /// Heartbeats of these steps answer 409 `step_timed_out`.
    timed_out: HashSet<Uuid>,
    /// Answer this many registrations with 503 first.
    register_unavailable: usize,
    /// Answer registrations with 401.
    register_unauthorized: bool,
    /// Answer this many completes with 503 first.
    complete_unavailable: usize,
    /// Answer this many releases with 503 first.
    release_unavailable: usize,
    /// Answer releases with 409 `lease_expired`, counting them here.
    release_refused: Option<usize>,
    /// Reports sent one per request, and the sizes of batches of reports.
    single_requests: usize,
    batches: Vec<usize>,
}

type Shared = Arc<Mutex<Plane>>;

fn error(status: StatusCode, code: &str) -> Response {
    answer(error_answer(status, code))
}

/// A report's status and body (`null`: none).
type Answer = (StatusCode, Value);

fn error_answer(status: StatusCode, code: &str) -> Answer {
    (
        status,
        json!({"error": {"code": code, "message": code, "details": null}}),
    )
}

fn answer((status, body): Answer) -> Response {
    if body.is_null() {
        status.into_response()
    } else {
        (status, Json(body)).into_response()
    }
}

async fn register(State(plane): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut plane = plane.lock().unwrap();
    if plane.register_unauthorized {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if plane.register_unavailable > 0 {
        plane.register_unavailable -= 1;
        return error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    }
    let reply = json!({
        "worker": {
            "worker_id": body["worker_id"], "namespaces": body["namespaces"],
            "handlers": body["handlers"], "concurrency": body["concurrency"],
            "version": body["version"], "node_id": "n1",
            "registered_at": "2025-01-01T00:00:00Z", "last_seen_at": "2025-01-01T00:00:00Z"
        },
        "lease_seconds": 30, "heartbeat_interval_ms": 50, "max_poll_wait_ms": 30000
    });
    plane.registrations.push(body);
    Json(reply).into_response()
}

async fn poll(
    State(plane): State<Shared>,
    Path(_worker): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let max = body["max"].as_u64().unwrap() as usize;
    let wait = Duration::from_millis(body["wait_ms"].as_u64().unwrap());
    let deadline = tokio::time::Instant::now() + wait;
    plane.lock().unwrap().polls.push(body);
    loop {
        {
            let mut plane = plane.lock().unwrap();
            if !plane.queue.is_empty() {
                let n = max.min(plane.queue.len());
                let steps: Vec<_> = plane.queue.drain(..n).collect();
                return Json(json!({ "steps": steps })).into_response();
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Json(json!({"steps": []})).into_response();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn step_action(
    State(plane): State<Shared>,
    Path((step_id, action)): Path<(Uuid, String)>,
    Json(body): Json<Value>,
) -> Response {
    let (response, delay) = {
        let mut plane = plane.lock().unwrap();
        let delay = match action.as_str() {
            "complete" => plane.complete_delay,
            _ => Duration::ZERO,
        };
        plane.single_requests += 1;
        (respond(&mut plane, step_id, &action, body), delay)
    };
    tokio::time::sleep(delay).await;
    answer(response)
}

/// `POST /v1/steps/reports`: each report answered as its single endpoint.
async fn report_many(State(plane): State<Shared>, Json(body): Json<Value>) -> Response {
    let (results, delay) = {
        let mut plane = plane.lock().unwrap();
        let reports = body["reports"].as_array().unwrap().clone();
        plane.batches.push(reports.len());
        let mut delay = Duration::ZERO;
        let mut results = Vec::new();
        for mut report in reports {
            let report = report.as_object_mut().unwrap();
            let action = report.remove("type").unwrap();
            let step_id: Uuid = serde_json::from_value(report.remove("step_id").unwrap()).unwrap();
            if action == "complete" {
                delay = plane.complete_delay;
            }
            let (status, mut body) = respond(
                &mut plane,
                step_id,
                action.as_str().unwrap(),
                Value::Object(report.clone()),
            );
            if body.is_null() {
                body = json!({});
            }
            body["status"] = json!(status.as_u16());
            results.push(body);
        }
        (results, delay)
    };
    tokio::time::sleep(delay).await;
    Json(json!({ "results": results })).into_response()
}

fn respond(plane: &mut Plane, step_id: Uuid, action: &str, body: Value) -> Answer {
    match action {
        "heartbeat" => {
            *plane.heartbeats.entry(step_id).or_default() += 1;
            if plane.timed_out.contains(&step_id) {
                return error_answer(StatusCode::CONFLICT, "step_timed_out");
            }
            // Like the server: a cancelled task's lease is not extended.
            let reply = if plane.cancelled.contains(&step_id) {
                json!({"lease_expires_at": null, "cancelled": true})
            } else {
                json!({"lease_expires_at": "2025-01-01T00:00:30Z", "cancelled": false})
            };
            (StatusCode::OK, reply)
        }
        "release" => {
            if plane.release_unavailable > 0 {
                plane.release_unavailable -= 1;
                return error_answer(StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
            }
            if let Some(refused) = plane.release_refused.as_mut() {
                *refused += 1;
                return error_answer(StatusCode::CONFLICT, "lease_expired");
            }
            plane.record("release", step_id, body);
            // Like the server: no body.
            (StatusCode::NO_CONTENT, Value::Null)
        }
        "complete" => {
            if plane.complete_unavailable > 0 {
                plane.complete_unavailable -= 1;
                return error_answer(StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
            }
            if body.get("next").is_some()
                && let Some(refused) = plane.next_refused.as_mut()
            {
                *refused += 1;
                return error_answer(StatusCode::NOT_FOUND, "not_found");
            }
            // Like the server: the next steps come only with `next`, and
            // never more than `max`.
            let max = body["next"]["max"].as_u64().unwrap_or(0) as usize;
            let n = max.min(plane.chain.len());
            let next: Vec<_> = plane.chain.drain(..n).collect();
            plane.record("complete", step_id, body);
            (StatusCode::OK, json!({"recorded": "applied", "next": next}))
        }
        "fail" => {
            plane.record("fail", step_id, body);
            (StatusCode::OK, json!({"recorded": "applied"}))
        }
        _ => error_answer(StatusCode::NOT_FOUND, "not_found"),
    }
}

impl Plane {
    fn record(&mut self, kind: &'static str, step_id: Uuid, body: Value) {
        let polls_before = self.polls.len();
        self.reports.push(Reported {
            kind,
            step_id,
            body,
            polls_before,
        });
    }
}

async fn serve(plane: Shared) -> Client {
    let app = axum::Router::new()
        .route("/v1/workers/register", post(register))
        .route("/v1/workers/{worker_id}/poll", post(poll))
        .route("/v1/steps/reports", post(report_many))
        .route("/v1/steps/{step_id}/{action}", post(step_action))
        .with_state(plane);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Client::new(&format!("http://{addr}"), None).unwrap()
}

fn step(handler: &str, timeout_ms: u64, context: Value) -> ClaimedStep {
    let mut parents = Map::new();
    parents.insert("parent".into(), json!({"value": 41}));
    ClaimedStep {
        lease: Lease {
            step_id: Uuid::now_v7(),
            attempt: 1,
            token: Uuid::now_v7(),
        },
        lease_expires_at: chrono::Utc::now(),
        task_id: Uuid::now_v7(),
        namespace: "examples".into(),
        template_name: "t".into(),
        template_version: "1".into(),
        step_name: "s".into(),
        handler: handler.into(),
        config: json!({"add": 1}),
        max_attempts: 3,
        timeout_ms,
        context,
        parent_results: parents,
        parent_result_refs: Default::default(),
        fan_out: None,
    }
}

fn quick_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        multiplier: 2.0,
        jitter: 0.0,
    }
}

/// A handler that sleeps `context.sleep_ms` (default: forever), noting
/// whether its future was dropped and why it was cancelled.
#[derive(Clone, Default)]
struct Probe {
    dropped: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<CancelReason>>>,
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Probe {
    fn handler(&self) -> impl tasker_worker::Handler {
        let probe = self.clone();
        handler_fn(move |ctx: StepContext| {
            let probe = probe.clone();
            async move {
                let _flag = DropFlag(probe.dropped.clone());
                let cancellation = ctx.cancellation().clone();
                let reason = probe.reason.clone();
                tokio::spawn(async move {
                    let fired = cancellation.cancelled().await;
                    *reason.lock().unwrap() = Some(fired);
                });
                let ms = ctx.context()["sleep_ms"].as_u64().unwrap_or(u64::MAX / 4);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(json!({"slept_ms": ms}))
            }
        })
    }
}

struct Running {
    plane: Shared,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), tasker_worker::Error>>,
}

impl Running {
    async fn reports(&self, n: usize) -> Vec<Reported> {
        wait_until(|| self.plane.lock().unwrap().reports.len() >= n).await;
        self.plane.lock().unwrap().reports.clone()
    }

    async fn stop(mut self) -> Vec<Reported> {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("worker stops")
            .unwrap()
            .unwrap();
        self.plane.lock().unwrap().reports.clone()
    }
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start(
    plane: Plane,
    configure: impl FnOnce(tasker_worker::WorkerBuilder) -> tasker_worker::WorkerBuilder,
) -> Running {
    let plane = Arc::new(Mutex::new(plane));
    let client = serve(plane.clone()).await;
    let builder = Worker::builder(client)
        .worker_id("w1")
        .namespaces(["examples"])
        .poll_wait(Duration::from_millis(200))
        .reconnect_backoff(quick_backoff())
        .handler(
            "add",
            handler_fn(|ctx: StepContext| async move {
                let parent = ctx.parent("parent").unwrap()["value"].as_i64().unwrap();
                let add = ctx.config()["add"].as_i64().unwrap();
                Ok(json!({"value": parent + add, "attempt": ctx.attempt(), "ctx": ctx.context()}))
            }),
        );
    let worker = configure(builder).build().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    Running {
        plane,
        stop: Some(stop),
        done,
    }
}

fn queued(steps: Vec<ClaimedStep>) -> Plane {
    Plane {
        queue: steps.into(),
        ..Plane::default()
    }
}

#[tokio::test]
async fn completes_with_the_handler_result_after_registering() {
    let claimed = step("add", 30_000, json!({"k": "v"}));
    let running = start(queued(vec![claimed.clone()]), |b| b.concurrency(3)).await;
    let reports = running.reports(1).await;
    assert_eq!(reports[0].kind, "complete");
    assert_eq!(reports[0].step_id, claimed.lease.step_id);
    assert_eq!(
        reports[0].body,
        json!({"attempt": 1, "token": claimed.lease.token,
               "result": {"value": 42, "attempt": 1, "ctx": {"k": "v"}},
               "next": {"worker_id": "w1", "namespaces": ["examples"], "max": 1}})
    );
    let plane = running.plane.clone();
    running.stop().await;
    let plane = plane.lock().unwrap();
    let registration = &plane.registrations[0];
    assert_eq!(registration["worker_id"], "w1");
    assert_eq!(registration["namespaces"], json!(["examples"]));
    assert_eq!(registration["handlers"], json!(["add"]));
    assert_eq!(registration["concurrency"], 3);
    assert!(plane.polls.iter().all(|p| p["max"].as_u64().unwrap() <= 3));
    assert_eq!(plane.polls[0]["max"], 3);
}

#[tokio::test]
async fn failures_are_reported_with_their_type_and_retryability() {
    let permanent = step("refuse", 30_000, json!({}));
    let panics = step("panic", 30_000, json!({}));
    let missing = step("no.such.handler", 30_000, json!({}));
    let slow = step("probe", 150, json!({}));
    let ids = [&permanent, &panics, &missing, &slow].map(|s| s.lease.step_id);
    let probe = Probe::default();
    let handler = probe.handler();
    let running = start(queued(vec![permanent, panics, missing, slow]), move |b| {
        b.concurrency(4)
            .handler(
                "refuse",
                handler_fn(|_| async {
                    Err(HandlerError::permanent("card declined").with_type("declined"))
                }),
            )
            .handler(
                "panic",
                handler_fn(|_| async {
                    if true {
                        panic!("handler blew up");
                    }
                    Ok(Value::Null)
                }),
            )
            .handler("probe", handler)
    })
    .await;
    let reports = running.reports(4).await;
    let by_step: HashMap<Uuid, &Reported> = reports.iter().map(|r| (r.step_id, r)).collect();
    let expect = [
        (ids[0], false, "declined"),
        (ids[1], true, "panic"),
        (ids[2], true, "handler_not_found"),
        (ids[3], true, "timeout"),
    ];
    for (id, retryable, error_type) in expect {
        let report = by_step[&id];
        assert_eq!(report.kind, "fail", "{error_type}");
        assert_eq!(report.body["retryable"], retryable, "{error_type}");
        assert_eq!(report.body["error_type"], error_type);
    }
    assert!(
        by_step[&ids[1]].body["message"]
            .as_str()
            .unwrap()
            .contains("handler blew up")
    );
    assert!(
        by_step[&ids[2]].body["message"]
            .as_str()
            .unwrap()
            .contains("no.such.handler")
    );
    // The timed-out handler was stopped, and told why.
    wait_until(|| probe.reason.lock().unwrap().is_some()).await;
    assert!(probe.dropped.load(Ordering::SeqCst));
    assert_eq!(*probe.reason.lock().unwrap(), Some(CancelReason::TimedOut));
    running.stop().await;
}

#[tokio::test]
async fn heartbeats_flow_and_a_cancelled_task_stops_the_handler_without_a_report() {
    let cancelled = step("probe", 60_000, json!({}));
    let timed_out = step("probe", 60_000, json!({}));
    let (c_id, t_id) = (cancelled.lease.step_id, timed_out.lease.step_id);
    let probe = Probe::default();
    let handler = probe.handler();
    let running = start(queued(vec![cancelled, timed_out]), move |b| {
        b.concurrency(2).handler("probe", handler)
    })
    .await;
    // A few beats go by while the handlers run.
    wait_until(|| {
        let plane = running.plane.lock().unwrap();
        plane.heartbeats.get(&c_id).copied().unwrap_or(0) >= 3
            && plane.heartbeats.get(&t_id).copied().unwrap_or(0) >= 3
    })
    .await;
    let marked = {
        let mut plane = running.plane.lock().unwrap();
        plane.cancelled.insert(c_id);
        plane.timed_out.insert(t_id);
        (plane.heartbeats[&c_id], plane.heartbeats[&t_id])
    };
    // Each handler's next beat is answered with the news that stops it
    // (they beat independently: one may be told well before the other).
    wait_until(|| {
        let plane = running.plane.lock().unwrap();
        plane.heartbeats[&c_id] > marked.0 && plane.heartbeats[&t_id] > marked.1
    })
    .await;
    wait_until(|| probe.dropped.load(Ordering::SeqCst)).await;
    wait_until(|| probe.reason.lock().unwrap().is_some()).await;
    let beats_then = {
        let plane = running.plane.lock().unwrap();
        (plane.heartbeats[&c_id], plane.heartbeats[&t_id])
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let plane = running.plane.clone();
    let reports = running.stop().await;
    assert!(reports.is_empty(), "{reports:?}");
    // Heartbeats stopped with the handlers.
    let plane = plane.lock().unwrap();
    assert_eq!(
        (plane.heartbeats[&c_id], plane.heartbeats[&t_id]),
        beats_then
    );
}

#[tokio::test]
async fn runs_no_more_than_concurrency_steps_at_once() {
    let steps: Vec<_> = (0..6).map(|_| step("count", 30_000, json!({}))).collect();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let running = start(queued(steps), move |b| {
        b.concurrency(2).handler(
            "count",
            handler_fn(move |_| {
                let (now, peak) = (n.clone(), p.clone());
                async move {
                    let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(current, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(Value::Null)
                }
            }),
        )
    })
    .await;
    let reports = running.reports(6).await;
    assert!(reports.iter().all(|r| r.kind == "complete"));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    running.stop().await;
}

#[tokio::test]
async fn registration_and_reports_are_retried_while_the_server_is_unavailable() {
    let claimed = step("add", 30_000, json!({}));
    let plane = Plane {
        register_unavailable: 3,
        complete_unavailable: 2,
        ..queued(vec![claimed])
    };
    let running = start(plane, |b| b).await;
    let reports = running.reports(1).await;
    assert_eq!(reports[0].kind, "complete");
    {
        let plane = running.plane.lock().unwrap();
        assert_eq!(plane.registrations.len(), 1);
        assert_eq!(plane.register_unavailable, 0);
        assert_eq!(plane.complete_unavailable, 0);
    }
    running.stop().await;
}

#[tokio::test]
async fn a_refused_registration_ends_the_run() {
    let plane = Arc::new(Mutex::new(Plane {
        register_unauthorized: true,
        ..Plane::default()
    }));
    let client = serve(plane).await;
    let worker = Worker::builder(client)
        .handler("x", handler_fn(|_| async { Ok(Value::Null) }))
        .build()
        .unwrap();
    let error = worker.run(std::future::pending()).await.unwrap_err();
    // The whole chain, as a CLI or `{:#}` shows it, says the answer once.
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    assert_eq!(
        text,
        "the server refused to register this worker: unauthorized (HTTP 401): unauthorized"
    );
    match error {
        tasker_worker::Error::Register(inner) => assert_eq!(inner.status(), Some(401)),
        other => panic!("expected Register, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_lets_quick_handlers_finish_and_releases_slow_ones() {
    let quick = step("probe", 60_000, json!({"sleep_ms": 150}));
    let slow = step("probe", 60_000, json!({}));
    let (quick_id, slow_id) = (quick.lease.step_id, slow.lease.step_id);
    let slow_token = slow.lease.token;
    let probe = Probe::default();
    let handler = probe.handler();
    let plane = Plane {
        // The release is retried through unavailability like any report.
        release_unavailable: 2,
        ..queued(vec![quick, slow])
    };
    let running = start(plane, move |b| {
        b.concurrency(2)
            .shutdown_grace(Duration::from_millis(400))
            .handler("probe", handler)
    })
    .await;
    wait_until(|| running.plane.lock().unwrap().heartbeats.len() == 2).await;
    let stopping = tokio::time::Instant::now();
    let plane = running.plane.clone();
    let reports = running.stop().await;
    let elapsed = stopping.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let by_step: HashMap<Uuid, &Reported> = reports.iter().map(|r| (r.step_id, r)).collect();
    assert_eq!(by_step[&quick_id].kind, "complete");
    // The slow step was handed back with its lease, not failed: releasing
    // does not count the attempt.
    assert_eq!(by_step[&slow_id].kind, "release");
    assert_eq!(
        by_step[&slow_id].body,
        json!({"attempt": 1, "token": slow_token})
    );
    assert_eq!(plane.lock().unwrap().release_unavailable, 0);
    assert!(probe.dropped.load(Ordering::SeqCst));
    assert_eq!(*probe.reason.lock().unwrap(), Some(CancelReason::Shutdown));
    // Only the slow step was released; nothing was reported twice.
    assert_eq!(reports.len(), 2);
}

#[tokio::test]
async fn a_release_refused_with_409_is_not_retried_or_turned_into_a_failure() {
    let slow = step("probe", 60_000, json!({}));
    let probe = Probe::default();
    let handler = probe.handler();
    let plane = Plane {
        release_refused: Some(0),
        ..queued(vec![slow])
    };
    let running = start(plane, move |b| {
        b.shutdown_grace(Duration::from_millis(100))
            .handler("probe", handler)
    })
    .await;
    wait_until(|| running.plane.lock().unwrap().heartbeats.len() == 1).await;
    let stopping = tokio::time::Instant::now();
    let plane = running.plane.clone();
    let reports = running.stop().await;
    // The lease is already gone: one try, then the worker stops without
    // waiting out the release budget.
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert_eq!(plane.lock().unwrap().release_refused, Some(1));
    assert!(reports.is_empty(), "{reports:?}");
}

#[tokio::test]
async fn a_step_leased_with_a_completion_runs_at_once_in_the_same_slot() {
    let first = step("add", 30_000, json!({"n": 1}));
    // Runs long enough to be heartbeated.
    let second = step("probe", 30_000, json!({"sleep_ms": 150}));
    let third = step("refuse", 30_000, json!({}));
    let never = step("add", 30_000, json!({}));
    let ids = [&first, &second, &third].map(|s| s.lease.step_id);
    let probe = Probe::default();
    let handler = probe.handler();
    let plane = Plane {
        chain: vec![second, third, never.clone()].into(),
        ..queued(vec![first])
    };
    let running = start(plane, move |b| {
        b.concurrency(1).handler("probe", handler).handler(
            "refuse",
            handler_fn(|_| async { Err(HandlerError::permanent("no").with_type("declined")) }),
        )
    })
    .await;
    let reports = running.reports(3).await;
    let plane = running.plane.clone();
    running.stop().await;

    assert_eq!(
        reports
            .iter()
            .map(|r| (r.kind, r.step_id))
            .collect::<Vec<_>>(),
        [("complete", ids[0]), ("complete", ids[1]), ("fail", ids[2])]
    );
    // Each complete asked for the next step; the one run from the reply had
    // its handler, heartbeats and report like a polled one.
    for report in &reports[..2] {
        assert_eq!(
            report.body["next"],
            json!({"worker_id": "w1", "namespaces": ["examples"], "max": 1})
        );
    }
    assert_eq!(reports[1].body["result"], json!({"slept_ms": 150}));
    let plane = plane.lock().unwrap();
    assert!(plane.heartbeats.get(&ids[1]).copied().unwrap_or(0) >= 1);
    // No poll between the steps: the one slot stayed taken from the first
    // poll until the chain ended.
    assert!(reports.iter().all(|r| r.polls_before == 1), "{reports:?}");
    // A failure asks for nothing: the rest of the chain was never handed out.
    assert_eq!(plane.chain.len(), 1);
    assert_eq!(plane.chain[0].lease.step_id, never.lease.step_id);
}

#[tokio::test]
async fn shutdown_stops_asking_for_next_steps() {
    let quick = step("probe", 60_000, json!({"sleep_ms": 150}));
    let quick_id = quick.lease.step_id;
    let probe = Probe::default();
    let handler = probe.handler();
    let plane = Plane {
        chain: vec![step("add", 30_000, json!({}))].into(),
        ..queued(vec![quick])
    };
    let running = start(plane, move |b| {
        b.shutdown_grace(Duration::from_secs(5))
            .handler("probe", handler)
    })
    .await;
    wait_until(|| running.plane.lock().unwrap().heartbeats.len() == 1).await;
    let plane = running.plane.clone();
    let reports = running.stop().await;
    // The handler finished within the grace and was completed without
    // asking for more work.
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind, "complete");
    assert_eq!(reports[0].step_id, quick_id);
    assert_eq!(reports[0].body.get("next"), None, "{:?}", reports[0].body);
    assert_eq!(plane.lock().unwrap().chain.len(), 1);
}

#[tokio::test]
async fn a_step_leased_as_shutdown_begins_is_released_unstarted() {
    let first = step("add", 30_000, json!({}));
    let second = step("probe", 30_000, json!({}));
    let (first_id, second_id, second_token) = (
        first.lease.step_id,
        second.lease.step_id,
        second.lease.token,
    );
    let probe = Probe::default();
    let handler = probe.handler();
    let plane = Plane {
        chain: vec![second].into(),
        // The reply is still on its way when shutdown begins.
        complete_delay: Duration::from_millis(300),
        ..queued(vec![first])
    };
    let running = start(plane, move |b| b.handler("probe", handler)).await;
    running.reports(1).await;
    let reports = running.stop().await;
    assert_eq!(
        reports
            .iter()
            .map(|r| (r.kind, r.step_id))
            .collect::<Vec<_>>(),
        [("complete", first_id), ("release", second_id)]
    );
    assert_eq!(
        reports[1].body,
        json!({"attempt": 1, "token": second_token})
    );
    // Its handler never started.
    assert!(!probe.dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_complete_re_sent_after_unavailability_still_asks_for_next() {
    let first = step("add", 30_000, json!({}));
    let second = step("add", 30_000, json!({}));
    let second_id = second.lease.step_id;
    let plane = Plane {
        chain: vec![second].into(),
        complete_unavailable: 2,
        ..queued(vec![first])
    };
    let running = start(plane, |b| b.concurrency(1)).await;
    let reports = running.reports(2).await;
    running.stop().await;
    // The re-send that got through recorded the result and took the next
    // step, which ran without a poll.
    assert_eq!(reports[1].kind, "complete");
    assert_eq!(reports[1].step_id, second_id);
    assert_eq!(reports[1].polls_before, 1);
}

#[tokio::test]
async fn a_complete_refused_for_its_next_part_is_sent_again_without_it() {
    let claimed = step("add", 30_000, json!({}));
    let plane = Plane {
        next_refused: Some(0),
        ..queued(vec![claimed.clone()])
    };
    let running = start(plane, |b| b).await;
    let reports = running.reports(1).await;
    let plane = running.plane.clone();
    running.stop().await;
    assert_eq!(plane.lock().unwrap().next_refused, Some(1));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].kind, "complete");
    assert_eq!(reports[0].step_id, claimed.lease.step_id);
    assert_eq!(reports[0].body.get("next"), None);
    assert_eq!(reports[0].body["result"]["value"], 42);
}

#[tokio::test]
async fn results_that_finish_while_a_report_is_in_flight_go_together() {
    // Completes are held for a while; the results that finish while the
    // worker has its most requests in flight wait and go together, each
    // answered on its own.
    let steps: Vec<ClaimedStep> = (0..8)
        .map(|i| step("add", 30_000, json!({ "i": i })))
        .collect();
    let plane = Plane {
        complete_delay: Duration::from_millis(300),
        ..queued(steps.clone())
    };
    let running = start(plane, |b| b.concurrency(8)).await;
    let reports = running.reports(8).await;
    let (singles, batches) = {
        let plane = running.plane.lock().unwrap();
        (plane.single_requests, plane.batches.clone())
    };
    let reports_after = running.stop().await;
    assert_eq!(reports_after.len(), 8, "each result reported once");

    let mut reported: Vec<Uuid> = reports.iter().map(|r| r.step_id).collect();
    reported.sort();
    let mut expected: Vec<Uuid> = steps.iter().map(|s| s.lease.step_id).collect();
    expected.sort();
    assert_eq!(reported, expected);
    for report in &reports {
        let claimed = steps
            .iter()
            .find(|s| s.lease.step_id == report.step_id)
            .unwrap();
        assert_eq!(report.kind, "complete");
        assert_eq!(report.body["attempt"], 1);
        assert_eq!(report.body["token"], json!(claimed.lease.token));
        assert_eq!(report.body["result"]["ctx"], claimed.context);
        // Each complete still asks for the next step of its own slot.
        assert_eq!(report.body["next"]["max"], 1, "{:?}", report.body);
    }
    assert!(
        !batches.is_empty() && singles + batches.len() < 8,
        "8 results in {singles} single requests and batches of {batches:?}"
    );
}

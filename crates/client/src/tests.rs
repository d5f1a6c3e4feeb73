//! The client against a scripted in-process HTTP server: what goes on the
//! wire and how answers (and missing answers) become values or errors. The
//! real server is exercised by the end-to-end tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

type Script = Arc<dyn Fn(&Seen) -> (StatusCode, String, Duration) + Send + Sync>;

#[derive(Clone)]
struct Scripted {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Script,
}

async fn answer(
    State(state): State<Scripted>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let seen = Seen {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
    };
    let (status, body, delay) = (state.script)(&seen);
    state.seen.lock().unwrap().push(seen);
    tokio::time::sleep(delay).await;
    (status, [("content-type", "application/json")], body).into_response()
}

/// Serves `script` on a free port; returns the base URL and the log of
/// requests.
async fn serve(
    script: impl Fn(&Seen) -> (StatusCode, String, Duration) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Scripted {
        seen: seen.clone(),
        script: Arc::new(script),
    };
    let app = axum::Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn reply(status: u16, body: Value) -> (StatusCode, String, Duration) {
    (
        StatusCode::from_u16(status).unwrap(),
        body.to_string(),
        Duration::ZERO,
    )
}

fn task_json(id: Uuid) -> Value {
    json!({
        "id": id, "namespace": "examples", "template_id": Uuid::nil(),
        "template_name": "linear", "template_version": "1", "state": "running",
        "context": {"even_number": 2}, "idempotency_key": "k1", "tags": ["a"],
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "finished_at": null
    })
}

fn lease() -> Lease {
    Lease {
        step_id: Uuid::from_u128(7),
        attempt: 2,
        token: Uuid::from_u128(9),
    }
}

#[tokio::test]
async fn error_envelope_becomes_api_error() {
    let (base, _) = serve(|_| {
        reply(
            409,
            json!({"error": {"code": "lease_expired", "message": "the lease has expired", "details": null}}),
        )
    })
    .await;
    let client = Client::new(&base, None).unwrap();
    let error = client.step_complete(&lease(), &json!(1)).await.unwrap_err();
    match &error {
        Error::Api {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*status, 409);
            assert_eq!(code, "lease_expired");
            assert_eq!(message, "the lease has expired");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(error.is_lease_lost());
    assert!(!error.is_transport());
    assert!(!error.is_retryable(), "a 409 must not be sent again");
}

#[test]
fn every_server_error_is_worth_sending_a_report_again() {
    let api = |status: u16| Error::Api {
        status,
        code: "internal".into(),
        message: "internal error".into(),
        details: serde_json::Value::Null,
    };
    for status in [500, 502, 503, 504] {
        assert!(api(status).is_retryable(), "{status}");
    }
    // A 500 is not "unavailable" (another node would not help)...
    assert!(!api(500).is_unavailable());
    // ...but reports are fenced by their lease, so re-sending is safe.
    for status in [400, 404, 409, 413, 422] {
        assert!(!api(status).is_retryable(), "{status}");
    }
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    // Bind and drop to find a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let error = client.health().await.unwrap_err();
    assert!(error.is_transport(), "{error:?}");
    assert!(error.is_unavailable());
    assert!(error.to_string().contains(&port.to_string()), "{error}");
}

#[tokio::test]
async fn a_slow_answer_times_out_as_transport_but_a_poll_waits_longer() {
    let (base, _) = serve(|seen| {
        let delay = Duration::from_millis(300);
        if seen.path.ends_with("/poll") {
            (StatusCode::OK, json!({"steps": []}).to_string(), delay)
        } else {
            (StatusCode::OK, json!({"namespaces": []}).to_string(), delay)
        }
    })
    .await;
    let client = Client::new(&base, None)
        .unwrap()
        .with_request_timeout(Duration::from_millis(100));
    let error = client.namespace_list().await.unwrap_err();
    match &error {
        Error::Transport { timed_out, .. } => assert!(timed_out),
        other => panic!("expected Transport, got {other:?}"),
    }
    // The poll's timeout is its wait plus a margin, not the short default.
    let steps = client
        .worker_poll("w1", &["examples".into()], 4, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(steps.is_empty());
}

#[tokio::test]
async fn a_malformed_success_body_is_a_decode_error() {
    let (base, _) = serve(|_| reply(200, json!({"unexpected": true}))).await;
    let client = Client::new(&base, None).unwrap();
    let error = client.task_get(Uuid::nil()).await.unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
}

#[tokio::test]
async fn task_create_tells_created_from_existing_and_sends_the_token() {
    let id = Uuid::now_v7();
    let (base, seen) = serve(move |seen| {
        let status = if seen.json()["idempotency_key"] == "again" {
            200
        } else {
            201
        };
        reply(status, task_json(id))
    })
    .await;
    let client = Client::new(&base, Some("s3cret".into())).unwrap();
    let new = NewTask::new("examples", "linear")
        .context(json!({"even_number": 2}))
        .idempotency_key("k1")
        .tags(["a"]);
    let (task, created) = client.task_create(&new).await.unwrap();
    assert!(created);
    assert_eq!(task.id, id);
    let (_, created) = client
        .task_create(&new.clone().idempotency_key("again"))
        .await
        .unwrap();
    assert!(!created);

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, "/v1/tasks");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(
        seen[0].json(),
        json!({"namespace": "examples", "template": "linear", "version": null,
               "context": {"even_number": 2}, "idempotency_key": "k1", "tags": ["a"]})
    );
}

#[tokio::test]
async fn task_create_batch_answers_each_item_in_order() {
    let id = Uuid::now_v7();
    let (base, seen) = serve(move |_| {
        reply(
            200,
            json!({"results": [
                {"task": task_json(id), "created": false},
                {"error": {"code": "not_found", "message": "template default/nope not found", "details": null}},
            ]}),
        )
    })
    .await;
    let client = Client::new(&base, None).unwrap();
    let tasks = [
        NewTask::new("examples", "linear").idempotency_key("k1"),
        NewTask::new("default", "nope"),
    ];
    let answers = client.task_create_batch(&tasks).await.unwrap();
    let (task, created) = answers[0].as_ref().unwrap();
    assert_eq!((task.id, *created), (id, false));
    let refusal = answers[1].as_ref().unwrap_err();
    assert_eq!(refusal.code, "not_found");
    assert_eq!(
        refusal.to_string(),
        "not_found: template default/nope not found"
    );

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].path, "/v1/tasks/batch");
        assert_eq!(seen[0].json()["tasks"][0]["idempotency_key"], "k1");
        assert_eq!(seen[0].json()["tasks"][1]["template"], "nope");
    }

    // An answer that does not match the request is a broken contract.
    let error = client.task_create_batch(&tasks[..1]).await.unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
}

#[tokio::test]
async fn task_list_sends_only_the_filters_that_are_set() {
    let (base, seen) = serve(|_| reply(200, json!({"tasks": [], "next_cursor": "abc"}))).await;
    let client = Client::new(&base, None).unwrap();
    let page = client
        .task_list(&TaskFilter {
            namespace: Some("examples".into()),
            state: Some(TaskState::Failed),
            limit: Some(10),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.next_cursor.as_deref(), Some("abc"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].authorization, None);
    assert_eq!(
        seen[0].query.as_deref(),
        Some("namespace=examples&state=failed&limit=10")
    );
}

#[tokio::test]
async fn task_find_asks_for_an_id_prefix() {
    let (base, seen) = serve(|_| reply(200, json!({"tasks": [], "next_cursor": null}))).await;
    let client = Client::new(&base, None).unwrap();
    let found = client.task_find("0193a1", 11).await.unwrap();
    assert!(found.is_empty());
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/v1/tasks");
    assert_eq!(seen[0].query.as_deref(), Some("limit=11&id_prefix=0193a1"));
}

#[tokio::test]
async fn worker_plane_bodies_carry_the_lease() {
    let (base, seen) = serve(|seen| match seen.path.rsplit('/').next().unwrap() {
        "heartbeat" => reply(
            200,
            json!({"lease_expires_at": "2025-01-01T00:00:30Z", "cancelled": true}),
        ),
        "complete" => reply(200, json!({"recorded": "applied"})),
        "fail" => reply(200, json!({"recorded": "duplicate"})),
        other => panic!("unexpected {other}"),
    })
    .await;
    let client = Client::new(&base, None).unwrap();
    let lease = lease();

    let beat = client.step_heartbeat(&lease).await.unwrap();
    assert!(beat.cancelled);
    assert!(beat.lease_expires_at.is_some());
    let recorded = client
        .step_complete(&lease, &json!({"value": 4}))
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Applied);
    let report = FailReport {
        retryable: true,
        error_type: "timeout".into(),
        message: "ran 30s".into(),
        details: json!({"limit_ms": 30000}),
    };
    assert_eq!(
        client.step_fail(&lease, &report).await.unwrap(),
        Recorded::Duplicate
    );

    let seen = seen.lock().unwrap();
    let step = lease.step_id.to_string();
    let token = lease.token.to_string();
    assert_eq!(seen[0].path, format!("/v1/steps/{step}/heartbeat"));
    assert_eq!(seen[0].json(), json!({"attempt": 2, "token": token}));
    assert_eq!(seen[1].path, format!("/v1/steps/{step}/complete"));
    assert_eq!(
        seen[1].json(),
        json!({"attempt": 2, "token": token, "result": {"value": 4}})
    );
    assert_eq!(
        seen[2].json(),
        json!({"attempt": 2, "token": token, "retryable": true, "error_type": "timeout",
               "message": "ran 30s", "details": {"limit_ms": 30000}})
    );
}

#[tokio::test]
async fn complete_and_claim_sends_next_and_returns_the_leased_steps() {
    let child = json!({
        "lease": {"step_id": Uuid::from_u128(8), "attempt": 1, "token": Uuid::from_u128(10)},
        "lease_expires_at": "2025-01-01T00:00:30Z", "task_id": Uuid::from_u128(1),
        "namespace": "examples", "template_name": "linear", "template_version": "1",
        "step_name": "step_2", "handler": "examples.linear.step_2", "config": {},
        "max_attempts": 3, "timeout_ms": 30000, "context": {"even_number": 2},
        "parent_results": {"step_1": {"value": 4}}
    });
    let (base, seen) = serve(move |seen| match seen.json()["attempt"].as_u64() {
        Some(2) => reply(200, json!({"recorded": "applied", "next": [child.clone()]})),
        // A server that predates `next` answers without it.
        _ => reply(200, json!({"recorded": "duplicate"})),
    })
    .await;
    let client = Client::new(&base, None).unwrap();
    let lease = lease();
    let next = NextRequest {
        worker_id: "w1".into(),
        namespaces: vec!["examples".into()],
        max: 1,
    };
    let (recorded, steps) = client
        .step_complete_and_claim(&lease, &json!({"value": 4}), &next)
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Applied);
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].step_name, "step_2");
    assert_eq!(steps[0].lease.step_id, Uuid::from_u128(8));
    assert_eq!(steps[0].parent_results["step_1"], json!({"value": 4}));

    let old = Lease {
        attempt: 1,
        ..lease
    };
    let registered = NextRequest {
        namespaces: Vec::new(),
        ..next
    };
    let (recorded, steps) = client
        .step_complete_and_claim(&old, &Value::Null, &registered)
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Duplicate);
    assert!(steps.is_empty());

    let seen = seen.lock().unwrap();
    let token = lease.token.to_string();
    assert_eq!(
        seen[0].path,
        format!("/v1/steps/{}/complete", lease.step_id)
    );
    assert_eq!(
        seen[0].json(),
        json!({"attempt": 2, "token": token, "result": {"value": 4},
               "next": {"worker_id": "w1", "namespaces": ["examples"], "max": 1}})
    );
    // No namespaces: left out, so the server uses the registered ones.
    assert_eq!(
        seen[1].json(),
        json!({"attempt": 1, "token": token, "result": null,
               "next": {"worker_id": "w1", "max": 1}})
    );
}

#[tokio::test]
async fn release_takes_a_204_without_a_body_and_a_409_as_lease_lost() {
    let (base, seen) = serve(|seen| match seen.json()["attempt"].as_u64() {
        Some(2) => (StatusCode::NO_CONTENT, String::new(), Duration::ZERO),
        _ => reply(
            409,
            json!({"error": {"code": "lease_mismatch", "message": "not the current lease"}}),
        ),
    })
    .await;
    let client = Client::new(&base, None).unwrap();
    let lease = lease();
    client.step_release(&lease).await.unwrap();
    let stale = Lease {
        attempt: 1,
        ..lease
    };
    let error = client.step_release(&stale).await.unwrap_err();
    assert!(error.is_lease_lost(), "{error:?}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, format!("/v1/steps/{}/release", lease.step_id));
    assert_eq!(
        seen[0].json(),
        json!({"attempt": 2, "token": lease.token.to_string()})
    );
}

#[tokio::test]
async fn an_empty_success_body_is_a_decode_error_where_a_record_is_expected() {
    let (base, _) = serve(|_| (StatusCode::OK, String::new(), Duration::ZERO)).await;
    let client = Client::new(&base, None).unwrap();
    let error = client.task_get(Uuid::nil()).await.unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    assert!(error.to_string().contains("no body"), "{error}");
}

#[tokio::test]
async fn poll_sends_namespaces_max_and_wait() {
    let (base, seen) = serve(|_| reply(200, json!({"steps": []}))).await;
    let client = Client::new(&base, None).unwrap();
    client
        .worker_poll(
            "worker-1",
            &["examples".into(), "orders".into()],
            3,
            Duration::from_millis(1500),
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/v1/workers/worker-1/poll");
    assert_eq!(
        seen[0].json(),
        json!({"namespaces": ["examples", "orders"], "max": 3, "wait_ms": 1500})
    );
}

#[tokio::test]
async fn probes_return_their_body_on_503() {
    let (base, _) = serve(|seen| match seen.path.as_str() {
        "/health" => reply(503, json!({"status": "degraded", "database": false})),
        "/ready" => reply(
            503,
            json!({"ready": false, "checks": {"database": true, "migrations_applied": false,
                   "queues_installed": true, "default_namespace": true}}),
        ),
        _ => reply(
            503,
            json!({"error": {"code": "shutting_down", "message": "bye"}}),
        ),
    })
    .await;
    let client = Client::new(&base, None).unwrap();
    assert!(!client.health().await.unwrap().database);
    let ready = client.ready().await.unwrap();
    assert!(!ready.ready && !ready.checks.migrations_applied);
    let error = client.cluster().await.unwrap_err();
    assert_eq!(error.code(), Some("shutting_down"));
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn paths_keep_the_base_prefix_and_encode_segments() {
    let (base, seen) = serve(|_| {
        reply(
            404,
            json!({"error": {"code": "not_found", "message": "no"}}),
        )
    })
    .await;
    let client = Client::new(&format!("{base}/tasker/"), None).unwrap();
    let error = client
        .template_get("examples", "odd name", Some("1.0"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(404));
    client
        .template_register_yaml("name: x\n")
        .await
        .unwrap_err();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/tasker/v1/templates/examples/odd%20name");
    assert_eq!(seen[0].query.as_deref(), Some("version=1.0"));
    assert_eq!(seen[1].content_type.as_deref(), Some("application/yaml"));
    assert_eq!(seen[1].body.as_ref(), b"name: x\n");
}

#[test]
fn rejects_unusable_base_urls() {
    for url in ["not a url", "ftp://host", "mailto:a@b"] {
        let error = Client::new(url, None).unwrap_err();
        assert!(
            matches!(error, Error::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
    }
}

#[test]
fn a_server_without_a_scheme_is_http() {
    for (given, expected) in [
        ("127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("localhost:8080", "http://localhost:8080/"),
        ("tasker.internal", "http://tasker.internal/"),
        (
            "tasker.internal:80/prefix/",
            "http://tasker.internal/prefix/",
        ),
        ("[::1]:8080", "http://[::1]:8080/"),
        (" 127.0.0.1:8080 ", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
    ] {
        let client = Client::new(given, None).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(client.base_url().as_str(), expected, "{given}");
    }
}

#[tokio::test]
async fn a_server_without_a_scheme_is_reached_over_http() {
    let (base, seen) = serve(|_| reply(200, json!({"status": "ok", "database": true}))).await;
    let bare = base.trim_start_matches("http://");
    assert_ne!(bare, base);
    let client = Client::new(bare, None).unwrap();
    client.health().await.unwrap();
    assert_eq!(seen.lock().unwrap()[0].path, "/health");
}

#[tokio::test]
async fn cluster_reads_nodes_leader_and_workers_in_flight() {
    let (base, _) = serve(|_| {
        reply(
            200,
            json!({
                "node_id": "tasker-a", "version": "0.1.0",
                "started_at": "2026-11-30T08:00:00Z", "uptime_seconds": 42,
                "leader": {"node_id": "tasker-b", "term": 4,
                           "since": "2026-11-30T08:00:01Z", "expires_at": "2026-11-30T08:00:16Z"},
                "nodes": [
                    {"node_id": "tasker-a", "version": "0.1.0", "address": "http://127.0.0.1:8081",
                     "pid": 1234, "started_at": "2026-11-30T08:00:00Z",
                     "last_heartbeat_at": "2026-11-30T08:00:41Z", "leader": false, "version_skew": true},
                    {"node_id": "tasker-b", "version": "0.2.0", "address": "http://127.0.0.1:8082",
                     "pid": 1235, "started_at": "2026-11-30T08:00:00Z",
                     "last_heartbeat_at": "2026-11-30T08:00:41Z", "leader": true, "version_skew": false}
                ],
                "workers": [
                    {"worker_id": "w-1", "namespaces": ["default"], "handlers": [], "concurrency": 4,
                     "version": null, "node_id": "tasker-a", "registered_at": "2026-11-30T08:00:02Z",
                     "last_seen_at": "2026-11-30T08:00:40Z", "in_flight": 3}
                ]
            }),
        )
    })
    .await;
    let cluster = Client::new(&base, None).unwrap().cluster().await.unwrap();
    let leader = cluster.leader.as_ref().unwrap();
    assert_eq!((leader.node_id.as_str(), leader.term), ("tasker-b", 4));
    let b = cluster.node("tasker-b").unwrap();
    assert!(b.leader && !b.version_skew);
    assert_eq!(b.node.address, "http://127.0.0.1:8082");
    assert!(cluster.node("tasker-a").unwrap().version_skew);
    assert_eq!(cluster.workers[0].worker.worker_id, "w-1");
    assert_eq!(cluster.workers[0].in_flight, 3);
}

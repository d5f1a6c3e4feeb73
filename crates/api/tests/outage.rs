//! Database outages, for real: the node's database URL points at a
//! [`TcpProxy`] that the test cuts (every connection closed, new ones
//! refused, as a stopped server does) and restores; and backends of the
//! node's own test database killed with `pg_terminate_backend`. The shared
//! server itself is never stopped.
//!
//! The pool's acquire timeout is a deliberately long 30 s: every "promptly"
//! below is a bound far under it, showing that nothing waited on the pool.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::RETRY_AFTER;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;
use support::*;
use tasker_api::{ApiConfig, AppState};
use tasker_engine::{Engine, EngineConfig};
use tasker_postgres::{MonitorConfig, PgStore, PoolConfig};
use tasker_testkit::{TcpProxy, TestDatabase};

/// Far above every bound asserted here.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// What "promptly" means: well under the acquire timeout.
const PROMPTLY: Duration = Duration::from_secs(5);

const ONE_STEP: &str = "
  - { name: a, handler: h.a }
";

async fn migrated_database() -> TestDatabase {
    let key = format!("tasker-{}", tasker_postgres::schema_fingerprint());
    TestDatabase::create_from(&key, |url| async move {
        use tasker_store::Store;
        let store = PgStore::connect(&url, &small_pool(), "setup").await?;
        store.migrate().await?;
        store.pool().close().await;
        Ok(())
    })
    .await
    .expect("test database")
}

/// An app whose store connects to `url` with a long acquire timeout and a
/// quick database check.
async fn app_over(url: &str, db: TestDatabase) -> TestApp {
    let pool = PoolConfig {
        max_connections: 8,
        min_connections: 0,
        acquire_timeout: ACQUIRE_TIMEOUT,
        monitor: MonitorConfig {
            check_interval: Duration::from_millis(200),
            check_timeout: Duration::from_secs(1),
        },
    };
    let store = PgStore::connect(url, &pool, "node-a")
        .await
        .expect("connect");
    let engine = EngineConfig::default();
    let mut config = ApiConfig::for_engine(&engine);
    config.node_id = "node-a".into();
    config.auth = auth();
    config.validate(&engine).expect("valid test config");
    let state = AppState::new(Engine::new(Arc::new(store.clone()), engine), config);
    store.set_observer(Arc::new(state.metrics.clone()));
    TestApp { state, store, db }
}

/// Sends a request and fails unless it is answered within [`PROMPTLY`].
async fn promptly(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Reply {
    let started = Instant::now();
    let token = if path.starts_with("/v1/steps/") || path.starts_with("/v1/workers/") {
        WORKER
    } else {
        ADMIN
    };
    let reply = tokio::time::timeout(PROMPTLY, app.call(method, path, Some(token), body))
        .await
        .unwrap_or_else(|_| panic!("{path} did not answer within {PROMPTLY:?}"));
    assert!(started.elapsed() < PROMPTLY);
    reply
}

/// Asks `/ready` (each answer prompt) until it answers `status`.
async fn wait_for_ready(app: &TestApp, status: StatusCode) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = promptly(app, Method::GET, "/ready", None).await;
        if reply.status == status {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never answered {status}; last: {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[track_caller]
fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.error_code(), "unavailable");
    let retry_after = reply
        .headers
        .get(RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap();
    assert!(retry_after.parse::<u64>().unwrap() >= 1, "{retry_after}");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("retry"), "{message}");
}

/// Reads one counter of `/metrics` (0 when absent).
async fn counter(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics").await.expect(StatusCode::OK).text();
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_at_once_requests_fail_fast_and_the_node_recovers_without_restart() {
    let db = migrated_database().await;
    let (proxy, url) = TcpProxy::in_front_of(&db.url).await.unwrap();
    let app = app_over(&url, db).await;
    app.register_yaml(&template("default", "one", ONE_STEP))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "one", json!({})).await;
    app.register_worker("w1", &["default"]).await;
    let claimed = app.poll("w1", &["default"], 1).await.pop().expect("a step");
    wait_for_ready(&app, StatusCode::OK).await;

    proxy.cut().await;
    let cut_at = Instant::now();

    // Liveness never depends on the database.
    let health = promptly(&app, Method::GET, "/health", None)
        .await
        .expect(StatusCode::OK);
    assert!(health.json()["status"].is_string());
    let ready = wait_for_ready(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    let noticed_in = cut_at.elapsed();
    assert_eq!(ready.json()["checks"]["database"], false);
    let health = promptly(&app, Method::GET, "/health", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        health.json(),
        json!({"status": "degraded", "database": false})
    );

    // Every kind of request that needs the database: refused at once.
    let id = task["id"].as_str().unwrap();
    let asked = Instant::now();
    assert_unavailable(&promptly(&app, Method::GET, &format!("/v1/tasks/{id}"), None).await);
    let refused_in = asked.elapsed();
    let create = json!({"namespace": "default", "template": "one", "context": {}});
    assert_unavailable(&promptly(&app, Method::POST, "/v1/tasks", Some(create)).await);
    let step_id = claimed["lease"]["step_id"].as_str().unwrap();
    let complete = json!({
        "attempt": claimed["lease"]["attempt"],
        "token": claimed["lease"]["token"],
        "result": {"done": true},
    });
    let path = format!("/v1/steps/{step_id}/complete");
    assert_unavailable(&promptly(&app, Method::POST, &path, Some(complete.clone())).await);
    assert_unavailable(
        &promptly(
            &app,
            Method::POST,
            "/v1/workers/w1/poll",
            Some(json!({"namespaces": ["default"], "max": 1, "wait_ms": 0})),
        )
        .await,
    );
    assert_eq!(counter(&app, "tasker_database_reachable").await, 0.0);
    // Still alive, still not ready.
    promptly(&app, Method::GET, "/health", None)
        .await
        .expect(StatusCode::OK);
    promptly(&app, Method::GET, "/ready", None)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore().unwrap();
    let restored_at = Instant::now();
    let ready = wait_for_ready(&app, StatusCode::OK).await;
    eprintln!(
        "outage noticed by /ready {noticed_in:?} after the cut; a request refused in \
         {refused_in:?}; ready again {:?} after the restore (check interval 200ms)",
        restored_at.elapsed()
    );
    assert_eq!(ready.json()["ready"], true);
    let health = promptly(&app, Method::GET, "/health", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok", "database": true}));
    assert_eq!(counter(&app, "tasker_database_reachable").await, 1.0);

    // The same report, re-sent as a worker does, is recorded now; the node
    // serves normally without a restart.
    let recorded = promptly(&app, Method::POST, &path, Some(complete))
        .await
        .expect(StatusCode::OK);
    assert_eq!(recorded.json()["recorded"], "applied");
    let finished = app
        .get(&format!("/v1/tasks/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(finished.json()["state"], "complete");
    let another = app.create_task("default", "one", json!({"n": 2})).await;
    assert_eq!(another["state"], "running");
}

/// Waits until one of the node's backends on database `name` waits on a
/// lock; panics with `never` after 20 s.
async fn wait_for_a_lock_wait(admin: &mut sqlx::PgConnection, name: &str, never: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'tasker' AND wait_event_type = 'Lock'",
        )
        .bind(name)
        .fetch_one(&mut *admin)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{never}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills every backend of the node on database `name` (waiting ones, idle
/// pool connections, the database check's); returns how many.
async fn kill_node_backends(admin: &mut sqlx::PgConnection, name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = 'tasker') k",
    )
    .bind(name)
    .fetch_one(admin)
    .await
    .unwrap()
}

/// A lock held by the test makes the node's report transaction wait inside
/// the database; its backend is then killed. The report must run again on
/// a fresh connection and be answered 200, counted as `connection_lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_backend_is_killed_runs_again_on_a_fresh_connection() {
    let db = migrated_database().await;
    let url = db.url.clone();
    let name = db.name.clone();
    let app = app_over(&url, db).await;
    app.register_yaml(&template("default", "one", ONE_STEP))
        .await
        .expect(StatusCode::CREATED);
    let task = app.create_task("default", "one", json!({})).await;
    app.register_worker("w1", &["default"]).await;
    let claimed = app.poll("w1", &["default"], 1).await.pop().expect("a step");

    let mut locker = sqlx::PgConnection::connect(&format!("{url}?application_name=outage-test"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("SELECT 1 FROM tasker.tasks WHERE id = $1::uuid FOR UPDATE")
        .bind(task["id"].as_str().unwrap())
        .execute(&mut locker)
        .await
        .unwrap();

    let router = app.router();
    let step_id = claimed["lease"]["step_id"].as_str().unwrap().to_owned();
    let body = json!({
        "attempt": claimed["lease"]["attempt"],
        "token": claimed["lease"]["token"],
        "result": {"done": true},
    });
    let completing = tokio::spawn(async move {
        send(
            router,
            request(
                Method::POST,
                &format!("/v1/steps/{step_id}/complete"),
                Some(WORKER),
                Some(body),
            ),
        )
        .await
    });

    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    wait_for_a_lock_wait(
        &mut admin,
        &name,
        "the complete never waited on the task lock",
    )
    .await;
    // Every backend of the node on its own test database: the waiting one,
    // idle pool connections and the database check's.
    let killed = kill_node_backends(&mut admin, &name).await;
    assert!(killed >= 1);
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    let reply = tokio::time::timeout(PROMPTLY, completing)
        .await
        .expect("the complete is answered")
        .unwrap()
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["recorded"], "applied");
    let retried = counter(
        &app,
        "tasker_db_transaction_retries_total{reason=\"connection_lost\"}",
    )
    .await;
    assert!(retried >= 1.0, "connection_lost retries: {retried}");
    let id = task["id"].as_str().unwrap();
    let finished = app
        .get(&format!("/v1/tasks/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(finished.json()["state"], "complete");
    locker.close().await.unwrap();
    admin.close().await.unwrap();
}

/// A task creation is one statement that commits by itself. A test
/// transaction holding the same idempotency key makes it wait inside the
/// database; its backend is then killed. Nothing of it was written, so it
/// runs again on a fresh connection: the client gets its task (201), one
/// task holds the key, and the retry is counted as `connection_lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_whose_backend_is_killed_before_it_commits_runs_again() {
    let db = migrated_database().await;
    let url = db.url.clone();
    let name = db.name.clone();
    let app = app_over(&url, db).await;
    app.register_yaml(&template("default", "one", ONE_STEP))
        .await
        .expect(StatusCode::CREATED);
    let first = app.create_task("default", "one", json!({})).await;

    // The key, taken by a row of an open transaction (a copy of the first
    // task): the node's insert waits for it to end.
    let mut locker = sqlx::PgConnection::connect(&format!("{url}?application_name=outage-test"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query(
        "INSERT INTO tasker.tasks (id, namespace, template_id, state, context, idempotency_key, tags, created_at, updated_at) \
         SELECT gen_random_uuid(), namespace, template_id, state, context, 'order-7', tags, created_at, updated_at \
         FROM tasker.tasks WHERE id = $1::uuid",
    )
    .bind(first["id"].as_str().unwrap())
    .execute(&mut locker)
    .await
    .unwrap();

    let router = app.router();
    let creating = tokio::spawn(async move {
        send(
            router,
            request(
                Method::POST,
                "/v1/tasks",
                Some(ADMIN),
                Some(json!({"namespace": "default", "template": "one", "context": {"order": 7}, "idempotency_key": "order-7"})),
            ),
        )
        .await
    });

    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    wait_for_a_lock_wait(&mut admin, &name, "the creation never waited on the key").await;
    let killed = kill_node_backends(&mut admin, &name).await;
    assert!(killed >= 1);
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    let reply = tokio::time::timeout(PROMPTLY, creating)
        .await
        .expect("the creation is answered")
        .unwrap()
        .expect(StatusCode::CREATED);
    assert_eq!(reply.json()["context"], json!({"order": 7}));
    let holders: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM tasker.tasks WHERE idempotency_key = 'order-7'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert_eq!(
        holders,
        vec![reply.json()["id"].as_str().unwrap().to_owned()]
    );
    let steps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.steps WHERE task_id = $1::uuid AND msg_id IS NOT NULL",
    )
    .bind(reply.json()["id"].as_str().unwrap())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        steps, 1,
        "the retried creation wrote its step and its message"
    );
    let retried = counter(
        &app,
        "tasker_db_transaction_retries_total{reason=\"connection_lost\"}",
    )
    .await;
    assert!(retried >= 1.0, "connection_lost retries: {retried}");
    locker.close().await.unwrap();
    admin.close().await.unwrap();
}

/// Backends of the node's database killed over and over while requests of
/// every kind run: none is answered 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeatedly_killed_backends_never_give_a_client_500() {
    let db = migrated_database().await;
    let url = db.url.clone();
    let name = db.name.clone();
    let app = Arc::new(app_over(&url, db).await);
    app.register_yaml(&template("default", "one", ONE_STEP))
        .await
        .expect(StatusCode::CREATED);
    app.register_worker("w1", &["default"]).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let killer = tokio::spawn(async move {
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let mut kills = 0i64;
        while !*stopped.borrow() {
            kills += kill_node_backends(&mut admin, &name).await;
            // About ten rounds a second: far more than the 188 kills a
            // minute of the harness this is modelled on.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        admin.close().await.unwrap();
        kills
    });

    let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
    let until = Instant::now() + Duration::from_secs(3);
    let mut round = 0;
    while Instant::now() < until {
        round += 1;
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..4 {
            let app = app.clone();
            calls.spawn(async move {
                let mut seen = Vec::new();
                let created = app
                    .post(
                        "/v1/tasks",
                        json!({"namespace": "default", "template": "one", "context": {"n": n, "round": round}}),
                    )
                    .await;
                seen.push((created.status, created.text()));
                if created.status == StatusCode::CREATED {
                    let id = created.json()["id"].as_str().unwrap().to_owned();
                    let got = app.get(&format!("/v1/tasks/{id}")).await;
                    seen.push((got.status, got.text()));
                }
                let polled = app
                    .call(
                        Method::POST,
                        "/v1/workers/w1/poll",
                        Some(WORKER),
                        Some(json!({"namespaces": ["default"], "max": 1, "wait_ms": 0})),
                    )
                    .await;
                seen.push((polled.status, polled.text()));
                if polled.status == StatusCode::OK {
                    for step in polled.json()["steps"].as_array().unwrap().clone() {
                        let done = app.report(&step, "complete", json!({"result": {}})).await;
                        seen.push((done.status, done.text()));
                    }
                }
                seen
            });
        }
        while let Some(seen) = calls.join_next().await {
            for (status, text) in seen.unwrap() {
                assert_ne!(
                    status,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "a killed backend answered 500: {text}"
                );
                *statuses.entry(status.as_u16()).or_default() += 1;
            }
        }
    }
    stop.send(true).unwrap();
    let kills = killer.await.unwrap();
    eprintln!("{kills} backends killed; answers by status: {statuses:?}");
    assert!(kills > 0, "no backend was killed");
    assert!(
        statuses.get(&201).copied().unwrap_or(0) > 0,
        "nothing succeeded: {statuses:?}"
    );
}

/// Lines of `/metrics` for HTTP answers of `route` with `status`.
async fn answers_of(app: &TestApp, route: &str, status: u16) -> f64 {
    let text = app.get("/metrics").await.expect(StatusCode::OK).text();
    text.lines()
        .filter(|line| {
            line.starts_with("tasker_http_request_duration_seconds_count")
                && line.contains(&format!("route=\"{route}\""))
                && line.contains(&format!("status=\"{status}\""))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// A Rust SDK worker whose handler finishes while the database is cut away:
/// its completion is refused with 503, re-sent, and accepted once the
/// database is back; the step ran once and the task completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_worker_keeps_its_result_through_an_outage() {
    use tasker_worker::{Backoff, Worker, handler_fn};

    let db = migrated_database().await;
    let (proxy, url) = TcpProxy::in_front_of(&db.url).await.unwrap();
    let app = app_over(&url, db).await;
    app.register_yaml(&template("default", "one", ONE_STEP))
        .await
        .expect(StatusCode::CREATED);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client =
        tasker_client::Client::new(&format!("http://{address}"), Some(WORKER.into())).unwrap();

    let started = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (finish, finishing) = tokio::sync::watch::channel(false);
    let handler = {
        let (started, runs) = (started.clone(), runs.clone());
        handler_fn(move |_| {
            let (started, runs, mut finishing) = (started.clone(), runs.clone(), finishing.clone());
            async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                started.notify_one();
                let _ = finishing.wait_for(|f| *f).await;
                Ok(json!({"ran": "a"}))
            }
        })
    };
    let worker = Worker::builder(client)
        .worker_id("w-outage")
        .namespace("default")
        .concurrency(1)
        .poll_wait(Duration::from_millis(500))
        .reconnect_backoff(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..Backoff::default()
        })
        .handler("h.a", handler)
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    let task = app.create_task("default", "one", json!({})).await;
    tokio::time::timeout(Duration::from_secs(20), started.notified())
        .await
        .expect("the handler started");

    proxy.cut().await;
    wait_for_ready(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    finish.send(true).unwrap();
    // The result was sent and refused while the database was away.
    let route = "/v1/steps/{id}/complete";
    let deadline = Instant::now() + Duration::from_secs(20);
    while answers_of(&app, route, 503).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no completion was refused with 503"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.restore().unwrap();
    let id = task["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let reply = app.get(&format!("/v1/tasks/{id}")).await;
        if reply.status == StatusCode::OK && reply.json()["state"] != "running" {
            break reply.json()["state"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the task did not finish after the database came back: {}",
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state, "complete");
    let steps = app
        .get(&format!("/v1/tasks/{id}/steps?include=result"))
        .await
        .json();
    let step = &steps["steps"][0];
    assert_eq!(step["attempt"], 1, "{step}");
    assert_eq!(step["result"], json!({"ran": "a"}));
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(answers_of(&app, route, 200).await >= 1.0);

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

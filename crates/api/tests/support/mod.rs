//! Shared set-up for router tests: a fresh migrated database per test and
//! the app over it, driven through `oneshot` without a network.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tasker_api::{ApiConfig, AppState, AuthConfig, PoolStats};
use tasker_engine::{Engine, EngineConfig};
use tasker_postgres::{PgStore, PoolConfig};
use tasker_testkit::TestDatabase;
use tower::ServiceExt;

pub const ADMIN: &str = "admin-secret";
pub const OPERATOR: &str = "operator-secret";
pub const WORKER: &str = "worker-secret";
pub const VIEWER: &str = "viewer-secret";

pub struct TestApp {
    pub state: AppState,
    pub store: PgStore,
    pub db: TestDatabase,
}

pub fn auth() -> AuthConfig {
    AuthConfig {
        enabled: true,
        admin_tokens: vec![ADMIN.into()],
        operator_tokens: vec![OPERATOR.into()],
        worker_tokens: vec![WORKER.into()],
        viewer_tokens: vec![VIEWER.into()],
    }
}

pub async fn test_app() -> TestApp {
    test_app_with(EngineConfig::default(), |_| {}).await
}

/// An app over a fresh database; `adjust` may change the API config (which
/// starts from the engine's defaults with auth on and the test tokens).
pub async fn test_app_with(engine: EngineConfig, adjust: impl FnOnce(&mut ApiConfig)) -> TestApp {
    let key = format!("tasker-{}", tasker_postgres::schema_fingerprint());
    let db = TestDatabase::create_from(&key, |url| async move {
        use tasker_store::Store;
        let store = PgStore::connect(&url, &small_pool(), "setup").await?;
        store.migrate().await?;
        store.pool().close().await;
        Ok(())
    })
    .await
    .expect("test database");
    let store = PgStore::connect(&db.url, &small_pool(), "node-a")
        .await
        .expect("connect");
    let mut config = ApiConfig::for_engine(&engine);
    config.node_id = "node-a".into();
    config.auth = auth();
    adjust(&mut config);
    config.validate(&engine).expect("valid test config");
    let engine = Engine::new(Arc::new(store.clone()), engine);
    let pool = store.pool().clone();
    let state = AppState::new(engine, config).with_pool_stats(move || {
        let idle = pool.num_idle() as u64;
        PoolStats {
            idle,
            used: u64::from(pool.size()).saturating_sub(idle),
        }
    });
    // Facts only the committing transaction knows reach /metrics this way.
    store.set_observer(std::sync::Arc::new(state.metrics.clone()));
    TestApp { state, store, db }
}

pub fn small_pool() -> PoolConfig {
    PoolConfig {
        max_connections: 8,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(30),
        ..PoolConfig::default()
    }
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "reply ({}) is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an error reply, checking the error shape.
    pub fn error_code(&self) -> String {
        let body = self.json();
        let error = &body["error"];
        assert!(
            error["message"].is_string(),
            "error without message: {body}"
        );
        assert!(
            error.get("details").is_some(),
            "error without details: {body}"
        );
        error["code"].as_str().expect("error code").to_owned()
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "unexpected reply: {}", self.text());
        self
    }
}

impl TestApp {
    pub fn router(&self) -> Router {
        tasker_api::app(self.state.clone())
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        send(self.router(), request).await
    }

    /// A request with an optional token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send(request(method, path, token, body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(ADMIN), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(ADMIN), Some(body)).await
    }

    /// POST with a raw body and content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(AUTHORIZATION, format!("Bearer {ADMIN}"));
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        self.send(builder.body(body.into()).unwrap()).await
    }

    pub async fn register_yaml(&self, yaml: &str) -> Reply {
        self.post_raw("/v1/templates", Some("application/yaml"), yaml.to_owned())
            .await
    }

    pub async fn create_task(&self, namespace: &str, template: &str, context: Value) -> Value {
        self.post(
            "/v1/tasks",
            json!({"namespace": namespace, "template": template, "context": context}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json()
    }

    /// Registers a worker that declares no handlers: it takes any step.
    pub async fn register_worker(&self, worker_id: &str, namespaces: &[&str]) -> Value {
        self.register_worker_handling(worker_id, namespaces, &[])
            .await
    }

    /// Registers a worker that runs only `handlers`.
    pub async fn register_worker_handling(
        &self,
        worker_id: &str,
        namespaces: &[&str],
        handlers: &[&str],
    ) -> Value {
        self.call(
            Method::POST,
            "/v1/workers/register",
            Some(WORKER),
            Some(json!({"worker_id": worker_id, "namespaces": namespaces, "handlers": handlers, "concurrency": 2})),
        )
        .await
        .expect(StatusCode::OK)
        .json()
    }

    /// Polls without waiting; returns the claimed steps.
    pub async fn poll(&self, worker_id: &str, namespaces: &[&str], max: u32) -> Vec<Value> {
        let reply = self
            .call(
                Method::POST,
                &format!("/v1/workers/{worker_id}/poll"),
                Some(WORKER),
                Some(json!({"namespaces": namespaces, "max": max, "wait_ms": 0})),
            )
            .await
            .expect(StatusCode::OK)
            .json();
        reply["steps"].as_array().expect("steps").clone()
    }

    pub async fn poll_one(&self, namespace: &str) -> Value {
        let mut steps = self.poll("worker-1", &[namespace], 1).await;
        assert_eq!(steps.len(), 1, "expected exactly one ready step");
        steps.pop().unwrap()
    }

    /// POSTs a lease report (`heartbeat`, `complete`, `fail`) for a claimed step.
    pub async fn report(&self, claimed: &Value, action: &str, mut extra: Value) -> Reply {
        let lease = &claimed["lease"];
        extra["attempt"] = lease["attempt"].clone();
        extra["token"] = lease["token"].clone();
        let step_id = lease["step_id"].as_str().unwrap();
        self.call(
            Method::POST,
            &format!("/v1/steps/{step_id}/{action}"),
            Some(WORKER),
            Some(extra),
        )
        .await
    }
}

pub fn request(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => builder
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

pub async fn send(router: Router, request: Request<Body>) -> Reply {
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn template(namespace: &str, name: &str, steps: &str) -> String {
    format!("namespace: {namespace}\nname: {name}\nversion: \"1\"\nsteps:\n{steps}")
}

pub const LINEAR: &str = "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b, depends_on: [a] }
";

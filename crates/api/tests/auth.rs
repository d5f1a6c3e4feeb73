//! Bearer tokens per role: 401 without a known token, 403 for a role that
//! may not use the endpoint; probes open; auth off only when configured so.

mod support;

use axum::body::Body;
use axum::http::header::AUTHORIZATION;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use support::*;
use tasker_api::AuthConfig;
use tasker_engine::EngineConfig;

#[tokio::test]
async fn missing_or_unknown_tokens_are_401() {
    let app = test_app().await;
    let reply = app
        .call(Method::GET, "/v1/namespaces", None, None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");

    let reply = app
        .call(Method::GET, "/v1/namespaces", Some("not-a-token"), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");

    // A prefix of a real token is not that token.
    let reply = app
        .call(
            Method::GET,
            "/v1/namespaces",
            Some(&ADMIN[..ADMIN.len() - 1]),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let basic = Request::builder()
        .uri("/v1/namespaces")
        .header(AUTHORIZATION, format!("Basic {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(basic).await.status, StatusCode::UNAUTHORIZED);

    // The worker plane too.
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/w/poll",
            None,
            Some(json!({"namespaces": ["default"]})),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthorized");
}

#[tokio::test]
async fn roles_reach_only_their_planes() {
    let app = test_app().await;
    // Management: admin and operator yes, worker no.
    for token in [ADMIN, OPERATOR] {
        app.call(Method::GET, "/v1/namespaces", Some(token), None)
            .await
            .expect(StatusCode::OK);
        app.call(Method::GET, "/v1/cluster", Some(token), None)
            .await
            .expect(StatusCode::OK);
    }
    let reply = app
        .call(Method::GET, "/v1/tasks", Some(WORKER), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "forbidden");
    let step = "/v1/steps/0190b5a0-0000-7000-8000-000000000000";
    app.call(Method::POST, &format!("{step}/retry"), Some(WORKER), None)
        .await
        .expect(StatusCode::FORBIDDEN);

    // Worker plane: admin and worker yes, operator no.
    let register = json!({"worker_id": "w1", "namespaces": ["default"]});
    for token in [ADMIN, WORKER] {
        app.call(
            Method::POST,
            "/v1/workers/register",
            Some(token),
            Some(register.clone()),
        )
        .await
        .expect(StatusCode::OK);
    }
    let reply = app
        .call(
            Method::POST,
            "/v1/workers/register",
            Some(OPERATOR),
            Some(register),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "forbidden");
    let lease = json!({"attempt": 1, "token": "0190b5a0-0000-7000-8000-000000000001"});
    app.call(
        Method::POST,
        &format!("{step}/heartbeat"),
        Some(OPERATOR),
        Some(lease.clone()),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    // Release is the worker plane too: a worker reaches it (and is told the
    // made-up lease is not current), an operator does not.
    let release = format!("{step}/release");
    app.call(Method::POST, &release, Some(OPERATOR), Some(lease.clone()))
        .await
        .expect(StatusCode::FORBIDDEN);
    let reply = app
        .call(Method::POST, &release, Some(WORKER), Some(lease))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(reply.error_code(), "lease_mismatch");
}

#[tokio::test]
async fn auth_is_checked_before_the_body_is_read() {
    let app = test_app().await;
    let reply = app
        .call(
            Method::POST,
            "/v1/tasks",
            Some(WORKER),
            Some(json!("not even an object")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn probes_docs_and_metrics_need_no_token() {
    let app = test_app().await;
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/api-docs/openapi.json",
        "/docs",
    ] {
        app.call(Method::GET, path, None, None)
            .await
            .expect(StatusCode::OK);
    }
}

#[tokio::test]
async fn disabled_auth_lets_everything_through() {
    let app = test_app_with(EngineConfig::default(), |c| c.auth = AuthConfig::disabled()).await;
    app.call(Method::GET, "/v1/tasks", None, None)
        .await
        .expect(StatusCode::OK);
    app.call(
        Method::POST,
        "/v1/workers/register",
        None,
        Some(json!({"worker_id": "w1", "namespaces": ["default"]})),
    )
    .await
    .expect(StatusCode::OK);
}

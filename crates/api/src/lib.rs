//! Tasker's HTTP API: the axum router every server node serves, its bearer
//! token auth, Prometheus metrics, the OpenAPI description, a browsable
//! API page and the web dashboard under `/ui`. The contract it implements is `docs/api.md`.
//!
//! ```text
//!  request ─▶ TraceLayer ─▶ CatchPanic ─▶ body limit (read whole) ─▶ router
//!                                                       │ route matched
//!                                                       ▼
//!                                    http metrics (route template, status)
//!                                                       │
//!                               auth guard (management | worker plane)
//!                                                       │
//!                                     handler ─▶ tasker_engine::Engine
//! ```
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a
//! listener with graceful shutdown. Tests drive [`app`] directly with
//! `tower::ServiceExt::oneshot`, without a network.
//!
//! The API holds no state needed for correctness: a lease taken through one
//! node can be heartbeated and completed through another. It must never
//! return database text: every error leaves as [`ApiError`], whose
//! `internal` code carries a generic message while the real error is logged.

mod auth;
mod body_limit;
mod config;
mod database_gauges;
mod docs_page;
mod dto;
mod error;
mod extract;
mod metrics;
mod nul_check;
mod openapi;
mod routes;
mod state;
mod ui;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use auth::Role;
pub use config::{ApiConfig, AuthConfig, ConfigError};
pub use error::ApiError;
pub use metrics::Metrics;
pub use openapi::openapi;
pub use state::{AppState, PoolStats};

use auth::{Guard, Plane};

/// The whole HTTP surface of a node.
pub fn app(state: AppState) -> Router {
    let management = Router::new()
        .merge(routes::namespaces::router())
        .merge(routes::templates::router())
        .merge(routes::tasks::router())
        .merge(routes::schedules::router())
        .merge(routes::steps::router())
        .merge(routes::cluster::router())
        .merge(routes::dead_letters::router())
        .route_layer(from_fn_with_state(
            Guard::new(state.authenticator(), Plane::Management),
            auth::require,
        ));
    let worker_plane = Router::new()
        .merge(routes::workers::router())
        .merge(routes::leases::router())
        .merge(routes::step_reports::router())
        .route_layer(from_fn_with_state(
            Guard::new(state.authenticator(), Plane::Workers),
            auth::require,
        ));
    let open = Router::new()
        .merge(routes::probes::router())
        .merge(metrics::router())
        .merge(docs_page::router())
        // The dashboard checks its session cookie itself (see `ui::session`).
        .merge(ui::router(&state));

    Router::new()
        .merge(open)
        .merge(management)
        .merge(worker_plane)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .route_layer(from_fn_with_state(
            state.metrics.clone(),
            metrics::track_http,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(
            state.config.max_body_bytes,
            body_limit::limit,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then shuts down
/// gracefully: long-polls return empty at once
/// ([`tasker_engine::Engine::begin_shutdown`]), no new connections are
/// accepted, and requests in flight finish before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let engine = state.engine.clone();
    let local = listener.local_addr()?;
    tracing::info!(address = %local, node_id = %state.config.node_id, "serving the API");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            engine.begin_shutdown();
        })
        .await
}

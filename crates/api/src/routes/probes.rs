//! `GET /health` and `GET /ready`: open to everyone (load balancers and
//! orchestrators call them without a token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the database cannot be reached.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub database: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    /// True once this node began shutting down: it is then never ready, so
    /// that load balancers stop sending it work.
    pub shutting_down: bool,
    pub checks: ReadyChecks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChecks {
    pub database: bool,
    pub migrations_applied: bool,
    pub queues_installed: bool,
    pub default_namespace: bool,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Process and database up.
#[utoipa::path(get, operation_id = "health", path = "/health", tag = "probes", responses(
    (status = 200, description = "Up", body = Health),
    (status = 503, description = "The database is unreachable", body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = match state.engine.readiness().await {
        Ok(readiness) => readiness.database,
        Err(e) => {
            tracing::warn!(error = %e, "health: database check failed");
            false
        }
    };
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if database { "ok" } else { "unavailable" },
        database,
    };
    (status, Json(body))
}

/// Whether this node should receive traffic.
///
/// Migrations applied, queues installed, default namespace present, and not
/// shutting down.
#[utoipa::path(get, operation_id = "ready", path = "/ready", tag = "probes", responses(
    (status = 200, description = "Ready to serve", body = Ready),
    (status = 503, description = "Not ready; `checks` says why", body = Ready)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let checks = match state.engine.readiness().await {
        Ok(r) => ReadyChecks {
            database: r.database,
            migrations_applied: r.migrations_applied,
            queues_installed: r.queues_installed,
            default_namespace: r.default_namespace,
        },
        Err(e) => {
            tracing::warn!(error = %e, "ready: database check failed");
            ReadyChecks {
                database: false,
                migrations_applied: false,
                queues_installed: false,
                default_namespace: false,
            }
        }
    };
    let shutting_down = state.engine.is_shutting_down();
    let ready = !shutting_down
        && checks.database
        && checks.migrations_applied
        && checks.queues_installed
        && checks.default_namespace;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            ready,
            shutting_down,
            checks,
        }),
    )
}

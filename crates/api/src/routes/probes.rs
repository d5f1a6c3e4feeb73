//! `GET /health` and `GET /ready`: open to everyone (load balancers and
//! orchestrators call them without a token).
//!
//! Neither ever waits on the database: both answer from the store's last
//! periodic check (`database.health_check_interval`), so they answer at
//! once during an outage. Liveness (`/health`) must never depend on the
//! database, or an orchestrator would restart every node while the database
//! is down; readiness (`/ready`) does, so that a load balancer stops sending
//! such a node work.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the last database check failed; the
    /// process is alive either way.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Whether the last database check (at most one check interval ago)
    /// reached the database. Information only: liveness does not depend on it.
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

/// The process is alive.
///
/// Always 200 while the process serves; `database` reports the last
/// database check without waiting on the database.
#[utoipa::path(get, operation_id = "health", path = "/health", tag = "probes", responses(
    (status = 200, description = "Alive (`status` is `degraded` while the database is unreachable)", body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    // Cached: the readiness of the last check, never a database round trip.
    let database = match state.engine.readiness().await {
        Ok(readiness) => readiness.database,
        Err(e) => {
            tracing::warn!(error = %e, "health: reading the database state failed");
            false
        }
    };
    let body = Health {
        status: if database { "ok" } else { "degraded" },
        database,
    };
    (StatusCode::OK, Json(body))
}

/// Whether this node should receive traffic.
///
/// Database reachable, migrations applied, queues installed, default
/// namespace present, and not shutting down. Answered from the last database
/// check (at most `database.health_check_interval` old), never waiting on the
/// database: 503 at once while it is unreachable.
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
            tracing::warn!(error = %e, "ready: reading the database state failed");
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

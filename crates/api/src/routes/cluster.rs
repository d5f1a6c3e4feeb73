//! `GET /v1/cluster`: this node and the workers heard from recently.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tasker_store::Worker;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    /// The node that answered.
    pub node_id: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub uptime_seconds: u64,
    /// Workers heard from within the liveness window, most recent first.
    pub workers: Vec<Worker>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/cluster", get(cluster))
}

/// This node and the live workers.
///
/// The answering node's id, version and uptime, and the workers heard from
/// within the liveness window.
#[utoipa::path(get, operation_id = "cluster_get", path = "/v1/cluster", tag = "cluster", security(("bearer" = [])),
    responses((status = 200, body = Cluster), (status = 401, body = crate::dto::ErrorBody)))]
pub async fn cluster(State(state): State<AppState>) -> Result<Json<Cluster>, ApiError> {
    let workers = state.engine.worker_list().await?;
    let config = &state.config;
    let uptime = (Utc::now() - config.started_at).num_seconds().max(0) as u64;
    Ok(Json(Cluster {
        node_id: config.node_id.clone(),
        version: config.version.clone(),
        started_at: config.started_at,
        uptime_seconds: uptime,
        workers,
    }))
}

//! `GET /v1/cluster`: the answering node, the live nodes with the leader
//! marked and version skew flagged, and the live workers with their steps
//! in flight.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tasker_store::{ClusterLeader, ClusterNode, ClusterWorker, SweepRecord};
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
    /// The node holding the leadership lease, or `null` when none holds a
    /// live one (during a failover).
    pub leader: Option<ClusterLeader>,
    /// Nodes whose last heartbeat is within `cluster.node_timeout`, by id.
    pub nodes: Vec<ClusterNode>,
    /// Workers heard from within the liveness window, most recent first.
    pub workers: Vec<ClusterWorker>,
    /// What each of the leader's sweeps (`deadlines`, `stuck`, `timeouts`)
    /// last did: when, on which node, what it found then and in total.
    pub maintenance: Vec<SweepRecord>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/cluster", get(cluster))
}

/// The cluster: nodes, leader and live workers.
///
/// The answering node's id, version and uptime; the live nodes (heartbeat
/// within `cluster.node_timeout`), each marked `leader` when it holds the
/// leadership lease and `version_skew` when its version differs from the
/// one most live nodes run (a tie goes to the leader's version); the leader
/// with its term; and the workers heard from within the liveness window,
/// each with the number of steps running under its leases.
#[utoipa::path(get, operation_id = "cluster_get", path = "/v1/cluster", tag = "cluster", security(("bearer" = [])),
    responses((status = 200, body = Cluster), (status = 401, body = crate::dto::ErrorBody)))]
pub async fn cluster(State(state): State<AppState>) -> Result<Json<Cluster>, ApiError> {
    let view = state.engine.cluster_view().await?;
    let config = &state.config;
    let uptime = (Utc::now() - config.started_at).num_seconds().max(0) as u64;
    Ok(Json(Cluster {
        node_id: config.node_id.clone(),
        version: config.version.clone(),
        started_at: config.started_at,
        uptime_seconds: uptime,
        leader: view.leader,
        nodes: view.nodes,
        workers: view.workers,
        maintenance: view.maintenance,
    }))
}

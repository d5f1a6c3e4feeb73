//! Probes and cluster view: `/health`, `/ready`, `/v1/cluster`.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tasker_model::Timestamp;
use tasker_model::wire::{ClusterLeader, ClusterNode, ClusterWorker};

use crate::{Client, Error, Result, decode};

/// `GET /health`: the process answers (always 200 while it serves);
/// `database` says whether the node's last database check reached the
/// database, and `status` is `ok`, or `degraded` while it did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub database: bool,
}

/// `GET /ready`: whether this node can serve, check by check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    /// The node began shutting down; it stays unready so that load
    /// balancers stop sending it work.
    #[serde(default)]
    pub shutting_down: bool,
    pub checks: ReadinessChecks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessChecks {
    pub database: bool,
    pub migrations_applied: bool,
    pub queues_installed: bool,
    pub default_namespace: bool,
}

/// `GET /v1/cluster`: the answering node, the live nodes, the leader and the
/// live workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// The node that answered.
    pub node_id: String,
    pub version: String,
    pub started_at: Timestamp,
    pub uptime_seconds: u64,
    /// The holder of the live leadership lease; `None` during a failover.
    #[serde(default)]
    pub leader: Option<ClusterLeader>,
    /// Live nodes by id, the leader and version skew marked.
    #[serde(default)]
    pub nodes: Vec<ClusterNode>,
    /// Live workers, most recently seen first, with their steps in flight.
    pub workers: Vec<ClusterWorker>,
    /// What each of the leader's sweeps last did (empty from servers
    /// without them).
    #[serde(default)]
    pub maintenance: Vec<tasker_model::wire::SweepRecord>,
}

impl ClusterInfo {
    /// The live node with this id.
    pub fn node(&self, node_id: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.node.node_id == node_id)
    }
}

impl Client {
    /// `GET /health`. A 503 with the probe's body (from servers before
    /// liveness stopped depending on the database) is returned as
    /// `Ok(Health { database: false, .. })`, not as an error, so callers see
    /// what is down.
    pub async fn health(&self) -> Result<Health> {
        self.probe(&["health"]).await
    }

    /// `GET /ready`. A 503 with the probe's body is `Ok` with `ready: false`.
    pub async fn ready(&self) -> Result<Readiness> {
        self.probe(&["ready"]).await
    }

    /// `GET /v1/cluster`.
    pub async fn cluster(&self) -> Result<ClusterInfo> {
        let url = self.url(&["v1", "cluster"]);
        let builder = self.request(Method::GET, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    async fn probe<T: serde::de::DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        let url = self.url(segments);
        let builder = self.request(Method::GET, &url);
        let (status, body) = self.exchange(&url, builder).await?;
        match status {
            200..=299 => decode(&url, &body),
            // A 503 carries the probe's own body; anything else that is not
            // that body (a proxy page, an error envelope) is an API error.
            503 => decode(&url, &body).map_err(|_| Error::from_response(status, &body)),
            _ => Err(Error::from_response(status, &body)),
        }
    }
}

//! The cluster as `GET /v1/cluster` shows it: nodes, the leader, workers,
//! and what each maintenance sweep last did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Worker;
use crate::Timestamp;

/// A node as registered, with its last heartbeat (database clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    pub node_id: String,
    pub version: String,
    /// The URL the node can be reached at.
    pub address: String,
    pub pid: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub started_at: crate::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub last_heartbeat_at: crate::Timestamp,
}

/// The leader as `GET /v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterLeader {
    pub node_id: String,
    /// Grows with every new tenure.
    pub term: u64,
    /// When this tenure began.
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub since: crate::Timestamp,
    /// When the lease runs out unless renewed.
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub expires_at: crate::Timestamp,
}

/// A live node as `GET /v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterNode {
    #[serde(flatten)]
    pub node: Node,
    /// This node holds the leadership lease.
    pub leader: bool,
    /// This node runs another version than the cluster's (see
    /// `docs/operations.md`, Version skew).
    pub version_skew: bool,
}

/// A live worker as `GET /v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterWorker {
    #[serde(flatten)]
    pub worker: Worker,
    /// Steps running under a lease this worker holds.
    pub in_flight: u64,
}

/// What one run of a sweep did, by what it counts (e.g. `timed_out`).
pub type SweepCounts = BTreeMap<String, u64>;

/// What a sweep last did, as stored for the cluster view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepRecord {
    /// `timeouts`, `deadlines`, `stuck` or `queue_vacuum`.
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub last_run_at: Timestamp,
    /// The leader that ran it.
    pub node_id: String,
    /// What its last run found.
    pub last_counts: SweepCounts,
    /// What it found in every run so far.
    pub totals: SweepCounts,
}

//! Records of the cluster: the nodes that registered themselves, the
//! leadership leases, and the shapes `GET /v1/cluster` answers with. A
//! backend stores and reads them; deciding who leads and which node is
//! skewed is the engine's work, never the backend's.

use std::time::Duration;

pub use tasker_model::wire::{ClusterLeader, ClusterNode, ClusterWorker, Node};

/// What a node writes about itself at every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    pub node_id: String,
    pub version: String,
    /// The URL the node can be reached at, e.g. `http://10.0.0.5:8080`.
    pub address: String,
    pub pid: u32,
    pub started_at: tasker_model::Timestamp,
}

/// An attempt to take or renew the lease of a duty set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElect {
    /// The duty set, e.g. `maintenance`.
    pub name: String,
    pub node_id: String,
    /// How long the lease lasts from now (database clock).
    pub lease_for: Duration,
}

/// The lease of a duty set as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub name: String,
    pub holder: String,
    /// Grows with every new tenure.
    pub term: u64,
    pub acquired_at: tasker_model::Timestamp,
    pub expires_at: tasker_model::Timestamp,
    /// `expires_at - now()` by the database clock when it was read; zero
    /// when already expired. Nodes sleep by this, never by their own
    /// reading of `expires_at`, so clock differences between hosts do not
    /// matter.
    pub expires_in: Duration,
}

impl Leadership {
    /// Whether the lease was still running when read.
    pub fn is_live(&self) -> bool {
        !self.expires_in.is_zero()
    }
}

impl From<&Leadership> for ClusterLeader {
    fn from(lease: &Leadership) -> Self {
        Self {
            node_id: lease.holder.clone(),
            term: lease.term,
            since: lease.acquired_at,
            expires_at: lease.expires_at,
        }
    }
}

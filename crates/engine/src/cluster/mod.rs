//! The cluster: this node's record in the node registry, the election of
//! one leader among the nodes, and the leader-only duties that run on it.
//!
//! ```text
//!  Engine::cluster_start ─▶ node row written (heartbeat 0)
//!                        ├─▶ NodeRegistry loop: heartbeat every node_heartbeat_interval,
//!                        │     live-node count, version-skew warning
//!                        └─▶ Election loop: lease "maintenance" taken/renewed/followed
//!                              └─ while leader: every LeaderDuty runs (NodeReaper first,
//!                                 then the Scheduler of schedules)
//!  Engine::cluster_stop  ─▶ loops stopped, duties cancelled, lease resigned
//!                           (a follower takes over at once), node row deleted
//! ```
//!
//! Nothing here is needed for the correctness of tasks and steps: a node
//! that lost its registry row or its leadership still serves every request.
//! It must never hold a database session for leadership (no advisory lock):
//! the lease row and the database clock decide.

mod leader_duty;
mod leadership;
mod node_reaper;
mod node_registry;
pub mod version_skew;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tasker_store::{ClusterLeader, ClusterNode, ClusterWorker, NodeRegistration};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use leader_duty::{DutyContext, LeaderDuty};
pub use leadership::LeaderStatus;
pub use node_reaper::{NodeReaper, STALE_AFTER_TIMEOUTS};

use crate::{Engine, Result};

/// The duty set every node competes for.
pub const MAINTENANCE: &str = "maintenance";

/// Settings of the node registry and the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// How often this node refreshes its registry row. Default 2 s.
    pub node_heartbeat_interval: Duration,
    /// A node without a heartbeat for this long is no longer listed (and
    /// its row is deleted after ten times this). Default 10 s.
    pub node_timeout: Duration,
    /// How long a leadership lease lasts; the leader renews it every third
    /// of this, and a dead leader is replaced within about this long.
    /// Default 15 s.
    pub leader_lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_heartbeat_interval: Duration::from_secs(2),
            node_timeout: Duration::from_secs(10),
            leader_lease: Duration::from_secs(15),
        }
    }
}

/// What `GET /v1/cluster` shows beyond the answering node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    /// The holder of the live lease, if any.
    pub leader: Option<ClusterLeader>,
    /// Live nodes, by id.
    pub nodes: Vec<ClusterNode>,
    /// Live workers, most recently seen first.
    pub workers: Vec<ClusterWorker>,
    /// What each of the leader's sweeps last did, by name.
    pub maintenance: Vec<tasker_store::SweepRecord>,
}

/// The cluster part of an [`Engine`], shared by its clones.
pub(crate) struct ClusterState {
    status: watch::Sender<LeaderStatus>,
    wake: Arc<Notify>,
    live_nodes: Arc<AtomicUsize>,
    config: std::sync::Mutex<ClusterConfig>,
    running: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    node_id: String,
    registry: JoinHandle<()>,
    election: JoinHandle<()>,
}

impl Running {
    fn abort(&self) {
        self.registry.abort();
        self.election.abort();
    }

    /// Stops both loops and waits until they are gone (the election's
    /// duties are cancelled with it); returns the node id.
    async fn stop(mut self) -> String {
        self.abort();
        let _ = (&mut self.registry).await;
        let _ = (&mut self.election).await;
        std::mem::take(&mut self.node_id)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.abort();
    }
}

impl Default for ClusterState {
    fn default() -> Self {
        Self {
            status: watch::Sender::new(LeaderStatus::default()),
            wake: Arc::default(),
            live_nodes: Arc::default(),
            config: std::sync::Mutex::default(),
            running: tokio::sync::Mutex::default(),
        }
    }
}

impl std::fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterState")
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Joins the cluster: writes this node's registry row (failing when the
    /// database cannot be reached), then keeps it fresh and competes for
    /// leadership in the background. `duties` run while this node leads,
    /// after the built-in [`NodeReaper`] and [`crate::Scheduler`]. Starting again restarts.
    pub async fn cluster_start(
        &self,
        node: NodeRegistration,
        config: ClusterConfig,
        duties: Vec<Arc<dyn LeaderDuty>>,
    ) -> Result<()> {
        let cluster = &self.cluster;
        let mut running = cluster.running.lock().await;
        if let Some(previous) = running.take() {
            previous.abort();
        }
        self.store.node_heartbeat(&node).await?;
        *cluster.config.lock().expect("cluster config lock") = config.clone();
        let mut all: Vec<Arc<dyn LeaderDuty>> = vec![Arc::new(NodeReaper {
            node_timeout: config.node_timeout,
        })];
        all.push(Arc::new(crate::Scheduler::new(self)));
        all.extend(duties);
        let registry = node_registry::NodeRegistry {
            store: self.store.clone(),
            node: node.clone(),
            interval: config.node_heartbeat_interval,
            timeout: config.node_timeout,
            live_nodes: cluster.live_nodes.clone(),
            leadership: cluster.status.subscribe(),
        };
        let election = leadership::Election {
            store: self.store.clone(),
            name: MAINTENANCE.to_owned(),
            node_id: node.node_id.clone(),
            lease: config.leader_lease,
            status: cluster.status.clone(),
            wake: cluster.wake.clone(),
            duties: leader_duty::DutyRunner::new(all),
        };
        *running = Some(Running {
            node_id: node.node_id,
            registry: tokio::spawn(registry.run()),
            election: tokio::spawn(election.run()),
        });
        Ok(())
    }

    /// Leaves the cluster gracefully: duties cancelled, the leadership lease
    /// resigned (so another node takes over at once) and this node's row
    /// deleted. Failures are logged: the lease and the row then run out by
    /// themselves.
    pub async fn cluster_stop(&self) {
        let Some(running) = self.cluster.running.lock().await.take() else {
            return;
        };
        let node_id = running.stop().await;
        let was_leading = self.cluster.status.borrow().leading;
        self.cluster.status.send_modify(|s| s.leading = false);
        match self.store.leader_resign(MAINTENANCE, &node_id).await {
            Ok(true) => tracing::info!(%node_id, "resigned the leadership"),
            Ok(false) => {}
            Err(error) if was_leading => {
                tracing::warn!(%error, "cannot resign the leadership; it passes on when the lease runs out")
            }
            Err(_) => {}
        }
        if let Err(error) = self.store.node_delete(&node_id).await {
            tracing::warn!(%error, "cannot remove this node's registry record; it drops out after cluster.node_timeout");
        }
    }

    /// Stops the cluster loops without resigning or removing anything, as
    /// a crash would: the lease and the registry row run out by themselves.
    /// For tests of failover.
    pub async fn cluster_abandon(&self) {
        if let Some(running) = self.cluster.running.lock().await.take() {
            running.stop().await;
        }
        self.cluster.status.send_modify(|s| s.leading = false);
    }

    /// This node's view of leadership; changes as it is elected, renews,
    /// steps down or sees another leader.
    pub fn leadership(&self) -> watch::Receiver<LeaderStatus> {
        self.cluster.status.subscribe()
    }

    /// Makes the election try at once (a leader resigned somewhere, or a
    /// test moved a lease into the past) instead of at its next interval.
    pub fn leadership_wake(&self) {
        self.cluster.wake.notify_one();
    }

    /// Live nodes as of the last heartbeat of this node (0 before one).
    pub fn cluster_nodes_live(&self) -> usize {
        self.cluster.live_nodes.load(Ordering::Relaxed)
    }

    /// Live nodes, the leader and live workers with their steps in flight,
    /// read from the database. A node is flagged `version_skew` when its
    /// version differs from the cluster's (see [`version_skew`]).
    pub async fn cluster_view(&self) -> Result<ClusterView> {
        let node_timeout = self
            .cluster
            .config
            .lock()
            .expect("cluster config lock")
            .node_timeout;
        // One query after the other: an operator's view is not worth four
        // of the pool's connections at once.
        let nodes = self.store.node_list(node_timeout).await?;
        let lease = self.store.leader_get(MAINTENANCE).await?;
        let workers = self.store.worker_list(self.config.worker_liveness).await?;
        let in_flight = self.store.worker_in_flight().await?;
        let maintenance = self.store.maintenance_sweep_list().await?;
        let leader = lease
            .filter(|l| l.is_live())
            .map(|l| ClusterLeader::from(&l));
        let leader_id = leader.as_ref().map(|l| l.node_id.as_str());
        let leader_version = nodes
            .iter()
            .find(|n| Some(n.node_id.as_str()) == leader_id)
            .map(|n| n.version.as_str());
        let version =
            version_skew::cluster_version(nodes.iter().map(|n| n.version.as_str()), leader_version);
        let nodes = nodes
            .into_iter()
            .map(|node| ClusterNode {
                leader: Some(node.node_id.as_str()) == leader_id,
                version_skew: Some(&node.version) != version.as_ref(),
                node,
            })
            .collect();
        let workers = workers
            .into_iter()
            .map(|worker| ClusterWorker {
                in_flight: in_flight.get(&worker.worker_id).copied().unwrap_or(0),
                worker,
            })
            .collect();
        Ok(ClusterView {
            leader,
            nodes,
            workers,
            maintenance,
        })
    }
}

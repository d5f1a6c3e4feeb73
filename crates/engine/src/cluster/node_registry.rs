//! The heartbeat loop: keeps this node's row in the node registry fresh,
//! counts the live nodes and warns when it sees version skew.
//!
//! Failure: a heartbeat that fails is logged once per outage and tried
//! again at the next interval; the node drops out of the listing after
//! `cluster.node_timeout` without one and comes back with the next that
//! succeeds. This loop must never decide anything about leadership.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tasker_store::{NodeRegistration, Store};
use tokio::sync::watch;

use super::leadership::LeaderStatus;
use super::version_skew::cluster_version;

pub(crate) struct NodeRegistry {
    pub store: Arc<dyn Store>,
    pub node: NodeRegistration,
    pub interval: Duration,
    pub timeout: Duration,
    pub live_nodes: Arc<AtomicUsize>,
    pub leadership: watch::Receiver<LeaderStatus>,
}

impl NodeRegistry {
    pub async fn run(self) {
        let mut failing = false;
        let mut skew_seen: Vec<String> = Vec::new();
        let mut first = true;
        loop {
            // The first heartbeat was written by `cluster_start`; the first
            // listing is not delayed by an interval.
            if !std::mem::take(&mut first) {
                tokio::time::sleep(self.interval).await;
            }
            match self.store.node_heartbeat(&self.node).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!(node_id = %self.node.node_id, "node heartbeat recorded again");
                }
                Ok(_) => {}
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, node_id = %self.node.node_id, "cannot record this node's heartbeat; other nodes will see it gone after cluster.node_timeout");
                    }
                    failing = true;
                    continue;
                }
            }
            match self.store.node_list(self.timeout).await {
                Ok(nodes) => {
                    self.live_nodes.store(nodes.len(), Ordering::Relaxed);
                    let leader = self.leadership.borrow().leader.clone();
                    let leader_version = nodes
                        .iter()
                        .find(|n| Some(&n.node_id) == leader.as_ref())
                        .map(|n| n.version.as_str());
                    let version =
                        cluster_version(nodes.iter().map(|n| n.version.as_str()), leader_version);
                    let skewed: Vec<String> = nodes
                        .iter()
                        .filter(|n| Some(&n.version) != version.as_ref())
                        .map(|n| format!("{} runs {}", n.node_id, n.version))
                        .collect();
                    if !skewed.is_empty() && skewed != skew_seen {
                        tracing::warn!(
                            cluster_version = version.as_deref().unwrap_or("?"),
                            skewed = %skewed.join(", "),
                            "version skew: nodes run different versions; finish the rolling upgrade"
                        );
                    }
                    skew_seen = skewed;
                }
                Err(error) => tracing::debug!(%error, "cannot list the live nodes"),
            }
        }
    }
}

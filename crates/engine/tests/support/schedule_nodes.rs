//! Nodes for schedule tests: engines on one database sharing one
//! [`ManualClock`], so that a test moves time instead of waiting for it.
//! On SQLite the nodes are engines over its one store.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tasker_engine::{ClusterConfig, Engine, EngineConfig, MAINTENANCE, ManualClock};
use tasker_model::ScheduleSpec;
use tasker_store::NodeRegistration;
use tokio::time::Instant;

use super::{Database, Harness, Rows};

pub const ONE_STEP: &str = "
  - { name: a, handler: h.a }
";

/// A cluster of schedule nodes over the harness's database.
pub struct Nodes {
    pub clock: Arc<ManualClock>,
    pub nodes: Vec<(String, Engine)>,
    pub db: Database,
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every minute, in the default namespace, template `tick`, runs
/// overlapping allowed.
pub fn every_minute(name: &str) -> ScheduleSpec {
    serde_json::from_value(serde_json::json!({
        "name": name, "template": "tick", "cron": "* * * * *", "overlap": "allow"
    }))
    .unwrap()
}

impl Nodes {
    /// `ids.len()` engines with one clock at `now`; none in the cluster yet.
    pub async fn new(h: &Harness, now: DateTime<Utc>, ids: &[&str]) -> Self {
        let clock = Arc::new(ManualClock::new(now));
        let mut nodes = Vec::new();
        for id in ids {
            let store = h.node_store(id).await;
            let engine =
                Engine::new(store.shared(), EngineConfig::default()).with_clock(clock.clone());
            nodes.push((id.to_string(), engine));
        }
        Self {
            clock,
            nodes,
            db: h.db.clone(),
        }
    }

    pub fn engine(&self, i: usize) -> &Engine {
        &self.nodes[i].1
    }

    pub async fn join(&self, i: usize) {
        let (id, engine) = &self.nodes[i];
        engine
            .cluster_start(
                NodeRegistration {
                    node_id: id.clone(),
                    version: "0.1.0".into(),
                    address: format!("http://{id}.test"),
                    pid: 1,
                    started_at: Utc::now(),
                },
                ClusterConfig::default(),
                Vec::new(),
            )
            .await
            .expect("joins");
    }

    /// The index of the one leading node, once one leads.
    pub async fn leader(&self) -> usize {
        eventually("a leader", || {
            let leading: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.engine(i).leadership().borrow().leading)
                .collect();
            (leading.len() == 1).then(|| leading[0])
        })
        .await
    }

    /// Moves the clock on and wakes every node's scheduler.
    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
        for (_, engine) in &self.nodes {
            engine.schedules_wake();
        }
    }

    /// Waits until node `i`'s scheduler has made a whole pass that began
    /// after this call.
    pub async fn pass(&self, i: usize) {
        let mut passes = self.engine(i).schedule_passes();
        let seen = *passes.borrow_and_update();
        self.engine(i).schedules_wake();
        // One pass may be under way already: wait for the one after it.
        tokio::time::timeout(Duration::from_secs(10), async {
            while *passes.borrow_and_update() < seen + 2 {
                passes.changed().await.expect("scheduler alive");
                self.engine(i).schedules_wake();
            }
        })
        .await
        .expect("a scheduler pass within 10 s");
    }

    /// Ends the leadership lease now, as if its holder had died long ago.
    pub async fn expire_lease(&self) {
        self.db.leadership_expire(MAINTENANCE).await;
        for (_, engine) in &self.nodes {
            engine.leadership_wake();
        }
    }

    pub async fn count(&self, rows: Rows<'_>) -> i64 {
        self.db.count(rows).await
    }

    /// Waits until there are `n` of `rows`.
    pub async fn wait_count(&self, rows: Rows<'_>, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.count(rows).await;
            if got == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited 10 s for {n} of {rows:?}; there are {got}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(&self) {
        for (_, engine) in &self.nodes {
            engine.cluster_abandon().await;
        }
    }
}

/// Waits (bounded) until `check` holds.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

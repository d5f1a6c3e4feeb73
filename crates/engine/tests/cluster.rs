//! Leader election and the node registry, with several engines on one
//! database as several nodes would be. Leases are never slept out: a test
//! moves `expires_at` into the past and wakes the elections, except where
//! the test is about the clock (a leader stepping down on its own), which
//! uses a short lease.
//!
//! PostgreSQL only: SQLite serves one node, so there is no second node to
//! elect or to fail over to; on SQLite every test here says it is skipped.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::PgPool;
use tasker_engine::{
    ClusterConfig, DutyContext, Engine, EngineConfig, LeaderDuty, LeaderStatus, MAINTENANCE,
};
use tasker_postgres::{Notifier, PgStore};
use tasker_store::{NodeRegistration, Store};
use tokio::time::Instant;

use support::small_pool;

/// One node: an engine over its own pool, in the cluster.
struct TestNode {
    id: String,
    engine: Engine,
    store: PgStore,
    _notifier: Option<Notifier>,
}

fn registration(id: &str, version: &str) -> NodeRegistration {
    NodeRegistration {
        node_id: id.to_owned(),
        version: version.to_owned(),
        address: format!("http://{id}.test:8080"),
        pid: 4242,
        started_at: chrono::Utc::now(),
    }
}

fn lease(lease: Duration) -> ClusterConfig {
    ClusterConfig {
        leader_lease: lease,
        ..ClusterConfig::default()
    }
}

async fn start_node(
    url: &str,
    id: &str,
    config: ClusterConfig,
    duties: Vec<Arc<dyn LeaderDuty>>,
    notified: bool,
) -> TestNode {
    let store = PgStore::connect(url, &small_pool(), id)
        .await
        .expect("connect");
    node_over(store, url, id, config, duties, notified).await
}

async fn node_over(
    store: PgStore,
    url: &str,
    id: &str,
    config: ClusterConfig,
    duties: Vec<Arc<dyn LeaderDuty>>,
    notified: bool,
) -> TestNode {
    let engine = Engine::new(Arc::new(store.clone()), EngineConfig::default());
    // As the server does: a resignation elsewhere wakes this node's election.
    let notifier = notified.then(|| {
        let elections = engine.clone();
        Notifier::start_with_leadership(
            url.to_owned(),
            Arc::new(|_| {}),
            Arc::new(move || elections.leadership_wake()),
        )
    });
    engine
        .cluster_start(registration(id, "0.1.0"), config, duties)
        .await
        .expect("joins the cluster");
    TestNode {
        id: id.to_owned(),
        engine,
        store,
        _notifier: notifier,
    }
}

fn status(node: &TestNode) -> LeaderStatus {
    node.engine.leadership().borrow().clone()
}

/// Waits (bounded) until `check` holds, failing with `what` otherwise.
async fn eventually<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The one node that leads, once exactly one does.
async fn the_leader<'a>(nodes: &'a [TestNode], what: &str) -> &'a TestNode {
    eventually(what, Duration::from_secs(10), || {
        let leading: Vec<&TestNode> = nodes.iter().filter(|n| status(n).leading).collect();
        (leading.len() == 1).then(|| leading[0])
    })
    .await
}

#[derive(Debug, PartialEq, Eq)]
struct LeaseRow {
    holder: String,
    term: i64,
    expires_at: chrono::DateTime<chrono::Utc>,
}

async fn lease_row(pool: &PgPool) -> LeaseRow {
    let (holder, term, expires_at) =
        sqlx::query_as("SELECT holder, term, expires_at FROM tasker.leadership WHERE name = $1")
            .bind(MAINTENANCE)
            .fetch_one(pool)
            .await
            .expect("a lease row");
    LeaseRow {
        holder,
        term,
        expires_at,
    }
}

/// Ends the current lease now, as if its holder had stopped renewing long
/// ago.
async fn expire_lease(pool: &PgPool) {
    sqlx::query(
        "UPDATE tasker.leadership SET expires_at = greatest(acquired_at, now() - interval '1 second') \
         WHERE name = $1",
    )
    .bind(MAINTENANCE)
    .execute(pool)
    .await
    .expect("lease moved into the past");
}

/// The test's PostgreSQL database and a pool on it; `None` (the test is
/// skipped) on SQLite.
async fn database() -> Option<(tasker_testkit::TestDatabase, PgPool)> {
    if support::skip_on_sqlite("leader election among several nodes, each with its own connections")
    {
        return None;
    }
    let (db, store) = support::harness().await.into_postgres();
    Some((db, store.pool().clone()))
}

#[tokio::test]
async fn one_leader_when_several_nodes_start_together() {
    let Some((db, pool)) = database().await else {
        return;
    };
    let nodes = futures::future::join_all(
        ["node-a", "node-b", "node-c"]
            .map(|id| start_node(&db.url, id, ClusterConfig::default(), Vec::new(), false)),
    )
    .await;
    let leader = the_leader(&nodes, "one of three nodes to lead").await;
    let row = lease_row(&pool).await;
    assert_eq!(row.holder, leader.id);
    assert_eq!(row.term, 1, "the first tenure");
    // Every node tries again at once, several times: still one leader.
    for _ in 0..5 {
        for node in &nodes {
            node.engine.leadership_wake();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let leading: Vec<&str> = nodes
            .iter()
            .filter(|n| status(n).leading)
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(leading, [leader.id.as_str()]);
    }
    for node in &nodes {
        let seen = eventually(
            "every node to know the leader",
            Duration::from_secs(10),
            || {
                let s = status(node);
                (s.leader.is_some()).then_some(s)
            },
        )
        .await;
        assert_eq!(
            seen.leader.as_deref(),
            Some(leader.id.as_str()),
            "{}",
            node.id
        );
        assert_eq!(seen.term, 1);
    }
    assert_eq!(lease_row(&pool).await.holder, leader.id);
}

#[tokio::test]
async fn renewal_keeps_the_leader_and_its_term() {
    let Some((db, pool)) = database().await else {
        return;
    };
    let nodes = vec![
        start_node(
            &db.url,
            "node-a",
            ClusterConfig::default(),
            Vec::new(),
            false,
        )
        .await,
        start_node(
            &db.url,
            "node-b",
            ClusterConfig::default(),
            Vec::new(),
            false,
        )
        .await,
    ];
    let leader = the_leader(&nodes, "a leader").await;
    let before = lease_row(&pool).await;
    for round in 0..3 {
        let previous = lease_row(&pool).await;
        leader.engine.leadership_wake();
        let deadline = Instant::now() + Duration::from_secs(10);
        let renewed = loop {
            let row = lease_row(&pool).await;
            if row.expires_at > previous.expires_at {
                break row;
            }
            assert!(Instant::now() < deadline, "renewal {round} never came");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(renewed.holder, before.holder);
        assert_eq!(renewed.term, before.term, "a renewal keeps the term");
    }
    let s = status(leader);
    assert!(s.leading);
    assert_eq!(s.changes, 1, "only the first election was a change");
}

#[tokio::test]
async fn a_dead_leaders_expired_lease_is_taken_over_with_a_higher_term() {
    let Some((db, pool)) = database().await else {
        return;
    };
    let nodes = futures::future::join_all(
        ["node-a", "node-b", "node-c"]
            .map(|id| start_node(&db.url, id, ClusterConfig::default(), Vec::new(), false)),
    )
    .await;
    let dead = the_leader(&nodes, "a first leader").await;
    let first = lease_row(&pool).await;
    // The leader dies without resigning; its lease runs out.
    dead.engine.cluster_abandon().await;
    expire_lease(&pool).await;
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.id != dead.id).collect();
    for node in &survivors {
        node.engine.leadership_wake();
    }
    let next = eventually("a survivor to lead", Duration::from_secs(10), || {
        let leading: Vec<&&TestNode> = survivors.iter().filter(|n| status(n).leading).collect();
        (leading.len() == 1).then(|| leading[0].id.clone())
    })
    .await;
    let row = lease_row(&pool).await;
    assert_eq!(row.holder, next);
    assert_eq!(row.term, first.term + 1, "a new holder is a new term");
    assert!(!status(dead).leading);
    let other = survivors.iter().find(|n| n.id != next).unwrap();
    eventually(
        "the other survivor to follow the new leader",
        Duration::from_secs(10),
        || {
            other.engine.leadership_wake();
            (status(other).leader.as_deref() == Some(next.as_str())).then_some(())
        },
    )
    .await;
    assert!(!status(other).leading);
    assert_eq!(status(other).term, first.term as u64 + 1);
}

#[tokio::test]
async fn a_gracefully_stopping_leader_hands_over_at_once() {
    let Some((db, pool)) = database().await else {
        return;
    };
    // A long lease: without the resignation a follower would wait up to a
    // third of it (20 s) before trying again.
    let config = lease(Duration::from_secs(60));
    let nodes = vec![
        start_node(&db.url, "node-a", config.clone(), Vec::new(), true).await,
        start_node(&db.url, "node-b", config.clone(), Vec::new(), true).await,
    ];
    let leader = the_leader(&nodes, "a leader").await;
    let follower = nodes.iter().find(|n| n.id != leader.id).unwrap();
    eventually(
        "the follower to know the leader",
        Duration::from_secs(10),
        || status(follower).leader.is_some().then_some(()),
    )
    .await;
    let first = lease_row(&pool).await;
    let stopped = Instant::now();
    leader.engine.cluster_stop().await;
    assert!(!status(leader).leading);
    eventually("the follower to take over", Duration::from_secs(5), || {
        status(follower).leading.then_some(())
    })
    .await;
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(5), "hand-over took {took:?}");
    let row = lease_row(&pool).await;
    assert_eq!(row.holder, follower.id);
    assert_eq!(row.term, first.term + 1);
    // The stopped node's record is gone; the other's stays.
    let listed: Vec<String> = follower
        .store
        .node_list(Duration::from_secs(10))
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(listed, [follower.id.as_str()]);
}

#[tokio::test]
async fn a_leader_that_loses_the_database_steps_down_by_its_own_clock() {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    let Some((db, pool)) = database().await else {
        return;
    };
    // This test is about the clock: a short lease (renewals every second).
    let config = lease(Duration::from_secs(3));
    let options: PgConnectOptions = db.url.parse().unwrap();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = support::silent_proxy::SilentProxy::start(target).await;
    let through_proxy = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(true)
        .connect_with(options.host("127.0.0.1").port(proxy.address.port()))
        .await
        .unwrap();
    let a = node_over(
        PgStore::from_pool(through_proxy, "node-a"),
        &db.url,
        "node-a",
        config.clone(),
        Vec::new(),
        false,
    )
    .await;
    let nodes = [a];
    the_leader(&nodes, "node-a to lead alone").await;
    let [a] = nodes;
    let b = start_node(&db.url, "node-b", config.clone(), Vec::new(), false).await;
    eventually("node-b to follow node-a", Duration::from_secs(10), || {
        (status(&b).leader.as_deref() == Some("node-a")).then_some(())
    })
    .await;

    // node-a's database connections go silent: its renewals hang.
    let mut a_status = a.engine.leadership();
    let mut b_status = b.engine.leadership();
    proxy.cut();
    let cut = Instant::now();
    let a_down = tokio::spawn(async move {
        a_status.wait_for(|s| !s.leading).await.unwrap();
        Instant::now()
    });
    let b_up = tokio::spawn(async move {
        b_status.wait_for(|s| s.leading).await.unwrap();
        Instant::now()
    });
    let a_down = tokio::time::timeout(Duration::from_secs(10), a_down)
        .await
        .expect("node-a to step down within the lease")
        .unwrap();
    let b_up = tokio::time::timeout(Duration::from_secs(10), b_up)
        .await
        .expect("node-b to take over after the lease ran out")
        .unwrap();
    eprintln!(
        "lease {:?}: node-a stepped down {:?} after losing the database, node-b led {:?} after",
        config.leader_lease,
        a_down - cut,
        b_up - cut
    );
    assert!(
        a_down <= b_up,
        "node-a stepped down {:?} after node-b took over",
        a_down - b_up
    );
    assert!(
        a_down - cut <= config.leader_lease + Duration::from_millis(500),
        "node-a stepped down {:?} after losing the database, lease {:?}",
        a_down - cut,
        config.leader_lease
    );
    assert_eq!(lease_row(&pool).await.holder, "node-b");
    let s = a.engine.leadership().borrow().clone();
    assert!(!s.leading);
    assert_eq!(s.leader, None, "node-a no longer knows who leads");
}

#[tokio::test]
async fn a_leader_whose_database_refuses_connections_steps_down_by_its_own_clock() {
    let Some((db, pool)) = database().await else {
        return;
    };
    // About the clock: a short lease (renewals every second).
    let config = lease(Duration::from_secs(3));
    let (proxy, through) = tasker_testkit::TcpProxy::in_front_of(&db.url)
        .await
        .unwrap();
    let a = [start_node(&through, "node-a", config.clone(), Vec::new(), false).await];
    the_leader(&a, "node-a to lead alone").await;
    let [a] = a;
    let b = start_node(&db.url, "node-b", config.clone(), Vec::new(), false).await;
    eventually("node-b to follow node-a", Duration::from_secs(10), || {
        (status(&b).leader.as_deref() == Some("node-a")).then_some(())
    })
    .await;

    // node-a's connections are closed and new ones refused: its renewals
    // fail at once, again and again.
    let mut a_status = a.engine.leadership();
    let mut b_status = b.engine.leadership();
    let cut = Instant::now();
    proxy.cut().await;
    tokio::time::timeout(Duration::from_secs(10), a_status.wait_for(|s| !s.leading))
        .await
        .expect("node-a to step down within the lease")
        .unwrap();
    let a_down = Instant::now();
    assert!(
        !b_status.borrow().leading,
        "node-b led before node-a stepped down"
    );
    tokio::time::timeout(Duration::from_secs(10), b_status.wait_for(|s| s.leading))
        .await
        .expect("node-b to take over after the lease ran out")
        .unwrap();
    assert!(
        a_down - cut <= config.leader_lease + Duration::from_millis(500),
        "node-a stepped down {:?} after losing the database",
        a_down - cut
    );
    assert_eq!(lease_row(&pool).await.holder, "node-b");
    assert!(!a.engine.leadership().borrow().leading);
}

/// A duty that says whether it runs, and how often it was started.
#[derive(Default)]
struct ProbeDuty {
    running: Arc<AtomicBool>,
    starts: AtomicU64,
}

struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl LeaderDuty for ProbeDuty {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn run(self: Arc<Self>, context: DutyContext) -> BoxFuture<'static, ()> {
        async move {
            assert!(context.term > 0);
            self.starts.fetch_add(1, Ordering::SeqCst);
            self.running.store(true, Ordering::SeqCst);
            let _running = Running(self.running.clone());
            std::future::pending::<()>().await;
        }
        .boxed()
    }
}

#[tokio::test]
async fn duties_run_on_the_leader_only_and_stop_when_leadership_is_lost() {
    let Some((db, pool)) = database().await else {
        return;
    };
    let probes = [
        Arc::new(ProbeDuty::default()),
        Arc::new(ProbeDuty::default()),
    ];
    let mut nodes = Vec::new();
    for (id, probe) in ["node-a", "node-b"].iter().zip(&probes) {
        let duty: Arc<dyn LeaderDuty> = probe.clone();
        nodes.push(start_node(&db.url, id, ClusterConfig::default(), vec![duty], false).await);
    }
    let leader = the_leader(&nodes, "a leader").await;
    let (lead, follow) = if leader.id == "node-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    eventually(
        "the leader's duty to start",
        Duration::from_secs(10),
        || probes[lead].running.load(Ordering::SeqCst).then_some(()),
    )
    .await;
    assert!(!probes[follow].running.load(Ordering::SeqCst));
    assert_eq!(probes[follow].starts.load(Ordering::SeqCst), 0);

    // Another holder takes the lease (as after a partition): the leader
    // learns it at its next renewal and its duties stop.
    sqlx::query(
        "UPDATE tasker.leadership SET holder = 'node-elsewhere', term = term + 1, \
           acquired_at = now(), expires_at = now() + interval '1 hour' WHERE name = $1",
    )
    .bind(MAINTENANCE)
    .execute(&pool)
    .await
    .unwrap();
    leader.engine.leadership_wake();
    eventually(
        "the old leader's duty to stop",
        Duration::from_secs(10),
        || (!probes[lead].running.load(Ordering::SeqCst)).then_some(()),
    )
    .await;
    let s = status(leader);
    assert!(!s.leading);
    assert_eq!(s.leader.as_deref(), Some("node-elsewhere"));
    assert_eq!(s.changes, 2);
    assert_eq!(probes[lead].starts.load(Ordering::SeqCst), 1);
    assert_eq!(probes[follow].starts.load(Ordering::SeqCst), 0);

    // When that lease runs out, one of ours leads again and its duty runs.
    expire_lease(&pool).await;
    for node in &nodes {
        node.engine.leadership_wake();
    }
    let next = the_leader(&nodes, "a leader again").await;
    let i = if next.id == "node-a" { 0 } else { 1 };
    eventually(
        "the new leader's duty to start",
        Duration::from_secs(10),
        || probes[i].running.load(Ordering::SeqCst).then_some(()),
    )
    .await;
    assert!(!probes[1 - i].running.load(Ordering::SeqCst));
}

#[tokio::test]
async fn the_leader_removes_records_of_nodes_gone_for_long() {
    let Some((db, pool)) = database().await else {
        return;
    };
    sqlx::query(
        "INSERT INTO tasker.nodes (id, version, address, pid, started_at, last_heartbeat_at) VALUES \
           ('gone-long', '0.1.0', 'http://x', 1, now() - interval '2 hours', now() - interval '1 hour'), \
           ('gone-lately', '0.1.0', 'http://y', 2, now() - interval '2 hours', now() - interval '30 seconds')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let nodes = [start_node(
        &db.url,
        "node-a",
        ClusterConfig::default(),
        Vec::new(),
        false,
    )
    .await];
    the_leader(&nodes, "node-a to lead").await;
    let ids = || async {
        sqlx::query_scalar::<_, String>("SELECT id FROM tasker.nodes ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids().await.contains(&"gone-long".to_owned()) {
        assert!(
            Instant::now() < deadline,
            "the reaper never removed gone-long"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Gone for three timeouts: not listed, but its record is kept a while.
    assert_eq!(ids().await, ["gone-lately", "node-a"]);
    let listed: Vec<String> = nodes[0]
        .store
        .node_list(ClusterConfig::default().node_timeout)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(listed, ["node-a"]);
}

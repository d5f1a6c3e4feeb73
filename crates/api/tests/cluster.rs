//! `GET /v1/cluster` and the cluster metrics with two nodes (two apps over
//! one database, each serving real HTTP and in the cluster): live nodes with
//! the leader marked, dead nodes dropping out, version skew, and workers
//! with their steps in flight. Read through the typed client.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use support::*;
use tasker_api::{ApiConfig, AppState};
use tasker_client::{Client, ClusterInfo};
use tasker_engine::{ClusterConfig, Engine, EngineConfig};
use tasker_postgres::PgStore;
use tasker_store::NodeRegistration;
use tokio::time::Instant;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Heartbeats every 100 ms, so that the live-node count follows quickly;
/// the lease is the default.
fn cluster_config() -> ClusterConfig {
    ClusterConfig {
        node_heartbeat_interval: Duration::from_millis(100),
        ..ClusterConfig::default()
    }
}

struct Node {
    id: &'static str,
    state: AppState,
    client: Client,
    address: String,
}

/// Serves `state` on a port of its own and joins the cluster with the
/// address it got.
async fn serve(id: &'static str, state: AppState) -> Node {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let router = tasker_api::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    state
        .engine
        .cluster_start(
            NodeRegistration {
                node_id: id.to_owned(),
                version: VERSION.to_owned(),
                address: address.clone(),
                pid: std::process::id(),
                started_at: state.config.started_at,
            },
            cluster_config(),
            Vec::new(),
        )
        .await
        .expect("joins the cluster");
    Node {
        id,
        client: Client::new(&address, Some(OPERATOR.into())).unwrap(),
        state,
        address,
    }
}

/// A second node over the first one's database.
async fn second_state(app: &TestApp, id: &str) -> AppState {
    let store = PgStore::connect(&app.db.url, &small_pool(), id)
        .await
        .unwrap();
    let engine = EngineConfig::default();
    let mut config = ApiConfig::for_engine(&engine);
    config.node_id = id.into();
    config.auth = auth();
    AppState::new(Engine::new(Arc::new(store), engine), config)
}

async fn two_nodes() -> (TestApp, Node, Node) {
    let app = test_app().await;
    let a = serve("node-a", app.state.clone()).await;
    let b = serve("node-b", second_state(&app, "node-b").await).await;
    (app, a, b)
}

/// Asks `client` until `check` holds (bounded).
async fn cluster_until(
    client: &Client,
    what: &str,
    check: impl Fn(&ClusterInfo) -> bool,
) -> ClusterInfo {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cluster = client.cluster().await.expect("GET /v1/cluster");
        if check(&cluster) {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}; last answer {cluster:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scrape(node: &Node) -> String {
    let router = tasker_api::app(node.state.clone());
    send(router, request(Method::GET, "/metrics", None, None))
        .await
        .expect(StatusCode::OK)
        .text()
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

async fn set_heartbeat_ago(pool: &PgPool, node_id: &str, seconds: i32) {
    sqlx::query(
        "UPDATE tasker.nodes SET last_heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1",
    )
    .bind(node_id)
    .bind(f64::from(seconds))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lists_live_nodes_with_the_leader_and_drops_dead_ones() {
    let (app, a, b) = two_nodes().await;
    let cluster = cluster_until(&b.client, "a leader and two nodes", |c| {
        c.leader.is_some() && c.nodes.len() == 2
    })
    .await;
    assert_eq!(cluster.node_id, "node-b", "the answering node");
    let leader = cluster.leader.clone().unwrap();
    assert_eq!(leader.term, 1);
    assert!(leader.expires_at > leader.since);
    let ids: Vec<&str> = cluster
        .nodes
        .iter()
        .map(|n| n.node.node_id.as_str())
        .collect();
    assert_eq!(ids, ["node-a", "node-b"]);
    for (node, listed) in [&a, &b].iter().zip(&cluster.nodes) {
        assert_eq!(listed.node.address, node.address);
        assert_eq!(listed.node.version, VERSION);
        assert_eq!(listed.node.pid, std::process::id());
        assert_eq!(listed.leader, listed.node.node_id == leader.node_id);
        assert!(!listed.version_skew);
    }
    // Both nodes agree.
    let from_a = a.client.cluster().await.unwrap();
    assert_eq!(from_a.leader, Some(leader.clone()));
    assert_eq!(from_a.node_id, "node-a");

    // Metrics: the leader says so, the follower does not; both count two
    // live nodes.
    let (leading, following) = if leader.node_id == a.id {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (l, f) = (scrape(leading).await, scrape(following).await);
        let l_series = format!("tasker_leader{{node_id=\"{}\"}}", leading.id);
        let f_series = format!("tasker_leader{{node_id=\"{}\"}}", following.id);
        if metric(&l, &l_series) == Some(1.0)
            && metric(&f, &f_series) == Some(0.0)
            && metric(&l, "tasker_cluster_nodes") == Some(2.0)
            && metric(&f, "tasker_cluster_nodes") == Some(2.0)
        {
            assert_eq!(metric(&l, "tasker_leadership_changes_total"), Some(1.0));
            assert_eq!(metric(&f, "tasker_leadership_changes_total"), Some(1.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cluster metrics never settled:\n{l}\n---\n{f}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The follower dies: its heartbeats stop, and once its last one is
    // older than the node timeout it is no longer listed.
    following.state.engine.cluster_abandon().await;
    set_heartbeat_ago(app.store.pool(), following.id, 11).await;
    let cluster = leading.client.cluster().await.unwrap();
    let ids: Vec<&str> = cluster
        .nodes
        .iter()
        .map(|n| n.node.node_id.as_str())
        .collect();
    assert_eq!(ids, [leading.id]);
    assert!(cluster.node(leading.id).unwrap().leader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&scrape(leading).await, "tasker_cluster_nodes") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the live-node count never dropped to 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_another_version_than_most_is_flagged() {
    let (app, a, _b) = two_nodes().await;
    sqlx::query(
        "INSERT INTO tasker.nodes (id, version, address, pid, started_at) \
         VALUES ('node-old', '0.0.1-old', 'http://127.0.0.1:1', 7, now())",
    )
    .execute(app.store.pool())
    .await
    .unwrap();
    let cluster = cluster_until(&a.client, "three nodes", |c| c.nodes.len() == 3).await;
    let skewed: Vec<(&str, bool)> = cluster
        .nodes
        .iter()
        .map(|n| (n.node.node_id.as_str(), n.version_skew))
        .collect();
    assert_eq!(
        skewed,
        [("node-a", false), ("node-b", false), ("node-old", true)]
    );
    // Once the old node is gone, nobody is skewed.
    set_heartbeat_ago(app.store.pool(), "node-old", 60).await;
    let cluster = a.client.cluster().await.unwrap();
    assert_eq!(cluster.nodes.len(), 2);
    assert!(cluster.nodes.iter().all(|n| !n.version_skew));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_listed_with_their_steps_in_flight() {
    let (app, a, _b) = two_nodes().await;
    app.register_yaml(&template(
        "default",
        "fan",
        "
  - { name: a, handler: h.a }
  - { name: b, handler: h.b }
  - { name: c, handler: h.c }
",
    ))
    .await
    .expect(StatusCode::CREATED);
    app.register_worker("busy", &["default"]).await;
    app.register_worker("idle", &["default"]).await;
    app.create_task("default", "fan", json!({})).await;
    let claimed = app.poll("busy", &["default"], 2).await;
    assert_eq!(claimed.len(), 2);

    let cluster = a.client.cluster().await.unwrap();
    let in_flight = |cluster: &ClusterInfo, id: &str| {
        cluster
            .workers
            .iter()
            .find(|w| w.worker.worker_id == id)
            .unwrap_or_else(|| panic!("worker {id} listed"))
            .in_flight
    };
    assert_eq!(in_flight(&cluster, "busy"), 2);
    assert_eq!(in_flight(&cluster, "idle"), 0);
    let busy = cluster
        .workers
        .iter()
        .find(|w| w.worker.worker_id == "busy")
        .unwrap();
    assert_eq!(busy.worker.namespaces, ["default"]);

    // A finished step is no longer in flight.
    app.report(&claimed[0], "complete", json!({"result": {}}))
        .await
        .expect(StatusCode::OK);
    let cluster = a.client.cluster().await.unwrap();
    assert_eq!(in_flight(&cluster, "busy"), 1);
}

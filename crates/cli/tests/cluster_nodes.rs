//! Two `tasker server` processes on one database form a cluster: each
//! registers with the address it bound (port 0), one leads, and a leader
//! stopped with SIGTERM hands the leadership over at once and leaves the
//! node list.

mod support;

use std::time::Duration;

use support::*;
use tasker_testkit::TestDatabase;

fn node(id: &str, database_url: &str) -> (Process, String) {
    let mut process = Process::start(
        id,
        tasker()
            .args(["server", "--listen", "127.0.0.1:0", "--node-id", id])
            .args(["--database-url", database_url])
            .env("TASKER_AUTH_ENABLED", "false")
            // A long lease: without the resignation's notification the
            // follower would try again only after a third of it (20 s).
            .env("TASKER_CLUSTER_LEADER_LEASE", "60s")
            .env("RUST_LOG", "info,sqlx=warn"),
    );
    let url = listening_url(&process.wait_for_line("listening on ", Duration::from_secs(60)));
    (process, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_nodes_list_each_other_and_hand_over_leadership_on_sigterm() {
    let db = TestDatabase::create().await.expect("test database");
    let (mut first, first_url) = node("node-1", &db.url);
    // node-1 leads before node-2 starts; its lease runs for a minute.
    first.wait_for_line("this node is now the leader", Duration::from_secs(10));
    let (second, second_url) = node("node-2", &db.url);
    let client = tasker_client::Client::new(&second_url, None).unwrap();

    let cluster = wait_until(
        "both nodes listed with a leader",
        Duration::from_secs(30),
        || async {
            let cluster = client.cluster().await.ok()?;
            (cluster.nodes.len() == 2 && cluster.leader.is_some()).then_some(cluster)
        },
    )
    .await;
    let one = cluster.node("node-1").expect("node-1 listed");
    let two = cluster.node("node-2").expect("node-2 listed");
    assert_eq!(one.node.address, first_url, "the address node-1 bound");
    assert_eq!(two.node.address, second_url);
    assert_eq!(one.node.pid, first.pid());
    assert_eq!(two.node.pid, second.pid());
    let leader = cluster.leader.clone().unwrap();
    assert_eq!(leader.node_id, "node-1");
    assert!(one.leader && !two.leader);

    let stopped = std::time::Instant::now();
    first.signal("TERM");
    let status = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "node-1 exited with {status}");
    assert!(
        first.output().contains("resigned the leadership"),
        "{}",
        first.output()
    );
    let cluster = wait_until("node-2 to lead", Duration::from_secs(10), || async {
        let cluster = client.cluster().await.ok()?;
        (cluster.leader.as_ref()?.node_id == "node-2").then_some(cluster)
    })
    .await;
    eprintln!("hand-over on SIGTERM took {:?}", stopped.elapsed());
    assert_eq!(cluster.leader.unwrap().term, leader.term + 1);
    let ids: Vec<&str> = cluster
        .nodes
        .iter()
        .map(|n| n.node.node_id.as_str())
        .collect();
    assert_eq!(ids, ["node-2"], "a node stopped gracefully leaves the list");
    assert!(cluster.nodes[0].leader);
}

//! `tasker cluster` itself: what it says when a port is taken or a cluster
//! is already up, `status` before and after an instance dies, `logs`, and
//! `down` run twice. The clusters here are small (one node, no worker).
//!
//! The suite's tests take turns (`cluster::serial`): one cluster at a time.

mod support;

use std::net::TcpListener;

use support::cluster::{self, Cluster, Options};
use tasker_testkit::TestDatabase;

fn small() -> Options {
    Options {
        nodes: 1,
        workers: 0,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_named_with_its_holder_before_anything_starts() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let output = support::tasker()
        .args([
            "cluster",
            "up",
            "--nodes",
            "1",
            "--workers",
            "0",
            "--port",
            "0",
        ])
        .args(["--base-port", &port.to_string(), "--database-url", &db.url])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "port {port} (for the node) is taken by pid {}",
            std::process::id()
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("cluster.json").exists(), "nothing started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_logs_and_down_follow_the_cluster_through_its_life() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(&db.url, small());

    // A second `up` in the same state directory is refused.
    let again = cluster
        .command(&[
            "up",
            "--base-port",
            "0",
            "--port",
            "0",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    let status = cluster.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(
        text.contains("node-1") && text.contains("balancer"),
        "{text}"
    );
    assert!(text.contains(&cluster.balancer), "{text}");

    let logs = cluster.command(&["logs", "node-1"]).output().unwrap();
    assert!(String::from_utf8_lossy(&logs.stdout).contains("listening on http://127.0.0.1:"));

    // The node dies: status says so, and exits 1.
    let node = cluster.nodes[0].clone();
    cluster::kill_hard(node.pid);
    cluster.wait_gone(node.pid).await;
    let status = cluster.status();
    let node_status = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "node-1")
        .unwrap()
        .clone();
    assert_eq!(node_status["alive"], false);
    assert_eq!(node_status["ready"], false);
    let code = cluster.command(&["status"]).output().unwrap().status.code();
    assert_eq!(code, Some(1));

    // Down stops the rest; a second down is fine; status then finds nothing.
    let down = cluster
        .command(&["down", "--grace", "3s"])
        .output()
        .unwrap();
    assert!(down.status.success());
    let balancer_pid = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "balancer")
        .unwrap()["pid"]
        .as_u64()
        .unwrap() as u32;
    cluster.wait_gone(balancer_pid).await;
    assert!(
        !cluster.dir.path().join("run").exists(),
        "pid files removed"
    );
    let down = cluster.command(&["down"]).output().unwrap();
    assert!(down.status.success());
    let status = cluster.command(&["status"]).output().unwrap();
    assert_eq!(status.status.code(), Some(4));
    // The logs outlive the cluster.
    let logs = cluster
        .command(&["logs", "balancer", "-n", "5"])
        .output()
        .unwrap();
    assert!(logs.status.success());
}

//! The cluster suite, failures: worker and node processes SIGKILLed,
//! PostgreSQL stopped and started again, the nodes' database connections
//! killed over and over, the connection pool exhausted. After each, every
//! task completes and every step has exactly one accepted result.
//!
//! Leases are 3 s here (`TASKER_ENGINE_LEASE_DURATION`), so that a step
//! whose worker died is delivered again within seconds.
//!
//! The leading node SIGKILLed: another node takes the leadership lease
//! (3 s here, `TASKER_CLUSTER_LEADER_LEASE`) and the work goes on.
//!
//! The suite's tests take turns (`cluster::serial`): one cluster at a time.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::{Value, json};
use support::cluster::{self, Cluster, Options, new_task, short_leases};
use support::wait_until;
use tasker_client::{Client, NewTask};
use tasker_testkit::{LocalServer, TestDatabase};

/// Creates the task, sending it again (same idempotency key, so it lands
/// once) until an answer says it was accepted.
async fn create_until_accepted(client: &Client, mut task: NewTask, key: String) -> uuid::Uuid {
    task.idempotency_key = Some(key.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.task_create(&task).await {
            Ok((created, _)) => return created.id,
            Err(error) => {
                assert!(Instant::now() < deadline, "{key} never accepted: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn running_steps_of(db: &str, worker: &str) -> i64 {
    let mut conn = cluster::connect(db).await;
    sqlx::query_scalar(
        "SELECT count(*) FROM tasker.steps WHERE state = 'running' AND worker_id = $1",
    )
    .bind(worker)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_step_and_a_node_killed_lose_nothing() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            worker_concurrency: 4,
            env: short_leases(),
            ..Options::default()
        },
    );
    let client = cluster.client();
    let mut ids = Vec::new();
    for i in 0..24 {
        let context = json!({"even_number": 2, "sleep_ms": {"step_2": 1000}});
        ids.push(
            create_until_accepted(
                &client,
                new_task("examples", "linear", context),
                format!("k{i}"),
            )
            .await,
        );
    }
    let victim = &cluster.workers[0];
    wait_until(
        "worker-1 running a step",
        Duration::from_secs(30),
        || async { (running_steps_of(&db.url, &victim.name).await > 0).then_some(()) },
    )
    .await;
    cluster::kill_hard(victim.pid);
    let node = &cluster.nodes[1];
    cluster::kill_hard(node.pid);
    cluster.wait_gone(node.pid).await;

    let status = cluster.status();
    let stopped: BTreeSet<&str> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["alive"] == false)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stopped,
        BTreeSet::from(["worker-1", "node-2"]),
        "status sees the dead"
    );

    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(90)).await;
    assert_eq!(states, [("complete".to_owned(), 24)]);
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
    let mut conn = cluster::connect(&db.url).await;
    let redelivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasker.steps WHERE attempt > 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(redelivered > 0, "the killed worker's steps ran again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_reconnect_after_postgresql_restarts_and_every_task_completes() {
    let _turn = cluster::serial().await;
    // A PostgreSQL of this test's own: the shared server is never stopped.
    let pg_dir = tempfile::Builder::new()
        .prefix("tasker-restart-pg-")
        .tempdir_in("/tmp")
        .unwrap();
    let server = LocalServer::start(pg_dir.path(), 0).unwrap();
    let url = server.url("tasker_restart");
    let cluster = Cluster::up(
        &url,
        Options {
            env: short_leases(),
            ..Options::default()
        },
    );
    let client = cluster.client();
    for i in 0..30 {
        let context = json!({"even_number": 2, "sleep_ms": {"step_2": 300}});
        create_until_accepted(
            &client,
            new_task("examples", "linear", context),
            format!("a{i}"),
        )
        .await;
    }
    wait_until("a few tasks complete", Duration::from_secs(30), || async {
        let mut conn = cluster::connect(&url).await;
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tasker.tasks WHERE state = 'complete'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        (done >= 3).then_some(())
    })
    .await;

    server.stop().unwrap();
    // The outage itself: the nodes and workers face no database for a while.
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.restart().unwrap();

    for i in 0..5 {
        create_until_accepted(
            &client,
            new_task("examples", "diamond", json!({"start": i})),
            format!("b{i}"),
        )
        .await;
    }
    let states = cluster::wait_all_finished(&url, Duration::from_secs(90)).await;
    assert_eq!(states, [("complete".to_owned(), 35)]);
    assert!(
        cluster::steps_without_exactly_one_result(&url)
            .await
            .is_empty()
    );
    drop(cluster);
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_complete_while_the_nodes_database_connections_are_killed_over_and_over() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            nodes: 2,
            env: short_leases(),
            ..Options::default()
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    // Only this test's database: other tests' connections are left alone.
    let killer = {
        let (stop, kills, url) = (stop.clone(), kills.clone(), db.url.clone());
        tokio::spawn(async move {
            let mut conn = cluster::connect(&url).await;
            while !stop.load(Ordering::Relaxed) {
                let killed: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()) AS k",
                )
                .fetch_one(&mut conn)
                .await
                .unwrap();
                kills.fetch_add(killed as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        })
    };
    // A sustained run: a task every 50 ms for 12 s.
    let client = cluster.client();
    let started = Instant::now();
    let mut created = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let task = new_task("examples", "diamond", json!({"start": created}));
        create_until_accepted(&client, task, format!("t{created}")).await;
        created += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();
    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(90)).await;
    assert_eq!(states, [("complete".to_owned(), created)]);
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
    let kills = kills.load(Ordering::Relaxed);
    assert!(kills >= 10, "backends killed: {kills}");
    eprintln!("{created} tasks complete through {kills} killed backends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_answers_within_a_bound_and_the_node_serves_normally_after() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            nodes: 1,
            workers: 0,
            env: vec![
                ("TASKER_DATABASE_MAX_CONNECTIONS".to_owned(), "2".to_owned()),
                (
                    "TASKER_DATABASE_ACQUIRE_TIMEOUT".to_owned(),
                    "2s".to_owned(),
                ),
            ],
            ..Options::default()
        },
    );
    let node = cluster.nodes[0].url.clone().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // 300 requests at once on a node with 2 connections.
    let requests = (0..300).map(|i| {
        let (http, node) = (&http, &node);
        async move {
            let started = Instant::now();
            let reply = if i % 2 == 0 {
                http.post(format!("{node}/v1/tasks"))
                    .json(&json!({"namespace": "examples", "template": "tree", "context": {}}))
                    .send()
                    .await
            } else {
                http.get(format!("{node}/v1/tasks?limit=100")).send().await
            };
            let reply = reply.unwrap_or_else(|e| panic!("request {i} got no answer: {e}"));
            (reply.status().as_u16(), started.elapsed())
        }
    });
    let answers: Vec<(u16, Duration)> = futures::stream::iter(requests)
        .buffer_unordered(300)
        .collect()
        .await;
    let slowest = answers.iter().map(|(_, t)| *t).max().unwrap();
    let statuses: BTreeSet<u16> = answers.iter().map(|(s, _)| *s).collect();
    eprintln!("300 requests on 2 connections: statuses {statuses:?}, slowest {slowest:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 201 | 500..=599)),
        "only successes or 5xx: {statuses:?}"
    );
    assert!(
        slowest < Duration::from_secs(20),
        "slowest answer {slowest:?}"
    );

    // Served normally afterwards, without a restart.
    let client = cluster.nodes[0].client();
    let ready = client.ready().await.unwrap();
    assert!(ready.ready, "{ready:?}");
    let (task, _) = client
        .task_create(&new_task("examples", "linear", json!({"even_number": 2})))
        .await
        .unwrap();
    let fetched = client.task_get(task.id).await.unwrap();
    assert_eq!(fetched.id, task.id);
    let value: Value = http
        .get(format!("{node}/v1/tasks?limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(value["tasks"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(
        support::cluster::runs(cluster.nodes[0].pid),
        "the node kept running"
    );
}

/// The leader as the cluster view of `client`'s node says: (node id, term).
async fn leader_seen_by(client: &Client) -> Option<(String, u64)> {
    let view = client.cluster().await.ok()?;
    view.leader.map(|leader| (leader.node_id, leader.term))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_killed_mid_run_is_replaced_within_its_lease_and_nothing_is_lost() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let mut env = short_leases();
    env.push(("TASKER_CLUSTER_LEADER_LEASE".to_owned(), "3s".to_owned()));
    let cluster = Cluster::up(
        &db.url,
        Options {
            env,
            ..Options::default()
        },
    );
    let client = cluster.client();
    let (leader, term) = wait_until("a leader", Duration::from_secs(30), || async {
        leader_seen_by(&client).await
    })
    .await;
    let status = cluster.status();
    let roles: Vec<(String, String)> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "node")
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["role"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles.iter().filter(|(_, role)| role == "leader").count(),
        1,
        "status shows one leader: {roles:?}"
    );
    assert!(
        roles.contains(&(leader.clone(), "leader".to_owned())),
        "status agrees with the cluster view on {leader}: {roles:?}"
    );

    let mut ids = Vec::new();
    for i in 0..30 {
        let context = json!({"even_number": 2, "sleep_ms": {"step_2": 300}});
        let task = new_task("examples", "linear", context);
        ids.push(create_until_accepted(&client, task, format!("k{i}")).await);
    }
    let victim = cluster
        .nodes
        .iter()
        .find(|node| node.name == leader)
        .unwrap_or_else(|| panic!("the leader {leader} is one of the harness's nodes"));
    cluster::kill_hard(victim.pid);
    let killed_at = Instant::now();
    let survivor = cluster
        .nodes
        .iter()
        .find(|node| node.name != leader)
        .unwrap()
        .client();
    let (successor, new_term) = wait_until("another leader", Duration::from_secs(30), || async {
        leader_seen_by(&survivor)
            .await
            .filter(|(node, _)| *node != leader)
    })
    .await;
    let failover = killed_at.elapsed();
    assert!(new_term > term, "a new tenure: term {term} then {new_term}");
    // Whatever the machine's load, the lease bounds the takeover: one lease
    // from the last renewal, plus a follower's pause (at most a third of a
    // lease), plus the time to see it; far less than this.
    assert!(
        failover < Duration::from_secs(12),
        "{successor} took over {failover:?} after the leader died"
    );
    eprintln!("leader {leader} killed; {successor} leads after {failover:?} (term {new_term})");

    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(90)).await;
    assert_eq!(states, [("complete".to_owned(), ids.len() as i64)]);
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
}

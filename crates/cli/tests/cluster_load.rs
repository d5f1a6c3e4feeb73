//! The cluster suite, load and distribution: a local cluster started with
//! `tasker cluster up` (nodes, example workers, nginx in front) on a fresh
//! database, driven through the balancer and directly at the nodes.
//!
//! The suite's tests take turns (`cluster::serial`): one cluster at a time.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::{Value, json};
use support::cluster::{self, Cluster, Options, new_task};
use tasker_model::TaskState;
use tasker_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_created_concurrently_on_every_node_all_complete_and_every_node_agrees() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(&db.url, Options::default());

    // 20 diamonds through each node directly, all at once.
    let creations = (0..60).map(|i| {
        let node = cluster.nodes[i % 3].client();
        async move {
            let (task, created) = node
                .task_create(&new_task("examples", "diamond", json!({"start": i})))
                .await
                .expect("create");
            assert!(created);
            (task.id, i as i64)
        }
    });
    let created: Vec<(uuid::Uuid, i64)> = futures::stream::iter(creations)
        .buffer_unordered(30)
        .collect()
        .await;
    let ids: BTreeSet<_> = created.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 60, "task ids are unique");

    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(60)).await;
    assert_eq!(states, [("complete".to_owned(), 60)]);

    // Every node reports the same final state and the same results, and the
    // results are those of the diamond: end = 2(start+1) + 3(start+1).
    for (id, start) in &created {
        let mut seen = Vec::new();
        for node in &cluster.nodes {
            let client = node.client();
            let task = client.task_get(*id).await.unwrap();
            let steps = client.task_steps(*id).await.unwrap();
            let results: BTreeMap<String, Option<Value>> = steps
                .into_iter()
                .map(|s| (s.name.clone(), s.result.clone()))
                .collect();
            seen.push((task.state, results));
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree on {id}: {seen:?}"
        );
        let (state, results) = &seen[0];
        assert_eq!(*state, TaskState::Complete);
        assert_eq!(
            results["end"].as_ref().unwrap()["value"],
            json!(5 * (start + 1))
        );
    }
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_hundreds_is_accepted_or_cleanly_refused_and_none_is_lost_or_doubled() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(&db.url, Options::default());
    const TASKS: usize = 400;

    // All at once through the balancer, each with its own idempotency key:
    // a refused create (503 + Retry-After) is sent again after the pause it
    // asked for, and a create that may or may not have landed (no answer)
    // is sent again too; the key makes a second landing impossible.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/tasks", cluster.balancer);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let creations = (0..TASKS).map(|i| {
        let (http, url, refused) = (&http, &url, &refused);
        async move {
            let body = json!({"namespace": "examples", "template": "linear",
                "context": {"even_number": 2}, "idempotency_key": format!("burst-{i}")});
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                assert!(Instant::now() < deadline, "create burst-{i} never accepted");
                let reply = match http.post(url).json(&body).send().await {
                    Ok(reply) => reply,
                    Err(_) => continue,
                };
                let status = reply.status().as_u16();
                match status {
                    200 | 201 => {
                        let task: Value = reply.json().await.unwrap();
                        return task["id"].as_str().unwrap().to_owned();
                    }
                    503 => {
                        let after = reply
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        let after = after.expect("a 503 carries Retry-After in seconds");
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(after.min(2))).await;
                    }
                    other => panic!(
                        "create burst-{i}: HTTP {other}: {}",
                        reply.text().await.unwrap_or_default()
                    ),
                }
            }
        }
    });
    let ids: Vec<String> = futures::future::join_all(creations).await;
    let accepted_in = started.elapsed();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), TASKS, "one task per idempotency key");

    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(90)).await;
    let finished_in = started.elapsed();
    assert_eq!(states, [("complete".to_owned(), TASKS as i64)]);
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
    eprintln!(
        "burst of {TASKS} linear tasks: accepted in {accepted_in:?} ({} refused with 503 first), \
         all complete after {finished_in:?}",
        refused.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_balancer_spreads_requests_round_robin_over_the_nodes() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            workers: 0,
            ..Options::default()
        },
    );
    let node_of_port: BTreeMap<String, String> = cluster
        .nodes
        .iter()
        .map(|n| {
            let url = n.url.as_deref().unwrap();
            (url.trim_start_matches("http://").to_owned(), n.name.clone())
        })
        .collect();

    // Reads: the answering node names itself, and nginx names the upstream.
    let http = reqwest::Client::new();
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..150 {
        let reply = http
            .get(format!("{}/v1/cluster", cluster.balancer))
            .send()
            .await
            .unwrap();
        let upstream = reply.headers()["x-tasker-upstream"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = reply.json().await.unwrap();
        let node = body["node_id"].as_str().unwrap().to_owned();
        assert_eq!(
            node_of_port[&upstream], node,
            "the header names the answering node"
        );
        *answered.entry(node).or_default() += 1;
    }
    assert_eq!(answered.len(), 3, "{answered:?}");
    assert!(
        answered.values().all(|n| (40..=60).contains(n)),
        "uneven: {answered:?}"
    );

    // Writes: the node that created each task records itself in its history.
    let client = cluster.client();
    for i in 0..60 {
        client
            .task_create(&new_task(
                "examples",
                "linear",
                json!({"even_number": 2 * i}),
            ))
            .await
            .unwrap();
    }
    let mut conn = cluster::connect(&db.url).await;
    let by_node: Vec<(String, i64)> = sqlx::query_as(
        "SELECT node_id, count(*) FROM tasker.transitions \
         WHERE step_id IS NULL AND to_state = 'running' GROUP BY node_id ORDER BY node_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(by_node.len(), 3, "{by_node:?}");
    assert!(
        by_node.iter().all(|(_, n)| (15..=25).contains(n)),
        "uneven: {by_node:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_polled_on_one_node_is_heartbeated_on_another_and_completed_on_a_third() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            workers: 0,
            ..Options::default()
        },
    );
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].client());
    let (task, _) = a
        .task_create(&new_task("examples", "linear", json!({"even_number": 2})))
        .await
        .unwrap();
    let namespaces = vec!["examples".to_owned()];
    a.worker_register(&tasker_client::WorkerRegistration {
        worker_id: "by-hand".to_owned(),
        namespaces: namespaces.clone(),
        handlers: vec![],
        concurrency: 1,
        version: None,
    })
    .await
    .unwrap();

    // Each of the four steps: polled on A, heartbeated on B, completed on
    // C with the value it would compute (the square of its input).
    let mut input: i64 = 2;
    for step in 1..=4 {
        let claimed = a
            .worker_poll("by-hand", &namespaces, 1, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "step_{step} was handed out");
        let lease = &claimed[0].lease;
        assert_eq!(claimed[0].step_name, format!("step_{step}"));
        let beat = b.step_heartbeat(lease).await.unwrap();
        assert!(!beat.cancelled);
        input *= input;
        let recorded = c
            .step_complete(lease, &json!({"value": input}))
            .await
            .unwrap();
        assert_eq!(format!("{recorded:?}"), "Applied");
    }
    let task = c.task_get(task.id).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(input, 65536);

    // The history says where each change happened.
    let mut conn = cluster::connect(&db.url).await;
    let changes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT to_state, node_id FROM tasker.transitions \
         WHERE task_id = $1 AND step_id IS NOT NULL AND to_state IN ('running', 'complete')",
    )
    .bind(task.id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(changes.len(), 8, "{changes:?}");
    for (state, node) in changes {
        let expected = if state == "running" {
            "node-1"
        } else {
            "node-3"
        };
        assert_eq!(node.as_deref(), Some(expected), "{state}");
    }
}

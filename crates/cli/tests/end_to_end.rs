//! End to end with real processes: `tasker server` nodes and the example
//! worker (`tasker worker example`) over a fresh PostgreSQL database, driven
//! through the HTTP client as a user's code would.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Process, listening_url, tasker, wait_for_step, wait_until};
use tasker_client::{Client, NewTask};
use tasker_model::{Step, StepState, Task, TaskState};
use tasker_testkit::TestDatabase;

struct Cluster {
    db: TestDatabase,
    nodes: Vec<(Process, Client)>,
    workers: Vec<Process>,
}

impl Cluster {
    /// `nodes` server processes on one fresh database, all migrated.
    async fn start(nodes: usize) -> Cluster {
        let db = TestDatabase::create().await.expect("test database");
        let mut cluster = Cluster {
            db,
            nodes: Vec::new(),
            workers: Vec::new(),
        };
        for n in 0..nodes {
            cluster.add_node(&format!("node-{n}")).await;
        }
        let client = cluster.client(0);
        for ns in ["examples", "orders"] {
            client.namespace_create(ns).await.unwrap();
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        for file in [
            "linear",
            "diamond",
            "mixed_dag",
            "tree",
            "order_fulfillment",
            "csv_import",
        ] {
            let yaml = std::fs::read_to_string(dir.join(format!("{file}.yaml"))).unwrap();
            client.template_register_yaml(&yaml).await.unwrap();
        }
        cluster
    }

    async fn add_node(&mut self, node_id: &str) {
        let mut process = Process::start(
            node_id,
            tasker()
                .args(["server", "--listen", "127.0.0.1:0", "--node-id", node_id])
                .args(["--database-url", &self.db.url])
                .env("TASKER_AUTH_ENABLED", "false")
                // Short leases so that a killed worker's step comes back quickly.
                .env("TASKER_ENGINE_LEASE_DURATION", "2s")
                .env("RUST_LOG", "warn"),
        );
        let url = listening_url(&process.wait_for_line("listening on ", Duration::from_secs(60)));
        let client = Client::new(&url, None).unwrap();
        wait_until(
            &format!("{node_id} ready"),
            Duration::from_secs(60),
            || async { client.ready().await.ok().filter(|ready| ready.ready) },
        )
        .await;
        self.nodes.push((process, client));
    }

    fn client(&self, node: usize) -> Client {
        self.nodes[node].1.clone()
    }

    fn url(&self, node: usize) -> String {
        self.nodes[node].1.base_url().to_string()
    }

    fn start_worker(&mut self, node: usize, worker_id: &str, concurrency: usize) {
        let process = Process::start(
            worker_id,
            tasker()
                .args(["worker", "example", "--server", &self.url(node)])
                .args(["--worker-id", worker_id])
                .args(["--concurrency", &concurrency.to_string()])
                .args(["--shutdown-grace", "300ms"])
                .env("RUST_LOG", "warn"),
        );
        self.workers.push(process);
    }

    async fn create(&self, template: &str, context: Value) -> Task {
        let namespace = if template == "order_fulfillment" {
            "orders"
        } else {
            "examples"
        };
        self.client(0)
            .task_create(&NewTask::new(namespace, template).context(context))
            .await
            .unwrap()
            .0
    }

    /// Waits until the task is final, returning it with its steps.
    async fn finished(&self, id: uuid::Uuid, within: Duration) -> (Task, Vec<Step>) {
        let client = self.client(0);
        let task = wait_until(&format!("task {id} final"), within, || async {
            client
                .task_get(id)
                .await
                .ok()
                .filter(|task| task.state.is_terminal())
        })
        .await;
        let steps = client.task_steps(id).await.unwrap();
        (task, steps)
    }

    async fn wait_for_step(&self, id: uuid::Uuid, name: &str, state: StepState) -> Step {
        wait_for_step(&self.client(0), id, name, state).await
    }
}

fn value(steps: &[Step], name: &str) -> i64 {
    let step = steps.iter().find(|s| s.name == name).unwrap();
    step.result
        .as_ref()
        .and_then(|r| r["value"].as_i64())
        .unwrap_or_else(|| panic!("{name}: {step:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_templates_complete_with_results_passed_from_parents() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_worker(0, "w1", 4);
    let linear = cluster.create("linear", json!({"even_number": 2})).await;
    let diamond = cluster.create("diamond", json!({"start": 1})).await;
    let mixed = cluster.create("mixed_dag", json!({"start": 1})).await;
    let tree = cluster.create("tree", json!({"start": 1})).await;

    let (task, steps) = cluster.finished(linear.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(value(&steps, "step_4"), 65536);

    let (task, steps) = cluster.finished(diamond.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(value(&steps, "end"), 10, "{steps:?}");

    let (task, steps) = cluster.finished(mixed.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(value(&steps, "finalize"), 89, "{steps:?}");

    let (task, steps) = cluster.finished(tree.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    for (leaf, expected) in [
        ("left_1", 211),
        ("left_2", 212),
        ("right_1", 221),
        ("right_2", 222),
        ("right_3", 223),
    ] {
        assert_eq!(value(&steps, leaf), expected, "{leaf}");
    }
    assert_eq!(steps.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_and_exhaustion_fails_the_task() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_worker(0, "w1", 4);
    let flaky = cluster
        .create(
            "linear",
            json!({"even_number": 2, "fail_times": {"step_2": 1}}),
        )
        .await;
    let doomed = cluster
        .create(
            "linear",
            json!({"even_number": 2, "fail_times": {"step_1": 3}}),
        )
        .await;

    let (task, steps) = cluster.finished(flaky.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    let step_2 = steps.iter().find(|s| s.name == "step_2").unwrap();
    assert_eq!(step_2.attempt, 2, "failed once, then succeeded");
    assert_eq!(value(&steps, "step_4"), 65536);

    let (task, steps) = cluster.finished(doomed.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Failed);
    let step_1 = steps.iter().find(|s| s.name == "step_1").unwrap();
    assert_eq!(step_1.state, StepState::Failed);
    assert_eq!(step_1.attempt, 3, "max_attempts from the template");
    assert_eq!(
        step_1.error.as_ref().unwrap().error_type,
        "injected_failure"
    );
    assert!(steps[1..].iter().all(|s| s.state == StepState::Pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_of_a_killed_worker_is_redelivered_after_its_lease() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_worker(0, "doomed", 2);
    let task = cluster
        .create(
            "linear",
            json!({"even_number": 2, "sleep_ms": {"step_2": 3000}}),
        )
        .await;
    let running = cluster
        .wait_for_step(task.id, "step_2", StepState::Running)
        .await;
    assert_eq!(running.worker_id.as_deref(), Some("doomed"));
    // SIGKILL: no chance to release anything.
    cluster.workers[0].signal("KILL");
    cluster.workers[0].wait_exit(Duration::from_secs(10));
    cluster.start_worker(0, "rescuer", 2);

    let (task, steps) = cluster.finished(task.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    let step_2 = steps.iter().find(|s| s.name == "step_2").unwrap();
    assert_eq!(step_2.attempt, 2, "the lost attempt counted");
    assert_eq!(step_2.worker_id.as_deref(), Some("rescuer"));
    let history = cluster.client(0).task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("lease expired"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_run_stops_further_steps_and_the_running_handler() {
    let mut cluster = Cluster::start(1).await;
    // One slot: the second task can only run once the first handler stopped.
    cluster.start_worker(0, "w1", 1);
    let slow = cluster
        .create(
            "linear",
            json!({"even_number": 2, "sleep_ms": {"step_2": 60000}}),
        )
        .await;
    cluster
        .wait_for_step(slow.id, "step_2", StepState::Running)
        .await;
    let started = Instant::now();
    cluster
        .client(0)
        .task_cancel(slow.id, Some("test"))
        .await
        .unwrap();

    let next = cluster.create("diamond", json!({"start": 1})).await;
    let (task, _) = cluster.finished(next.id, Duration::from_secs(30)).await;
    assert_eq!(task.state, TaskState::Complete);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the cancelled handler kept its slot"
    );
    let steps = cluster.client(0).task_steps(slow.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Complete);
    assert!(
        steps[1..].iter().all(|s| s.state == StepState::Cancelled),
        "{steps:?}"
    );
    assert!(steps[1..].iter().all(|s| s.result.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_on_one_node_is_heartbeated_and_completed_on_another() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.client(0), cluster.client(1));
    let task = cluster.create("diamond", json!({"start": 1})).await;
    let claimed = a
        .worker_poll(
            "manual",
            &["examples".to_string()],
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let lease = claimed[0].lease;
    let beat = b.step_heartbeat(&lease).await.unwrap();
    assert!(!beat.cancelled);
    b.step_complete(&lease, &json!({"value": 2})).await.unwrap();
    let history = a.task_history(task.id).await.unwrap();
    let done = history.iter().find(|t| t.to_state == "complete").unwrap();
    assert_eq!(done.node_id.as_deref(), Some("node-1"));
    // The children were dispatched: node 0 hands them out.
    let next = a
        .worker_poll(
            "manual",
            &["examples".to_string()],
            2,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let mut names: Vec<&str> = next.iter().map(|s| s.step_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["branch_b", "branch_c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_recovers_when_its_database_connections_are_killed() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_worker(0, "w1", 2);
    let before = cluster.create("diamond", json!({"start": 1})).await;
    let (task, _) = cluster.finished(before.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);

    // Kill every backend of the server's database: pool connections and the
    // LISTEN connection alike, as a database restart would.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.db.url)
        .await
        .unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS k",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        killed >= 2,
        "expected the pool and the listener, killed {killed}"
    );

    let after = cluster.create("linear", json!({"even_number": 2})).await;
    let (task, steps) = cluster.finished(after.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(value(&steps, "step_4"), 65536);
    assert!(
        cluster.nodes[0].0.child.try_wait().unwrap().is_none(),
        "the server kept running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_gracefully_releases_its_step_to_another_at_once() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_worker(0, "leaving", 2);
    let task = cluster
        .create(
            "linear",
            json!({"even_number": 2, "sleep_ms": {"step_2": 2000}}),
        )
        .await;
    cluster
        .wait_for_step(task.id, "step_2", StepState::Running)
        .await;
    // SIGTERM: the worker stops polling, waits its 300 ms grace, then releases.
    cluster.workers[0].signal("TERM");
    let status = cluster.workers[0].wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "the worker exits 0 after a graceful stop: {status}"
    );
    let step = cluster
        .wait_for_step(task.id, "step_2", StepState::Ready)
        .await;
    assert_eq!(step.attempt, 0, "a released attempt is not counted");

    cluster.start_worker(0, "arriving", 2);
    let (task, steps) = cluster.finished(task.id, Duration::from_secs(60)).await;
    assert_eq!(task.state, TaskState::Complete);
    let step_2 = steps.iter().find(|s| s.name == "step_2").unwrap();
    assert_eq!(step_2.attempt, 1);
    assert_eq!(step_2.worker_id.as_deref(), Some("arriving"));
    let history = cluster.client(0).task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("released by its worker"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_fan_out_loses_and_duplicates_nothing() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_worker(0, "doomed", 4);
    // 1,000 rows in 10 instances of 100; instance 3 sleeps so that the
    // worker is killed while it (and maybe others) runs.
    let task = cluster
        .create(
            "csv_import",
            json!({"rows": 1000, "sleep_ms": {"import_rows[3]": 4000}}),
        )
        .await;
    let running = cluster
        .wait_for_step(task.id, "import_rows[3]", StepState::Running)
        .await;
    assert_eq!(running.worker_id.as_deref(), Some("doomed"));
    cluster.workers[0].signal("KILL");
    cluster.workers[0].wait_exit(Duration::from_secs(10));
    cluster.start_worker(0, "rescuer", 4);

    let (task, steps) = cluster.finished(task.id, Duration::from_secs(90)).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(steps.len(), 3 + 10, "10 instances, no more");
    assert!(steps.iter().all(|s| s.state == StepState::Complete));
    let summary = steps
        .iter()
        .find(|s| s.name == "summarize")
        .and_then(|s| s.result.clone())
        .unwrap();
    // Every row imported once: 1 + 2 + … + 1000.
    assert_eq!(
        summary,
        json!({"chunks": 10, "imported": 1000, "total": 500_500})
    );
    let killed = steps.iter().find(|s| s.name == "import_rows[3]").unwrap();
    assert_eq!(killed.attempt, 2, "the lost attempt counted");
    assert_eq!(killed.worker_id.as_deref(), Some("rescuer"));
    // Each step's result was recorded exactly once.
    let history = cluster.client(0).task_history(task.id).await.unwrap();
    for step in &steps {
        let completions = history
            .iter()
            .filter(|t| t.step_id == Some(step.id) && t.to_state == "complete")
            .count();
        assert_eq!(completions, 1, "{}", step.name);
    }
}

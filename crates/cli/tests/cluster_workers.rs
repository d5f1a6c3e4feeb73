//! The cluster suite, workers: one SIGKILLed and replaced every few seconds
//! during a sustained run, a frozen one whose step ran again elsewhere
//! coming back to report (exactly one accepted result), and a mixed
//! workload of every example template with injected failures.
//!
//! The example workers record every handler execution
//! (`tasker worker example --record-executions`), so the tests compare how
//! often handlers ran with the results the server accepted.
//!
//! The suite's tests take turns (`cluster::serial`): one cluster at a time.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::json;
use support::cluster::{self, Cluster, Options, new_task, short_leases};
use support::wait_until;
use tasker_testkit::TestDatabase;
use tasker_worker::examples::ExecutionLog;

/// How many times each step's handler ran, by step id.
fn executions_per_step(cluster: &Cluster) -> BTreeMap<uuid::Uuid, usize> {
    let mut counts = BTreeMap::new();
    for execution in ExecutionLog::read(&cluster.executions_file()).unwrap_or_default() {
        *counts.entry(execution.step_id).or_default() += 1;
    }
    counts
}

async fn complete_steps(db: &str) -> Vec<uuid::Uuid> {
    let mut conn = cluster::connect(db).await;
    sqlx::query_scalar("SELECT id FROM tasker.steps WHERE state = 'complete'")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// The diamond of the examples with a retry budget no run of kills can
/// exhaust. A lost lease counts an attempt (DESIGN.md, invariant 5), so
/// with the example's budget of 3 a step caught in flight by three kills
/// in a row fails for good, as its policy says; this test is about loss
/// and duplication, not about retry budgets.
const PATIENT_DIAMOND: &str = r#"
namespace: examples
name: patient_diamond
version: "1"
steps:
  - name: start
    handler: examples.diamond.start
    retry: { max_attempts: 20, backoff: { initial: 100ms, max: 1s } }
  - name: branch_b
    handler: examples.diamond.branch_b
    depends_on: [start]
    retry: { max_attempts: 20, backoff: { initial: 100ms, max: 1s } }
  - name: branch_c
    handler: examples.diamond.branch_c
    depends_on: [start]
    retry: { max_attempts: 20, backoff: { initial: 100ms, max: 1s } }
  - name: end
    handler: examples.diamond.end
    depends_on: [branch_b, branch_c]
    retry: { max_attempts: 20, backoff: { initial: 100ms, max: 1s } }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_every_few_seconds_loses_nothing_and_doubles_nothing() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            nodes: 2,
            workers: 1,
            worker_concurrency: 4,
            record_executions: true,
            env: short_leases(),
        },
    );
    let client = cluster.client();
    client
        .template_register_yaml(PATIENT_DIAMOND)
        .await
        .unwrap();
    let mut worker = cluster.start_worker("churn-0");
    let started = Instant::now();
    let mut last_kill = Instant::now();
    let (mut created, mut kills) = (0, 0);
    // 15 s: a task every 50 ms; after 3 s, then every 1.5–3.5 s (at
    // random, so the kills do not keep step with the 3 s lease), the
    // worker is SIGKILLed mid-work and a new one takes its place.
    let mut kill_after = Duration::from_secs(3);
    while started.elapsed() < Duration::from_secs(15) {
        let context = json!({"start": created, "sleep_ms": {"branch_b": 200}});
        client
            .task_create(&new_task("examples", "patient_diamond", context))
            .await
            .unwrap();
        created += 1;
        if last_kill.elapsed() >= kill_after {
            worker.child.kill().unwrap();
            worker.child.wait().unwrap();
            kills += 1;
            worker = cluster.start_worker(&format!("churn-{kills}"));
            last_kill = Instant::now();
            kill_after = Duration::from_millis(rand::thread_rng().gen_range(1_500..=3_500));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(90)).await;
    assert_eq!(
        states,
        [("complete".to_owned(), created)],
        "failed steps: {:?}",
        cluster::failed_steps(&db.url).await
    );
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
    assert!(kills >= 4, "workers killed: {kills}");

    // Every accepted result came from a recorded execution.
    let executions = executions_per_step(&cluster);
    let complete = complete_steps(&db.url).await;
    assert_eq!(complete.len() as i64, created * 4);
    let missing: Vec<_> = complete
        .iter()
        .filter(|id| !executions.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "results without an execution: {missing:?}"
    );
    let reruns = executions.values().filter(|n| **n > 1).count();
    eprintln!("{created} tasks, {kills} workers killed, {reruns} steps ran more than once");
}

/// step_2 of `task`, while worker-1 runs it.
async fn running_step_2(db: &str, task: uuid::Uuid) -> Option<uuid::Uuid> {
    let mut conn = cluster::connect(db).await;
    sqlx::query_scalar(
        "SELECT id FROM tasker.steps WHERE task_id = $1 AND name = 'step_2' \
         AND state = 'running' AND worker_id = 'worker-1'",
    )
    .bind(task)
    .fetch_optional(&mut conn)
    .await
    .unwrap()
}

async fn step_state(db: &str, step: uuid::Uuid) -> String {
    let mut conn = cluster::connect(db).await;
    sqlx::query_scalar("SELECT state FROM tasker.steps WHERE id = $1")
        .bind(step)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_whose_handler_ran_twice_has_exactly_one_accepted_result() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            nodes: 2,
            workers: 1,
            // One slot: no second poll of worker-1 can take step_2 while it is frozen.
            worker_concurrency: 1,
            record_executions: true,
            // Info: the workers log what became of their reports.
            env: [
                short_leases(),
                vec![("RUST_LOG".to_owned(), "info".to_owned())],
            ]
            .concat(),
        },
    );
    let client = cluster.client();
    // worker-1 takes the slow step, then is frozen (SIGSTOP) past its
    // lease: the step goes to another worker, which completes it. Thawed,
    // worker-1 finishes its run of the handler and reports with a stale
    // lease, which must change nothing.
    let context = json!({"even_number": 2, "sleep_ms": {"step_2": 2000}});
    let (task, _) = client
        .task_create(&new_task("examples", "linear", context))
        .await
        .unwrap();
    let frozen = &cluster.workers[0];
    let step_2: uuid::Uuid = wait_until("worker-1 running step_2", Duration::from_secs(30), || {
        running_step_2(&db.url, task.id)
    })
    .await;
    support::send_signal("STOP", &frozen.pid.to_string());
    let mut rescuer = cluster.start_worker("rescuer");
    wait_until(
        "step_2 complete by the rescuer",
        Duration::from_secs(30),
        || async { (step_state(&db.url, step_2).await == "complete").then_some(()) },
    )
    .await;
    rescuer.signal("TERM");
    rescuer.wait_exit(Duration::from_secs(10));
    support::send_signal("CONT", &frozen.pid.to_string());

    let states = cluster::wait_all_finished(&db.url, Duration::from_secs(60)).await;
    assert_eq!(states, [("complete".to_owned(), 1)]);
    // worker-1's own run of step_2 ends and reports after the thaw: wait
    // until the log shows its stale report was turned away.
    let log = cluster.log("worker-1");
    wait_until(
        "worker-1 reports its stale result",
        Duration::from_secs(20),
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.contains("no longer honours this lease")
                || text.contains("server ended the attempt"))
            .then_some(())
        },
    )
    .await;

    let executions = executions_per_step(&cluster);
    assert_eq!(
        executions.get(&step_2),
        Some(&2),
        "step_2's handler ran twice"
    );
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
    let mut conn = cluster::connect(&db.url).await;
    let (worker, result): (Option<String>, serde_json::Value) =
        sqlx::query_as("SELECT worker_id, result FROM tasker.steps WHERE id = $1")
            .bind(step_2)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        worker.as_deref(),
        Some("rescuer"),
        "the accepted result is the rescuer's"
    );
    assert_eq!(result["value"], json!(16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_workload_with_injected_failures_ends_as_each_task_asked() {
    let _turn = cluster::serial().await;
    let db = TestDatabase::create().await.unwrap();
    let cluster = Cluster::up(
        &db.url,
        Options {
            record_executions: true,
            ..Options::default()
        },
    );
    let client = cluster.client();
    // Every template, with a random step failing transiently (fewer times
    // than its attempts allow) or, for every fifth task, permanently.
    let templates: [(&str, &str, &[&str]); 5] = [
        (
            "examples",
            "linear",
            &["step_1", "step_2", "step_3", "step_4"],
        ),
        (
            "examples",
            "diamond",
            &["start", "branch_b", "branch_c", "end"],
        ),
        ("examples", "tree", &["left_1", "right_2", "right_3"]),
        (
            "examples",
            "mixed_dag",
            &["init", "fetch_a", "merge_ab", "finalize"],
        ),
        (
            "orders",
            "order_fulfillment",
            &["charge_payment", "ship_order"],
        ),
    ];
    let mut rng = rand::thread_rng();
    let mut expected: BTreeMap<uuid::Uuid, &str> = BTreeMap::new();
    let mut injected_failures = 0;
    for i in 0..100 {
        let (namespace, template, steps) = templates[i % templates.len()];
        let step = steps[rng.gen_range(0..steps.len())];
        let mut context = match template {
            "linear" => json!({"even_number": 2}),
            "order_fulfillment" => json!({"order_id": format!("o{i}"),
                "customer_email": "buyer@example.com",
                "items": [{"sku": "a", "quantity": 2, "unit_price_cents": 150}]}),
            _ => json!({"start": i}),
        };
        let permanent = i % 5 == 4;
        if permanent {
            context["fail_permanently"] = json!(step);
        } else {
            let times = rng.gen_range(0..=1);
            injected_failures += times;
            context["fail_times"] = json!({ step: times });
        }
        let (task, _) = client
            .task_create(&new_task(namespace, template, context))
            .await
            .unwrap();
        expected.insert(task.id, if permanent { "failed" } else { "complete" });
    }
    cluster::wait_all_finished(&db.url, Duration::from_secs(120)).await;

    let mut conn = cluster::connect(&db.url).await;
    let finals: Vec<(uuid::Uuid, String)> = sqlx::query_as("SELECT id, state FROM tasker.tasks")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(finals.len(), 100);
    for (id, state) in &finals {
        assert_eq!(state, expected[id], "task {id}");
    }
    // Results: every step of a complete task has one; a linear task ends
    // with 65536 and a diamond with 5(start + 1).
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id \
         WHERE t.state = 'complete' AND (s.state <> 'complete' OR s.result IS NULL)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(missing, 0);
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id \
         JOIN tasker.templates tp ON tp.id = t.template_id WHERE s.state = 'complete' AND ( \
         (tp.name = 'linear' AND s.name = 'step_4' AND s.result->'value' <> '65536') OR \
         (tp.name = 'diamond' AND s.name = 'end' AND \
          (s.result->>'value')::bigint <> 5 * ((t.context->>'start')::bigint + 1)))",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "results as the templates compute them");
    // Counts: each failed task failed at its injected step, permanently;
    // transient failures were retried, each a recorded failure.
    let failed_steps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.steps WHERE state = 'failed' AND error->>'error_type' = 'injected_failure'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(failed_steps, 20);
    let retried: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.transitions WHERE from_state = 'running' AND to_state = 'retrying'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(retried, injected_failures);
    assert!(
        cluster::steps_without_exactly_one_result(&db.url)
            .await
            .is_empty()
    );
    let executions: usize = executions_per_step(&cluster).values().sum();
    let attempts: i64 = sqlx::query_scalar("SELECT coalesce(sum(attempt), 0) FROM tasker.steps")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(executions as i64, attempts, "one execution per attempt");
}

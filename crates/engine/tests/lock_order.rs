//! One lock order everywhere: task rows before queue messages, and claims
//! skip tasks another transaction holds. Completions that lease what they
//! release, polls and cancels run together on two nodes; the database must
//! never have to break a deadlock (each one would cost `deadlock_timeout`).
//!
//! PostgreSQL only: SQLite takes its one write lock for each transaction,
//! so there is no lock order to keep; on SQLite every test here says it is
//! skipped.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{FAN, Rows, harness, skip_on_sqlite, template};
use tasker_engine::{Engine, EngineConfig};
use tasker_model::{ClaimedStep, Recorded, TaskState};
use tasker_store::{Event, Observer};

const LOCKS: &str = "about PostgreSQL's row locks and deadlocks between connections";

/// Counts the transactions the database aborted and a store ran again.
#[derive(Default)]
struct Retries(AtomicUsize);

impl Observer for Retries {
    fn observe(&self, events: &[Event]) {
        let retried = events
            .iter()
            .filter(|e| matches!(e, Event::TransactionRetried { .. }))
            .count();
        self.0.fetch_add(retried, Ordering::SeqCst);
    }
}

struct Nodes {
    engines: Vec<Engine>,
    retries: Arc<Retries>,
}

async fn two_nodes(h: &support::Harness) -> Nodes {
    let retries = Arc::new(Retries::default());
    h.store.set_observer(retries.clone());
    let other = h.node_store("node-b").await;
    other.set_observer(retries.clone());
    let node_b = Engine::new(other.shared(), EngineConfig::default());
    Nodes {
        engines: vec![h.engine.clone(), node_b],
        retries,
    }
}

/// A worker loop: claims one step, then completes each step it holds with
/// `next` (as the SDK does), until `idle_rounds` claims in a row find nothing.
/// Returns the steps it completed (applied).
async fn work(engine: Engine, worker: String, idle_rounds: u32) -> Vec<uuid::Uuid> {
    let namespaces = vec!["default".to_owned()];
    let mut completed = Vec::new();
    let mut held: Vec<ClaimedStep> = Vec::new();
    let mut idle = 0;
    while idle < idle_rounds {
        if held.is_empty() {
            held = engine.step_claim("default", &worker, 1).await.unwrap();
            if held.is_empty() {
                idle += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            idle = 0;
        }
        let step = held.remove(0);
        match engine
            .step_complete_and_claim(
                step.lease,
                json!({"by": worker}),
                &worker,
                &namespaces,
                &[],
                2,
            )
            .await
        {
            Ok((Recorded::Applied, next)) => {
                completed.push(step.lease.step_id);
                held.extend(next);
            }
            Ok((Recorded::Duplicate, next)) => held.extend(next),
            // A cancel got there first: the lease is gone, nothing to record.
            Err(_) => {}
        }
    }
    completed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completes_with_next_on_fan_outs_never_deadlock() {
    if skip_on_sqlite(LOCKS) {
        return;
    }
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    let nodes = two_nodes(&h).await;

    const TASKS: usize = 24;
    let mut ids = Vec::new();
    for i in 0..TASKS {
        ids.push(h.create("default", "fan", json!({"i": i})).await.id);
    }
    let mut workers = Vec::new();
    for n in 0..8 {
        let engine = nodes.engines[n % 2].clone();
        workers.push(tokio::spawn(work(engine, format!("worker-{n}"), 15)));
    }
    let mut completed = Vec::new();
    for w in workers {
        completed.extend(w.await.unwrap());
    }

    assert_eq!(completed.len(), TASKS * 10, "every step completed");
    assert_eq!(
        completed.iter().collect::<HashSet<_>>().len(),
        TASKS * 10,
        "no step completed twice"
    );
    for id in ids {
        assert_eq!(
            h.engine.task_get(id).await.unwrap().state,
            TaskState::Complete
        );
    }
    assert_eq!(h.queue_depth("default").await, 0);
    assert_eq!(
        nodes.retries.0.load(Ordering::SeqCst),
        0,
        "no transaction had to be retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancels_while_polls_and_completions_run_never_deadlock() {
    if skip_on_sqlite(LOCKS) {
        return;
    }
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    let nodes = two_nodes(&h).await;

    const TASKS: usize = 30;
    let mut ids = Vec::new();
    for i in 0..TASKS {
        ids.push(h.create("default", "fan", json!({"i": i})).await.id);
    }
    let mut workers = Vec::new();
    for n in 0..6 {
        let engine = nodes.engines[n % 2].clone();
        workers.push(tokio::spawn(work(engine, format!("worker-{n}"), 15)));
    }
    // Cancel every other task while the workers run, from both nodes.
    let cancelled: Arc<Mutex<Vec<uuid::Uuid>>> = Arc::default();
    let cancels = {
        let engines = nodes.engines.clone();
        let ids = ids.clone();
        let cancelled = cancelled.clone();
        tokio::spawn(async move {
            for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
                if engines[n % 2]
                    .task_cancel(*id, Some("cancelled mid-run"))
                    .await
                    .is_ok()
                {
                    cancelled.lock().unwrap().push(*id);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    cancels.await.unwrap();
    for w in workers {
        w.await.unwrap();
    }

    let cancelled = cancelled.lock().unwrap().clone();
    for id in &ids {
        let state = h.engine.task_get(*id).await.unwrap().state;
        if cancelled.contains(id) {
            assert_eq!(state, TaskState::Cancelled, "task {id}");
        } else {
            assert_eq!(state, TaskState::Complete, "task {id}");
        }
    }
    // Nothing of a cancelled task is left to deliver.
    assert_eq!(h.queue_depth("default").await, 0);
    assert_eq!(
        h.count(Rows::StepsIn("ready")).await
            + h.count(Rows::StepsIn("running")).await
            + h.count(Rows::StepsIn("retrying")).await,
        0
    );
    assert_eq!(
        nodes.retries.0.load(Ordering::SeqCst),
        0,
        "no transaction had to be retried"
    );
}

/// A transaction of its own holding `task`'s row lock until it is rolled
/// back, as a completion or a cancel in flight would.
async fn hold_task(
    h: &support::Harness,
    task: uuid::Uuid,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = h.db.postgres_pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasker.tasks WHERE id = $1 FOR UPDATE")
        .bind(task)
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

#[tokio::test]
async fn a_claim_skips_a_busy_task_and_gives_its_message_back_at_once() {
    if skip_on_sqlite(LOCKS) {
        return;
    }
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    let busy = h.create("default", "fan", json!({})).await;
    let free = h.create("default", "fan", json!({})).await;

    // Another transaction holds the first task, as a completion or a cancel would.
    let holder = hold_task(&h, busy.id).await;

    // The claim does not wait for it: it takes the free task's root only.
    let claimed = h.claim("default", 2).await;
    assert_eq!(
        claimed.iter().map(|s| s.task_id).collect::<Vec<_>>(),
        vec![free.id]
    );
    // The busy task's message is visible again, not hidden for a lease.
    assert_eq!(h.db.queue_visible("default").await, 1);
    holder.rollback().await.unwrap();
    let claimed = h.claim_one("default").await;
    assert_eq!(claimed.task_id, busy.id);
    assert_eq!(claimed.lease.attempt, 1, "handing back costs no attempt");
}

/// `engine.report_writers`: with two writers, a batch of reports waiting on
/// a task another transaction holds does not hold back the reports of
/// other tasks (the second writer writes them); with one writer they wait
/// behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_report_writer_passes_a_batch_waiting_on_a_busy_task() {
    if skip_on_sqlite(LOCKS) {
        return;
    }
    for writers in [2, 1] {
        let h = support::harness_with(EngineConfig {
            report_writers: writers,
            ..EngineConfig::default()
        })
        .await;
        h.register(&template("default", "fan", FAN)).await;
        let busy = h.create("default", "fan", json!({})).await;
        let free = h.create("default", "fan", json!({})).await;
        let roots = h.claim("default", 2).await;
        let root_of = |task: uuid::Uuid| roots.iter().find(|s| s.task_id == task).unwrap().lease;

        // Another transaction holds the first task: its completion waits.
        let holder = hold_task(&h, busy.id).await;
        let engine = h.engine.clone();
        let lease = root_of(busy.id);
        let waiting = tokio::spawn(async move { engine.step_complete(lease, json!(1)).await });
        let pool = h.db.postgres_pool();
        loop {
            let waits: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if waits > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let engine = h.engine.clone();
        let lease = root_of(free.id);
        let mut other = tokio::spawn(async move { engine.step_complete(lease, json!(2)).await });
        if writers == 2 {
            // Bounded only so that a regression fails instead of hanging.
            let passed = tokio::time::timeout(Duration::from_secs(60), &mut other)
                .await
                .expect("with two writers, a report waited behind a batch that waits");
            assert_eq!(passed.unwrap().unwrap(), Recorded::Applied);
            assert!(!waiting.is_finished(), "the busy task's report still waits");
        } else {
            // Cannot finish while the one writer waits: the wait only
            // shows that nothing passes it.
            assert!(
                tokio::time::timeout(Duration::from_millis(300), &mut other)
                    .await
                    .is_err(),
                "with one writer, a report passed a batch that waits"
            );
        }
        holder.rollback().await.unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), Recorded::Applied);
        if writers == 1 {
            assert_eq!(other.await.unwrap().unwrap(), Recorded::Applied);
        }
    }
}

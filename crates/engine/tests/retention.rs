//! Retention with two nodes on one database: only the leader runs it, it
//! deletes exactly the finished tasks past their horizon (with their steps
//! and history), expired idempotency keys and long-gone workers, in
//! bounded batches, while other tasks are created and run. Time is moved
//! by shifting stored times into the past, never slept out. On SQLite the
//! two nodes are two engines over its one store.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasker_engine::retention::{
    NamespaceHorizon, RetentionConfig, RetentionDuty, RetentionStats, StateHorizon,
};
use tasker_engine::{ClusterConfig, Engine, EngineConfig, LeaderDuty, NewTask};
use tasker_model::{StepError, Task};
use tasker_store::{Event, NodeRegistration, Observer, WorkerRegistration};
use uuid::Uuid;

use support::{Harness, Rows, harness, skip_on_sqlite, template};

const ONE: &str = "
  - { name: only, handler: h.only }
";

/// Sums what the store reports as deleted, per table.
#[derive(Default)]
struct DeletedTally(Mutex<std::collections::BTreeMap<&'static str, u64>>);

impl Observer for DeletedTally {
    fn observe(&self, events: &[Event]) {
        let mut tally = self.0.lock().unwrap();
        for event in events {
            if let Event::RetentionDeleted { table, rows } = event {
                *tally.entry(table).or_default() += rows;
            }
        }
    }
}

impl DeletedTally {
    fn get(&self, table: &str) -> u64 {
        self.0.lock().unwrap().get(table).copied().unwrap_or(0)
    }
}

async fn create(engine: &Engine, namespace: &str, key: Option<&str>) -> Task {
    engine
        .task_create(NewTask {
            namespace: namespace.into(),
            template: "one".into(),
            idempotency_key: key.map(str::to_owned),
            ..NewTask::default()
        })
        .await
        .expect("task created")
        .0
}

/// Runs the single step of every ready task of `namespace` to completion.
async fn complete_all(engine: &Engine, namespace: &str) {
    loop {
        let claimed = engine.step_claim(namespace, "worker-1", 100).await.unwrap();
        if claimed.is_empty() {
            return;
        }
        for step in claimed {
            engine
                .step_complete(step.lease, serde_json::json!({"ok": true}))
                .await
                .unwrap();
        }
    }
}

async fn fail_all(engine: &Engine, namespace: &str) {
    for step in engine.step_claim(namespace, "worker-1", 100).await.unwrap() {
        let error = StepError {
            error_type: "broken".into(),
            message: "it broke".into(),
            details: serde_json::Value::Null,
            retryable: false,
        };
        engine.step_fail(step.lease, error).await.unwrap();
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// `count` tasks of `namespace` brought to an end by `finish`, then moved
/// `age` into the past (created and finished).
async fn finished_tasks(
    h: &Harness,
    namespace: &str,
    count: usize,
    finish: &str,
    age: Duration,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(create(&h.engine, namespace, None).await.id);
    }
    match finish {
        "complete" => complete_all(&h.engine, namespace).await,
        "failed" => fail_all(&h.engine, namespace).await,
        "cancelled" => {
            for id in &ids {
                h.engine.task_cancel(*id, Some("not needed")).await.unwrap();
            }
        }
        other => panic!("unknown finish {other}"),
    }
    h.db.tasks_age(&ids, age).await;
    ids
}

fn registration(id: &str) -> NodeRegistration {
    NodeRegistration {
        node_id: id.to_owned(),
        version: "0.1.0".to_owned(),
        address: format!("http://{id}.test:8080"),
        pid: 4242,
        started_at: chrono::Utc::now(),
    }
}

/// A node with its own store (on SQLite: the one store) and its own
/// retention duty, in the cluster.
async fn node(
    h: &Harness,
    id: &str,
    config: RetentionConfig,
    tally: Arc<DeletedTally>,
) -> (Engine, Arc<RetentionDuty>) {
    let store = h.node_store(id).await;
    store.set_observer(tally);
    let engine = Engine::new(store.shared(), EngineConfig::default());
    let duty = Arc::new(RetentionDuty::new(config));
    engine
        .cluster_start(
            registration(id),
            ClusterConfig::default(),
            vec![duty.clone() as Arc<dyn LeaderDuty>],
        )
        .await
        .expect("joins the cluster");
    (engine, duty)
}

async fn first_pass(duties: &[&Arc<RetentionDuty>]) -> RetentionStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(stats) = duties
            .iter()
            .map(|d| *d.stats().borrow())
            .find(|s| s.passes > 0)
        {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retention pass ended within 30s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_leader_deletes_exactly_what_is_past_its_horizon_in_batches_while_tasks_run() {
    let h = harness().await;
    let tally = Arc::new(DeletedTally::default());
    h.engine.namespace_create("scratch").await.unwrap();
    h.register(&template("default", "one", ONE)).await;
    h.register(&template("scratch", "one", ONE)).await;

    // Past the default horizon (30 days): go.
    let mut doomed = finished_tasks(&h, "default", 21, "complete", 31 * DAY).await;
    doomed.extend(finished_tasks(&h, "default", 2, "cancelled", 31 * DAY).await);
    // failed tasks are kept 60 days.
    let mut kept = finished_tasks(&h, "default", 3, "failed", 31 * DAY).await;
    doomed.extend(finished_tasks(&h, "default", 2, "failed", 61 * DAY).await);
    // Within the horizon.
    kept.extend(finished_tasks(&h, "default", 3, "complete", 29 * DAY).await);
    // scratch keeps everything an hour, its failures two.
    doomed.extend(finished_tasks(&h, "scratch", 3, "complete", 61 * MINUTE).await);
    kept.extend(finished_tasks(&h, "scratch", 2, "complete", 59 * MINUTE).await);
    kept.extend(finished_tasks(&h, "scratch", 1, "failed", 61 * MINUTE).await);
    doomed.extend(finished_tasks(&h, "scratch", 1, "failed", 121 * MINUTE).await);
    // Running for 100 days: never deleted, however old.
    let in_flight = create(&h.engine, "scratch", None).await.id;
    let leased = h.engine.step_claim("scratch", "worker-1", 1).await.unwrap();
    assert_eq!(leased.len(), 1);
    let old_running = create(&h.engine, "scratch", None).await.id;
    h.db.tasks_age(&[old_running, in_flight], 100 * DAY).await;
    kept.extend([old_running, in_flight]);
    assert_eq!(doomed.len(), 29);

    let steps_per_task = 1;
    let transitions = h.count(Rows::TransitionsOfTasks(&doomed)).await;
    assert!(transitions > 0);

    // Tasks keep being created and run while the pass goes on.
    let stop = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicU64::new(0));
    let busy = {
        let (engine, stop, ran) = (h.engine.clone(), stop.clone(), ran.clone());
        tokio::spawn(async move {
            let mut created = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                created.push(create(&engine, "default", None).await.id);
                complete_all(&engine, "default").await;
                created.push(create(&engine, "default", None).await.id);
                ran.fetch_add(1, Ordering::Relaxed);
            }
            created
        })
    };
    while ran.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let config = RetentionConfig {
        state_horizons: vec![StateHorizon::parse("failed=1440h").unwrap()],
        namespace_horizons: vec![
            NamespaceHorizon::parse("scratch=1h").unwrap(),
            NamespaceHorizon::parse("scratch.failed=2h").unwrap(),
        ],
        batch_size: 10,
        batch_pause: Duration::from_millis(100),
        interval: Duration::from_secs(3600),
        ..RetentionConfig::default()
    };
    let (a, duty_a) = node(&h, "node-a", config.clone(), tally.clone()).await;
    let (b, duty_b) = node(&h, "node-b", config, tally.clone()).await;
    // Work goes on between the first batch and the end of the pass.
    let mut batches = [duty_a.stats(), duty_b.stats()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while batches
        .iter_mut()
        .all(|s| s.borrow_and_update().task_batches == 0)
    {
        assert!(tokio::time::Instant::now() < deadline, "no batch ran");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ran_at_first_batch = ran.load(Ordering::Relaxed);
    let stats = first_pass(&[&duty_a, &duty_b]).await;
    let ran_during_pass = ran.load(Ordering::Relaxed) - ran_at_first_batch;
    stop.store(true, Ordering::Relaxed);
    let created_meanwhile = busy.await.unwrap();

    // Only the leader ran it.
    let (leader, follower) = if a.leadership().borrow().leading {
        (&duty_a, &duty_b)
    } else {
        (&duty_b, &duty_a)
    };
    assert!(
        a.leadership().borrow().leading != b.leadership().borrow().leading,
        "exactly one leader"
    );
    assert_eq!(*follower.stats().borrow(), RetentionStats::default());
    assert_eq!(stats, *leader.stats().borrow());

    // Exactly the doomed tasks went, with their steps and history; 29
    // tasks in batches of 10 take three statements (the last one short).
    assert_eq!(stats.deleted.tasks, 29);
    assert_eq!(stats.deleted.steps, 29 * steps_per_task);
    assert_eq!(stats.deleted.transitions, transitions as u64);
    assert_eq!(stats.task_batches, 3, "{stats:?}");
    let remaining = h.db.task_ids().await;
    for id in &doomed {
        assert!(!remaining.contains(id), "task {id} should be gone");
    }
    for id in kept.iter().chain(&created_meanwhile) {
        assert!(remaining.contains(id), "task {id} should be kept");
    }
    let orphans = h.count(Rows::Orphans).await;
    assert_eq!(orphans, 0);
    assert!(ran_during_pass > 0, "tasks ran while the pass went on");
    // The leased step of the 100-day-old task still completes.
    h.engine
        .step_complete(leased[0].lease, serde_json::json!({}))
        .await
        .expect("a leased step of an old running task is untouched");
    // The metrics' source saw the same counts.
    assert_eq!(tally.get("tasks"), 29);
    assert_eq!(tally.get("steps"), 29);
    assert_eq!(tally.get("transitions"), transitions as u64);

    a.cluster_stop().await;
    b.cluster_stop().await;
}

#[tokio::test]
async fn expired_idempotency_keys_are_released_and_gone_workers_deleted() {
    let h = harness().await;
    h.register(&template("default", "one", ONE)).await;
    let expired = create(&h.engine, "default", Some("k-old")).await.id;
    let fresh = create(&h.engine, "default", Some("k-new")).await.id;
    complete_all(&h.engine, "default").await;
    let running = create(&h.engine, "default", Some("k-running")).await.id;
    h.db.tasks_age(&[expired, running], 25 * HOUR).await;
    for id in ["w-gone", "w-here"] {
        h.engine
            .worker_register(WorkerRegistration {
                worker_id: id.into(),
                namespaces: vec!["default".into()],
                handlers: vec!["h.only".into()],
                concurrency: 1,
                version: None,
            })
            .await
            .unwrap();
    }
    h.db.worker_shift_back("w-gone", 25 * HOUR).await;

    let duty = RetentionDuty::new(RetentionConfig {
        batch_size: 1,
        batch_pause: Duration::ZERO,
        ..RetentionConfig::default()
    });
    // Twice, from two nodes at once: the second finds nothing left to do.
    let other = h.node_store("node-b").await;
    let (first, second) = tokio::join!(duty.pass(&*h.store), duty.pass(&*other));
    first.unwrap();
    second.unwrap();
    let stats = *duty.stats().borrow();
    assert_eq!(stats.keys_released, 1);
    assert_eq!(stats.workers_deleted, 1);
    assert_eq!(stats.deleted.tasks, 0, "tasks stay until their horizon");

    let key = |id: Uuid| h.db.task_idempotency_key(id);
    assert_eq!(key(expired).await, None);
    assert_eq!(key(fresh).await.as_deref(), Some("k-new"));
    assert_eq!(key(running).await.as_deref(), Some("k-running"));
    // The released key names a new task; the others still answer theirs.
    let again = create(&h.engine, "default", Some("k-old")).await.id;
    assert_ne!(again, expired);
    assert_eq!(create(&h.engine, "default", Some("k-new")).await.id, fresh);
    assert_eq!(
        create(&h.engine, "default", Some("k-running")).await.id,
        running
    );
    assert_eq!(h.db.worker_ids().await, ["w-here"]);
}

#[tokio::test]
async fn hot_tables_and_new_queue_tables_get_queue_friendly_autovacuum() {
    if skip_on_sqlite("about PostgreSQL's autovacuum settings of its tables") {
        return;
    }
    let h = harness().await;
    h.engine.namespace_create("late").await.unwrap();
    let options = |table: &'static str| {
        let pool = h.db.postgres_pool().clone();
        async move {
            sqlx::query_scalar::<_, Vec<String>>(
                "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass",
            )
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // Created by the migrations, then at run time with its namespace.
    for queue in ["pgmq.q_tasker_default", "pgmq.q_tasker_late"] {
        let set = options(queue).await;
        for option in [
            "fillfactor=70",
            "autovacuum_vacuum_scale_factor=0",
            "autovacuum_vacuum_cost_delay=0",
        ] {
            assert!(
                set.iter().any(|o| o == option),
                "{queue}: {set:?} lacks {option}"
            );
        }
    }
    let steps = options("tasker.steps").await;
    assert!(
        steps
            .iter()
            .any(|o| o == "autovacuum_vacuum_scale_factor=0.01"),
        "{steps:?}"
    );
    assert!(steps.iter().any(|o| o == "fillfactor=70"), "{steps:?}");
}

//! Time and housekeeping on the leader, with two nodes (two engines over
//! one database, each in the cluster with the maintenance duties): server-
//! side step timeouts with a heartbeating and with a silent worker, task
//! deadlines, stuck-work repair and the bulk retry of dead letters. Time is
//! never slept out: the tests move stored times (and queue visibility) into
//! the past (`h.db.step_shift_back`, `h.db.task_shift_back`) and wait on
//! conditions. On SQLite both engines share the one store.

mod support;

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use tasker_engine::maintenance::{DeadLetterSelection, MaintenanceConfig};
use tasker_engine::{ClusterConfig, Engine, EngineConfig, NewTask};
use tasker_model::{HeartbeatOutcome, HumanDuration, LeaseError, StepError, StepState, TaskState};
use tasker_store::{DeadLetterFilter, NodeRegistration};
use tokio::time::Instant;
use uuid::Uuid;

use support::{Harness, harness, skip_on_sqlite, template};

/// Sweeps every few milliseconds: the tests wait on their effects.
fn quick_sweeps() -> MaintenanceConfig {
    MaintenanceConfig {
        timeout_sweep_interval: Duration::from_millis(20),
        deadline_sweep_interval: Duration::from_millis(20),
        stuck_sweep_interval: Duration::from_millis(20),
        batch_size: 2,
        ..MaintenanceConfig::default()
    }
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

/// The harness's engine as node A and a second engine as node B, both in
/// the cluster with the given sweeps; whichever leads runs them.
async fn two_nodes(h: &Harness, sweeps: Option<MaintenanceConfig>) -> Engine {
    let b = h.other_node(EngineConfig::default()).await;
    for (engine, id) in [(&h.engine, "node-a"), (&b, "node-b")] {
        let duties = sweeps.as_ref().map(|s| s.duties()).unwrap_or_default();
        engine
            .cluster_start(registration(id), ClusterConfig::default(), duties)
            .await
            .expect("joins the cluster");
    }
    b
}

/// Waits (bounded) until `check` answers `Some`.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(15), check).await
}

/// Waits until `check` answers `Some`, at most `patience`.
async fn eventually_within<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn step_state(engine: &Engine, step_id: Uuid) -> tasker_model::Step {
    engine.step_get(step_id).await.expect("step")
}

const SLOW: &str = "
  - name: slow
    handler: h.slow
    timeout: 20s
    retry: { max_attempts: 3, backoff: { initial: 1m, max: 1m, jitter: 0 } }
  - { name: after, handler: h.after, depends_on: [slow] }
";

#[tokio::test]
async fn a_heartbeating_worker_is_stopped_at_the_step_timeout_by_the_leaders_sweep() {
    let h = harness().await;
    h.register(&template("default", "slow", SLOW)).await;
    let b = two_nodes(&h, Some(quick_sweeps())).await;
    let task = h.create("default", "slow", json!({})).await;
    let step = h.claim_one("default").await;
    // The lease never outlasts the timeout, however long the worker asks.
    let started = step_state(&b, step.lease.step_id).await.started_at;
    assert!(step.lease_expires_at <= started.unwrap() + chrono::TimeDelta::seconds(20));
    // The worker heartbeats (through the other node) and is extended...
    assert!(matches!(
        b.step_heartbeat(&step.lease).await.unwrap(),
        HeartbeatOutcome::Extended { .. }
    ));
    // ...until 21 s have passed: the leader fails the attempt as `timeout`.
    h.db.step_shift_back(step.lease.step_id, Duration::from_secs(21))
        .await;
    let failed = eventually("the sweep to time the attempt out", || async {
        let s = step_state(&h.engine, step.lease.step_id).await;
        (s.state == StepState::Retrying).then_some(s)
    })
    .await;
    assert_eq!(failed.error.as_ref().unwrap().error_type, "timeout");
    assert_eq!(failed.attempt, 1);
    // Its worker learns it at the next heartbeat; a late result is refused.
    assert_eq!(
        h.engine.step_heartbeat(&step.lease).await.unwrap(),
        HeartbeatOutcome::TimedOut
    );
    let late = b.step_complete(step.lease, json!({})).await.unwrap_err();
    assert_eq!(late.code(), "step_timed_out");
    let history = h.engine.task_history(task.id).await.unwrap();
    assert!(
        history.iter().any(|t| t.to_state == "retrying"
            && t.reason.as_deref().unwrap_or("").starts_with("timeout")),
        "{history:?}"
    );
    // Retried per its policy: after the backoff, a second attempt completes.
    h.db.step_shift_back(step.lease.step_id, Duration::from_secs(61))
        .await;
    let again = eventually("the retry to be claimable", || async {
        h.engine
            .step_claim("default", "worker-2", 1)
            .await
            .unwrap()
            .pop()
    })
    .await;
    assert_eq!(again.lease.attempt, 2);
    h.engine
        .step_complete(again.lease, json!({}))
        .await
        .unwrap();
    let after = h.claim_one("default").await;
    h.engine
        .step_complete(after.lease, json!({}))
        .await
        .unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );
}

#[tokio::test]
async fn a_silent_workers_step_is_redelivered_at_its_timeout_by_the_queue_itself() {
    let h = harness().await;
    h.register(&template("default", "slow", SLOW)).await;
    // No sweeps at all: the capped lease is the message's visibility.
    let _b = two_nodes(&h, None).await;
    let task = h.create("default", "slow", json!({})).await;
    let step = h.claim_one("default").await;
    let vt =
        h.db.message_visible_at(step.lease.step_id)
            .await
            .expect("the leased step's message");
    assert_eq!(
        vt, step.lease_expires_at,
        "the message is hidden exactly for the lease"
    );
    // The worker never heartbeats; 21 s later its result is refused...
    h.db.step_shift_back(step.lease.step_id, Duration::from_secs(21))
        .await;
    let late = h
        .engine
        .step_complete(step.lease, json!({}))
        .await
        .unwrap_err();
    assert_eq!(late.code(), "step_timed_out");
    // ...and the queue hands the step to another worker: attempt 2.
    let again = h.engine.step_claim("default", "worker-2", 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].lease.attempt, 2);
    let history = h.engine.task_history(task.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.as_deref() == Some("timeout")),
        "{history:?}"
    );
    // The superseded attempt stays refused.
    let stale = h
        .engine
        .step_complete(step.lease, json!({}))
        .await
        .unwrap_err();
    assert!(matches!(
        stale,
        tasker_engine::Error::Store(tasker_store::Error::Lease(LeaseError::LeaseMismatch))
    ));
}

#[tokio::test]
async fn a_silent_workers_last_attempt_is_failed_by_the_sweep_and_the_task_fails() {
    let h = harness().await;
    let steps = "
  - { name: only, handler: h.only, timeout: 5s, retry: { max_attempts: 1 } }
";
    h.register(&template("default", "once", steps)).await;
    let _b = two_nodes(&h, Some(quick_sweeps())).await;
    let task = h.create("default", "once", json!({})).await;
    let step = h.claim_one("default").await;
    h.db.step_shift_back(step.lease.step_id, Duration::from_secs(6))
        .await;
    eventually("the task to fail", || async {
        let t = h.engine.task_get(task.id).await.unwrap();
        (t.state == TaskState::Failed).then_some(())
    })
    .await;
    let s = step_state(&h.engine, step.lease.step_id).await;
    assert_eq!(s.state, StepState::Failed);
    assert_eq!(s.error.unwrap().error_type, "timeout");
    let page = h
        .engine
        .dead_letter_list(
            &DeadLetterFilter {
                error_type: Some("timeout".into()),
                ..DeadLetterFilter::default()
            },
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.dead_letters.len(), 1);
    assert_eq!(page.dead_letters[0].step_id, step.lease.step_id);
}

#[tokio::test]
async fn a_task_past_its_deadline_fails_and_its_running_step_learns_it_at_its_heartbeat() {
    let h = harness().await;
    let yaml = format!(
        "namespace: default\nname: timed\nversion: \"1\"\ndeadline: 1h\nsteps:\n{}",
        "  - { name: a, handler: h.a }\n  - { name: b, handler: h.b }\n  - { name: c, handler: h.c, depends_on: [a] }\n"
    );
    h.register(&yaml).await;
    let b = two_nodes(&h, Some(quick_sweeps())).await;
    let task = h.create("default", "timed", json!({})).await;
    let deadline = task.deadline_at.expect("the template's deadline");
    assert_eq!(deadline - task.created_at, chrono::TimeDelta::hours(1));
    // A task may set its own.
    let own = h
        .engine
        .task_create(NewTask {
            deadline: Some(HumanDuration::parse("10m").unwrap()),
            ..NewTask::new("default", "timed")
        })
        .await
        .unwrap()
        .0;
    assert_eq!(
        own.deadline_at.unwrap() - own.created_at,
        chrono::TimeDelta::minutes(10)
    );
    let bad = h
        .engine
        .task_create(NewTask {
            deadline: Some(HumanDuration::parse("0s").unwrap()),
            ..NewTask::new("default", "timed")
        })
        .await
        .unwrap_err();
    assert!(matches!(&bad, tasker_engine::Error::Invalid { field, .. } if field == "deadline"));

    let running = h
        .engine
        .step_claim("default", "worker-1", 10)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.task_id == task.id && s.step_name == "a")
        .expect("step a of the first task");
    h.db.task_shift_back(task.id, Duration::from_secs(3601))
        .await;
    eventually("the deadline sweep to fail the task", || async {
        let t = h.engine.task_get(task.id).await.unwrap();
        (t.state == TaskState::Failed).then_some(())
    })
    .await;
    assert_eq!(
        b.step_heartbeat(&running.lease).await.unwrap(),
        HeartbeatOutcome::Cancelled
    );
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert!(
        steps.iter().all(|s| s.state == StepState::Cancelled),
        "{steps:?}"
    );
    let history = h.engine.task_history(task.id).await.unwrap();
    let failed = history
        .iter()
        .find(|t| t.step_id.is_none() && t.to_state == "failed")
        .expect("the task's failure in its history");
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap()
            .starts_with("deadline_exceeded")
    );
    // The other task, within its own deadline, runs on.
    assert_eq!(
        h.engine.task_get(own.id).await.unwrap().state,
        TaskState::Running
    );
    let record = eventually("the deadline sweep's record", || async {
        h.engine
            .cluster_view()
            .await
            .unwrap()
            .maintenance
            .into_iter()
            .find(|r| r.name == "deadlines" && r.totals.get("deadline_exceeded") == Some(&1))
    })
    .await;
    assert!(["node-a", "node-b"].contains(&record.node_id.as_str()));
}

#[tokio::test]
async fn a_heartbeat_past_the_deadline_fails_the_task_before_any_sweep() {
    let h = harness().await;
    let yaml = "namespace: default\nname: timed\nversion: \"1\"\ndeadline: 1h\nsteps:\n  - { name: a, handler: h.a }\n";
    h.register(yaml).await;
    let task = h.create("default", "timed", json!({})).await;
    let step = h.claim_one("default").await;
    h.db.task_shift_back(task.id, Duration::from_secs(3601))
        .await;
    assert_eq!(
        h.engine.step_heartbeat(&step.lease).await.unwrap(),
        HeartbeatOutcome::Cancelled
    );
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
}

#[tokio::test]
async fn stuck_steps_are_repaired_and_counted() {
    let h = harness().await;
    h.register(&template("default", "linear", support::LINEAR))
        .await;
    let lost = h.create("default", "linear", json!({})).await;
    let held = h.create("default", "linear", json!({})).await;
    // One ready step loses its message by hand; another's message stays
    // hidden an hour past its lease.
    assert_eq!(h.db.ready_messages_delete(lost.id).await, 1);
    let running = h.claim_one("default").await;
    assert_eq!(running.task_id, held.id);
    h.db.message_hide_longer(running.lease.step_id, Duration::from_secs(3600))
        .await;
    assert!(h.claim("default", 5).await.is_empty(), "nothing can run");

    let _b = two_nodes(&h, Some(quick_sweeps())).await;
    let record = eventually("the stuck sweep to repair both", || async {
        h.engine
            .cluster_view()
            .await
            .unwrap()
            .maintenance
            .into_iter()
            .find(|r| {
                r.name == "stuck"
                    && r.totals.get("queued_without_message") == Some(&1)
                    && r.totals.get("lease_message_mismatch") == Some(&1)
            })
    })
    .await;
    assert_eq!(record.totals.get("running_without_message"), Some(&0));
    // The lost step runs again; the held one is delivered when its lease ends.
    let again = h.claim_one("default").await;
    assert_eq!(again.task_id, lost.id);
    h.db.step_shift_back(running.lease.step_id, Duration::from_secs(31))
        .await;
    let redelivered = eventually("the held step to come back", || async {
        let s = step_state(&h.engine, running.lease.step_id).await;
        (s.state == StepState::Ready || s.attempt == 2).then_some(s)
    })
    .await;
    assert_eq!(redelivered.error.unwrap().error_type, "lease_expired");
}

#[tokio::test]
async fn a_bulk_retry_of_dead_letters_resumes_their_tasks_to_completion() {
    let h = harness().await;
    let steps = "
  - { name: charge, handler: h.charge, retry: { max_attempts: 1 } }
  - { name: ship, handler: h.ship, depends_on: [charge] }
";
    h.register(&template("default", "order", steps)).await;
    let b = two_nodes(&h, Some(quick_sweeps())).await;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(h.create("default", "order", json!({})).await.id);
    }
    for step in h.claim("default", 10).await {
        let error = StepError {
            error_type: "card_declined".into(),
            message: "declined".into(),
            details: json!(null),
            retryable: true,
        };
        h.engine.step_fail(step.lease, error).await.unwrap();
    }
    for id in &tasks {
        assert_eq!(
            h.engine.task_get(*id).await.unwrap().state,
            TaskState::Failed
        );
    }
    let filter = DeadLetterFilter {
        namespace: Some("default".into()),
        error_type: Some("card_declined".into()),
        ..DeadLetterFilter::default()
    };
    // Paged, oldest first, each with its last error.
    let first = b.dead_letter_list(&filter, None, Some(2)).await.unwrap();
    assert_eq!(first.dead_letters.len(), 2);
    let rest = b
        .dead_letter_list(&filter, first.next_cursor.as_deref(), Some(2))
        .await
        .unwrap();
    assert_eq!(rest.dead_letters.len(), 1);
    assert!(rest.next_cursor.is_none());
    assert_eq!(
        rest.dead_letters[0].error.as_ref().unwrap().message,
        "declined"
    );
    let other = DeadLetterFilter {
        handler: Some("h.ship".into()),
        ..DeadLetterFilter::default()
    };
    assert!(
        b.dead_letter_list(&other, None, None)
            .await
            .unwrap()
            .dead_letters
            .is_empty()
    );

    // Neither ids nor filter: refused, naming the field.
    let refused = b
        .dead_letter_retry(&DeadLetterSelection::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid");

    let outcome = b
        .dead_letter_retry(&DeadLetterSelection {
            filter: Some(filter.clone()),
            limit: Some(2),
            ..DeadLetterSelection::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (outcome.matched, outcome.applied, outcome.more),
        (2, 2, true)
    );
    let outcome = b
        .dead_letter_retry(&DeadLetterSelection {
            filter: Some(filter.clone()),
            ..DeadLetterSelection::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (outcome.matched, outcome.applied, outcome.more),
        (1, 1, false)
    );
    assert!(
        b.dead_letter_list(&filter, None, None)
            .await
            .unwrap()
            .dead_letters
            .is_empty()
    );

    // The tasks run again, to completion.
    let mut done = 0;
    while done < 6 {
        let claimed = h.claim("default", 10).await;
        assert!(!claimed.is_empty(), "every task resumes");
        for step in claimed {
            h.engine.step_complete(step.lease, json!({})).await.unwrap();
            done += 1;
        }
    }
    for id in &tasks {
        assert_eq!(
            h.engine.task_get(*id).await.unwrap().state,
            TaskState::Complete
        );
    }
}

/// How long PostgreSQL's statistics views may lag behind (a backend flushes
/// its counters within ten seconds of going idle), with room to spare.
const STATISTICS_LAG: Duration = Duration::from_secs(60);

/// The leader vacuums a queue table once it holds enough dead row versions
/// (every finished message leaves some), sooner than autovacuum's once a
/// minute, and records it as the `queue_vacuum` sweep.
#[tokio::test]
async fn the_leader_vacuums_a_queue_table_full_of_dead_row_versions() {
    if skip_on_sqlite("about PostgreSQL's vacuum of PGMQ's queue tables") {
        return;
    }
    let h = harness().await;
    h.register(&template(
        "default",
        "one",
        "  - { name: only, handler: h.only }\n",
    ))
    .await;
    for _ in 0..20 {
        h.create("default", "one", json!({})).await;
    }
    for step in h.claim("default", 20).await {
        h.engine.step_complete(step.lease, json!({})).await.unwrap();
    }
    let vacuums_of_the_queue = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT vacuum_count FROM pg_stat_user_tables \
             WHERE schemaname = 'pgmq' AND relname = 'q_tasker_default'",
        )
        .fetch_one(h.db.postgres_pool())
        .await
        .unwrap()
    };
    let before = vacuums_of_the_queue().await;

    let sweeps = MaintenanceConfig {
        queue_vacuum_interval: Duration::from_millis(50),
        queue_vacuum_dead_rows: 20,
        ..MaintenanceConfig::default()
    };
    let _b = two_nodes(&h, Some(sweeps)).await;
    // PostgreSQL's statistics (what makes the table due) reach the views up
    // to ten seconds after the backends that made the rows went idle.
    let record = eventually_within("the leader to vacuum the queue", STATISTICS_LAG, || async {
        h.engine
            .maintenance_sweeps()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.name == "queue_vacuum" && r.totals.get("queues_vacuumed") >= Some(&1))
    })
    .await;
    assert!(record.totals["dead_row_versions"] >= 20, "{record:?}");
    eventually_within(
        "the vacuum in PostgreSQL's statistics",
        STATISTICS_LAG,
        || async { (vacuums_of_the_queue().await > before).then_some(()) },
    )
    .await;
}

/// PostgreSQL caches one generic plan per prepared statement and pooled
/// connection, costed on the table's size when it was made. The hot path's
/// transactions rule sequential scans out, so plans made while the queue
/// was empty still find a later backlog's messages through an index rather
/// than reading the whole queue table on every claim and report.
#[tokio::test]
async fn claims_and_reports_read_no_table_whole_after_the_queue_was_empty() {
    if skip_on_sqlite("about PostgreSQL's plans and its per-table scan statistics") {
        return;
    }
    let h = harness().await;
    h.register(&template(
        "default",
        "two",
        "  - { name: first, handler: h.first }\n  - { name: second, handler: h.second, depends_on: [first] }\n",
    ))
    .await;
    // An empty queue, one task at a time: every statement of the claim
    // and report paths runs often enough on the pool's connections for
    // PostgreSQL to settle on a generic plan made for an empty table.
    for _ in 0..12 {
        h.create("default", "two", json!({})).await;
        for _ in 0..2 {
            let step = h.claim_one("default").await;
            h.engine.step_complete(step.lease, json!({})).await.unwrap();
        }
    }
    // Then a backlog, claimed in batches and completed with next.
    for _ in 0..300 {
        h.create("default", "two", json!({})).await;
    }
    let mut done = 0;
    while done < 600 {
        let claimed = h.claim("default", 50).await;
        assert!(
            !claimed.is_empty(),
            "the backlog ran dry after {done} steps"
        );
        for step in claimed {
            h.engine.step_complete(step.lease, json!({})).await.unwrap();
            done += 1;
        }
    }

    // A backend writes its table statistics when it exits: close the
    // store's connections, then read them from a connection of our own.
    h.store.postgres().pool().close().await;
    let pool = sqlx::PgPool::connect(h.postgres_url()).await.unwrap();
    let scans: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname, seq_scan, coalesce(idx_scan, 0) \
         FROM pg_stat_user_tables \
         WHERE (schemaname, relname) IN (('pgmq', 'q_tasker_default'), \
                                         ('tasker', 'steps'), ('tasker', 'tasks'))",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(scans.len(), 3, "{scans:?}");
    for (table, seq_scans, index_scans) in &scans {
        assert!(
            *index_scans > 0,
            "{table}: no index scan counted: {scans:?}"
        );
        assert_eq!(*seq_scans, 0, "{table} was read whole: {scans:?}");
    }
}

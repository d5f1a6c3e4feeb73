//! The claim loop per namespace: one claim transaction serves many waiting
//! polls, a poll gets at most its free slots, wake-ups are never lost, a
//! retry is delivered when its backoff ends, and waiting polls cost the
//! database nothing per poll.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{Harness, LINEAR, harness_with, template};
use tasker_engine::{Engine, EngineConfig};
use tasker_model::{ClaimedStep, StepError};
use tokio::task::JoinHandle;

/// A re-check far beyond any test: only wake-ups and visibility times can
/// deliver work in time.
fn config() -> EngineConfig {
    EngineConfig {
        poll_recheck_interval: Duration::from_secs(120),
        max_poll_wait: Duration::from_secs(60),
        ..EngineConfig::default()
    }
}

/// A harness whose commits wake its own claim loops, as a server's do.
async fn woken_harness() -> Harness {
    let h = harness_with(config()).await;
    let waiters = h.engine.waiters().clone();
    h.store
        .set_local_wake(Arc::new(move |namespace| waiters.wake(namespace)));
    h.register(&template("default", "linear", LINEAR)).await;
    h
}

fn poll(engine: &Engine, worker: &str, max: u32) -> JoinHandle<Vec<ClaimedStep>> {
    let engine = engine.clone();
    let worker = worker.to_owned();
    tokio::spawn(async move {
        engine
            .step_poll(
                &worker,
                &["default".to_owned()],
                &[],
                max,
                Duration::from_secs(30),
            )
            .await
            .expect("poll")
    })
}

/// Waits until `count` polls wait on "default".
async fn parked(engine: &Engine, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while engine.waiters().waiting("default") != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} polls waiting, expected {count}",
            engine.waiters().waiting("default")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The answer of a poll, which must come long before any re-check could
/// have delivered it.
async fn answer(poll: JoinHandle<Vec<ClaimedStep>>) -> Vec<ClaimedStep> {
    tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("the poll was answered without waiting for a re-check")
        .expect("poll task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_claim_serves_every_waiting_poll() {
    // Commits do not wake the loop here: the test wakes it once, by hand.
    let h = harness_with(config()).await;
    h.register(&template("default", "linear", LINEAR)).await;
    let polls: Vec<_> = (0..8)
        .map(|n| poll(&h.engine, &format!("w{n}"), 1))
        .collect();
    parked(&h.engine, 8).await;
    for n in 0..8 {
        h.create("default", "linear", json!({ "n": n })).await;
    }
    let before = h.engine.waiters().claims("default");
    h.engine.waiters().wake(Some("default"));

    let mut steps = Vec::new();
    for poll in polls {
        let got = answer(poll).await;
        assert_eq!(got.len(), 1, "each poll asked for one step");
        steps.extend(got);
    }
    let mut tasks: Vec<_> = steps.iter().map(|s| s.task_id).collect();
    tasks.sort_unstable();
    tasks.dedup();
    assert_eq!(tasks.len(), 8, "eight different steps");
    assert_eq!(
        h.engine.waiters().claims("default") - before,
        1,
        "one claim transaction for all eight polls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_never_receives_more_steps_than_its_free_slots() {
    let h = harness_with(config()).await;
    h.register(&template("default", "linear", LINEAR)).await;
    let two = poll(&h.engine, "two-slots", 2);
    parked(&h.engine, 1).await;
    let three = poll(&h.engine, "three-slots", 3);
    parked(&h.engine, 2).await;
    for n in 0..10 {
        h.create("default", "linear", json!({ "n": n })).await;
    }
    h.engine.waiters().wake(Some("default"));

    let two = answer(two).await;
    let three = answer(three).await;
    assert_eq!(two.len(), 2);
    assert_eq!(three.len(), 3);
    assert!(two.iter().all(|s| s.lease.attempt == 1));
    // The other five stay queued and visible for the next polls.
    assert_eq!(h.db.queue_visible("default").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_becomes_ready_during_a_claim_is_claimed_promptly() {
    let h = woken_harness().await;
    for round in 0..15 {
        let first = poll(&h.engine, "first", 1);
        let second = poll(&h.engine, "second", 1);
        parked(&h.engine, 2).await;
        // Back to back: the second commit's wake-up usually arrives while
        // the loop is claiming for the first.
        h.create("default", "linear", json!({ "round": round }))
            .await;
        h.create("default", "linear", json!({ "round": round }))
            .await;
        assert_eq!(answer(first).await.len(), 1, "round {round}");
        assert_eq!(answer(second).await.len(), 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_delivered_when_its_backoff_ends_without_a_poll_timing_out() {
    let h = woken_harness().await;
    let retry =
        "retry: { max_attempts: 3, backoff: { initial: 1s, max: 1s, multiplier: 1, jitter: 0 } }";
    h.register(&template(
        "default",
        "flaky",
        &format!("  - {{ name: only, handler: h.only, {retry} }}\n"),
    ))
    .await;
    h.create("default", "flaky", json!({})).await;
    let first = h.claim_one("default").await;
    // A poll waits while the attempt runs: the loop found nothing visible and
    // sleeps until the lease would run out (30 s) or a wake-up.
    let waiting = poll(&h.engine, "worker", 1);
    parked(&h.engine, 1).await;
    let error = StepError {
        error_type: "transient".into(),
        message: "try again".into(),
        details: json!(null),
        retryable: true,
    };
    h.engine.step_fail(first.lease, error).await.unwrap();

    // The poll waits 30 s and the loop's re-check is 120 s away: only the
    // retry's own visibility time (1 s) can deliver the step in time.
    let again = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the retry was delivered at its backoff's end, not at a re-check")
        .expect("poll task");
    assert_eq!(again.len(), 1, "the retried step, not an empty poll");
    assert_eq!(again[0].lease.step_id, first.lease.step_id);
    assert_eq!(again[0].lease.attempt, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_polls_do_not_each_look_for_work() {
    let h = woken_harness().await;
    let polls: Vec<_> = (0..20)
        .map(|n| poll(&h.engine, &format!("w{n}"), 1))
        .collect();
    parked(&h.engine, 20).await;
    // The first poll found the queue empty; the others only joined the wait.
    assert!(
        h.engine.waiters().claims("default") <= 2,
        "{} claims for 20 waiting polls",
        h.engine.waiters().claims("default")
    );
    // And one commit serves them: each gets one of the ready steps.
    for n in 0..20 {
        h.create("default", "linear", json!({ "n": n })).await;
    }
    for poll in polls {
        assert_eq!(answer(poll).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_of_several_namespaces_takes_work_from_whichever_has_it() {
    let h = woken_harness().await;
    h.engine.namespace_create("other").await.unwrap();
    h.register(&template("other", "linear", LINEAR)).await;
    let engine = h.engine.clone();
    let poll = tokio::spawn(async move {
        engine
            .step_poll(
                "both",
                &["default".to_owned(), "other".to_owned()],
                &[],
                1,
                Duration::from_secs(30),
            )
            .await
            .expect("poll")
    });
    parked(&h.engine, 1).await;
    h.create("other", "linear", json!({})).await;
    let got = answer(poll).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].namespace, "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_waiting_polls_at_once() {
    let h = woken_harness().await;
    let waiting = poll(&h.engine, "worker", 1);
    parked(&h.engine, 1).await;
    h.engine.begin_shutdown();
    assert!(answer(waiting).await.is_empty());
    // Nothing was claimed for it afterwards.
    h.create("default", "linear", json!({})).await;
    assert_eq!(h.queue_depth("default").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_only_looks_once_gets_what_its_look_found() {
    let h = woken_harness().await;
    // A wait of zero ends while the claim for the poll is in flight: the
    // claim's steps must still be the poll's answer, never lost with it.
    for round in 0..60 {
        h.create("default", "linear", json!({ "round": round }))
            .await;
        let got = h
            .engine
            .step_poll("looker", &["default".to_owned()], &[], 1, Duration::ZERO)
            .await
            .expect("poll");
        assert_eq!(
            got.len(),
            1,
            "round {round}: the ready step was not handed over"
        );
        h.engine
            .step_complete(got[0].lease, json!({}))
            .await
            .unwrap();
    }
}

//! Group commit: reports that arrive together are written in one
//! transaction, each answered on its own; one bad report never fails its
//! neighbours, and a database error fails the whole batch with nothing of
//! it written.

mod support;

use std::collections::HashSet;

use serde_json::json;
use support::{FAN, Fault, Rows, harness, template};
use tasker_model::{HeartbeatOutcome, LeaseError, Recorded, StepError, TaskState};
use tasker_store::{Error as StoreError, ReportOutcome, StepReport};

fn complete(lease: tasker_model::Lease) -> StepReport {
    StepReport::Complete {
        lease,
        result: json!({"ok": true}),
        next: None,
    }
}

#[tokio::test]
async fn completions_of_one_task_in_one_batch_finalize_it_exactly_once() {
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    let task = h.create("default", "fan", json!({})).await;
    let root = h.claim_one("default").await;
    h.engine.step_complete(root.lease, json!({})).await.unwrap();
    let branches = h.claim("default", 8).await;
    assert_eq!(branches.len(), 8);

    // All eight branches in one transaction: the join is released once.
    let outcomes = h
        .store
        .step_report(branches.iter().map(|s| complete(s.lease)).collect())
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| matches!(
        o,
        Ok(ReportOutcome::Completed {
            recorded: Recorded::Applied,
            ..
        })
    )));
    let join = h.claim_one("default").await;
    assert_eq!(join.step_name, "join");
    assert_eq!(h.queue_depth("default").await, 1, "only the join's message");

    // The join and a repeat of a branch in one batch: the task finalizes
    // once; the repeat is a duplicate.
    let outcomes = h
        .store
        .step_report(vec![complete(join.lease), complete(branches[0].lease)])
        .await
        .unwrap();
    assert!(matches!(
        outcomes[1],
        Ok(ReportOutcome::Completed {
            recorded: Recorded::Duplicate,
            ..
        })
    ));
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );
    let finalizations = h
        .engine
        .task_history(task.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.step_id.is_none() && t.to_state == "complete")
        .count();
    assert_eq!(finalizations, 1);
    assert_eq!(h.queue_depth("default").await, 0);
}

#[tokio::test]
async fn a_stale_lease_in_a_batch_is_refused_while_the_others_apply() {
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    for _ in 0..4 {
        h.create("default", "fan", json!({})).await;
    }
    let roots = h.claim("default", 4).await;
    let mut stale = roots[1].lease;
    stale.token = uuid::Uuid::new_v4();
    let failure = StepError {
        error_type: "transient".into(),
        message: "try again".into(),
        details: json!(null),
        retryable: true,
    };
    let outcomes = h
        .store
        .step_report(vec![
            complete(roots[0].lease),
            complete(stale),
            StepReport::Fail {
                lease: roots[2].lease,
                error: failure,
            },
            StepReport::Heartbeat {
                lease: roots[3].lease,
                lease_for: std::time::Duration::from_secs(30),
            },
        ])
        .await
        .unwrap();
    assert!(matches!(
        outcomes[0],
        Ok(ReportOutcome::Completed {
            recorded: Recorded::Applied,
            ..
        })
    ));
    assert!(
        matches!(
            outcomes[1],
            Err(StoreError::Lease(LeaseError::LeaseMismatch))
        ),
        "{:?}",
        outcomes[1]
    );
    assert!(matches!(
        outcomes[2],
        Ok(ReportOutcome::Failed(Recorded::Applied))
    ));
    assert!(matches!(
        outcomes[3],
        Ok(ReportOutcome::Heartbeat(HeartbeatOutcome::Extended { .. }))
    ));
    // The refused report changed nothing: its step still runs under the
    // real lease, which completes normally.
    assert_eq!(
        h.engine
            .step_complete(roots[1].lease, json!({}))
            .await
            .unwrap(),
        Recorded::Applied
    );
}

#[tokio::test]
async fn reports_that_touch_one_message_twice_in_a_batch_apply_in_order() {
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    for _ in 0..2 {
        h.create("default", "fan", json!({})).await;
    }
    let roots = h.claim("default", 2).await;
    let heartbeat = |lease, secs| StepReport::Heartbeat {
        lease,
        lease_for: std::time::Duration::from_secs(secs),
    };
    // One step heartbeated twice (the later lease wins, as it would one
    // request at a time); the other heartbeated and then completed (its
    // message is gone, not hidden again).
    let outcomes = h
        .store
        .step_report(vec![
            heartbeat(roots[0].lease, 30),
            heartbeat(roots[0].lease, 200),
            heartbeat(roots[1].lease, 600),
            complete(roots[1].lease),
        ])
        .await
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let visible_at =
        h.db.message_visible_at(roots[0].lease.step_id)
            .await
            .expect("the heartbeated step's message");
    assert!(
        visible_at > chrono::Utc::now() + chrono::TimeDelta::seconds(150),
        "the second heartbeat's visibility holds: {visible_at}"
    );
    assert_eq!(
        h.db.message_visible_at(roots[1].lease.step_id).await,
        None,
        "the completed step's message is deleted"
    );
}

#[tokio::test]
async fn a_database_error_fails_the_whole_batch_and_writes_nothing() {
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    for _ in 0..3 {
        h.create("default", "fan", json!({})).await;
    }
    let roots = h.claim("default", 3).await;
    let transitions = h.count(Rows::Transitions).await;
    h.db.fault_inject(Fault::Transitions).await;
    let reports: Vec<_> = roots.iter().map(|s| complete(s.lease)).collect();
    assert!(h.store.step_report(reports.clone()).await.is_err());
    assert_eq!(h.count(Rows::Transitions).await, transitions);
    assert_eq!(h.count(Rows::StepsIn("running")).await, 3);
    h.db.fault_clear(Fault::Transitions).await;
    // Sent again, as workers do: every report applies.
    let outcomes = h.store.step_report(reports).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(
        o,
        Ok(ReportOutcome::Completed {
            recorded: Recorded::Applied,
            ..
        })
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_that_arrive_together_share_transactions() {
    let h = harness().await;
    h.register(&template("default", "fan", FAN)).await;
    for _ in 0..50 {
        h.create("default", "fan", json!({})).await;
    }
    let roots = h.claim("default", 50).await;
    assert_eq!(roots.len(), 50);
    let before = h.engine.report_batches();
    let mut requests = Vec::new();
    for step in &roots {
        let engine = h.engine.clone();
        let lease = step.lease;
        requests.push(tokio::spawn(async move {
            engine
                .step_complete_and_claim(
                    lease,
                    json!({}),
                    "worker",
                    &["default".to_owned()],
                    &[],
                    2,
                )
                .await
        }));
    }
    let mut leased = HashSet::new();
    for request in requests {
        let (recorded, next) = request.await.unwrap().unwrap();
        assert_eq!(recorded, Recorded::Applied);
        // Each completion leased two of the branches it released itself.
        assert_eq!(next.len(), 2);
        for step in next {
            assert!(leased.insert(step.lease.step_id), "a step leased twice");
        }
    }
    let batches = h.engine.report_batches() - before;
    assert!(
        batches < 50,
        "50 reports sent at once took {batches} transactions"
    );
}

//! Dynamic workflows against the store: decision steps, convergence rules
//! and fan-out (including 10,000 instances driven through the batched
//! claim and complete), each checked in the stored rows and history.

mod support;

use std::time::Instant;

use serde_json::{Value, json};
use support::{Rows, harness, harness_with, template};
use tasker_engine::EngineConfig;
use tasker_model::{ClaimedStep, Step, StepError, StepState, TaskState};
use tasker_store::StepCompletion;

const ROUTING: &str = "
  - { name: weigh, handler: h.weigh, decision: true }
  - { name: freight, handler: h.freight, depends_on: [weigh] }
  - { name: parcel, handler: h.parcel, depends_on: [weigh] }
  - { name: label, handler: h.label, depends_on: [parcel] }
  - { name: notify, handler: h.notify, depends_on: [freight, parcel], convergence: any }
  - { name: archive, handler: h.archive, depends_on: [freight, parcel], convergence: all_done }
";

const CSV: &str = "
  - { name: list, handler: h.list }
  - name: rows
    handler: h.rows
    depends_on: [list]
    fan_out: { over: list }
    retry: { max_attempts: 3, backoff: { initial: 0ms, max: 0ms, jitter: 0 } }
  - { name: merge, handler: h.merge, depends_on: [rows] }
";

fn state(steps: &[Step], name: &str) -> StepState {
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
        .state
}

/// Claims and completes whatever is ready until nothing is; returns the
/// names of the steps that ran, in order.
async fn drain(h: &support::Harness) -> Vec<String> {
    let mut ran = Vec::new();
    loop {
        let claimed = h.claim("default", 100).await;
        if claimed.is_empty() {
            return ran;
        }
        for step in claimed {
            ran.push(step.step_name.clone());
            h.engine
                .step_complete(step.lease, json!({"ran": step.step_name}))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_decision_runs_each_branch_chosen_and_skips_the_rest() {
    let h = harness().await;
    h.register(&template("default", "routing", ROUTING)).await;
    for (branches, ran, skipped) in [
        (
            json!(["freight"]),
            &["freight", "notify", "archive"][..],
            &["parcel", "label"][..],
        ),
        (
            json!(["parcel"]),
            &["parcel", "label", "notify", "archive"],
            &["freight"],
        ),
        (
            json!([]),
            &["archive"],
            &["freight", "parcel", "label", "notify"],
        ),
    ] {
        let task = h.create("default", "routing", json!({})).await;
        let weigh = h.claim_one("default").await;
        h.engine
            .step_complete(weigh.lease, json!({ "branches": branches }))
            .await
            .unwrap();
        let mut got = drain(&h).await;
        got.sort();
        let mut want: Vec<String> = ran.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "branches {branches}");
        let steps = h.engine.task_steps(task.id).await.unwrap();
        for name in skipped {
            assert_eq!(state(&steps, name), StepState::Skipped, "{name}");
        }
        assert_eq!(
            h.engine.task_get(task.id).await.unwrap().state,
            TaskState::Complete
        );
        let history = h.engine.task_history(task.id).await.unwrap();
        let reasons: Vec<(String, String)> = history
            .iter()
            .filter(|t| t.to_state == "skipped")
            .map(|t| {
                (
                    t.step_name.clone().unwrap_or_default(),
                    t.reason.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(reasons.len(), skipped.len(), "{reasons:?}");
        if branches == json!(["freight"]) {
            assert!(
                reasons.contains(&("parcel".into(), "not chosen by decision \"weigh\"".into()))
            );
            assert!(reasons.contains(&("label".into(), "parent \"parcel\" was skipped".into())));
        }
    }
    assert_eq!(h.queue_depth("default").await, 0);
}

#[tokio::test]
async fn an_undeclared_branch_fails_the_decision_for_good() {
    let h = harness().await;
    h.register(&template("default", "routing", ROUTING)).await;
    let task = h.create("default", "routing", json!({})).await;
    let weigh = h.claim_one("default").await;
    h.engine
        .step_complete(weigh.lease, json!({"branches": ["drone"]}))
        .await
        .unwrap();
    let steps = h.engine.task_steps(task.id).await.unwrap();
    let weigh = steps.iter().find(|s| s.name == "weigh").unwrap();
    assert_eq!(weigh.state, StepState::Failed);
    let error = weigh.error.as_ref().unwrap();
    assert_eq!(error.error_type, "invalid_decision");
    assert!(!error.retryable);
    assert!(
        error
            .message
            .contains("chose \"drone\", which is not one of its branches (freight, parcel)"),
        "{}",
        error.message
    );
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
    assert_eq!(h.queue_depth("default").await, 0);
}

#[tokio::test]
async fn any_runs_on_the_first_parent_and_all_done_after_the_last() {
    let h = harness().await;
    h.register(&template("default", "routing", ROUTING)).await;
    let task = h.create("default", "routing", json!({})).await;
    let weigh = h.claim_one("default").await;
    h.engine
        .step_complete(weigh.lease, json!({"branches": ["freight", "parcel"]}))
        .await
        .unwrap();
    let mut both = h.claim("default", 10).await;
    both.sort_by(|a, b| a.step_name.cmp(&b.step_name));
    assert_eq!(both.len(), 2);
    let parcel = both.pop().unwrap();
    let freight = both.pop().unwrap();
    h.engine
        .step_complete(freight.lease, json!({"truck": 7}))
        .await
        .unwrap();
    // `notify` (any) runs now; `archive` (all_done) waits for parcel.
    let notify = h.claim_one("default").await;
    assert_eq!(notify.step_name, "notify");
    assert_eq!(notify.parent_results["freight"], json!({"truck": 7}));
    assert_eq!(notify.parent_results["parcel"], Value::Null);
    h.engine
        .step_complete(notify.lease, json!({}))
        .await
        .unwrap();
    assert!(h.claim("default", 10).await.is_empty());
    h.engine
        .step_complete(parcel.lease, json!({"box": 1}))
        .await
        .unwrap();
    let mut next: Vec<String> = h
        .claim("default", 10)
        .await
        .into_iter()
        .map(|s| s.step_name)
        .collect();
    next.sort();
    assert_eq!(next, vec!["archive", "label"]);
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(state(&steps, "notify"), StepState::Complete);
}

fn complete_all(claimed: &[ClaimedStep]) -> Vec<StepCompletion> {
    claimed
        .iter()
        .map(|step| {
            let number = step.fan_out.as_ref().map(|f| f.number);
            StepCompletion {
                lease: step.lease,
                result: json!({ "instance": number, "items": step.fan_out.as_ref().map(|f| f.items.clone()) }),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_fan_out_of_ten_thousand_items_completes() {
    let h = harness_with(EngineConfig {
        max_claim_batch: 1000,
        ..EngineConfig::default()
    })
    .await;
    h.register(&template("default", "csv", CSV)).await;
    let task = h.create("default", "csv", json!({})).await;
    let list = h.claim_one("default").await;
    let items: Vec<Value> = (0..10_000).map(|i| json!(i)).collect();
    let started = Instant::now();
    h.engine
        .step_complete(list.lease, json!({ "items": items }))
        .await
        .unwrap();
    let fanned = started.elapsed();
    assert_eq!(h.count(Rows::StepsOfTaskIn(task.id, "ready")).await, 10_000);
    assert_eq!(h.queue_depth("default").await, 10_000);
    let mut seen = vec![false; 10_000];
    loop {
        let claimed = h.claim("default", 1000).await;
        if claimed.is_empty() {
            break;
        }
        if claimed[0].step_name == "merge" {
            let merge = &claimed[0];
            let rows: Vec<Value> = match merge.parent_results.get("rows") {
                Some(Value::Array(rows)) => rows.clone(),
                other => panic!("rows result: {other:?}"),
            };
            assert_eq!(rows.len(), 10_000);
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(row["instance"], json!(i));
                assert_eq!(row["items"], json!([i]));
            }
            h.engine
                .step_complete(merge.lease, json!({}))
                .await
                .unwrap();
            continue;
        }
        for step in &claimed {
            let fan_out = step.fan_out.as_ref().expect("an instance");
            assert_eq!(step.step_name, format!("rows[{}]", fan_out.number));
            assert_eq!(fan_out.items, vec![json!(fan_out.number)]);
            assert!(!seen[fan_out.number as usize], "claimed twice");
            seen[fan_out.number as usize] = true;
        }
        for outcome in h
            .engine
            .step_complete_many(complete_all(&claimed))
            .await
            .unwrap()
        {
            outcome.unwrap();
        }
    }
    let total = started.elapsed();
    assert!(seen.iter().all(|s| *s));
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps.len(), 10_003);
    assert!(steps.iter().all(|s| s.state == StepState::Complete));
    eprintln!(
        "fan-out of 10000: instances created in {:.2?}, task complete in {:.2?}",
        fanned, total
    );
}

#[tokio::test]
async fn an_instance_retries_while_its_siblings_finish() {
    let h = harness().await;
    h.register(&template("default", "csv", CSV)).await;
    let task = h.create("default", "csv", json!({})).await;
    let list = h.claim_one("default").await;
    h.engine
        .step_complete(list.lease, json!({"items": ["a", "b", "c"]}))
        .await
        .unwrap();
    let mut instances = h.claim("default", 10).await;
    instances.sort_by_key(|s| s.fan_out.as_ref().unwrap().number);
    assert_eq!(instances.len(), 3);
    let error = StepError {
        error_type: "flaky".into(),
        message: "try again".into(),
        details: Value::Null,
        retryable: true,
    };
    h.engine.step_fail(instances[1].lease, error).await.unwrap();
    for step in [&instances[0], &instances[2]] {
        h.engine
            .step_complete(step.lease, json!(step.step_name))
            .await
            .unwrap();
    }
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(state(&steps, "rows"), StepState::Pending);
    assert_eq!(state(&steps, "rows[1]"), StepState::Retrying);
    let again = h.claim_one("default").await;
    assert_eq!(again.step_name, "rows[1]");
    assert_eq!(again.lease.attempt, 2);
    assert_eq!(again.fan_out.as_ref().unwrap().items, vec![json!("b")]);
    h.engine
        .step_complete(again.lease, json!("rows[1]"))
        .await
        .unwrap();
    let merge = h.claim_one("default").await;
    assert_eq!(merge.step_name, "merge");
    assert_eq!(
        merge.parent_results["rows"],
        json!(["rows[0]", "rows[1]", "rows[2]"])
    );
    h.engine
        .step_complete(merge.lease, json!({}))
        .await
        .unwrap();
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Complete
    );
}

#[tokio::test]
async fn zero_items_skip_the_fan_out_and_one_item_makes_one_instance() {
    let h = harness().await;
    h.register(&template("default", "csv", CSV)).await;
    for (items, instances) in [(json!([]), 0), (json!([{"row": 1}]), 1)] {
        let task = h.create("default", "csv", json!({})).await;
        let list = h.claim_one("default").await;
        h.engine
            .step_complete(list.lease, json!({ "items": items }))
            .await
            .unwrap();
        let ran = drain(&h).await;
        assert_eq!(ran.len(), instances + 1, "{ran:?}");
        assert_eq!(ran.last().map(String::as_str), Some("merge"));
        let steps = h.engine.task_steps(task.id).await.unwrap();
        let want = if instances == 0 {
            StepState::Skipped
        } else {
            StepState::Complete
        };
        assert_eq!(state(&steps, "rows"), want);
        assert_eq!(
            h.engine.task_get(task.id).await.unwrap().state,
            TaskState::Complete
        );
    }
}

#[tokio::test]
async fn too_many_items_fail_the_source_with_the_servers_limit() {
    let h = harness_with(EngineConfig {
        max_fan_out_instances: 5,
        ..EngineConfig::default()
    })
    .await;
    h.register(&template("default", "csv", CSV)).await;
    let task = h.create("default", "csv", json!({})).await;
    let list = h.claim_one("default").await;
    h.engine
        .step_complete(list.lease, json!({"items": [1, 2, 3, 4, 5, 6]}))
        .await
        .unwrap();
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(steps.len(), 3, "no instance created");
    let list = &steps[0];
    assert_eq!(list.state, StepState::Failed);
    let error = list.error.as_ref().unwrap();
    assert_eq!(error.error_type, "fan_out_limit_exceeded");
    assert!(
        error.message.ends_with(
            "6 instances of \"rows\" (chunk_size 1) exceed the limit of 5 (the server's engine.max_fan_out_instances)"
        ),
        "{}",
        error.message
    );
    assert_eq!(
        h.engine.task_get(task.id).await.unwrap().state,
        TaskState::Failed
    );
}

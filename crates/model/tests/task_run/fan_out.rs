//! Fan-out: one instance per chunk of the source's items, each a step of its
//! own; the fan-out step's row completes once every instance is done.

use serde_json::{Value, json};
use tasker_model::task_run::{FAN_OUT_LIMIT_EXCEEDED, INVALID_FAN_OUT};
use tasker_model::{Plan, Recorded, StepState, TaskState};

use crate::harness::{Harness, at, retryable};

/// `list` returns items; `rows` runs over them two at a time (at most
/// `max` instances); `merge` converges on all of them.
fn csv(max: Option<u32>) -> String {
    let max = max.map_or(String::new(), |m| format!(", max_instances: {m}"));
    format!(
        r#"
namespace: tests
name: csv
version: "1"
steps:
  - {{ name: list, handler: t.list }}
  - name: rows
    handler: t.rows
    depends_on: [list]
    fan_out: {{ over: list, chunk_size: 2{max} }}
    retry: {{ max_attempts: 3, backoff: {{ initial: 10s, max: 1m, multiplier: 2, jitter: 0 }} }}
  - {{ name: merge, handler: t.merge, depends_on: [rows] }}
"#
    )
}

fn list(h: &mut Harness, items: Value) -> Plan {
    let lease = h.claim("list", at(1));
    let (recorded, plan) = h.complete_with(&lease, json!({ "items": items }), at(2));
    assert_eq!(recorded, Ok(Recorded::Applied));
    plan
}

fn finish(h: &mut Harness, name: &str, now: i64) -> Plan {
    let lease = h.claim(name, at(now));
    let (recorded, plan) = h.complete_with(&lease, json!({ "done": name }), at(now));
    assert_eq!(recorded, Ok(Recorded::Applied));
    plan
}

#[test]
fn n_items_make_one_instance_per_chunk_in_the_same_plan() {
    let (mut h, _) = Harness::create(&csv(None));
    let plan = list(&mut h, json!([1, 2, 3, 4, 5]));
    let items: Vec<(usize, Vec<Value>)> = plan
        .new_steps
        .iter()
        .map(|n| (n.index, n.items.clone()))
        .collect();
    assert_eq!(
        items,
        vec![
            (3, vec![json!(1), json!(2)]),
            (4, vec![json!(3), json!(4)]),
            (5, vec![json!(5)])
        ]
    );
    assert_eq!(plan.enqueue, vec![3, 4, 5]);
    for name in ["rows[0]", "rows[1]", "rows[2]"] {
        assert_eq!(h.state(name), StepState::Ready, "{name}");
    }
    assert_eq!(h.state("rows"), StepState::Pending);
    assert_eq!(h.step("rows").fan_out_count, Some(3));
    assert_eq!(h.state("merge"), StepState::Pending);
    // Each instance has an id of its own.
    let mut ids: Vec<_> = h.steps.iter().map(|s| s.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);

    finish(&mut h, "rows[2]", 3);
    finish(&mut h, "rows[0]", 4);
    assert_eq!(h.state("rows"), StepState::Pending, "rows[1] still runs");
    let plan = finish(&mut h, "rows[1]", 5);
    assert_eq!(plan.gather, vec![1]);
    assert_eq!(h.state("rows"), StepState::Complete);
    assert_eq!(h.state("merge"), StepState::Ready);
    finish(&mut h, "merge", 6);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn one_item_makes_one_instance() {
    let (mut h, _) = Harness::create(&csv(None));
    let plan = list(&mut h, json!([{"row": 1}]));
    assert_eq!(plan.new_steps.len(), 1);
    assert_eq!(plan.new_steps[0].items, vec![json!({"row": 1})]);
    finish(&mut h, "rows[0]", 3);
    assert_eq!(h.state("rows"), StepState::Complete);
    finish(&mut h, "merge", 4);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn zero_items_skip_the_fan_out_and_the_convergence_step_still_runs() {
    let (mut h, _) = Harness::create(&csv(None));
    let plan = list(&mut h, json!([]));
    assert!(plan.new_steps.is_empty());
    assert_eq!(h.state("rows"), StepState::Skipped);
    assert_eq!(h.step("rows").fan_out_count, Some(0));
    assert!(plan.results.contains(&(1, json!([]))));
    let reason = plan
        .transitions
        .iter()
        .find(|t| t.step_id == Some(h.step("rows").id))
        .and_then(|t| t.reason.clone());
    assert_eq!(reason.as_deref(), Some("fan-out over 0 items"));
    assert_eq!(h.state("merge"), StepState::Ready);
    finish(&mut h, "merge", 3);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn an_instance_that_fails_retries_while_its_siblings_finish() {
    let (mut h, _) = Harness::create(&csv(None));
    list(&mut h, json!([1, 2, 3, 4, 5, 6]));
    let second = h.claim("rows[1]", at(3));
    h.fail(&second, retryable("db busy"), at(4)).0.unwrap();
    assert_eq!(h.state("rows[1]"), StepState::Retrying);
    assert_eq!(h.visible_at("rows[1]"), at(14));
    finish(&mut h, "rows[0]", 5);
    finish(&mut h, "rows[2]", 6);
    assert_eq!(h.state("rows"), StepState::Pending);
    assert_eq!(h.task.state, TaskState::Running);
    let plan = finish(&mut h, "rows[1]", 14);
    assert_eq!(h.step("rows[1]").attempt, 2);
    assert_eq!(plan.gather, vec![1]);
    assert_eq!(h.state("merge"), StepState::Ready);
}

#[test]
fn an_instance_that_fails_for_good_fails_the_task_and_a_manual_retry_resumes_it() {
    let (mut h, _) = Harness::create(&csv(None));
    list(&mut h, json!([1, 2, 3]));
    finish(&mut h, "rows[1]", 3);
    let first = h.claim("rows[0]", at(4));
    h.fail(&first, crate::harness::fatal("bad row"), at(5))
        .0
        .unwrap();
    assert_eq!(h.task.state, TaskState::Failed);
    let first = h.idx("rows[0]");
    h.operate(at(6), |run| run.retry_step(first, at(6)))
        .0
        .unwrap();
    finish(&mut h, "rows[0]", 7);
    finish(&mut h, "merge", 8);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn too_many_instances_fail_the_source_with_the_limit_named() {
    // The template's own limit.
    let (mut h, _) = Harness::create(&csv(Some(2)));
    let lease = h.claim("list", at(1));
    let (_, plan) = h.complete_with(&lease, json!({"items": [1, 2, 3, 4, 5]}), at(2));
    assert!(plan.new_steps.is_empty());
    assert_eq!(h.state("list"), StepState::Failed);
    let error = plan.errors.last().unwrap().1.clone().unwrap();
    assert_eq!(error.error_type, FAN_OUT_LIMIT_EXCEEDED);
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "step \"list\" returned 5 items: 3 instances of \"rows\" (chunk_size 2) exceed the limit of 2 (its fan_out.max_instances)"
    );
    assert_eq!(h.task.state, TaskState::Failed);

    // The server's cap, lower than the template's.
    let (mut h, _) = Harness::create(&csv(Some(1000)));
    h.max_fan_out = 2;
    let lease = h.claim("list", at(1));
    let (_, plan) = h.complete_with(&lease, json!({"items": [1, 2, 3, 4, 5]}), at(2));
    let error = plan.errors.last().unwrap().1.clone().unwrap();
    assert!(
        error
            .message
            .ends_with("exceed the limit of 2 (the server's engine.max_fan_out_instances)"),
        "{}",
        error.message
    );
    // Exactly at the limit is fine.
    let (mut h, _) = Harness::create(&csv(Some(3)));
    list(&mut h, json!([1, 2, 3, 4, 5]));
    assert_eq!(h.step("rows").fan_out_count, Some(3));
}

#[test]
fn a_source_result_without_items_fails_the_source() {
    let (mut h, _) = Harness::create(&csv(None));
    let lease = h.claim("list", at(1));
    let (_, plan) = h.complete_with(&lease, json!({"rows": 3}), at(2));
    let error = plan.errors.last().unwrap().1.clone().unwrap();
    assert_eq!(error.error_type, INVALID_FAN_OUT);
    assert_eq!(
        error.message,
        "step \"list\" feeds fan-out step(s) rows and must complete with {\"items\": [...]}"
    );
    assert_eq!(h.state("list"), StepState::Failed);
}

#[test]
fn cancelling_cancels_pending_and_running_instances() {
    let (mut h, _) = Harness::create(&csv(None));
    list(&mut h, json!([1, 2, 3]));
    h.claim("rows[0]", at(3));
    h.operate(at(4), |run| run.cancel("stop", at(4))).0.unwrap();
    assert!(h.steps[1..].iter().all(|s| s.state == StepState::Cancelled));
    assert!(h.queue.is_empty());
}

#[test]
fn a_source_skipped_by_a_decision_skips_the_fan_out_and_what_needs_it() {
    let yaml = r#"
namespace: tests
name: csv_optional
version: "1"
steps:
  - { name: check, handler: t.check, decision: true }
  - { name: list, handler: t.list, depends_on: [check] }
  - { name: rows, handler: t.rows, depends_on: [list], fan_out: { over: list } }
  - { name: merge, handler: t.merge, depends_on: [rows] }
"#;
    let (mut h, _) = Harness::create(yaml);
    let lease = h.claim("check", at(1));
    h.complete_with(&lease, json!({"branches": []}), at(2))
        .0
        .unwrap();
    assert_eq!(h.state("rows"), StepState::Skipped);
    assert_eq!(h.step("rows").fan_out_count, None);
    assert_eq!(h.state("merge"), StepState::Skipped);
    assert_eq!(h.task.state, TaskState::Complete);
}

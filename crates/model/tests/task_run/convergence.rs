//! Convergence rules of a step with several parents: `all` (the default),
//! `all_done` and `any`, with parents that complete, are skipped or fail.

use serde_json::json;
use tasker_model::{StepState, TaskState};

use crate::harness::{Harness, at, fatal};

/// `d` decides which of `a` and `b` run; three joins converge on both.
const JOINS: &str = r#"
namespace: tests
name: joins
version: "1"
steps:
  - { name: d, handler: t.d, decision: true }
  - { name: a, handler: t.a, depends_on: [d] }
  - { name: b, handler: t.b, depends_on: [d], retry: { max_attempts: 1 } }
  - { name: j_all, handler: t.j, depends_on: [a, b] }
  - { name: j_done, handler: t.j, depends_on: [a, b], convergence: all_done }
  - { name: j_any, handler: t.j, depends_on: [a, b], convergence: any }
"#;

fn decided(branches: &[&str]) -> Harness {
    let (mut h, _) = Harness::create(JOINS);
    let lease = h.claim("d", at(1));
    h.complete_with(&lease, json!({ "branches": branches }), at(2))
        .0
        .unwrap();
    h
}

fn joins(h: &Harness) -> [StepState; 3] {
    [h.state("j_all"), h.state("j_done"), h.state("j_any")]
}

fn finish(h: &mut Harness, name: &str, now: i64) {
    let lease = h.claim(name, at(now));
    h.complete(&lease, at(now)).0.unwrap();
}

use StepState::*;

#[test]
fn with_every_parent_complete_each_rule_runs_and_any_runs_first() {
    let mut h = decided(&["a", "b"]);
    assert_eq!(joins(&h), [Pending; 3]);
    let b = h.claim("b", at(3));
    finish(&mut h, "a", 4);
    // `any` runs on the first parent; the others wait for b.
    assert_eq!(joins(&h), [Pending, Pending, Ready]);
    finish(&mut h, "j_any", 5);
    h.complete(&b, at(6)).0.unwrap();
    assert_eq!(joins(&h), [Ready, Ready, Complete]);
    finish(&mut h, "j_all", 7);
    finish(&mut h, "j_done", 8);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn a_skipped_parent_skips_all_at_once_while_all_done_waits_for_the_rest() {
    let mut h = decided(&["a"]);
    // b was not chosen: `all` can never run, so it is skipped now, while a
    // has not even started.
    assert_eq!(h.state("b"), Skipped);
    assert_eq!(joins(&h), [Skipped, Pending, Pending]);
    finish(&mut h, "a", 3);
    assert_eq!(joins(&h), [Skipped, Ready, Ready]);
    finish(&mut h, "j_done", 4);
    finish(&mut h, "j_any", 5);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn every_parent_skipped_skips_any_and_runs_all_done() {
    let mut h = decided(&[]);
    assert_eq!(joins(&h), [Skipped, Ready, Skipped]);
    finish(&mut h, "j_done", 3);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn a_failed_parent_fails_the_task_even_after_any_ran() {
    let mut h = decided(&["a", "b"]);
    let b = h.claim("b", at(3));
    finish(&mut h, "a", 4);
    finish(&mut h, "j_any", 5);
    h.fail(&b, fatal("boom"), at(6)).0.unwrap();
    // Neither `all` nor `all_done` runs after a failure; nothing else can.
    assert_eq!(joins(&h), [Pending, Pending, Complete]);
    assert_eq!(h.task.state, TaskState::Failed);
    // Resolving the failed parent lets them run, and the task finishes.
    let b = h.idx("b");
    h.operate(at(7), |run| run.resolve_step(b, None, at(7)))
        .0
        .unwrap();
    assert_eq!(joins(&h), [Ready, Ready, Complete]);
    finish(&mut h, "j_all", 8);
    finish(&mut h, "j_done", 9);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn any_does_not_wait_for_a_failing_parent() {
    let mut h = decided(&["a", "b"]);
    let b = h.claim("b", at(3));
    h.fail(&b, fatal("boom"), at(4)).0.unwrap();
    // a still runs, so the task is not stuck yet.
    assert_eq!(h.task.state, TaskState::Running);
    finish(&mut h, "a", 5);
    assert_eq!(joins(&h), [Pending, Pending, Ready]);
    finish(&mut h, "j_any", 6);
    assert_eq!(h.task.state, TaskState::Failed);
}

use serde_json::json;
use tasker_model::{ClaimOutcome, OperationError, Recorded, StepState, TaskState};

use crate::graphs::{diamond, pair};
use crate::harness::{Harness, at, fatal, retryable, step_transitions, task_transitions};

/// `pair(1)` with `a` failed, so the task failed.
fn failed_pair() -> Harness {
    let (mut h, _) = Harness::create(&pair(1));
    let a = h.claim("a", at(0));
    h.fail(&a, retryable("down"), at(1)).0.unwrap();
    assert_eq!(h.task.state, TaskState::Failed);
    h
}

#[test]
fn retrying_a_failed_step_reopens_the_task_with_a_fresh_attempt_budget() {
    let mut h = failed_pair();
    let old_lease_token = h.step("a").lease_token;
    let (result, plan) = h.operate(at(10), |run| run.retry_step(0, at(10)));
    result.unwrap();
    assert_eq!(h.task.state, TaskState::Running);
    assert_eq!(h.task.finished_at, None);
    assert_eq!(task_transitions(&plan), vec![(Some("failed"), "running")]);
    assert_eq!(step_transitions(&h, "a", &plan), vec![("failed", "ready")]);
    assert_eq!(plan.enqueue, vec![0]);
    assert_eq!(plan.errors, vec![(0, None)]);
    let a = h.step("a");
    assert_eq!(
        (a.state, a.attempt, a.finished_at),
        (StepState::Ready, 0, None)
    );

    let lease = h.claim("a", at(11));
    assert_eq!(lease.attempt, 1);
    assert_ne!(Some(lease.token), old_lease_token);
    h.complete(&lease, at(12)).0.unwrap();
    let b = h.claim("b", at(13));
    let (_, plan) = h.complete(&b, at(14));
    assert_eq!(task_transitions(&plan), vec![(Some("running"), "complete")]);
}

#[test]
fn only_a_failed_step_can_be_retried() {
    let (mut h, _) = Harness::create(&pair(3));
    let (result, _) = h.operate(at(1), |run| run.retry_step(0, at(1)));
    let err = result.unwrap_err();
    assert_eq!(
        err,
        OperationError::WrongState {
            step: "a".into(),
            state: StepState::Ready,
            action: "a manual retry",
            needs: "failed",
        }
    );
    assert_eq!(
        err.to_string(),
        "step \"a\" is ready; a manual retry needs failed"
    );
}

#[test]
fn resolving_a_failed_step_releases_its_children_and_lets_the_task_complete() {
    let (mut h, _) = Harness::create(&diamond(1));
    let a = h.claim("a", at(0));
    h.complete(&a, at(1)).0.unwrap();
    let b = h.claim("b", at(2));
    let c = h.claim("c", at(2));
    h.fail(&b, fatal("no stock"), at(3)).0.unwrap();
    h.complete(&c, at(4)).0.unwrap();
    assert_eq!(h.task.state, TaskState::Failed);

    let (result, plan) = h.operate(at(5), |run| {
        run.resolve_step(1, Some(json!({"skipped": true})), at(5))
    });
    result.unwrap();
    assert_eq!(task_transitions(&plan), vec![(Some("failed"), "running")]);
    assert_eq!(
        step_transitions(&h, "b", &plan),
        vec![("failed", "resolved")]
    );
    assert_eq!(plan.results, vec![(1, json!({"skipped": true}))]);
    assert_eq!(plan.enqueue, vec![3]);
    assert_eq!(h.state("d"), StepState::Ready);

    let d = h.claim("d", at(6));
    let (recorded, plan) = h.complete(&d, at(7));
    assert_eq!(recorded, Ok(Recorded::Applied));
    assert_eq!(task_transitions(&plan), vec![(Some("running"), "complete")]);
}

#[test]
fn resolving_the_last_failed_step_completes_the_task_at_once() {
    let (mut h, _) = Harness::create(&pair(1));
    let a = h.claim("a", at(0));
    h.complete(&a, at(1)).0.unwrap();
    let b = h.claim("b", at(2));
    h.fail(&b, fatal("x"), at(3)).0.unwrap();
    let (result, plan) = h.operate(at(4), |run| run.resolve_step(1, None, at(4)));
    result.unwrap();
    assert!(plan.results.is_empty());
    assert_eq!(
        task_transitions(&plan),
        vec![(Some("failed"), "running"), (Some("running"), "complete")]
    );
    assert_eq!(h.task.finished_at, Some(at(4)));
}

#[test]
fn resolving_one_of_two_failed_steps_leaves_the_task_failed() {
    let (mut h, _) = Harness::create(&diamond(1));
    let a = h.claim("a", at(0));
    h.complete(&a, at(1)).0.unwrap();
    let b = h.claim("b", at(2));
    let c = h.claim("c", at(2));
    h.fail(&b, fatal("x"), at(3)).0.unwrap();
    h.fail(&c, fatal("y"), at(3)).0.unwrap();
    let (result, plan) = h.operate(at(4), |run| run.resolve_step(1, None, at(4)));
    result.unwrap();
    assert_eq!(h.state("d"), StepState::Pending, "d still needs c");
    assert_eq!(
        task_transitions(&plan),
        vec![(Some("failed"), "running"), (Some("running"), "failed")]
    );
    assert_eq!(
        plan.transitions.last().unwrap().reason.as_deref(),
        Some("step(s) failed: c")
    );
}

#[test]
fn resolving_a_pending_step_lets_its_dependents_skip_it() {
    let (mut h, _) = Harness::create(&pair(3));
    let (result, plan) = h.operate(at(1), |run| run.resolve_step(1, None, at(1)));
    result.unwrap();
    assert_eq!(
        step_transitions(&h, "b", &plan),
        vec![("pending", "resolved")]
    );
    assert!(!plan.task_changed, "a is still in flight");
    let a = h.claim("a", at(2));
    let (_, plan) = h.complete(&a, at(3));
    assert!(plan.enqueue.is_empty(), "b is already resolved");
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn a_complete_step_cannot_be_resolved() {
    let (mut h, _) = Harness::create(&pair(3));
    let a = h.claim("a", at(0));
    h.complete(&a, at(1)).0.unwrap();
    let (result, _) = h.operate(at(2), |run| run.resolve_step(0, None, at(2)));
    assert_eq!(
        result,
        Err(OperationError::WrongState {
            step: "a".into(),
            state: StepState::Complete,
            action: "resolving",
            needs: "failed or pending",
        })
    );
}

#[test]
fn a_complete_task_refuses_every_change() {
    let (mut h, _) = Harness::create(&pair(3));
    let a = h.claim("a", at(0));
    let a_msg = h.msg("a");
    h.complete(&a, at(1)).0.unwrap();
    let b = h.claim("b", at(2));
    h.complete(&b, at(3)).0.unwrap();
    assert_eq!(h.task.state, TaskState::Complete);

    let finished = Err(OperationError::TaskFinished(TaskState::Complete));
    assert_eq!(
        h.operate(at(4), |run| run.cancel("late", at(4))).0,
        finished
    );
    assert_eq!(h.operate(at(4), |run| run.retry_step(0, at(4))).0, finished);
    assert_eq!(
        h.operate(at(4), |run| run.resolve_step(1, None, at(4))).0,
        finished
    );
    assert_eq!(h.deliver("a", a_msg, at(4)).0, ClaimOutcome::Dropped);
    assert_eq!(h.complete(&b, at(4)).0, Ok(Recorded::Duplicate));
}

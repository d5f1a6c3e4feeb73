use tasker_model::{LeaseError, Recorded, StepState, TaskState};

use crate::graphs::{diamond, pair, single};
use crate::harness::{
    Harness, LEASE_SECS, WORKER, at, fatal, retryable, step_transitions, task_transitions,
};

#[test]
fn a_retryable_failure_schedules_a_retry_after_the_templates_backoff() {
    let (mut h, _) = Harness::create(&single(4, "5m"));
    let msg = h.msg("a");
    let lease = h.claim("a", at(0));
    let error = retryable("connection reset");
    let (recorded, plan) = h.fail(&lease, error.clone(), at(5));
    assert_eq!(recorded, Ok(Recorded::Applied));
    // Backoff 10s * 2^(attempt-1), no jitter.
    assert_eq!(h.step("a").retry_at, Some(at(15)));
    assert_eq!(plan.set_visibility, vec![(msg, at(15))]);
    assert_eq!(plan.errors, vec![(0, Some(error))]);
    assert!(plan.delete_messages.is_empty() && plan.enqueue.is_empty());
    assert_eq!(
        step_transitions(&h, "a", &plan),
        vec![("running", "retrying")]
    );
    let t = &plan.transitions[0];
    assert_eq!(t.reason.as_deref(), Some("handler_error: connection reset"));
    assert_eq!((t.attempt, t.worker_id.as_deref()), (Some(1), Some(WORKER)));
    let a = h.step("a");
    assert_eq!(
        (a.state, a.lease_expires_at, a.finished_at),
        (StepState::Retrying, None, None)
    );
    assert_eq!(h.task.state, TaskState::Running);
    assert!(!plan.task_changed);

    // Each retry waits twice as long as the one before.
    let lease = h.claim("a", at(15));
    h.fail(&lease, retryable("again"), at(16)).0.unwrap();
    assert_eq!(h.step("a").retry_at, Some(at(36)));
    let lease = h.claim("a", at(36));
    h.fail(&lease, retryable("again"), at(40)).0.unwrap();
    assert_eq!(h.step("a").retry_at, Some(at(80)));
}

#[test]
fn a_retrying_step_is_claimed_again_once_its_backoff_elapsed() {
    let (mut h, _) = Harness::create(&single(3, "5m"));
    let first = h.claim("a", at(0));
    h.fail(&first, retryable("busy"), at(1)).0.unwrap();
    assert_eq!(
        h.visible_at("a"),
        at(11),
        "the message stays hidden during backoff"
    );

    let (outcome, plan) = h.try_claim("a", at(11));
    let tasker_model::ClaimOutcome::Claimed(second) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(second.attempt, 2);
    assert_ne!(second.token, first.token);
    assert_eq!(
        step_transitions(&h, "a", &plan),
        vec![("retrying", "ready"), ("ready", "running")]
    );
    assert_eq!(
        plan.transitions[0].reason.as_deref(),
        Some("backoff elapsed")
    );
    let a = h.step("a");
    assert_eq!(
        (a.attempt, a.retry_at, a.started_at),
        (2, None, Some(at(11)))
    );
    assert_eq!(
        h.fail(&first, retryable("late"), at(12)).0,
        Err(LeaseError::LeaseMismatch)
    );
    assert_eq!(h.complete(&second, at(12)).0, Ok(Recorded::Applied));
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn max_attempts_of_one_never_retries() {
    let (mut h, _) = Harness::create(&single(1, "5m"));
    let msg = h.msg("a");
    let lease = h.claim("a", at(0));
    let (_, plan) = h.fail(&lease, retryable("transient"), at(1));
    assert_eq!(h.state("a"), StepState::Failed);
    assert_eq!(h.step("a").retry_at, None);
    assert_eq!(plan.delete_messages, vec![msg]);
    assert!(plan.set_visibility.is_empty());
    assert_eq!(h.task.state, TaskState::Failed);
}

#[test]
fn exhausting_the_attempts_fails_the_step_and_the_task() {
    let (mut h, _) = Harness::create(&pair(2));
    let lease = h.claim("a", at(0));
    h.fail(&lease, retryable("one"), at(1)).0.unwrap();
    let lease = h.claim("a", at(11));
    let msg = h.msg("a");
    let (recorded, plan) = h.fail(&lease, retryable("two"), at(12));
    assert_eq!(recorded, Ok(Recorded::Applied));
    assert_eq!(
        step_transitions(&h, "a", &plan),
        vec![("running", "failed")]
    );
    assert_eq!(plan.delete_messages, vec![msg]);
    assert!(plan.task_changed);
    assert_eq!(task_transitions(&plan), vec![(Some("running"), "failed")]);
    let reason = plan.transitions.last().unwrap().reason.as_deref();
    assert_eq!(reason, Some("step(s) failed: a"));
    assert_eq!(h.task.state, TaskState::Failed);
    assert_eq!(h.task.finished_at, Some(at(12)));
    assert_eq!(h.step("a").finished_at, Some(at(12)));
    assert_eq!(h.state("b"), StepState::Pending, "b never runs");
}

#[test]
fn a_non_retryable_error_fails_at_once_even_with_attempts_left() {
    let (mut h, _) = Harness::create(&single(5, "5m"));
    let lease = h.claim("a", at(0));
    let (_, plan) = h.fail(&lease, fatal("invalid card"), at(1));
    assert_eq!(h.state("a"), StepState::Failed);
    assert_eq!(h.step("a").attempt, 1);
    assert_eq!(h.task.state, TaskState::Failed);
    assert_eq!(plan.errors[0].1.as_ref().map(|e| e.retryable), Some(false));
}

#[test]
fn a_failure_leaves_the_task_running_until_siblings_finish() {
    let (mut h, _) = Harness::create(&diamond(1));
    let a = h.claim("a", at(0));
    h.complete(&a, at(1)).0.unwrap();
    let b = h.claim("b", at(2));
    let c = h.claim("c", at(2));

    let (_, plan) = h.fail(&b, fatal("boom"), at(3));
    assert_eq!(h.state("b"), StepState::Failed);
    assert_eq!(h.task.state, TaskState::Running, "c is still running");
    assert!(!plan.task_changed && task_transitions(&plan).is_empty());

    let (recorded, plan) = h.complete(&c, at(4));
    assert_eq!(recorded, Ok(Recorded::Applied));
    assert!(plan.enqueue.is_empty(), "d needs b");
    assert_eq!(h.state("d"), StepState::Pending);
    assert_eq!(task_transitions(&plan), vec![(Some("running"), "failed")]);
    assert_eq!(h.task.state, TaskState::Failed);
}

#[test]
fn a_duplicate_fail_is_recognized_and_changes_nothing() {
    let (mut h, _) = Harness::create(&single(3, "5m"));
    let lease = h.claim("a", at(0));
    assert_eq!(
        h.fail(&lease, retryable("x"), at(1)).0,
        Ok(Recorded::Applied)
    );
    assert_eq!(
        h.fail(&lease, retryable("x"), at(2)).0,
        Ok(Recorded::Duplicate)
    );

    let (mut h, _) = Harness::create(&single(1, "5m"));
    let lease = h.claim("a", at(0));
    assert_eq!(h.fail(&lease, fatal("x"), at(1)).0, Ok(Recorded::Applied));
    assert_eq!(h.fail(&lease, fatal("x"), at(2)).0, Ok(Recorded::Duplicate));
}

#[test]
fn failing_after_the_lease_expired_or_after_completing_is_refused() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    assert_eq!(
        h.fail(&lease, retryable("late"), at(LEASE_SECS)).0,
        Err(LeaseError::LeaseExpired)
    );
    h.complete(&lease, at(1)).0.unwrap();
    assert_eq!(
        h.fail(&lease, retryable("x"), at(2)).0,
        Err(LeaseError::StepNotRunning)
    );
    assert_eq!(h.state("a"), StepState::Complete);
}

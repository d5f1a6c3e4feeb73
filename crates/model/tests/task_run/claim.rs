use tasker_model::{ClaimOutcome, StepState};

use crate::graphs::diamond;
use crate::harness::{Harness, LEASE_SECS, WORKER, at, step_transitions};

#[test]
fn claiming_a_ready_step_starts_attempt_one_under_a_lease() {
    let (mut h, _) = Harness::create(&diamond(3));
    let msg = h.msg("a");
    let (outcome, plan) = h.try_claim("a", at(2));
    let ClaimOutcome::Claimed(lease) = outcome else {
        panic!("{outcome:?}")
    };
    let a = h.step("a");
    assert_eq!(lease.step_id, a.id);
    assert_eq!(lease.attempt, 1);
    assert_eq!(a.state, StepState::Running);
    assert_eq!(a.attempt, 1);
    assert_eq!(a.lease_token, Some(lease.token));
    assert_eq!(a.lease_expires_at, Some(at(2 + LEASE_SECS)));
    assert_eq!(a.worker_id.as_deref(), Some(WORKER));
    assert_eq!(a.started_at, Some(at(2)));
    assert_eq!(
        a.msg_id,
        Some(msg),
        "the message stays until the step finishes"
    );

    assert_eq!(step_transitions(&h, "a", &plan), vec![("ready", "running")]);
    let t = &plan.transitions[0];
    assert_eq!(
        (t.attempt, t.worker_id.as_deref(), t.at),
        (Some(1), Some(WORKER), at(2))
    );
    assert!(plan.enqueue.is_empty() && plan.delete_messages.is_empty());
    assert!(!plan.task_changed);
}

#[test]
fn a_message_that_is_not_the_steps_current_one_is_dropped() {
    let (mut h, _) = Harness::create(&diamond(3));
    let before = h.steps.clone();
    let (outcome, plan) = h.deliver("a", 9_999, at(1));
    assert_eq!(outcome, ClaimOutcome::Dropped);
    assert_eq!(plan.delete_messages, vec![9_999]);
    assert!(plan.dirty_steps.is_empty() && plan.transitions.is_empty());
    assert_eq!(h.steps, before, "the step keeps its own message");
}

#[test]
fn a_message_for_a_pending_step_is_dropped() {
    let (mut h, _) = Harness::create(&diamond(3));
    let (outcome, plan) = h.deliver("d", 555, at(1));
    assert_eq!(outcome, ClaimOutcome::Dropped);
    assert_eq!(plan.delete_messages, vec![555]);
    assert_eq!(h.state("d"), StepState::Pending);
}

#[test]
fn a_redelivered_message_of_a_finished_step_is_dropped() {
    let (mut h, _) = Harness::create(&diamond(3));
    let msg = h.msg("a");
    let lease = h.claim("a", at(1));
    h.complete(&lease, at(2)).0.unwrap();
    let (outcome, plan) = h.deliver("a", msg, at(3));
    assert_eq!(outcome, ClaimOutcome::Dropped);
    assert_eq!(plan.delete_messages, vec![msg]);
    assert_eq!(h.state("a"), StepState::Complete);
}

use tasker_model::{ClaimOutcome, HeartbeatOutcome, LeaseError, Recorded, StepState, TaskState};

use crate::graphs::{pair, single};
use crate::harness::{Harness, LEASE_SECS, at, step_transitions};

#[test]
fn an_expired_lease_is_reclaimed_as_the_next_attempt() {
    let (mut h, _) = Harness::create(&pair(3));
    let first = h.claim("a", at(0));
    assert_eq!(
        h.visible_at("a"),
        at(LEASE_SECS),
        "redelivered when the lease ends"
    );

    let (outcome, plan) = h.try_claim("a", at(LEASE_SECS + 1));
    let ClaimOutcome::Claimed(second) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(second.attempt, 2);
    assert_ne!(second.token, first.token);
    assert_eq!(
        step_transitions(&h, "a", &plan),
        vec![("running", "ready"), ("ready", "running")]
    );
    assert_eq!(plan.transitions[0].reason.as_deref(), Some("lease expired"));
    let error = plan.errors[0].1.as_ref().unwrap();
    assert_eq!(
        (error.error_type.as_str(), error.retryable),
        ("lease_expired", true)
    );
    let a = h.step("a");
    assert_eq!(a.lease_token, Some(second.token));
    assert_eq!(a.lease_expires_at, Some(at(2 * LEASE_SECS + 1)));

    assert_eq!(
        h.heartbeat(&first, at(LEASE_SECS + 2)).0,
        Err(LeaseError::LeaseMismatch)
    );
    assert_eq!(
        h.complete(&first, at(LEASE_SECS + 2)).0,
        Err(LeaseError::LeaseMismatch)
    );
    assert_eq!(
        h.complete(&second, at(LEASE_SECS + 2)).0,
        Ok(Recorded::Applied)
    );
}

#[test]
fn an_expired_lease_on_the_last_attempt_fails_the_step() {
    let (mut h, _) = Harness::create(&pair(1));
    let lease = h.claim("a", at(0));
    let msg = h.msg("a");
    let (outcome, plan) = h.try_claim("a", at(LEASE_SECS + 1));
    assert_eq!(outcome, ClaimOutcome::Dropped);
    assert_eq!(plan.delete_messages, vec![msg]);
    assert_eq!(
        step_transitions(&h, "a", &plan),
        vec![("running", "failed")]
    );
    let a = h.step("a");
    assert_eq!(a.state, StepState::Failed);
    assert_eq!(a.finished_at, Some(at(LEASE_SECS + 1)));
    assert_eq!(a.lease_expires_at, None);
    assert_eq!(
        plan.errors[0].1.as_ref().unwrap().error_type,
        "lease_expired"
    );
    assert_eq!(h.task.state, TaskState::Failed);
    // The worker that lost the lease is told the step no longer runs.
    assert_eq!(
        h.complete(&lease, at(LEASE_SECS + 2)).0,
        Err(LeaseError::StepNotRunning)
    );
}

#[test]
fn a_message_read_while_the_lease_is_still_valid_is_hidden_again() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    let msg = h.msg("a");
    let before = h.step("a").clone();
    // A heartbeat raced with the read: the lease now runs to 20 + 30.
    h.heartbeat(&lease, at(20)).0.unwrap();
    let (outcome, plan) = h.deliver("a", msg, at(25));
    assert_eq!(outcome, ClaimOutcome::Busy);
    assert_eq!(plan.set_visibility, vec![(msg, at(20 + LEASE_SECS))]);
    assert!(plan.dirty_steps.is_empty() && plan.transitions.is_empty());
    assert_eq!(h.step("a").attempt, before.attempt);
    assert_eq!(h.step("a").lease_token, before.lease_token);
}

#[test]
fn a_heartbeat_extends_the_lease_and_hides_the_message_as_long() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    let msg = h.msg("a");
    let (outcome, plan) = h.heartbeat(&lease, at(20));
    let expiry = at(20 + LEASE_SECS);
    assert_eq!(
        outcome,
        Ok(HeartbeatOutcome::Extended {
            lease_expires_at: expiry
        })
    );
    assert_eq!(plan.set_visibility, vec![(msg, expiry)]);
    assert!(plan.transitions.is_empty());
    assert_eq!(h.step("a").lease_expires_at, Some(expiry));
    // Past the original expiry the extended lease is still good.
    assert_eq!(
        h.complete(&lease, at(LEASE_SECS + 10)).0,
        Ok(Recorded::Applied)
    );
}

#[test]
fn a_heartbeat_that_comes_too_late_or_from_the_wrong_holder_is_refused() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    let wrong = tasker_model::Lease {
        token: uuid::Uuid::from_u128(7),
        ..lease
    };
    assert_eq!(h.heartbeat(&wrong, at(1)).0, Err(LeaseError::LeaseMismatch));
    assert_eq!(
        h.heartbeat(&lease, at(LEASE_SECS)).0,
        Err(LeaseError::LeaseExpired)
    );
    h.complete(&lease, at(5)).0.unwrap();
    assert_eq!(
        h.heartbeat(&lease, at(6)).0,
        Err(LeaseError::StepNotRunning)
    );
}

#[test]
fn a_heartbeat_past_the_step_timeout_fails_the_attempt_as_a_timeout() {
    let (mut h, _) = Harness::create(&single(3, "1m"));
    let lease = h.claim("a", at(0));
    let msg = h.msg("a");
    assert!(matches!(
        h.heartbeat(&lease, at(25)).0,
        Ok(HeartbeatOutcome::Extended { .. })
    ));
    assert!(matches!(
        h.heartbeat(&lease, at(50)).0,
        Ok(HeartbeatOutcome::Extended { .. })
    ));
    let (outcome, plan) = h.heartbeat(&lease, at(60));
    assert_eq!(outcome, Ok(HeartbeatOutcome::TimedOut));
    let a = h.step("a");
    assert_eq!(a.state, StepState::Retrying);
    assert_eq!(a.retry_at, Some(at(70)));
    assert_eq!(plan.set_visibility, vec![(msg, at(70))]);
    let error = plan.errors[0].1.as_ref().unwrap();
    assert_eq!(
        (error.error_type.as_str(), error.retryable),
        ("timeout", true)
    );
    assert!(error.message.contains("1m"), "{}", error.message);
    // The worker's late result is refused as timed out; its re-sent
    // failure is a duplicate.
    assert_eq!(h.complete(&lease, at(61)).0, Err(LeaseError::StepTimedOut));
    assert_eq!(
        h.fail(&lease, crate::harness::retryable("gave up"), at(61))
            .0,
        Ok(Recorded::Duplicate)
    );
}

#[test]
fn a_timeout_on_the_last_attempt_fails_the_step_and_task() {
    let (mut h, _) = Harness::create(&single(1, "1m"));
    let lease = h.claim("a", at(0));
    h.heartbeat(&lease, at(29)).0.unwrap();
    h.heartbeat(&lease, at(58)).0.unwrap();
    let (outcome, plan) = h.heartbeat(&lease, at(75));
    assert_eq!(outcome, Ok(HeartbeatOutcome::TimedOut));
    assert_eq!(h.state("a"), StepState::Failed);
    assert_eq!(plan.errors[0].1.as_ref().unwrap().error_type, "timeout");
    assert_eq!(h.task.state, TaskState::Failed);
}

#[test]
fn a_lease_never_outlasts_the_step_timeout() {
    // A 20 s timeout and 30 s leases: the claim is capped at 20 s, and so
    // is every heartbeat's extension, with the message's visibility.
    let (mut h, _) = Harness::create(&single(3, "20s"));
    let (outcome, plan) = h.try_claim("a", at(0));
    assert!(matches!(outcome, ClaimOutcome::Claimed(_)));
    let msg = h.msg("a");
    assert_eq!(h.step("a").lease_expires_at, Some(at(20)));
    assert_eq!(plan.set_visibility, vec![(msg, at(20))]);
    let lease = tasker_model::Lease {
        step_id: h.step("a").id,
        attempt: 1,
        token: h.step("a").lease_token.unwrap(),
    };
    let (outcome, plan) = h.heartbeat(&lease, at(10));
    assert_eq!(
        outcome,
        Ok(HeartbeatOutcome::Extended {
            lease_expires_at: at(20)
        })
    );
    assert_eq!(plan.set_visibility, vec![(msg, at(20))]);
}

#[test]
fn a_result_after_the_timeout_is_refused_before_anything_failed_the_attempt() {
    let (mut h, _) = Harness::create(&single(3, "20s"));
    let lease = h.claim("a", at(0));
    assert_eq!(h.complete(&lease, at(20)).0, Err(LeaseError::StepTimedOut));
    assert_eq!(h.step("a").state, StepState::Running);
}

use serde_json::json;
use tasker_model::{Lease, LeaseError, Recorded, StepState, TaskState};
use uuid::Uuid;

use crate::graphs::{diamond, pair};
use crate::harness::{Harness, LEASE_SECS, at, step_transitions, task_transitions};

#[test]
fn completing_stores_the_result_deletes_the_message_and_releases_children() {
    let (mut h, _) = Harness::create(&diamond(3));
    let msg = h.msg("a");
    let lease = h.claim("a", at(1));
    let (recorded, plan) = h.complete_with(&lease, json!({"rows": 42}), at(5));
    assert_eq!(recorded, Ok(Recorded::Applied));
    assert_eq!(plan.results, vec![(0, json!({"rows": 42}))]);
    // A success clears whatever error an earlier attempt left on the step.
    assert_eq!(plan.errors, vec![(0, None)]);
    assert_eq!(plan.delete_messages, vec![msg]);
    assert_eq!(plan.enqueue, vec![1, 2]);
    assert_eq!(
        step_transitions(&h, "a", &plan),
        vec![("running", "complete")]
    );
    assert_eq!(step_transitions(&h, "b", &plan), vec![("pending", "ready")]);
    assert_eq!(step_transitions(&h, "c", &plan), vec![("pending", "ready")]);
    let a = h.step("a");
    assert_eq!(a.state, StepState::Complete);
    assert_eq!(a.finished_at, Some(at(5)));
    assert_eq!(a.lease_expires_at, None);
    assert_eq!(a.msg_id, None);
    assert_eq!(h.state("d"), StepState::Pending);
}

#[test]
fn a_join_is_released_only_when_all_its_parents_complete() {
    let (mut h, _) = Harness::create(&diamond(3));
    let a = h.claim("a", at(1));
    h.complete(&a, at(2)).0.unwrap();
    let b = h.claim("b", at(3));
    let c = h.claim("c", at(3));

    let (_, plan) = h.complete(&b, at(4));
    assert!(plan.enqueue.is_empty(), "d must wait for c");
    assert_eq!(h.state("d"), StepState::Pending);
    assert_eq!(step_transitions(&h, "d", &plan), vec![]);

    let (_, plan) = h.complete(&c, at(5));
    assert_eq!(plan.enqueue, vec![3]);
    assert_eq!(h.state("d"), StepState::Ready);
}

#[test]
fn the_last_completion_finalizes_the_task_exactly_once() {
    let (mut h, _) = Harness::create(&diamond(3));
    let mut finals = Vec::new();
    for (i, names) in [&["a"][..], &["b", "c"], &["d"]].iter().enumerate() {
        let now = i as i64 * 10;
        let leases: Vec<Lease> = names.iter().map(|n| h.claim(n, at(now))).collect();
        for lease in leases {
            let (recorded, plan) = h.complete(&lease, at(now + 1));
            assert_eq!(recorded, Ok(Recorded::Applied));
            finals.push((plan.task_changed, task_transitions(&plan)));
        }
    }
    let last = finals.pop().unwrap();
    assert_eq!(last, (true, vec![(Some("running"), "complete")]));
    assert!(
        finals.iter().all(|(changed, t)| !changed && t.is_empty()),
        "{finals:?}"
    );
    assert_eq!(h.task.state, TaskState::Complete);
    assert_eq!(h.task.finished_at, Some(at(21)));

    // Re-sending the final report changes nothing and does not finalize again.
    let lease = Lease {
        step_id: h.step("d").id,
        attempt: 1,
        token: h.step("d").lease_token.unwrap(),
    };
    let (recorded, plan) = h.complete(&lease, at(30));
    assert_eq!(recorded, Ok(Recorded::Duplicate));
    assert!(plan.is_empty());
}

#[test]
fn a_stale_token_or_old_attempt_is_a_lease_mismatch() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(1));
    let stale_token = Lease {
        token: Uuid::from_u128(1),
        ..lease
    };
    assert_eq!(
        h.complete(&stale_token, at(2)).0,
        Err(LeaseError::LeaseMismatch)
    );
    let old_attempt = Lease {
        attempt: lease.attempt - 1,
        ..lease
    };
    assert_eq!(
        h.complete(&old_attempt, at(2)).0,
        Err(LeaseError::LeaseMismatch)
    );
    let unknown_step = Lease {
        step_id: Uuid::from_u128(0xdead),
        ..lease
    };
    assert_eq!(
        h.complete(&unknown_step, at(2)).0,
        Err(LeaseError::LeaseMismatch)
    );
    assert_eq!(
        h.state("a"),
        StepState::Running,
        "the real holder still runs it"
    );
    assert_eq!(h.complete(&lease, at(3)).0, Ok(Recorded::Applied));
}

#[test]
fn a_report_from_an_attempt_that_lost_its_lease_is_a_mismatch() {
    let (mut h, _) = Harness::create(&pair(3));
    let first = h.claim("a", at(0));
    let second = h.claim("a", at(LEASE_SECS + 1));
    assert_eq!(second.attempt, 2);
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
fn completing_after_the_lease_expired_is_refused() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    assert_eq!(
        h.complete(&lease, at(LEASE_SECS)).0,
        Err(LeaseError::LeaseExpired)
    );
    assert_eq!(
        h.complete(&lease, at(LEASE_SECS + 5)).0,
        Err(LeaseError::LeaseExpired)
    );
    assert_eq!(h.state("a"), StepState::Running);
    assert_eq!(
        h.complete(&lease, at(LEASE_SECS - 1)).0,
        Ok(Recorded::Applied)
    );
}

#[test]
fn a_duplicate_complete_is_recognized_and_changes_nothing() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    assert_eq!(h.complete(&lease, at(1)).0, Ok(Recorded::Applied));
    let (recorded, plan) = h.complete_with(&lease, json!("different"), at(2));
    assert_eq!(recorded, Ok(Recorded::Duplicate));
    assert!(plan.is_empty());
    // Even after the lease would have expired, the re-send is a duplicate.
    assert_eq!(
        h.complete(&lease, at(LEASE_SECS * 3)).0,
        Ok(Recorded::Duplicate)
    );
}

#[test]
fn completing_a_step_that_is_waiting_to_retry_is_refused() {
    let (mut h, _) = Harness::create(&pair(3));
    let lease = h.claim("a", at(0));
    h.fail(&lease, crate::harness::retryable("flaky"), at(1))
        .0
        .unwrap();
    assert_eq!(h.complete(&lease, at(2)).0, Err(LeaseError::StepNotRunning));
    assert_eq!(h.state("a"), StepState::Retrying);
}

use std::collections::BTreeSet;

use tasker_model::{
    ClaimOutcome, HeartbeatOutcome, LeaseError, OperationError, StepState, TaskState,
};

use crate::graphs::{pair, template};
use crate::harness::{Harness, at, retryable, step_transitions, task_transitions};

#[test]
fn cancel_stops_every_unfinished_step_and_deletes_their_messages() {
    // a → b, c, e → d, with a complete, b running, c retrying, e ready, d pending.
    let yaml = template(
        &[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["a"]),
            ("e", &["a"]),
            ("d", &["b", "c", "e"]),
        ],
        3,
        "5m",
    );
    let (mut h, _) = Harness::create(&yaml);
    let a = h.claim("a", at(0));
    h.complete(&a, at(1)).0.unwrap();
    let b = h.claim("b", at(2));
    let c = h.claim("c", at(2));
    h.fail(&c, retryable("flaky"), at(3)).0.unwrap();
    let messages: BTreeSet<i64> = ["b", "c", "e"].iter().map(|n| h.msg(n)).collect();

    let (result, plan) = h.operate(at(4), |run| run.cancel("operator request", at(4)));
    result.unwrap();
    assert_eq!(h.task.state, TaskState::Cancelled);
    assert_eq!(h.task.finished_at, Some(at(4)));
    assert!(plan.task_changed);
    assert_eq!(
        task_transitions(&plan),
        vec![(Some("running"), "cancelled")]
    );
    assert_eq!(
        plan.transitions[0].reason.as_deref(),
        Some("operator request")
    );
    assert_eq!(
        plan.delete_messages
            .iter()
            .copied()
            .collect::<BTreeSet<_>>(),
        messages
    );
    assert_eq!(plan.delete_messages.len(), 3);
    for (name, from) in [
        ("b", "running"),
        ("c", "retrying"),
        ("e", "ready"),
        ("d", "pending"),
    ] {
        assert_eq!(h.state(name), StepState::Cancelled, "{name}");
        assert_eq!(
            step_transitions(&h, name, &plan),
            vec![(from, "cancelled")],
            "{name}"
        );
        assert_eq!(h.step(name).finished_at, Some(at(4)), "{name}");
    }
    assert_eq!(h.state("a"), StepState::Complete);
    assert!(h.queue.is_empty());
    assert_eq!(step_transitions(&h, "a", &plan), vec![]);

    // The running worker hears about it on its next heartbeat, and its
    // results are refused.
    assert_eq!(h.heartbeat(&b, at(5)).0, Ok(HeartbeatOutcome::Cancelled));
    assert_eq!(h.complete(&b, at(5)).0, Err(LeaseError::TaskCancelled));
    assert_eq!(
        h.fail(&b, retryable("x"), at(5)).0,
        Err(LeaseError::TaskCancelled)
    );
}

#[test]
fn a_cancelled_task_cannot_be_cancelled_again_or_claimed() {
    let (mut h, _) = Harness::create(&pair(3));
    let msg = h.msg("a");
    h.operate(at(1), |run| run.cancel("first", at(1)))
        .0
        .unwrap();
    let (again, _) = h.operate(at(2), |run| run.cancel("second", at(2)));
    assert_eq!(
        again,
        Err(OperationError::TaskFinished(TaskState::Cancelled))
    );
    let (outcome, plan) = h.deliver("a", msg, at(3));
    assert_eq!(outcome, ClaimOutcome::Dropped);
    assert_eq!(plan.delete_messages, vec![msg]);
}

#[test]
fn a_failed_task_can_be_cancelled() {
    let (mut h, _) = Harness::create(&pair(1));
    let a = h.claim("a", at(0));
    h.fail(&a, retryable("x"), at(1)).0.unwrap();
    assert_eq!(h.task.state, TaskState::Failed);
    let (result, plan) = h.operate(at(2), |run| run.cancel("give up", at(2)));
    result.unwrap();
    assert_eq!(task_transitions(&plan), vec![(Some("failed"), "cancelled")]);
    assert_eq!(
        h.state("a"),
        StepState::Failed,
        "finished steps keep their outcome"
    );
    assert_eq!(h.state("b"), StepState::Cancelled);
}

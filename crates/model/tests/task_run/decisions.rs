//! Decision steps: the result `{"branches": [...]}` chooses which children
//! run; the others, and everything only reachable through them, are skipped.

use serde_json::json;
use tasker_model::task_run::INVALID_DECISION;
use tasker_model::{OperationError, Recorded, StepState, TaskState};

use crate::harness::{Harness, at, fatal, step_transitions};

/// `weigh` decides between `freight` and `parcel`; `label` follows parcel
/// only; `notify` runs after whichever ran (`any`); `archive` runs once both
/// are done, skipped or not (`all_done`).
const ROUTING: &str = r#"
namespace: tests
name: routing
version: "1"
steps:
  - { name: weigh, handler: t.weigh, decision: true, retry: { max_attempts: 1 } }
  - { name: freight, handler: t.freight, depends_on: [weigh] }
  - { name: parcel, handler: t.parcel, depends_on: [weigh] }
  - { name: label, handler: t.label, depends_on: [parcel] }
  - { name: notify, handler: t.notify, depends_on: [freight, parcel], convergence: any }
  - { name: archive, handler: t.archive, depends_on: [freight, parcel], convergence: all_done }
"#;

fn decide(h: &mut Harness, result: serde_json::Value) -> tasker_model::Plan {
    let lease = h.claim("weigh", at(1));
    let (recorded, plan) = h.complete_with(&lease, result, at(2));
    assert_eq!(recorded, Ok(Recorded::Applied));
    plan
}

/// Claims and completes every ready step until nothing is ready.
fn run_to_end(h: &mut Harness, mut now: i64) {
    loop {
        let ready: Vec<String> = h
            .template
            .steps
            .iter()
            .map(|s| s.name.clone())
            .filter(|n| h.state(n) == StepState::Ready)
            .collect();
        if ready.is_empty() {
            return;
        }
        for name in ready {
            now += 1;
            let lease = h.claim(&name, at(now));
            h.complete(&lease, at(now)).0.unwrap();
        }
    }
}

fn states(h: &Harness) -> Vec<(&str, StepState)> {
    ["freight", "parcel", "label", "notify", "archive"]
        .into_iter()
        .map(|n| (n, h.state(n)))
        .collect()
}

#[test]
fn choosing_freight_skips_parcel_and_what_only_parcel_leads_to() {
    let (mut h, _) = Harness::create(ROUTING);
    let plan = decide(&mut h, json!({"branches": ["freight"]}));
    use StepState::*;
    assert_eq!(
        states(&h),
        vec![
            ("freight", Ready),
            ("parcel", Skipped),
            ("label", Skipped),
            ("notify", Pending),
            ("archive", Pending)
        ]
    );
    assert_eq!(h.step("weigh").branches, Some(vec!["freight".to_owned()]));
    // The skips are history, with the reason.
    let reasons: Vec<(&str, Option<&str>)> = plan
        .transitions
        .iter()
        .filter(|t| t.to_state == "skipped")
        .map(|t| {
            let name = if t.step_id == Some(h.step("parcel").id) {
                "parcel"
            } else {
                "label"
            };
            (name, t.reason.as_deref())
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("parcel", Some("not chosen by decision \"weigh\"")),
            ("label", Some("parent \"parcel\" was skipped")),
        ]
    );
    assert_eq!(
        step_transitions(&h, "parcel", &plan),
        vec![("pending", "skipped")]
    );
    assert!(h.step("parcel").finished_at.is_some());

    let freight = h.claim("freight", at(3));
    h.complete(&freight, at(4)).0.unwrap();
    assert_eq!(h.state("notify"), Ready);
    assert_eq!(h.state("archive"), Ready);
    run_to_end(&mut h, 5);
    assert_eq!(h.task.state, TaskState::Complete);
    assert_eq!(h.state("parcel"), Skipped);
}

#[test]
fn choosing_parcel_runs_its_whole_branch() {
    let (mut h, _) = Harness::create(ROUTING);
    decide(&mut h, json!({"branches": ["parcel"]}));
    assert_eq!(h.state("freight"), StepState::Skipped);
    assert_eq!(h.state("parcel"), StepState::Ready);
    assert_eq!(h.state("label"), StepState::Pending);
    run_to_end(&mut h, 3);
    use StepState::*;
    assert_eq!(
        states(&h),
        vec![
            ("freight", Skipped),
            ("parcel", Complete),
            ("label", Complete),
            ("notify", Complete),
            ("archive", Complete)
        ]
    );
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn choosing_both_runs_both_and_a_repeated_name_counts_once() {
    let (mut h, _) = Harness::create(ROUTING);
    decide(&mut h, json!({"branches": ["parcel", "freight", "parcel"]}));
    assert_eq!(
        h.step("weigh").branches,
        Some(vec!["parcel".to_owned(), "freight".to_owned()])
    );
    assert_eq!(h.state("freight"), StepState::Ready);
    assert_eq!(h.state("parcel"), StepState::Ready);
    run_to_end(&mut h, 3);
    assert!(h.steps.iter().all(|s| s.state == StepState::Complete));
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn choosing_none_skips_every_branch_but_all_done_still_runs() {
    let (mut h, _) = Harness::create(ROUTING);
    decide(&mut h, json!({"branches": []}));
    use StepState::*;
    assert_eq!(
        states(&h),
        vec![
            ("freight", Skipped),
            ("parcel", Skipped),
            ("label", Skipped),
            ("notify", Skipped),
            ("archive", Ready)
        ]
    );
    assert_eq!(h.step("weigh").branches, Some(vec![]));
    run_to_end(&mut h, 3);
    assert_eq!(h.task.state, TaskState::Complete);
}

#[test]
fn a_decision_with_only_skipped_outcomes_completes_the_task_in_the_same_plan() {
    let yaml = r#"
namespace: tests
name: optional
version: "1"
steps:
  - { name: check, handler: t.check, decision: true }
  - { name: extra, handler: t.extra, depends_on: [check] }
"#;
    let (mut h, _) = Harness::create(yaml);
    let lease = h.claim("check", at(1));
    let (_, plan) = h.complete_with(&lease, json!({"branches": []}), at(2));
    assert_eq!(h.state("extra"), StepState::Skipped);
    assert_eq!(h.task.state, TaskState::Complete);
    assert!(plan.task_changed);
}

#[test]
fn choosing_an_undeclared_branch_fails_the_step_for_good() {
    for (result, wants) in [
        (
            json!({"branches": ["drone"]}),
            "decision step \"weigh\" chose \"drone\", which is not one of its branches (freight, parcel)",
        ),
        (
            json!({"branches": ["label"]}),
            "chose \"label\", which is not one of its branches",
        ),
        (
            json!({"route": "freight"}),
            "decision step \"weigh\" must complete with {\"branches\": [...]} naming some of: freight, parcel",
        ),
        (json!({"branches": [7]}), "; got 7"),
    ] {
        let (mut h, _) = Harness::create(ROUTING);
        let lease = h.claim("weigh", at(1));
        let (recorded, plan) = h.complete_with(&lease, result.clone(), at(2));
        assert_eq!(recorded, Ok(Recorded::Applied));
        assert_eq!(h.state("weigh"), StepState::Failed, "{result}");
        let (_, error) = plan.errors.last().unwrap();
        let error = error.as_ref().unwrap();
        assert_eq!(error.error_type, INVALID_DECISION);
        assert!(!error.retryable);
        assert!(error.message.contains(wants), "{}", error.message);
        assert_eq!(error.details, json!({ "result": result }));
        assert!(
            plan.results.is_empty(),
            "an invalid decision stores no result"
        );
        assert!(plan.enqueue.is_empty());
        assert_eq!(h.task.state, TaskState::Failed);
        assert!(h.steps[1..].iter().all(|s| s.state == StepState::Pending));
    }
}

#[test]
fn a_resolved_decision_runs_the_branches_its_result_names_or_all() {
    let failed = || {
        let (mut h, _) = Harness::create(ROUTING);
        let lease = h.claim("weigh", at(1));
        h.fail(&lease, fatal("scale offline"), at(2)).0.unwrap();
        assert_eq!(h.task.state, TaskState::Failed);
        h
    };
    let weigh = 0;

    let mut h = failed();
    let (refused, _) = h.operate(at(3), |run| {
        run.resolve_step(weigh, Some(json!({"branches": ["boat"]})), at(3))
    });
    match refused {
        Err(OperationError::InvalidResult(message)) => {
            assert!(message.contains("chose \"boat\""), "{message}")
        }
        other => panic!("{other:?}"),
    }

    h.operate(at(4), |run| {
        run.resolve_step(weigh, Some(json!({"branches": ["parcel"]})), at(4))
    })
    .0
    .unwrap();
    assert_eq!(h.state("freight"), StepState::Skipped);
    assert_eq!(h.state("parcel"), StepState::Ready);
    assert_eq!(h.task.state, TaskState::Running);

    let mut h = failed();
    h.operate(at(4), |run| run.resolve_step(weigh, None, at(4)))
        .0
        .unwrap();
    assert_eq!(h.state("freight"), StepState::Ready);
    assert_eq!(h.state("parcel"), StepState::Ready);
}

#[test]
fn skipped_steps_refuse_manual_operations() {
    let (mut h, _) = Harness::create(ROUTING);
    decide(&mut h, json!({"branches": ["freight"]}));
    let parcel = h.idx("parcel");
    let (resolved, _) = h.operate(at(3), |run| run.resolve_step(parcel, None, at(3)));
    assert!(
        matches!(
            resolved,
            Err(OperationError::WrongState {
                state: StepState::Skipped,
                ..
            })
        ),
        "{resolved:?}"
    );
    let (retried, _) = h.operate(at(3), |run| run.retry_step(parcel, at(3)));
    assert!(retried.is_err());
}

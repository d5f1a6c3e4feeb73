use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

fn step(name: &str, state: StepState, depends_on: &[&str]) -> StepFacts {
    StepFacts {
        step: Step {
            id: Uuid::new_v4(),
            task_id: Uuid::nil(),
            name: name.into(),
            handler: format!("{name}_handler"),
            state,
            attempt: 0,
            max_attempts: 3,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            worker_id: None,
            lease_expires_at: None,
            retry_at: None,
            result: None,
            error: None,
            started_at: None,
            finished_at: None,
        },
        message: None,
        holder_node: None,
    }
}

fn facts(state: TaskState, steps: Vec<StepFacts>, workers: Vec<LiveWorker>) -> ExplainFacts {
    ExplainFacts {
        task: Task {
            id: Uuid::nil(),
            namespace: "orders".into(),
            template_id: Uuid::nil(),
            template_name: "ship".into(),
            template_version: "1".into(),
            state,
            context: serde_json::json!({}),
            idempotency_key: None,
            tags: vec![],
            created_at: now(),
            updated_at: now(),
            finished_at: state.is_terminal().then(now),
            deadline_at: None,
        },
        steps,
        workers,
        now: now(),
    }
}

fn worker(id: &str, namespaces: &[&str], handlers: &[&str]) -> LiveWorker {
    LiveWorker {
        worker_id: id.into(),
        namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        handlers: handlers.iter().map(|s| s.to_string()).collect(),
        node_id: Some("node-1".into()),
    }
}

fn reasons<'a>(explanation: &'a TaskExplanation, name: &str) -> &'a [WaitReason] {
    &explanation
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("step {name} explained"))
        .reasons
}

#[test]
fn a_finished_task_gets_one_line_and_no_steps() {
    let explanation = explain(&facts(
        TaskState::Complete,
        vec![
            step("a", StepState::Complete, &[]),
            step("b", StepState::Resolved, &["a"]),
        ],
        vec![],
    ));
    assert_eq!(explanation.summary, "complete at 2026-11-30 12:00:00 UTC");
    assert!(explanation.steps.is_empty());
}

#[test]
fn a_pending_step_names_the_parents_not_done() {
    let explanation = explain(&facts(
        TaskState::Running,
        vec![
            step("a", StepState::Complete, &[]),
            step("b", StepState::Running, &[]),
            step("c", StepState::Pending, &["a", "b"]),
        ],
        vec![worker("w1", &["orders"], &[])],
    ));
    assert_eq!(
        reasons(&explanation, "c")[0],
        WaitReason::ParentsNotDone {
            parents: vec![StepRef {
                name: "b".into(),
                state: StepState::Running
            }]
        }
    );
    assert_eq!(explanation.summary, "running; 2 of 3 steps not finished");
}

#[test]
fn a_failed_ancestor_blocks_its_descendants() {
    let explanation = explain(&facts(
        TaskState::Failed,
        vec![
            step("a", StepState::Failed, &[]),
            step("b", StepState::Pending, &["a"]),
            step("c", StepState::Pending, &["b"]),
        ],
        vec![],
    ));
    let blocked = WaitReason::BlockedByParent {
        blocking: vec![StepRef {
            name: "a".into(),
            state: StepState::Failed,
        }],
    };
    assert_eq!(reasons(&explanation, "b"), std::slice::from_ref(&blocked));
    assert_eq!(reasons(&explanation, "c"), [blocked]);
    assert!(matches!(
        reasons(&explanation, "a")[0],
        WaitReason::Failed { .. }
    ));
    assert!(blocked_sentence_names("a", &explanation));
}

fn blocked_sentence_names(name: &str, explanation: &TaskExplanation) -> bool {
    reasons(explanation, "c")[0]
        .sentence()
        .contains(&format!("{name} (failed)"))
}

#[test]
fn a_ready_step_without_workers_of_its_namespace_says_so() {
    let mut ready = step("a", StepState::Ready, &[]);
    ready.message = Some(MessageFacts {
        enqueued_at: now() - Duration::minutes(5),
        visible_at: now() - Duration::minutes(5),
    });
    let explanation = explain(&facts(
        TaskState::Running,
        vec![ready],
        vec![worker("w1", &["billing"], &[])],
    ));
    let got = reasons(&explanation, "a");
    assert!(matches!(got[0], WaitReason::Queued { .. }));
    assert_eq!(
        got[1],
        WaitReason::NoWorkerServesNamespace {
            namespace: "orders".into()
        }
    );
    assert!(
        got[1]
            .sentence()
            .contains("No live worker serves namespace \"orders\"")
    );
}

#[test]
fn workers_of_the_namespace_that_run_other_handlers_do_not_count() {
    let explanation = explain(&facts(
        TaskState::Running,
        vec![step("a", StepState::Ready, &[])],
        vec![
            worker("w1", &["orders"], &["other"]),
            worker("w2", &["billing"], &[]),
        ],
    ));
    assert_eq!(
        reasons(&explanation, "a")[0],
        WaitReason::NoWorkerRunsHandler {
            namespace: "orders".into(),
            handler: "a_handler".into(),
            workers: vec!["w1".into()],
        }
    );
}

#[test]
fn workers_with_no_handler_list_or_the_handler_serve_it() {
    let explanation = explain(&facts(
        TaskState::Running,
        vec![step("a", StepState::Ready, &[])],
        vec![
            worker("w1", &["orders"], &["a_handler"]),
            worker("w2", &["orders"], &[]),
            worker("w3", &["orders"], &["other"]),
        ],
    ));
    assert_eq!(
        reasons(&explanation, "a")[0],
        WaitReason::ServedBy {
            workers: vec!["w1".into(), "w2".into()]
        }
    );
}

#[test]
fn a_running_step_names_its_lease_holder_and_until_when() {
    let mut running = step("a", StepState::Running, &[]);
    running.step.worker_id = Some("w1".into());
    running.step.lease_expires_at = Some(now() + Duration::seconds(30));
    running.holder_node = Some("node-7".into());
    let explanation = explain(&facts(
        TaskState::Running,
        vec![running],
        vec![worker("w1", &["orders"], &[])],
    ));
    let got = reasons(&explanation, "a");
    assert_eq!(
        got,
        [WaitReason::Leased {
            worker_id: Some("w1".into()),
            node_id: Some("node-7".into()),
            until: now() + Duration::seconds(30),
            expired: false,
            worker_live: true,
        }]
    );
    assert!(
        got[0].sentence().contains(
            "worker w1 (through node node-7) holds its lease until 2026-11-30 12:00:30 UTC"
        )
    );
}

#[test]
fn an_expired_lease_of_a_silent_worker_says_the_step_is_delivered_again() {
    let mut running = step("a", StepState::Running, &[]);
    running.step.worker_id = Some("gone".into());
    running.step.lease_expires_at = Some(now() - Duration::seconds(1));
    let explanation = explain(&facts(TaskState::Running, vec![running], vec![]));
    let got = reasons(&explanation, "a");
    assert!(matches!(
        got[0],
        WaitReason::Leased {
            expired: true,
            worker_live: false,
            ..
        }
    ));
    assert!(got[0].sentence().contains("delivered again"));
    assert!(matches!(got[1], WaitReason::NoWorkerServesNamespace { .. }));
}

#[test]
fn a_retrying_step_says_when_it_runs_again() {
    let mut retrying = step("a", StepState::Retrying, &[]);
    retrying.step.attempt = 1;
    retrying.step.retry_at = Some(now() + Duration::seconds(10));
    let explanation = explain(&facts(
        TaskState::Running,
        vec![retrying],
        vec![worker("w1", &["orders"], &[])],
    ));
    let got = reasons(&explanation, "a");
    assert_eq!(
        got[0],
        WaitReason::RetryScheduled {
            at: now() + Duration::seconds(10),
            attempt: 1,
            max_attempts: 3,
        }
    );
    assert_eq!(
        got[0].sentence(),
        "Attempt 1 of 3 failed; the next attempt runs at 2026-11-30 12:00:10 UTC."
    );
}

#[test]
fn a_cancelled_task_explains_its_steps_without_worker_coverage() {
    let explanation = explain(&facts(
        TaskState::Cancelled,
        vec![step("a", StepState::Cancelled, &[])],
        vec![],
    ));
    assert_eq!(explanation.summary, "cancelled at 2026-11-30 12:00:00 UTC");
    assert_eq!(reasons(&explanation, "a"), [WaitReason::Cancelled]);
}

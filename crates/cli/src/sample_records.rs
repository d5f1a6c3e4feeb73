//! Records for the tests of the output code: a task and its steps with
//! fixed ids and times, so that printed text can be compared exactly.

use chrono::TimeZone as _;
use tasker_model::{Step, StepState, Task, TaskState, Timestamp};
use tasker_store::Worker;
use uuid::Uuid;

/// `seconds` after 2023-11-14 22:13:20Z.
pub fn at(seconds: i64) -> Timestamp {
    chrono::Utc
        .timestamp_opt(1_700_000_000 + seconds, 0)
        .unwrap()
}

/// A task of `examples/linear@1` created at [`at`]`(0)`, nil id, no tags.
pub fn task(state: TaskState) -> Task {
    Task {
        id: Uuid::nil(),
        namespace: "examples".into(),
        template_id: Uuid::nil(),
        template_name: "linear".into(),
        template_version: "1".into(),
        state,
        context: serde_json::json!({}),
        idempotency_key: None,
        tags: vec![],
        created_at: at(0),
        updated_at: at(0),
        finished_at: None,
        deadline_at: None,
    }
}

/// Step `step_<n>` with id `n`, handler `h.step_<n>`, 3 attempts allowed.
pub fn step(n: u128, state: StepState, attempt: u32) -> Step {
    Step {
        id: Uuid::from_u128(n),
        task_id: Uuid::nil(),
        name: format!("step_{n}"),
        handler: format!("h.step_{n}"),
        state,
        attempt,
        max_attempts: 3,
        depends_on: vec![],
        worker_id: None,
        lease_expires_at: None,
        retry_at: None,
        result: None,
        error: None,
        started_at: None,
        finished_at: None,
    }
}

/// A live worker polling `namespaces` with `handlers`, last seen at [`at`]`(0)`.
pub fn worker(id: &str, namespaces: &[&str], handlers: &[&str]) -> Worker {
    Worker {
        worker_id: id.into(),
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        handlers: handlers.iter().map(|h| h.to_string()).collect(),
        concurrency: 4,
        version: None,
        node_id: Some("node-1".into()),
        registered_at: at(0),
        last_seen_at: at(0),
    }
}

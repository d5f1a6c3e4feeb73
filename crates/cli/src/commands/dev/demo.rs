//! `tasker dev --demo`: submits a few tasks of the example templates through
//! the API (as a user would), prints one line per state change of each task
//! and its steps as they happen, and once every task finished a summary.
//! The run succeeds when every demo task completed; a failed or cancelled
//! one, or the time limit passing first, makes it fail.
//!
//! One demo task asks its second step to fail once, so the demo also shows a
//! retry with backoff and the recovery after it; a few steps are asked to
//! take a few hundred milliseconds, so that the run can be followed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tasker_client::{Client, NewTask, Task, TaskState, Transition};
use uuid::Uuid;

use crate::output::emit;
use crate::status::Status;

/// How often the demo tasks' histories are read.
const INTERVAL: Duration = Duration::from_millis(250);

/// One demo task: a label for the progress lines and what to create.
struct DemoTask {
    label: &'static str,
    namespace: &'static str,
    template: &'static str,
    context: Value,
}

fn demo_tasks() -> Vec<DemoTask> {
    let task = |label, namespace, template, context| DemoTask {
        label,
        namespace,
        template,
        context,
    };
    vec![
        task(
            "linear",
            "examples",
            "linear",
            json!({"even_number": 2, "sleep_ms": {"step_1": 300, "step_2": 300, "step_3": 300, "step_4": 300}}),
        ),
        task(
            "linear (retries)",
            "examples",
            "linear",
            json!({"even_number": 4, "fail_times": {"step_2": 1}}),
        ),
        task(
            "diamond",
            "examples",
            "diamond",
            json!({"start": 1, "sleep_ms": {"branch_b": 600, "branch_c": 300}}),
        ),
        task("tree", "examples", "tree", json!({"start": 1})),
        task("mixed_dag", "examples", "mixed_dag", json!({"start": 1})),
        task(
            "csv_import",
            "examples",
            "csv_import",
            json!({"rows": 250, "sleep_ms": {"read_csv": 500}}),
        ),
        task(
            "order_routing",
            "orders",
            "order_routing",
            json!({"weight_kg": 42}),
        ),
        task(
            "order_fulfillment",
            "orders",
            "order_fulfillment",
            json!({
                "order_id": "demo-1",
                "customer_email": "ada@example.com",
                "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}]
            }),
        ),
    ]
}

/// A submitted demo task and what has been shown of it.
struct Running {
    label: &'static str,
    id: Uuid,
    /// The id of the last transition printed.
    seen: i64,
    finished: Option<Task>,
}

/// Submits the demo tasks, follows them until all finished or `limit`
/// passed, prints the summary.
pub async fn run(client: &Client, limit: Duration) -> anyhow::Result<Status> {
    let started = Instant::now();
    let since = chrono::Utc::now();
    let mut running = Vec::new();
    for demo in demo_tasks() {
        let new = NewTask {
            namespace: demo.namespace.to_owned(),
            template: demo.template.to_owned(),
            version: None,
            context: demo.context,
            idempotency_key: None,
            tags: vec!["demo".to_owned()],
            deadline: None,
        };
        let (task, _) = client.task_create(&new).await.map_err(|e| {
            anyhow::anyhow!(
                "demo: cannot create a task of {}/{}: {e}",
                demo.namespace,
                demo.template
            )
        })?;
        emit(&format!(
            "demo: submitted {}/{} as task {} ({})\n",
            demo.namespace, demo.template, task.id, demo.label
        ))?;
        running.push(Running {
            label: demo.label,
            id: task.id,
            seen: 0,
            finished: None,
        });
    }
    let width = running.iter().map(|r| r.label.len()).max().unwrap_or(0);
    loop {
        // Each look's changes of all tasks in the order they happened.
        let mut changes = Vec::new();
        for task in running.iter_mut().filter(|r| r.finished.is_none()) {
            let history = client.task_history(task.id).await?;
            let seen = task.seen;
            for transition in history.into_iter().filter(|t| t.id > seen) {
                task.seen = task.seen.max(transition.id);
                changes.push((task.label, transition));
            }
            let current = client.task_get(task.id).await?;
            if current.state.is_terminal() {
                task.finished = Some(current);
            }
        }
        changes.sort_by_key(|(_, t)| (t.at, t.id));
        for (label, transition) in changes {
            let at = (transition.at - since).num_milliseconds().max(0) as f64 / 1000.0;
            emit(&format!(
                "{at:>6.1}s  {label:<width$}  {}\n",
                describe(&transition)
            ))?;
        }
        if running.iter().all(|r| r.finished.is_some()) {
            break;
        }
        if started.elapsed() > limit {
            let waiting: Vec<_> = running
                .iter()
                .filter(|r| r.finished.is_none())
                .map(|r| format!("{} ({})", r.label, r.id))
                .collect();
            eprintln!(
                "demo: not finished within --demo-timeout {}: {}",
                tasker_model::HumanDuration(limit),
                waiting.join(", ")
            );
            return Ok(Status::Failed);
        }
        tokio::time::sleep(INTERVAL).await;
    }
    summarize(&running, started.elapsed())
}

/// `step_2  running → retrying (attempt 1: reason)` or `task  running → complete`.
fn describe(t: &Transition) -> String {
    let what = t.step_name.as_deref().unwrap_or("task");
    let from = t.from_state.as_deref().unwrap_or("new");
    let mut line = format!("{what:<18} {from} → {}", t.to_state);
    let mut notes = Vec::new();
    if let Some(attempt) = t.attempt.filter(|_| t.step_name.is_some()) {
        notes.push(format!("attempt {attempt}"));
    }
    if let Some(reason) = &t.reason {
        notes.push(reason.clone());
    }
    if !notes.is_empty() {
        line.push_str(&format!(" ({})", notes.join(": ")));
    }
    line
}

/// One line per task, then the verdict.
fn summarize(running: &[Running], took: Duration) -> anyhow::Result<Status> {
    let mut by_state: HashMap<TaskState, usize> = HashMap::new();
    emit("\ndemo summary:\n")?;
    for task in running {
        let finished = task.finished.as_ref().expect("every task finished");
        *by_state.entry(finished.state).or_default() += 1;
        let ran_for = finished
            .finished_at
            .map(|end| (end - finished.created_at).num_milliseconds() as f64 / 1000.0)
            .unwrap_or_default();
        let template = format!("{}/{}", finished.namespace, finished.template_name);
        emit(&format!(
            "  {:<9} {:<18} {template:<25} {}  {ran_for:>5.1}s\n",
            finished.state.as_str(),
            task.label,
            finished.id,
        ))?;
    }
    let completed = by_state.get(&TaskState::Complete).copied().unwrap_or(0);
    if completed == running.len() {
        emit(&format!(
            "demo: all {completed} tasks completed in {:.1}s\n",
            took.as_secs_f64()
        ))?;
        Ok(Status::Ok)
    } else {
        eprintln!(
            "demo: {completed} of {} tasks completed; the others did not (see `tasker task explain <id>`)",
            running.len()
        );
        Ok(Status::Failed)
    }
}

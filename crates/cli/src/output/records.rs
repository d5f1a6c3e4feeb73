//! The text form of the API's records: one table per kind of record, and
//! the detail view of one task.

use std::fmt::Write as _;

use tasker_model::{Namespace, Step, Task, TemplateRecord, Timestamp, Transition};
use tasker_store::Worker;

use super::{StepStatus, Table, in_words};

/// How much of a step's result the step table shows.
const RESULT_WIDTH: usize = 40;
/// How much of a step's error the step table shows.
const ERROR_WIDTH: usize = 60;

/// `2025-01-31 12:00:05Z`: second precision, UTC, readable in a column.
pub fn timestamp(at: &Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn optional_timestamp(at: Option<&Timestamp>) -> String {
    at.map(timestamp).unwrap_or_else(|| "-".into())
}

pub fn namespace_table(namespaces: &[Namespace]) -> Table {
    let mut table = Table::new(&["name", "queue", "created"]);
    for n in namespaces {
        table.row(vec![
            n.name.clone(),
            n.queue.clone(),
            timestamp(&n.created_at),
        ]);
    }
    table
}

pub fn template_table(templates: &[TemplateRecord]) -> Table {
    let mut table = Table::new(&["namespace", "name", "version", "steps", "created"]);
    for t in templates {
        table.row(vec![
            t.namespace.clone(),
            t.name.clone(),
            t.version.clone(),
            t.definition.steps.len().to_string(),
            timestamp(&t.created_at),
        ]);
    }
    table
}

pub fn task_table(tasks: &[Task]) -> Table {
    let mut table = Table::new(&["id", "namespace", "template", "state", "created", "tags"]);
    for t in tasks {
        table.row(vec![
            t.id.to_string(),
            t.namespace.clone(),
            format!("{}@{}", t.template_name, t.template_version),
            t.state.to_string(),
            timestamp(&t.created_at),
            t.tags.join(","),
        ]);
    }
    table
}

/// One row per step: its state as [`StepStatus`] tells it, and its result
/// and error cut to one line ([`cut_short`] says whether any was).
pub fn step_table(steps: &[Step], status: &StepStatus) -> Table {
    let mut table = Table::new(&[
        "step", "state", "attempt", "handler", "id", "result", "error",
    ]);
    for s in steps {
        table.row(vec![
            s.name.clone(),
            status.label(s),
            format!("{}/{}", s.attempt, s.max_attempts),
            s.handler.clone(),
            s.id.to_string(),
            s.result
                .as_ref()
                .map(|r| one_line(&r.to_string(), RESULT_WIDTH))
                .unwrap_or_default(),
            s.error
                .as_ref()
                .map(|e| one_line(&error_text(e), ERROR_WIDTH))
                .unwrap_or_default(),
        ]);
    }
    table
}

/// Whether the step table had to cut a result or an error short.
pub fn cut_short(steps: &[Step]) -> bool {
    steps.iter().any(|s| {
        s.result.as_ref().is_some_and(|r| {
            let text = r.to_string();
            one_line(&text, RESULT_WIDTH) != text
        }) || s.error.as_ref().is_some_and(|e| {
            let text = error_text(e);
            one_line(&text, ERROR_WIDTH) != text
        })
    })
}

fn error_text(error: &tasker_model::StepError) -> String {
    format!("{}: {}", error.error_type, error.message)
}

/// A task's history, oldest first: one row per transition of the task
/// (step `-`) or of one of its steps.
pub fn history_table(transitions: &[Transition]) -> Table {
    let mut table = Table::new(&[
        "time",
        "step",
        "from → to",
        "attempt",
        "worker",
        "node",
        "reason",
    ]);
    let dash = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".into());
    for t in transitions {
        table.row(vec![
            t.at.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string(),
            t.step_name.clone().unwrap_or_else(|| "(task)".into()),
            match &t.from_state {
                Some(from) => format!("{from} → {}", t.to_state),
                None => format!("→ {}", t.to_state),
            },
            t.attempt
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            dash(t.worker_id.as_ref()),
            dash(t.node_id.as_ref()),
            t.reason
                .as_ref()
                .map(|r| one_line(r, 80))
                .unwrap_or_default(),
        ]);
    }
    table
}

/// Most handlers a worker row names; more are counted
/// ([`handlers_summarized`] says whether any row was).
const HANDLERS_NAMED: usize = 3;

fn handlers_cell(handlers: &[String]) -> String {
    match handlers.len() {
        0 => "(any)".into(),
        n if n > HANDLERS_NAMED => format!("{n} handlers"),
        _ => handlers.join(","),
    }
}

/// Whether the worker table counted some worker's handlers instead of
/// naming them.
pub fn handlers_summarized(workers: &[Worker]) -> bool {
    workers.iter().any(|w| w.handlers.len() > HANDLERS_NAMED)
}

/// The live workers, most recently seen first as the server lists them.
pub fn worker_table(workers: &[Worker], now: Timestamp) -> Table {
    let mut table = Table::new(&[
        "worker",
        "namespaces",
        "handlers",
        "concurrency",
        "node",
        "last seen",
    ]);
    for w in workers {
        table.row(vec![
            w.worker_id.clone(),
            w.namespaces.join(","),
            handlers_cell(&w.handlers),
            w.concurrency.to_string(),
            w.node_id.clone().unwrap_or_else(|| "-".into()),
            format!("{} ago", in_words(now - w.last_seen_at)),
        ]);
    }
    table
}

/// A task's fields, one per line, then its steps.
pub fn task_detail(task: &Task, steps: &[Step], status: &StepStatus) -> String {
    let mut text = String::new();
    let mut field = |name: &str, value: String| {
        let _ = writeln!(text, "{:<18}{value}", format!("{name}:"));
    };
    field("id", task.id.to_string());
    field(
        "template",
        format!(
            "{}/{}@{}",
            task.namespace, task.template_name, task.template_version
        ),
    );
    field("state", task.state.to_string());
    field("created", timestamp(&task.created_at));
    field("updated", timestamp(&task.updated_at));
    field("finished", optional_timestamp(task.finished_at.as_ref()));
    if let Some(key) = &task.idempotency_key {
        field("idempotency key", key.clone());
    }
    if !task.tags.is_empty() {
        field("tags", task.tags.join(", "));
    }
    field("context", one_line(&task.context.to_string(), 100));
    if !steps.is_empty() {
        text.push('\n');
        text.push_str(&step_table(steps, status).to_string());
    }
    text
}

/// `text` on one line, cut to `max` characters with an ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use tasker_model::{StepError, StepState, TaskState};

    use super::*;
    use crate::sample_records::{at, step, task};

    fn failed_order() -> Task {
        Task {
            namespace: "orders".into(),
            template_name: "fulfil".into(),
            template_version: "2".into(),
            context: serde_json::json!({"order": 7}),
            idempotency_key: Some("order-7".into()),
            tags: vec!["vip".into(), "eu".into()],
            updated_at: at(5),
            finished_at: Some(at(5)),
            ..task(TaskState::Failed)
        }
    }

    #[test]
    fn timestamps_are_utc_to_the_second() {
        assert_eq!(timestamp(&at(0)), "2023-11-14 22:13:20Z");
    }

    #[test]
    fn task_rows_show_the_template_reference_and_tags() {
        let text = task_table(&[failed_order()]).to_string();
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains("fulfil@2"), "{row}");
        assert!(row.contains("failed"), "{row}");
        assert!(row.ends_with("vip,eu"), "{row}");
    }

    #[test]
    fn the_task_detail_lists_fields_then_steps_with_their_errors() {
        let mut failed = step(1, StepState::Failed, 3);
        failed.error = Some(StepError {
            error_type: "timeout".into(),
            message: "took\ntoo long".into(),
            details: serde_json::Value::Null,
            retryable: true,
        });
        let mut second = step(2, StepState::Pending, 0);
        second.depends_on = vec!["step_1".into()];
        let steps = [failed, second];
        let text = task_detail(&failed_order(), &steps, &status(&steps));
        let line = |name: &str, value: &str| format!("{:<18}{value}\n", format!("{name}:"));
        assert!(
            text.contains(&line("template", "orders/fulfil@2")),
            "{text}"
        );
        assert!(text.contains(&line("idempotency key", "order-7")), "{text}");
        assert!(text.contains(&line("context", "{\"order\":7}")), "{text}");
        let first = text.lines().find(|l| l.starts_with("step_1")).unwrap();
        assert!(first.contains("3/3"), "{first}");
        assert!(first.ends_with("timeout: took too long"), "{first}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("step_2  blocked — \"step_1\" failed")),
            "{text}"
        );
    }

    fn status(steps: &[Step]) -> StepStatus<'_> {
        StepStatus {
            namespace: "orders",
            steps,
            workers: None,
            now: at(10),
        }
    }

    #[test]
    fn step_results_show_on_one_line_and_say_when_cut() {
        let mut done = step(1, StepState::Complete, 1);
        done.result = Some(serde_json::json!({"value": 4}));
        let steps = [done.clone()];
        let text = step_table(&steps, &status(&steps)).to_string();
        assert!(text.lines().next().unwrap().contains("RESULT"), "{text}");
        assert!(text.contains("{\"value\":4}"), "{text}");
        assert!(!cut_short(&steps));

        done.result = Some(serde_json::json!({"text": "x".repeat(100)}));
        let steps = [done];
        let text = step_table(&steps, &status(&steps)).to_string();
        let row = text.lines().nth(1).unwrap();
        assert!(row.ends_with("xxx…"), "{row}");
        assert!(cut_short(&steps));
    }

    #[test]
    fn history_rows_show_time_step_change_attempt_worker_node_and_reason() {
        let transition = |step: Option<&str>, from: Option<&str>, to: &str| Transition {
            id: 1,
            task_id: uuid::Uuid::nil(),
            step_id: step.map(|_| uuid::Uuid::from_u128(1)),
            step_name: step.map(str::to_owned),
            from_state: from.map(str::to_owned),
            to_state: to.into(),
            attempt: None,
            worker_id: None,
            node_id: Some("node-1".into()),
            reason: None,
            at: at(1),
        };
        let mut failed = transition(Some("step_1"), Some("running"), "retrying");
        failed.attempt = Some(1);
        failed.worker_id = Some("w-7".into());
        failed.reason = Some("boom: it broke".into());
        let text = history_table(&[transition(None, None, "running"), failed]).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "TIME", "STEP", "FROM", "→", "TO", "ATTEMPT", "WORKER", "NODE", "REASON"
            ]
        );
        assert!(
            lines[1].starts_with("2023-11-14 22:13:21.000Z  (task)"),
            "{text}"
        );
        assert!(lines[1].contains("→ running"), "{text}");
        assert_eq!(
            lines[2]
                .split("  ")
                .filter(|c| !c.is_empty())
                .map(str::trim)
                .collect::<Vec<_>>(),
            [
                "2023-11-14 22:13:21.000Z",
                "step_1",
                "running → retrying",
                "1",
                "w-7",
                "node-1",
                "boom: it broke"
            ]
        );
    }

    #[test]
    fn worker_rows_show_namespaces_handlers_and_when_last_seen() {
        use crate::sample_records::worker;
        let workers = [
            worker("w-1", &["orders", "examples"], &["h.a", "h.b"]),
            worker("w-2", &["orders"], &[]),
        ];
        let text = worker_table(&workers, at(3)).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("WORKER  NAMESPACES"), "{text}");
        assert!(
            lines[1].starts_with("w-1     orders,examples  h.a,h.b"),
            "{text}"
        );
        assert!(lines[1].ends_with("4            node-1  3s ago"), "{text}");
        assert!(lines[2].contains("(any)"), "{text}");
        assert!(!handlers_summarized(&workers));

        let many = [worker("w-3", &["orders"], &["a", "b", "c", "d"])];
        let text = worker_table(&many, at(3)).to_string();
        assert!(text.contains("orders      4 handlers"), "{text}");
        assert!(handlers_summarized(&many));
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abc", 4), "abc");
    }
}

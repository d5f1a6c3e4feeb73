//! The text form of the API's records: one table per kind of record, and
//! the detail view of one task.

use std::fmt::Write as _;

use tasker_model::{Namespace, Step, Task, TemplateRecord, Timestamp};

use super::Table;

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

pub fn step_table(steps: &[Step]) -> Table {
    let mut table = Table::new(&["step", "state", "attempt", "handler", "id", "error"]);
    for s in steps {
        table.row(vec![
            s.name.clone(),
            s.state.to_string(),
            format!("{}/{}", s.attempt, s.max_attempts),
            s.handler.clone(),
            s.id.to_string(),
            s.error
                .as_ref()
                .map(|e| one_line(&format!("{}: {}", e.error_type, e.message), 60))
                .unwrap_or_default(),
        ]);
    }
    table
}

/// A task's fields, one per line, then its steps.
pub fn task_detail(task: &Task, steps: &[Step]) -> String {
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
        text.push_str(&step_table(steps).to_string());
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
        let text = task_detail(&failed_order(), &[failed, step(2, StepState::Pending, 0)]);
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
            text.lines().any(|l| l.starts_with("step_2  pending")),
            "{text}"
        );
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abc", 4), "abc");
    }
}

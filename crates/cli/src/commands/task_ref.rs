//! Which task a command means: a whole id, a unique prefix of one (as `git`
//! takes a prefix of a commit hash), or `last`, the most recently created
//! task. A prefix is looked up on the server as a range of ids
//! (`GET /v1/tasks?id_prefix=`), so it costs one indexed query.

use tasker_client::{Client, TaskFilter};
use uuid::Uuid;

use crate::output::{Table, task_table};
use crate::status::{Failure, Status};

/// Fewest hex digits a prefix must have.
pub const MIN_PREFIX: usize = 4;
/// Most candidates an ambiguous prefix lists.
const CANDIDATES: u32 = 10;

/// A task as named on the command line, before the server is asked.
#[derive(Debug, PartialEq, Eq)]
enum TaskRef {
    Id(Uuid),
    /// Lower-case hex digits, dashes removed.
    Prefix(String),
    Last,
}

fn parse(text: &str) -> anyhow::Result<TaskRef> {
    if text == "last" {
        return Ok(TaskRef::Last);
    }
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(TaskRef::Id(id));
    }
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) || digits.len() > 32 {
        return Err(Failure::usage(format!(
            "\"{text}\" is not a task: give its id, a prefix of it (hex digits), or `last`"
        )));
    }
    if digits.len() < MIN_PREFIX {
        return Err(Failure::usage(format!(
            "task id prefix \"{text}\" is too short: give at least {MIN_PREFIX} hex digits"
        )));
    }
    Ok(TaskRef::Prefix(digits.to_ascii_lowercase()))
}

fn not_found(message: String) -> anyhow::Error {
    Failure {
        status: Status::NotFound,
        message,
    }
    .into()
}

/// The id of the task that `text` names.
pub async fn resolve(client: &Client, text: &str) -> anyhow::Result<Uuid> {
    match parse(text)? {
        TaskRef::Id(id) => Ok(id),
        TaskRef::Last => {
            let page = client
                .task_list(&TaskFilter {
                    limit: Some(1),
                    ..TaskFilter::default()
                })
                .await?;
            page.tasks
                .first()
                .map(|t| t.id)
                .ok_or_else(|| not_found("there are no tasks yet, so no `last` one".into()))
        }
        TaskRef::Prefix(prefix) => {
            let found = client.task_find(&prefix, CANDIDATES + 1).await?;
            match found.as_slice() {
                [] => Err(not_found(format!("no task id starts with \"{text}\""))),
                [one] => Ok(one.id),
                many => {
                    let shown = &many[..many.len().min(CANDIDATES as usize)];
                    let more = if many.len() > shown.len() {
                        " (and more)"
                    } else {
                        ""
                    };
                    Err(Failure::usage(ambiguous(text, &task_table(shown), more)))
                }
            }
        }
    }
}

fn ambiguous(text: &str, candidates: &Table, more: &str) -> String {
    let listed: Vec<String> = candidates
        .to_string()
        .lines()
        .map(|l| format!("  {l}"))
        .collect();
    format!(
        "task id prefix \"{text}\" is ambiguous; it starts these ids{more}:\n{}\n\
         give more digits",
        listed.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_ids_prefixes_and_last() {
        let id = "0193a1b2-0000-7000-8000-000000000001";
        assert_eq!(parse(id).unwrap(), TaskRef::Id(id.parse().unwrap()));
        assert!(
            parse("0193a1b20000700080000000000000001").is_err(),
            "33 digits"
        );
        assert_eq!(parse("0193A1").unwrap(), TaskRef::Prefix("0193a1".into()));
        assert_eq!(
            parse("0193a1b2-00").unwrap(),
            TaskRef::Prefix("0193a1b200".into())
        );
        assert_eq!(parse("last").unwrap(), TaskRef::Last);
    }

    #[test]
    fn short_or_foreign_prefixes_are_usage_errors() {
        let short = parse("019").unwrap_err();
        assert_eq!(crate::status::status_of(&short), Status::Usage);
        assert!(
            short.to_string().contains("at least 4 hex digits"),
            "{short}"
        );
        let foreign = parse("latest").unwrap_err();
        assert_eq!(crate::status::status_of(&foreign), Status::Usage);
        assert!(foreign.to_string().contains("`last`"), "{foreign}");
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        let tasks = [crate::sample_records::task(
            tasker_model::TaskState::Running,
        )];
        let text = ambiguous("0000", &task_table(&tasks), "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "task id prefix \"0000\" is ambiguous; it starts these ids:"
        );
        assert!(lines[1].starts_with("  ID"), "{text}");
        assert!(
            lines[2].starts_with("  00000000-0000-0000-0000-000000000000"),
            "{text}"
        );
        assert_eq!(lines.last(), Some(&"give more digits"));
    }
}

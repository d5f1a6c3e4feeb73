//! `tasker task create --from-file FILE`: many tasks from a JSON Lines file,
//! sent in batches (`POST /v1/tasks/batch`).
//!
//! Every line is read and checked before anything is sent, so a malformed
//! file creates nothing: the first request goes out only when each line is
//! a task. Each line is then answered on its own (created, existing, or
//! refused with the server's error); one bad line does not stop the rest.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tasker_client::{Client, NewTask, Task, TaskRefusal};

use super::client;
use super::task::read_input;
use crate::cli::{ClientArgs, Output};
use crate::output::{emit, emit_json};
use crate::status::{Failure, Status};

/// Most tasks per request: the server's limit.
const BATCH_TASKS: usize = 1000;
/// Most bytes of task lines per request, well under the server's default
/// body limit (2 MiB); a batch holds at least one line whatever its size.
const BATCH_BYTES: usize = 1024 * 1024;

/// One line: the body of `POST /v1/tasks`, with its defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default = "default_namespace")]
    namespace: String,
    template: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    context: serde_json::Value,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    deadline: Option<tasker_model::HumanDuration>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// A task line, numbered from 1 as editors do.
#[derive(Debug)]
struct Numbered {
    line: usize,
    bytes: usize,
    task: NewTask,
}

/// What became of one line.
#[derive(Debug, Serialize)]
struct LineResult {
    line: usize,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Outcome {
    Task { task: Box<Task>, created: bool },
    Error { error: TaskRefusal },
}

pub async fn create_from_file(file: &Path, args: &ClientArgs) -> anyhow::Result<Status> {
    let name = if file == Path::new("-") {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    let lines = parse_lines(&name, &read_input(file)?)?;
    let client = client(args)?;
    let results = send(&client, &lines).await?;

    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let created = count(|o| matches!(o, Outcome::Task { created: true, .. }));
    let existing = count(|o| matches!(o, Outcome::Task { created: false, .. }));
    let failed = count(|o| matches!(o, Outcome::Error { .. }));
    match args.output {
        Output::Json => emit_json(&json!({
            "created": created,
            "existing": existing,
            "failed": failed,
            "results": results,
        }))?,
        Output::Text => {
            let mut text = String::new();
            for result in &results {
                if let Outcome::Error { error } = &result.outcome {
                    text.push_str(&format!("line {}: {error}\n", result.line));
                }
            }
            text.push_str(&format!(
                "created {created}, existing {existing}, failed {failed}\n"
            ));
            emit(&text)?;
        }
    }
    Ok(if failed > 0 {
        Status::Failed
    } else {
        Status::Ok
    })
}

/// Every task line of `text` (blank lines are skipped), or a usage error
/// listing every malformed line with its number.
fn parse_lines(name: &str, text: &str) -> anyhow::Result<Vec<Numbered>> {
    let mut tasks = Vec::new();
    let mut malformed = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(parsed) => tasks.push(Numbered {
                line: index + 1,
                bytes: line.len(),
                task: NewTask {
                    namespace: parsed.namespace,
                    template: parsed.template,
                    version: parsed.version,
                    context: parsed.context,
                    idempotency_key: parsed.idempotency_key,
                    tags: parsed.tags,
                    deadline: parsed.deadline,
                },
            }),
            Err(e) => malformed.push(format!("{name} line {}: not a task: {e}", index + 1)),
        }
    }
    if !malformed.is_empty() {
        let shown = 20;
        let mut message = malformed
            .iter()
            .take(shown)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        if malformed.len() > shown {
            message.push_str(&format!("\n... and {} more", malformed.len() - shown));
        }
        message.push_str(
            "\nnothing was sent; each line must be a JSON object such as \
             {\"template\": \"linear\", \"context\": {}}",
        );
        return Err(Failure::usage(message));
    }
    if tasks.is_empty() {
        return Err(Failure::usage(format!("{name} holds no tasks")));
    }
    Ok(tasks)
}

/// Sends the lines in batches, reporting progress on stderr when there is
/// more than one batch.
async fn send(client: &Client, lines: &[Numbered]) -> anyhow::Result<Vec<LineResult>> {
    let mut results = Vec::with_capacity(lines.len());
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < lines.len()
            && end - start < BATCH_TASKS
            && (end == start || bytes + lines[end].bytes <= BATCH_BYTES)
        {
            bytes += lines[end].bytes;
            end += 1;
        }
        let batch = &lines[start..end];
        let tasks: Vec<NewTask> = batch.iter().map(|l| l.task.clone()).collect();
        let answers = client.task_create_batch(&tasks).await.map_err(|e| {
            let first = batch[0].line;
            let sent = if start == 0 {
                "no line was created".to_owned()
            } else {
                format!("the lines before line {first} were created")
            };
            anyhow::Error::new(e).context(format!(
                "the batch starting at line {first} failed; {sent}, that batch and the \
                 lines after it may not have been (with idempotency keys, sending the file \
                 again is safe)"
            ))
        })?;
        for (numbered, answer) in batch.iter().zip(answers) {
            results.push(LineResult {
                line: numbered.line,
                outcome: match answer {
                    Ok((task, created)) => Outcome::Task {
                        task: Box::new(task),
                        created,
                    },
                    Err(error) => Outcome::Error { error },
                },
            });
        }
        start = end;
        if lines.len() > BATCH_TASKS {
            eprintln!("sent {start} of {} tasks", lines.len());
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_take_the_create_body_with_its_defaults() {
        let text = "{\"template\": \"linear\"}\n\n  \n{\"namespace\": \"examples\", \"template\": \"t\", \"version\": \"2\", \"context\": {\"n\": 1}, \"idempotency_key\": \"k\", \"tags\": [\"a\"]}\n";
        let lines = parse_lines("f", text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 1);
        assert_eq!(lines[0].task.namespace, "default");
        assert_eq!(lines[1].line, 4);
        assert_eq!(
            lines[1].task,
            NewTask::new("examples", "t")
                .version("2")
                .context(json!({"n": 1}))
                .idempotency_key("k")
                .tags(["a"])
        );
    }

    #[test]
    fn every_malformed_line_is_named_and_nothing_is_sent() {
        let text =
            "{\"template\": \"linear\"}\n{oops\n{\"template\": \"t\", \"contxt\": {}}\n[1]\n";
        let error = parse_lines("tasks.jsonl", text).unwrap_err();
        assert_eq!(crate::status::status_of(&error), Status::Usage);
        let message = error.to_string();
        assert!(
            message.contains("tasks.jsonl line 2: not a task"),
            "{message}"
        );
        assert!(
            message.contains("line 3: not a task: unknown field `contxt`"),
            "{message}"
        );
        assert!(message.contains("line 4: not a task"), "{message}");
        assert!(!message.contains("line 1:"), "{message}");
        let error = parse_lines("empty", "\n\n").unwrap_err();
        assert_eq!(error.to_string(), "empty holds no tasks");
    }
}

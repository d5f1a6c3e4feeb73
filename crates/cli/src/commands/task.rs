//! `tasker task create|get|steps|history|explain|list|cancel|watch`.

use std::io::Read as _;
use std::path::Path;

use tasker_client::{NewTask, Step, Task, TaskFilter};

use super::worker_list::{live_workers, warn_uncovered};
use super::{client, task_batch, task_ref, watch};
use crate::cli::{Output, TaskAction};
use crate::output::{
    StepStatus, cut_short, emit, emit_json, explanation_text, history_table, step_table,
    task_detail, task_table,
};
use crate::status::{Failure, Status};

pub async fn run(action: TaskAction) -> anyhow::Result<Status> {
    match action {
        TaskAction::Create {
            from_file: Some(file),
            client: args,
            ..
        } => return task_batch::create_from_file(&file, &args).await,
        TaskAction::Create {
            template,
            context,
            context_file,
            idempotency_key,
            tags,
            deadline,
            watch: then_watch,
            client: args,
            from_file: None,
        } => {
            let template = template.expect("clap requires a template without --from-file");
            let (namespace, name, version) = parse_template_ref(&template)?;
            let context = match (context, context_file) {
                (Some(text), _) => parse_json("--context", &text)?,
                (None, Some(file)) => parse_json("--context-file", &read_input(&file)?)?,
                (None, None) => serde_json::json!({}),
            };
            let new = NewTask {
                namespace,
                template: name,
                version,
                context,
                idempotency_key,
                tags,
                deadline,
            };
            let client = client(&args)?;
            let (task, created) = client.task_create(&new).await?;
            match args.output {
                // With --watch, stdout carries watch's events alone, one JSON
                // object per line.
                Output::Json if then_watch => {}
                Output::Json => emit_json(&task)?,
                Output::Text => {
                    let what = format!(
                        "{} ({}/{}@{}, {})",
                        task.id,
                        task.namespace,
                        task.template_name,
                        task.template_version,
                        task.state
                    );
                    if created {
                        emit(&format!("created task {what}\n"))?;
                    } else {
                        emit(&format!("existing task {what}\n"))?;
                        eprintln!(
                            "the idempotency key named an existing task; nothing was created"
                        );
                    }
                }
            }
            if then_watch {
                // watch warns about steps nobody would run itself.
                return watch::run(&client, task.id, args.output).await;
            }
            if !task.state.is_terminal()
                && let Ok(steps) = client.task_steps(task.id).await
            {
                let workers = live_workers(&client).await;
                warn_uncovered(
                    workers.as_deref(),
                    &task.namespace,
                    steps.iter().map(|s| (s.name.as_str(), s.handler.as_str())),
                );
            }
        }
        TaskAction::Get { id, client: args } => {
            let client = client(&args)?;
            let id = task_ref::resolve(&client, &id).await?;
            let task = client.task_get(id).await?;
            let steps = client.task_steps(id).await?;
            match args.output {
                Output::Json => {
                    let mut value = serde_json::to_value(&task)?;
                    value["steps"] = serde_json::to_value(&steps)?;
                    emit_json(&value)?;
                }
                Output::Text => {
                    let workers = live_workers(&client).await;
                    let status = StepStatus {
                        namespace: &task.namespace,
                        steps: &steps,
                        workers: workers.as_deref(),
                        now: chrono::Utc::now(),
                    };
                    emit(&task_detail(&task, &steps, &status))?;
                    hint_full_results(&task, &steps);
                }
            }
        }
        TaskAction::Steps { id, client: args } => {
            let client = client(&args)?;
            let id = task_ref::resolve(&client, &id).await?;
            let task = client.task_get(id).await?;
            let steps = client.task_steps(id).await?;
            match args.output {
                Output::Json => emit_json(&serde_json::json!({ "steps": steps }))?,
                Output::Text => {
                    let workers = live_workers(&client).await;
                    let status = StepStatus {
                        namespace: &task.namespace,
                        steps: &steps,
                        workers: workers.as_deref(),
                        now: chrono::Utc::now(),
                    };
                    emit(&step_table(&steps, &status).to_string())?;
                    hint_full_results(&task, &steps);
                }
            }
        }
        TaskAction::History { id, client: args } => {
            let client = client(&args)?;
            let id = task_ref::resolve(&client, &id).await?;
            let transitions = client.task_history(id).await?;
            match args.output {
                Output::Json => emit_json(&serde_json::json!({ "transitions": transitions }))?,
                Output::Text => emit(&history_table(&transitions).to_string())?,
            }
        }
        TaskAction::Explain { id, client: args } => {
            let client = client(&args)?;
            let id = task_ref::resolve(&client, &id).await?;
            let explanation = client.task_explain(id).await?;
            match args.output {
                Output::Json => emit_json(&explanation)?,
                Output::Text => emit(&explanation_text(&explanation))?,
            }
        }
        TaskAction::List {
            namespace,
            template,
            state,
            limit,
            cursor,
            client: args,
        } => {
            let filter = TaskFilter {
                namespace,
                template,
                state,
                cursor,
                limit,
                ..TaskFilter::default()
            };
            let page = client(&args)?.task_list(&filter).await?;
            match args.output {
                Output::Json => emit_json(&page)?,
                Output::Text => {
                    emit(&task_table(&page.tasks).to_string())?;
                    if let Some(cursor) = &page.next_cursor {
                        eprintln!("more tasks: add --cursor {cursor}");
                    }
                }
            }
        }
        TaskAction::Cancel {
            id,
            reason,
            client: args,
        } => {
            let client = client(&args)?;
            let id = task_ref::resolve(&client, &id).await?;
            let task = client.task_cancel(id, reason.as_deref()).await?;
            match args.output {
                Output::Json => emit_json(&task)?,
                Output::Text => emit(&format!("task {} is {}\n", task.id, task.state))?,
            }
        }
        TaskAction::Watch { id, client: args } => {
            let client = client(&args)?;
            let id = task_ref::resolve(&client, &id).await?;
            return watch::run(&client, id, args.output).await;
        }
    }
    Ok(Status::Ok)
}

/// Tells (on stderr) how to see results and errors that the table cut short.
fn hint_full_results(task: &Task, steps: &[Step]) {
    if cut_short(steps) {
        eprintln!(
            "results and errors are cut to one line; `tasker task get {} -o json` shows them in full",
            task.id
        );
    }
}

/// `namespace/name[@version]`; a bare `name[@version]` is in the `default`
/// namespace.
fn parse_template_ref(text: &str) -> anyhow::Result<(String, String, Option<String>)> {
    let bad = || {
        Failure::usage(format!(
            "\"{text}\" is not a template reference; write <namespace>/<template>[@<version>], e.g. examples/linear@1"
        ))
    };
    let (path, version) = match text.split_once('@') {
        Some((path, version)) if !version.is_empty() => (path, Some(version.to_owned())),
        Some(_) => return Err(bad()),
        None => (text, None),
    };
    let (namespace, name) = path.split_once('/').unwrap_or(("default", path));
    if namespace.is_empty() || name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    Ok((namespace.to_owned(), name.to_owned(), version))
}

fn parse_json(flag: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| Failure::usage(format!("{flag} is not valid JSON: {e}")))
}

/// A file's text, or standard input's for `-`.
pub(super) fn read_input(file: &Path) -> anyhow::Result<String> {
    let read = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(file)
    };
    read.map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, String, Option<String>) {
        parse_template_ref(text).unwrap()
    }

    #[test]
    fn template_references() {
        assert_eq!(
            parsed("examples/linear@2"),
            ("examples".into(), "linear".into(), Some("2".into()))
        );
        assert_eq!(
            parsed("examples/linear"),
            ("examples".into(), "linear".into(), None)
        );
        assert_eq!(parsed("linear"), ("default".into(), "linear".into(), None));
        for bad in ["", "a/", "/b", "a/b@", "a/b/c"] {
            assert!(parse_template_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_context_is_a_usage_error() {
        let error = parse_json("--context", "{oops").unwrap_err();
        assert_eq!(crate::status::status_of(&error), Status::Usage);
        assert!(error.to_string().starts_with("--context is not valid JSON"));
    }
}

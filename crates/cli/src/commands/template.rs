//! `tasker template register|validate|list`. `validate` runs offline: it
//! applies the same checks as the server, so a template can be checked in
//! CI without one.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tasker_model::Template;
use tasker_model::template::{self, Issue};

use super::client;
use super::worker_list::{live_workers, warn_uncovered};
use crate::cli::{Output, TemplateAction};
use crate::output::{emit, emit_json, template_table};
use crate::status::{self, Failure, Status};

pub async fn run(action: TemplateAction) -> anyhow::Result<Status> {
    match action {
        TemplateAction::Register {
            files,
            client: args,
        } => register(&files, &args).await,
        TemplateAction::Validate { files, output } => validate(&files, output),
        TemplateAction::List {
            namespace,
            client: args,
        } => {
            let templates = client(&args)?.template_list(namespace.as_deref()).await?;
            match args.output {
                Output::Json => emit_json(&templates)?,
                Output::Text => emit(&template_table(&templates).to_string())?,
            }
            Ok(Status::Ok)
        }
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))
}

#[derive(Serialize)]
struct Registered {
    file: PathBuf,
    created: bool,
    template: tasker_model::TemplateRecord,
}

/// Registers each file in turn; a file that fails is reported and the rest
/// still go. The exit status is that of the first failure.
async fn register(files: &[PathBuf], args: &crate::cli::ClientArgs) -> anyhow::Result<Status> {
    let client = client(args)?;
    let mut registered = Vec::new();
    let mut status = Status::Ok;
    for file in files {
        let outcome = match read(file) {
            Ok(yaml) => client
                .template_register_yaml(&yaml)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match outcome {
            Ok((record, created)) => {
                if args.output == Output::Text {
                    let verb = if created { "registered" } else { "unchanged " };
                    emit(&format!(
                        "{verb} {}/{}@{} ({})\n",
                        record.namespace,
                        record.name,
                        record.version,
                        file.display()
                    ))?;
                }
                registered.push(Registered {
                    file: file.clone(),
                    created,
                    template: record,
                });
            }
            Err(error) => {
                let error = error.context(format!("{}", file.display()));
                eprintln!("error: {}", status::describe(&error));
                if status == Status::Ok {
                    status = status::status_of(&error);
                }
            }
        }
    }
    if args.output == Output::Json {
        emit_json(&registered)?;
    }
    if !registered.is_empty() {
        let workers = live_workers(&client).await;
        for r in &registered {
            let steps = &r.template.definition.steps;
            warn_uncovered(
                workers.as_deref(),
                &r.template.namespace,
                steps.iter().map(|s| (s.name.as_str(), s.handler.as_str())),
            );
        }
    }
    Ok(status)
}

/// What `validate` found in one file.
#[derive(Debug, Serialize)]
struct Checked {
    file: PathBuf,
    valid: bool,
    /// `namespace/name@version`, when the file got that far.
    template: Option<String>,
    steps: Option<usize>,
    issues: Vec<Issue>,
}

fn check(file: &Path) -> Checked {
    let mut checked = Checked {
        file: file.to_owned(),
        valid: false,
        template: None,
        steps: None,
        issues: Vec::new(),
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            checked.issues.push(Issue {
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            });
            return checked;
        }
    };
    match check_yaml(&text) {
        Ok(template) => {
            checked.valid = true;
            checked.template = Some(template.reference());
            checked.steps = Some(template.steps.len());
        }
        Err(template::Error::Parse { message, .. }) => checked.issues.push(Issue {
            path: String::new(),
            message: format!("not a YAML template: {message}"),
        }),
        Err(template::Error::Invalid { reference, issues }) => {
            checked.template = Some(reference);
            checked.issues = issues;
        }
    }
    checked
}

/// The server's checks: the template itself, then its context schema.
fn check_yaml(text: &str) -> Result<Template, template::Error> {
    tasker_engine::template_from_yaml(text)
}

fn validate(files: &[PathBuf], output: Output) -> anyhow::Result<Status> {
    let results: Vec<Checked> = files.iter().map(|f| check(f)).collect();
    match output {
        Output::Json => emit_json(&results)?,
        Output::Text => emit(&validation_text(&results))?,
    }
    Ok(if results.iter().all(|r| r.valid) {
        Status::Ok
    } else {
        Status::Failed
    })
}

/// `file: ok (ref, N steps)` for a valid file; `file: path: message` for
/// each problem of an invalid one, so editors and grep can jump to it.
fn validation_text(results: &[Checked]) -> String {
    let mut text = String::new();
    for r in results {
        let file = r.file.display();
        if r.valid {
            text.push_str(&format!(
                "{file}: ok ({}, {} steps)\n",
                r.template.as_deref().unwrap_or("?"),
                r.steps.unwrap_or(0)
            ));
        }
        for issue in &r.issues {
            if issue.path.is_empty() {
                text.push_str(&format!("{file}: {}\n", issue.message));
            } else {
                text.push_str(&format!("{file}: {}: {}\n", issue.path, issue.message));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let yaml = "namespace: x\nname: t\nversion: \"1\"\nsteps:\n  - { name: a, handler: h, depends_on: [zz] }\n  - { name: a, handler: h }\n";
        let Err(template::Error::Invalid { issues, .. }) = check_yaml(yaml) else {
            panic!("invalid")
        };
        assert!(issues.len() >= 2, "{issues:?}");
        let text = validation_text(&[Checked {
            file: "t.yaml".into(),
            valid: false,
            template: None,
            steps: None,
            issues,
        }]);
        assert!(
            text.lines().all(|l| l.starts_with("t.yaml: steps[")),
            "{text}"
        );
        assert!(text.contains("zz"), "{text}");
    }

    #[test]
    fn a_context_schema_that_is_no_schema_is_refused() {
        let yaml = "name: t\nversion: \"1\"\ncontext_schema: { type: 12 }\nsteps:\n  - { name: a, handler: h }\n";
        let Err(template::Error::Invalid { issues, .. }) = check_yaml(yaml) else {
            panic!("invalid")
        };
        assert_eq!(issues[0].path, "context_schema.type");
    }

    #[test]
    fn valid_files_say_what_they_define() {
        let text = validation_text(&[Checked {
            file: "ok.yaml".into(),
            valid: true,
            template: Some("default/t@1".into()),
            steps: Some(3),
            issues: vec![],
        }]);
        assert_eq!(text, "ok.yaml: ok (default/t@1, 3 steps)\n");
    }
}

//! `GET /ui/tasks/{id}`: one task. Its context and tags, the step graph
//! coloured by state, every step with its attempts (durations, worker,
//! result or error), why it is waiting (for a task that can still move),
//! the transition history as a timeline, and for operators the cancel,
//! retry and resolve actions.
//!
//! Everything that changes while the task runs is one fragment
//! ([`live_fragment`]), served alone at `/ui/tasks/{id}/live` and pushed
//! over server-sent events by `task_events`, so the page follows the task
//! without a reload.

use std::fmt::Write;

use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use tasker_model::explanation::TaskExplanation;
use tasker_model::{Step, StepState, Task, TaskState, Transition};
use uuid::Uuid;

use super::UiError;
use super::dag_svg::{self, GraphNode};
use super::html::{self, Nav, badge, esc, json_block, url_part};
use super::session::Viewer;
use super::step_attempts::{self, Attempt};
use crate::state::AppState;
use axum::extract::Path;

/// Everything the page shows of a task, read in one go.
pub struct TaskView {
    pub task: Task,
    pub steps: Vec<Step>,
    pub history: Vec<Transition>,
    /// What each unfinished step waits for, while the task can still move.
    pub explanation: Option<TaskExplanation>,
}

pub async fn load(state: &AppState, id: Uuid) -> Result<TaskView, UiError> {
    let engine = &state.engine;
    let task = engine.task_get(id).await?;
    let steps = engine.task_steps(id).await?;
    let history = engine.task_history(id).await?;
    let explanation = if can_move(&task) {
        Some(engine.task_explain(id).await?)
    } else {
        None
    };
    Ok(TaskView {
        task,
        steps,
        history,
        explanation,
    })
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let id = super::parse_id("task", &id)?;
    let view = load(&state, id).await?;
    let task = &view.task;
    let tags: String = task
        .tags
        .iter()
        .map(|tag| {
            format!(
                "<a class=\"tag\" href=\"/ui/tasks?tag={}\">{}</a>",
                url_part(tag),
                esc(tag)
            )
        })
        .collect();
    let live_attrs = if task.state.is_terminal() {
        String::new()
    } else {
        format!(" data-events=\"/ui/tasks/{id}/events\"")
    };
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/ui/tasks\">Tasks</a> ›</p>\
         <h1>Task <code>{id}</code></h1>\
         <dl class=\"facts\"><dt>Template</dt><dd><a href=\"/ui/templates/{ns_url}/{name_url}?version={ver_url}\">{ns}/{name}@{ver}</a></dd>\
         <dt>Created</dt><dd>{created}</dd><dt>Deadline</dt><dd>{deadline}</dd>\
         <dt>Idempotency key</dt><dd>{key}</dd><dt>Tags</dt><dd>{tags}</dd></dl>\
         <details class=\"context\"><summary>Context</summary>{context}</details>\
         <div id=\"live\"{live_attrs} aria-live=\"polite\">{live}</div>",
        ns_url = url_part(&task.namespace),
        name_url = url_part(&task.template_name),
        ver_url = url_part(&task.template_version),
        ns = esc(&task.namespace),
        name = esc(&task.template_name),
        ver = esc(&task.template_version),
        created = html::time(task.created_at),
        deadline = html::time_or_dash(task.deadline_at),
        key = task
            .idempotency_key
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "–".into()),
        context = json_block(&task.context),
        live = live_fragment(&view, &viewer),
    );
    Ok(Html(html::page(
        &format!("Task {}", &id.to_string()[..13]),
        Nav::Tasks,
        Some(&viewer),
        &body,
    )))
}

/// `GET /ui/tasks/{id}/live`: the changing part of the page alone.
pub async fn live(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let id = super::parse_id("task", &id)?;
    let view = load(&state, id).await?;
    Ok(Html(live_fragment(&view, &viewer)))
}

/// The state, actions, graph, steps and timeline of a task.
pub fn live_fragment(view: &TaskView, viewer: &Viewer) -> String {
    let task = &view.task;
    let attempts = step_attempts::attempts(&view.history);
    let mut out = format!(
        "<p class=\"task-state\">State: <span id=\"task-state\" data-state=\"{state}\">{badge}</span> \
         · updated {updated} · finished {finished}</p>",
        state = task.state.as_str(),
        badge = badge(task.state.as_str()),
        updated = html::time(task.updated_at),
        finished = html::time_or_dash(task.finished_at),
    );
    // A failed task may still be cancelled (it then never reopens).
    let cancellable = matches!(task.state, TaskState::Running | TaskState::Failed);
    if viewer.may_act() && cancellable {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/ui/tasks/{id}/cancel\" class=\"action\" \
             data-confirm=\"Cancel this task? Its unfinished steps are cancelled.\">{csrf}\
             <label for=\"cancel-reason\" class=\"visually-hidden\">Reason</label>\
             <input id=\"cancel-reason\" name=\"reason\" placeholder=\"reason (optional)\" maxlength=\"1024\">\
             <button type=\"submit\" class=\"danger\" id=\"cancel-task\">Cancel task</button></form>",
            id = task.id,
            csrf = viewer.csrf_field(),
        );
    }
    out.push_str(&explain_section(view.explanation.as_ref()));
    let _ = write!(
        out,
        "<section aria-labelledby=\"h-graph\"><h2 id=\"h-graph\">Graph</h2><div class=\"graph\">{}</div></section>",
        graph(&view.steps)
    );
    out.push_str("<section aria-labelledby=\"h-steps\"><h2 id=\"h-steps\">Steps</h2>");
    for step in &view.steps {
        out.push_str(&step_card(
            task,
            step,
            attempts.get(&step.id).map(Vec::as_slice).unwrap_or(&[]),
            viewer,
        ));
    }
    out.push_str("</section>");
    out.push_str(&timeline(&view.history));
    out
}

/// Whether the task can still move: running, or failed and waiting for a
/// retry or resolve. Only then is "why is it waiting" asked.
fn can_move(task: &Task) -> bool {
    matches!(task.state, TaskState::Running | TaskState::Failed)
}

/// "Why is it waiting?": per unfinished step, each reason as the sentence
/// `tasker task explain` prints (`GET /v1/tasks/{id}/explain`).
fn explain_section(explanation: Option<&TaskExplanation>) -> String {
    let Some(explanation) = explanation else {
        return String::new();
    };
    let mut out = format!(
        "<section id=\"explain\" aria-labelledby=\"h-explain\"><h2 id=\"h-explain\">Why is it waiting?</h2>\
         <p class=\"meta\">{}</p>",
        esc(&explanation.summary)
    );
    for step in &explanation.steps {
        let _ = write!(
            out,
            "<article class=\"explain-step\" data-step=\"{name}\"><h3>{name} {badge}</h3>\
             <p class=\"meta\">handler <code>{handler}</code> · attempt {attempt}/{max}</p><ul>",
            name = esc(&step.name),
            badge = badge(step.state.as_str()),
            handler = esc(&step.handler),
            attempt = step.attempt,
            max = step.max_attempts,
        );
        for reason in &step.reasons {
            let _ = write!(out, "<li>{}</li>", esc(&reason.sentence()));
        }
        out.push_str("</ul></article>");
    }
    out.push_str("</section>");
    out
}

fn graph(steps: &[Step]) -> String {
    let nodes: Vec<GraphNode> = steps
        .iter()
        .map(|s| GraphNode {
            name: s.name.clone(),
            parents: s
                .depends_on
                .iter()
                .filter_map(|p| steps.iter().position(|o| &o.name == p))
                .collect(),
            state: Some(s.state.as_str().into()),
            detail: format!("{} · {}/{}", s.state.as_str(), s.attempt, s.max_attempts),
        })
        .collect();
    dag_svg::render(&nodes, "Step graph, coloured by state")
}

fn step_card(task: &Task, step: &Step, attempts: &[Attempt], viewer: &Viewer) -> String {
    let mut out = format!(
        "<article class=\"step\" id=\"step-{name_id}\" data-step=\"{name}\" data-state=\"{state}\">\
         <h3>{name} {badge}</h3><p class=\"meta\">handler <code>{handler}</code> · attempt {attempt}/{max}\
         · worker {worker} · started {started} · finished {finished}{duration}{retry}</p>",
        name_id = url_part(&step.name),
        name = esc(&step.name),
        state = step.state.as_str(),
        badge = badge(step.state.as_str()),
        handler = esc(&step.handler),
        attempt = step.attempt,
        max = step.max_attempts,
        worker = step
            .worker_id
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "–".into()),
        started = html::time_or_dash(step.started_at),
        finished = html::time_or_dash(step.finished_at),
        duration = match (step.started_at, step.finished_at) {
            (Some(a), Some(b)) => format!(" ({})", html::duration(b - a)),
            _ => String::new(),
        },
        retry = step
            .retry_at
            .map(|at| format!(" · next try {}", html::time(at)))
            .unwrap_or_default(),
    );
    if let Some(error) = &step.error {
        let _ = write!(
            out,
            "<div class=\"step-error\" role=\"note\"><strong>{}</strong>{}: {}{}</div>",
            esc(&error.error_type),
            if error.retryable { " (retryable)" } else { "" },
            esc(&error.message),
            if error.details.is_null() {
                String::new()
            } else {
                json_block(&error.details)
            }
        );
    }
    if let Some(result) = &step.result {
        let _ = write!(
            out,
            "<details class=\"result\"><summary>Result</summary>{}</details>",
            json_block(result)
        );
    }
    if !attempts.is_empty() {
        let rows: Vec<String> = attempts
            .iter()
            .map(|a| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    a.attempt.map(|n| n.to_string()).unwrap_or_default(),
                    a.worker_id
                        .as_deref()
                        .map(esc)
                        .unwrap_or_else(|| "–".into()),
                    html::time(a.started_at),
                    a.ended_at
                        .map(|end| html::duration(end - a.started_at))
                        .unwrap_or_else(|| "running".into()),
                    a.outcome.as_deref().map(badge).unwrap_or_default(),
                    a.reason.as_deref().map(esc).unwrap_or_default(),
                )
            })
            .collect();
        let _ = write!(
            out,
            "<details class=\"attempts\"><summary>Attempts ({})</summary>{}</details>",
            attempts.len(),
            html::table(
                "Attempts",
                &["#", "Worker", "Started", "Took", "Outcome", "Reason"],
                &rows,
                ""
            )
        );
    }
    if viewer.may_act() && task.state != TaskState::Cancelled {
        let csrf = viewer.csrf_field();
        if step.state == StepState::Failed {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/ui/steps/{id}/retry\" class=\"action\" \
                 data-confirm=\"Retry step {name}? It runs again with a fresh attempt budget.\">{csrf}\
                 <button type=\"submit\" class=\"retry\">Retry</button></form>",
                id = step.id,
                name = esc(&step.name),
            );
        }
        let resolvable = step.state == StepState::Failed
            || (step.state == StepState::Pending && task.state == TaskState::Failed);
        if resolvable {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/ui/steps/{id}/resolve\" class=\"action\" \
                 data-confirm=\"Resolve step {name}? It counts as complete for the steps after it.\">{csrf}\
                 <button type=\"submit\" class=\"resolve\">Resolve</button></form>",
                id = step.id,
                name = esc(&step.name),
            );
        }
    }
    out.push_str("</article>");
    out
}

fn timeline(history: &[Transition]) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"h-history\"><h2 id=\"h-history\">History</h2><ol class=\"timeline\">",
    );
    for t in history {
        let subject = match &t.step_name {
            Some(name) => format!("step <strong>{}</strong>", esc(name)),
            None => "task".into(),
        };
        let from = t
            .from_state
            .as_deref()
            .map(|s| format!("{} → ", badge(s)))
            .unwrap_or_default();
        let mut extra = String::new();
        if let Some(attempt) = t.attempt.filter(|a| *a > 0) {
            let _ = write!(extra, " · attempt {attempt}");
        }
        if let Some(worker) = &t.worker_id {
            let _ = write!(extra, " · worker {}", esc(worker));
        }
        if let Some(node) = &t.node_id {
            let _ = write!(extra, " · node {}", esc(node));
        }
        if let Some(reason) = &t.reason {
            let _ = write!(extra, " · {}", esc(reason));
        }
        let _ = write!(
            out,
            "<li class=\"to-{}\">{} {subject}: {from}{}{extra}</li>",
            esc(&t.to_state),
            html::time(t.at),
            badge(&t.to_state),
        );
    }
    out.push_str("</ol></section>");
    out
}

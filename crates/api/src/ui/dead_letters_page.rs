//! `GET /ui/dead-letters`: steps that failed for good in tasks that can
//! still be reopened, oldest first, with their last error; operators tick
//! some and retry or resolve them in one go.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use tasker_store::DeadLetterFilter;

use super::UiError;
use super::html::{self, Nav, badge, esc, table, url_part};
use super::session::Viewer;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct DeadLetterQuery {
    namespace: Option<String>,
    cursor: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Html<String>, UiError> {
    let namespace = query.namespace.filter(|n| !n.is_empty());
    let filter = DeadLetterFilter {
        namespace: namespace.clone(),
        ..DeadLetterFilter::default()
    };
    let page = state
        .engine
        .dead_letter_list(
            &filter,
            query.cursor.as_deref().filter(|c| !c.is_empty()),
            Some(100),
        )
        .await?;
    let act = viewer.may_act();
    let rows: Vec<String> = page
        .dead_letters
        .iter()
        .map(|d| {
            let tick = if act {
                format!(
                    "<td><input type=\"checkbox\" name=\"step\" value=\"{id}\" id=\"dl-{id}\" form=\"dead-letter-actions\">\
                     <label for=\"dl-{id}\" class=\"visually-hidden\">select {}</label></td>",
                    esc(&d.step_name),
                    id = d.step_id
                )
            } else {
                String::new()
            };
            let error = d
                .error
                .as_ref()
                .map(|e| format!("<strong>{}</strong>: {}", esc(&e.error_type), esc(&e.message)))
                .unwrap_or_default();
            format!(
                "<tr>{tick}<td><a href=\"/ui/tasks/{task}#step-{step_url}\">{step}</a></td><td>{}</td>\
                 <td>{}@{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{error}</td><td>{}</td></tr>",
                esc(&d.namespace),
                esc(&d.template_name),
                esc(&d.template_version),
                esc(&d.handler),
                d.attempt,
                badge(d.task_state.as_str()),
                html::time_or_dash(d.failed_at),
                task = d.task_id,
                step_url = url_part(&d.step_name),
                step = esc(&d.step_name),
            )
        })
        .collect();
    let mut headers = vec![
        "Step",
        "Namespace",
        "Template",
        "Handler",
        "Attempts",
        "Task",
        "Last error",
        "Failed",
    ];
    if act {
        headers.insert(0, "Select");
    }
    let actions = if act && !rows.is_empty() {
        format!(
            "<form id=\"dead-letter-actions\" method=\"post\" class=\"action bulk\" \
             data-confirm=\"Apply to the selected steps?\">{}\
             <button type=\"submit\" formaction=\"/ui/dead-letters/retry\" class=\"retry\">Retry selected</button> \
             <button type=\"submit\" formaction=\"/ui/dead-letters/resolve\" class=\"resolve\">Resolve selected</button></form>",
            viewer.csrf_field()
        )
    } else {
        String::new()
    };
    let next = page
        .next_cursor
        .as_deref()
        .map(|c| {
            format!(
                "<p class=\"pager\"><a rel=\"next\" href=\"/ui/dead-letters?namespace={}&amp;cursor={}\">More →</a></p>",
                url_part(namespace.as_deref().unwrap_or("")),
                url_part(c)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Dead letters</h1>\
         <form class=\"filters\" method=\"get\" action=\"/ui/dead-letters\" role=\"search\">\
         <div class=\"field\"><label for=\"f-namespace\">Namespace</label>\
         <input id=\"f-namespace\" name=\"namespace\" value=\"{}\" placeholder=\"any\"></div>\
         <div class=\"field buttons\"><button type=\"submit\">Filter</button></div></form>\
         {actions}{}{next}",
        esc(namespace.as_deref().unwrap_or("")),
        table("Dead letters", &headers, &rows, "No dead letters."),
    );
    Ok(Html(html::page(
        "Dead letters",
        Nav::DeadLetters,
        Some(&viewer),
        &body,
    )))
}

//! `GET /ui/schedules`: every schedule with its timing, its next fire
//! times and its last task; operators pause, resume or fire one now.

use axum::Extension;
use axum::extract::State;
use axum::response::Html;

use super::UiError;
use super::html::{self, Nav, esc, table};
use super::session::Viewer;
use crate::state::AppState;

/// Upcoming fire times shown per schedule.
const UPCOMING: usize = 3;

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html<String>, UiError> {
    let schedules = state.engine.schedule_list().await?;
    let rows: Vec<String> = schedules
        .iter()
        .map(|s| {
            let spec = &s.spec;
            let timing = match (&spec.cron, &spec.interval) {
                (Some(cron), _) => format!(
                    "cron <code>{}</code> ({})",
                    esc(cron),
                    esc(spec.time_zone.as_deref().unwrap_or("UTC"))
                ),
                (None, Some(interval)) => format!("every {}", esc(interval)),
                (None, None) => "–".into(),
            };
            let upcoming: Vec<String> = state
                .engine
                .schedule_upcoming(s, UPCOMING)
                .into_iter()
                .map(html::time)
                .collect();
            let upcoming = if spec.paused {
                "<span class=\"badge state-cancelled\">paused</span>".to_owned()
            } else if upcoming.is_empty() {
                "–".to_owned()
            } else {
                upcoming.join("<br>")
            };
            let last = s
                .last_task_id
                .map(|id| format!("<a href=\"/ui/tasks/{id}\"><code>{}</code></a>", &id.to_string()[..13]))
                .unwrap_or_else(|| "–".into());
            let actions = if viewer.may_act() {
                let csrf = viewer.csrf_field();
                let (verb, label) = if spec.paused {
                    ("resume", "Resume")
                } else {
                    ("pause", "Pause")
                };
                format!(
                    "<td><form method=\"post\" action=\"/ui/schedules/{id}/{verb}\" class=\"action inline\">{csrf}\
                     <button type=\"submit\">{label}</button></form> \
                     <form method=\"post\" action=\"/ui/schedules/{id}/trigger\" class=\"action inline\" \
                     data-confirm=\"Start a task from {name} now?\">{csrf}<button type=\"submit\">Trigger now</button></form></td>",
                    id = s.id,
                    name = esc(&spec.name),
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td>{}</td><td>{}/{}</td><td>{timing}</td><td>{}</td><td>{upcoming}</td><td>{last}</td>{actions}</tr>",
                esc(&spec.name),
                esc(&spec.namespace),
                esc(&spec.template),
                esc(spec.overlap.as_str()),
            )
        })
        .collect();
    let mut headers = vec![
        "Schedule",
        "Template",
        "Timing",
        "Overlap",
        "Next fires",
        "Last task",
    ];
    if viewer.may_act() {
        headers.push("Actions");
    }
    let body = format!(
        "<h1>Schedules</h1>{}",
        table("Schedules", &headers, &rows, "No schedules.")
    );
    Ok(Html(html::page(
        "Schedules",
        Nav::Schedules,
        Some(&viewer),
        &body,
    )))
}

//! `GET /ui/tasks`: tasks, newest first, filtered by namespace, template,
//! state, tag and creation time, one page at a time (the cursor of the
//! engine's task list).

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use tasker_model::{TaskState, Timestamp};
use tasker_store::TaskFilter;

use super::UiError;
use super::html::{self, Nav, badge, esc, table, url_part};
use super::session::Viewer;
use crate::state::AppState;

const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct TasksQuery {
    namespace: Option<String>,
    template: Option<String>,
    state: Option<String>,
    tag: Option<String>,
    /// Created at or after, `YYYY-MM-DDTHH:MM` (UTC) or RFC 3339.
    from: Option<String>,
    /// Created before.
    to: Option<String>,
    cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A time from a `datetime-local` input (read as UTC) or RFC 3339.
pub fn parse_time(field: &str, text: &str) -> Result<Timestamp, UiError> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc());
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(UiError::bad_request(format!(
        "{field} {text:?} is not a time: use YYYY-MM-DDTHH:MM (UTC) or RFC 3339"
    )))
}

impl TasksQuery {
    fn filter(&self) -> Result<TaskFilter, UiError> {
        let state = given(&self.state)
            .map(|s| {
                tasker_store::parse_task_state(&s).map_err(|_| {
                    UiError::bad_request(format!(
                        "state {s:?} is not one of running, complete, failed, cancelled"
                    ))
                })
            })
            .transpose()?;
        Ok(TaskFilter {
            namespace: given(&self.namespace),
            template: given(&self.template),
            state,
            cursor: given(&self.cursor),
            limit: Some(PAGE_SIZE),
            tag: given(&self.tag),
            created_after: given(&self.from)
                .map(|t| parse_time("from", &t))
                .transpose()?,
            created_before: given(&self.to).map(|t| parse_time("to", &t)).transpose()?,
            ..TaskFilter::default()
        })
    }

    /// This query's filters as URL parameters, without the cursor.
    fn link_params(&self) -> String {
        [
            ("namespace", &self.namespace),
            ("template", &self.template),
            ("state", &self.state),
            ("tag", &self.tag),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter_map(|(k, v)| given(v).map(|v| format!("{k}={}", url_part(&v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn input(id: &str, label: &str, value: &Option<String>, kind: &str, hint: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"f-{id}\">{label}</label>\
         <input id=\"f-{id}\" name=\"{id}\" type=\"{kind}\" value=\"{}\" placeholder=\"{hint}\"></div>",
        esc(&given(value).unwrap_or_default())
    )
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<TasksQuery>,
) -> Result<Html<String>, UiError> {
    let filter = query.filter()?;
    let tasks = state.engine.task_list(&filter).await?;
    let mut states = String::from("<option value=\"\">any</option>");
    let chosen = given(&query.state).unwrap_or_default();
    for s in TaskState::ALL {
        let selected = if chosen == s.as_str() {
            " selected"
        } else {
            ""
        };
        states.push_str(&format!("<option{selected}>{}</option>", s.as_str()));
    }
    let form = format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/tasks\" role=\"search\">{}{}\
         <div class=\"field\"><label for=\"f-state\">State</label><select id=\"f-state\" name=\"state\">{states}</select></div>\
         {}{}{}<div class=\"field buttons\"><button type=\"submit\">Filter</button> <a href=\"/ui/tasks\">Clear</a></div></form>",
        input("namespace", "Namespace", &query.namespace, "text", "any"),
        input("template", "Template", &query.template, "text", "any"),
        input("tag", "Tag", &query.tag, "text", "any"),
        input(
            "from",
            "Created from (UTC)",
            &query.from,
            "datetime-local",
            ""
        ),
        input(
            "to",
            "Created before (UTC)",
            &query.to,
            "datetime-local",
            ""
        ),
    );
    let rows: Vec<String> = tasks
        .tasks
        .iter()
        .map(|t| {
            let tags: String = t
                .tags
                .iter()
                .map(|tag| format!("<span class=\"tag\">{}</span>", esc(tag)))
                .collect();
            format!(
                "<tr data-task=\"{id}\"><td><a href=\"/ui/tasks/{id}\"><code>{id}</code></a></td><td>{}</td>\
                 <td>{}@{}</td><td>{}</td><td>{tags}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.namespace),
                esc(&t.template_name),
                esc(&t.template_version),
                badge(t.state.as_str()),
                html::time(t.created_at),
                html::time_or_dash(t.finished_at),
                id = t.id,
            )
        })
        .collect();
    let params = query.link_params();
    let next = tasks
        .next_cursor
        .as_deref()
        .map(|cursor| {
            let sep = if params.is_empty() { "" } else { "&" };
            format!(
                "<a rel=\"next\" href=\"/ui/tasks?{params}{sep}cursor={}\">Older tasks →</a>",
                url_part(cursor)
            )
        })
        .unwrap_or_default();
    let first = if given(&query.cursor).is_some() {
        format!("<a href=\"/ui/tasks?{params}\">← Newest</a> ")
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Tasks</h1>{form}<div id=\"task-list\" data-refresh=\"5\">{}</div><p class=\"pager\">{first}{next}</p>",
        table(
            "Tasks",
            &[
                "Task",
                "Namespace",
                "Template",
                "State",
                "Tags",
                "Created",
                "Finished"
            ],
            &rows,
            "No tasks match."
        )
    );
    Ok(Html(html::page("Tasks", Nav::Tasks, Some(&viewer), &body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_from_inputs_and_rfc3339() {
        let expected: Timestamp = "2026-11-30T12:05:00Z".parse().unwrap();
        assert_eq!(parse_time("from", "2026-11-30T12:05").unwrap(), expected);
        assert_eq!(
            parse_time("from", "2026-11-30T13:05:00+01:00").unwrap(),
            expected
        );
        assert!(parse_time("from", "yesterday").is_err());
    }
}

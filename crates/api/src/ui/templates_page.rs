//! `GET /ui/templates` and `GET /ui/templates/{namespace}/{name}`: the
//! registered templates, and one template (a version, by default the
//! newest) with its graph and every step's handler, retry and timeout.

use std::fmt::Write;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::UiError;
use super::dag_svg::{self, GraphNode};
use super::html::{self, Nav, esc, json_block, table, url_part};
use super::session::Viewer;
use crate::state::AppState;

fn template_href(namespace: &str, name: &str, version: &str) -> String {
    format!(
        "/ui/templates/{}/{}?version={}",
        url_part(namespace),
        url_part(name),
        url_part(version)
    )
}

pub async fn list(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html<String>, UiError> {
    let templates = state.engine.template_list(None).await?;
    let rows: Vec<String> = templates
        .iter()
        .map(|t| {
            format!(
                "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.namespace),
                template_href(&t.namespace, &t.name, &t.version),
                esc(&t.name),
                esc(&t.version),
                t.definition.steps.len(),
                esc(t.definition.description.as_deref().unwrap_or("")),
                html::time(t.created_at),
            )
        })
        .collect();
    let body = format!(
        "<h1>Templates</h1>{}",
        table(
            "Templates",
            &[
                "Namespace",
                "Name",
                "Version",
                "Steps",
                "Description",
                "Registered"
            ],
            &rows,
            "No templates registered."
        )
    );
    Ok(Html(html::page(
        "Templates",
        Nav::Templates,
        Some(&viewer),
        &body,
    )))
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    version: Option<String>,
}

pub async fn detail(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Html<String>, UiError> {
    let version = query.version.as_deref().filter(|v| !v.is_empty());
    let record = state
        .engine
        .template_get(&namespace, &name, version)
        .await?;
    let template = &record.definition;
    let nodes: Vec<GraphNode> = template
        .parent_indices()
        .into_iter()
        .zip(&template.steps)
        .map(|(parents, step)| GraphNode {
            name: step.name.clone(),
            parents,
            state: None,
            detail: step.handler.clone(),
        })
        .collect();
    let rows: Vec<String> = template
        .steps
        .iter()
        .map(|s| {
            let b = &s.retry.backoff;
            format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
                 <td>{} → {} ×{} ±{}%</td><td>{}</td><td>{}</td></tr>",
                esc(&s.name),
                esc(&s.handler),
                esc(&s.depends_on.join(", ")),
                s.retry.max_attempts,
                b.initial,
                b.max,
                b.multiplier,
                b.jitter * 100.0,
                s.timeout,
                if s.config.is_null() {
                    String::new()
                } else {
                    json_block(&s.config)
                },
            )
        })
        .collect();
    let versions = state.engine.template_list(Some(&namespace)).await?;
    let mut others = String::new();
    for v in versions.iter().filter(|v| v.name == record.name) {
        let current = if v.version == record.version {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            others,
            "<li><a href=\"{}\"{current}>{}</a></li>",
            template_href(&v.namespace, &v.name, &v.version),
            esc(&v.version)
        );
    }
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/ui/templates\">Templates</a> ›</p>\
         <h1>{ns}/{name}@{ver}</h1><p>{description}</p>\
         <dl class=\"facts\"><dt>Versions</dt><dd><ul class=\"inline\">{others}</ul></dd>\
         <dt>Deadline</dt><dd>{deadline}</dd><dt>Content hash</dt><dd><code>{hash}</code></dd>\
         <dt>Tasks</dt><dd><a href=\"/ui/tasks?namespace={ns_url}&amp;template={name_url}\">tasks of this template</a></dd></dl>\
         <section aria-labelledby=\"h-graph\"><h2 id=\"h-graph\">Graph</h2><div class=\"graph\">{graph}</div></section>\
         <section aria-labelledby=\"h-steps\"><h2 id=\"h-steps\">Steps</h2>{steps}</section>{schema}",
        ns = esc(&record.namespace),
        name = esc(&record.name),
        ver = esc(&record.version),
        ns_url = url_part(&record.namespace),
        name_url = url_part(&record.name),
        description = esc(template.description.as_deref().unwrap_or("")),
        deadline = template
            .deadline
            .map(|d| d.to_string())
            .unwrap_or_else(|| "–".into()),
        hash = esc(&record.content_hash),
        graph = dag_svg::render(&nodes, "Template graph"),
        steps = table(
            "Steps",
            &[
                "Step",
                "Handler",
                "Depends on",
                "Max attempts",
                "Backoff",
                "Timeout",
                "Config"
            ],
            &rows,
            "No steps."
        ),
        schema = template
            .context_schema
            .as_ref()
            .map(|s| format!(
                "<details><summary>Context schema</summary>{}</details>",
                json_block(s)
            ))
            .unwrap_or_default(),
    );
    Ok(Html(html::page(
        &format!("{}/{}", record.namespace, record.name),
        Nav::Templates,
        Some(&viewer),
        &body,
    )))
}

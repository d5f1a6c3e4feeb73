//! `GET /ui`: the cluster at a glance. Nodes (the leader marked), live
//! workers, each namespace's queue with how long its oldest ready step has
//! waited, tasks per minute over the last half hour, and recent failures.
//! The page refreshes its sections in place every few seconds.

use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use tasker_model::TaskState;
use tasker_store::TaskFilter;

use super::UiError;
use super::activity_chart;
use super::html::{self, Nav, badge, esc, table, time, url_part};
use super::session::Viewer;
use crate::state::AppState;

/// Minutes the chart covers.
const CHART_MINUTES: usize = 30;
/// Failed tasks listed.
const RECENT_FAILURES: u32 = 10;

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html<String>, UiError> {
    let engine = &state.engine;
    let now = engine.clock().now();
    let cluster = engine.cluster_view().await?;
    let depths = engine.queue_depths().await?;
    let first = chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::minutes(1))
        .unwrap_or(now)
        - chrono::TimeDelta::minutes(CHART_MINUTES as i64 - 1);
    let activity = engine.task_activity(first).await?;
    let failures = engine
        .task_list(&TaskFilter {
            state: Some(TaskState::Failed),
            limit: Some(RECENT_FAILURES),
            ..TaskFilter::default()
        })
        .await?;

    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| {
            let leader = if n.leader {
                " <span class=\"badge leader\">leader</span>"
            } else {
                ""
            };
            let skew = if n.version_skew {
                " <span class=\"badge state-failed\">version skew</span>"
            } else {
                ""
            };
            format!(
                "<tr><td>{}{leader}</td><td>{}{skew}</td><td>{}</td><td>{}</td></tr>",
                esc(&n.node.node_id),
                esc(&n.node.version),
                time(n.node.started_at),
                time(n.node.last_heartbeat_at),
            )
        })
        .collect();
    let workers: Vec<String> = cluster
        .workers
        .iter()
        .map(|w| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
                esc(&w.worker.worker_id),
                esc(&w.worker.namespaces.join(", ")),
                esc(&w.worker.handlers.join(", ")),
                w.in_flight,
                w.worker.concurrency,
                time(w.worker.last_seen_at),
            )
        })
        .collect();
    let queues: Vec<String> = depths
        .iter()
        .map(|d| {
            let waiting = d
                .oldest_ready_at
                .map(|at| format!("{} ({})", html::duration(now - at), time(at)))
                .unwrap_or_else(|| "–".into());
            format!(
                "<tr><td><a href=\"/ui/tasks?namespace={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{waiting}</td></tr>",
                url_part(&d.namespace),
                esc(&d.namespace),
                d.ready,
                d.leased,
                d.delayed,
            )
        })
        .collect();
    let failed: Vec<String> = failures
        .tasks
        .iter()
        .map(|t| {
            format!(
                "<tr><td><a href=\"/ui/tasks/{id}\">{short}</a></td><td>{}</td><td>{}@{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.namespace),
                esc(&t.template_name),
                esc(&t.template_version),
                badge(t.state.as_str()),
                html::time_or_dash(t.finished_at),
                id = t.id,
                short = &t.id.to_string()[..13],
            )
        })
        .collect();
    let leader = cluster
        .leader
        .as_ref()
        .map(|l| {
            format!(
                "{} (term {}, since {})",
                esc(&l.node_id),
                l.term,
                time(l.since)
            )
        })
        .unwrap_or_else(|| "none".into());
    let minutes = activity_chart::per_minute(&activity, first, CHART_MINUTES);
    let body = format!(
        "<h1>Overview</h1>\
         <div id=\"overview\" data-refresh=\"5\" aria-live=\"polite\">\
         <div class=\"grid\">\
         <section aria-labelledby=\"h-activity\"><h2 id=\"h-activity\">Tasks per minute</h2>{chart}</section>\
         <section aria-labelledby=\"h-queues\"><h2 id=\"h-queues\">Queues</h2>{queues}</section>\
         </div>\
         <section aria-labelledby=\"h-nodes\"><h2 id=\"h-nodes\">Nodes</h2><p>Leader: {leader}</p>{nodes}</section>\
         <section aria-labelledby=\"h-workers\"><h2 id=\"h-workers\">Workers</h2>{workers}</section>\
         <section aria-labelledby=\"h-failures\"><h2 id=\"h-failures\">Recent failures</h2>{failed}</section>\
         </div>",
        chart = activity_chart::render(&minutes),
        queues = table(
            "Queues",
            &[
                "Namespace",
                "Ready",
                "Leased",
                "Delayed",
                "Oldest ready waits"
            ],
            &queues,
            "No namespaces."
        ),
        nodes = table(
            "Nodes",
            &["Node", "Version", "Started", "Last seen"],
            &nodes,
            "No live nodes."
        ),
        workers = table(
            "Workers",
            &["Worker", "Namespaces", "Handlers", "In flight", "Last seen"],
            &workers,
            "No live workers."
        ),
        failed = table(
            "Recent failures",
            &["Task", "Namespace", "Template", "State", "Failed"],
            &failed,
            "No failed tasks."
        ),
    );
    Ok(Html(html::page(
        "Overview",
        Nav::Overview,
        Some(&viewer),
        &body,
    )))
}

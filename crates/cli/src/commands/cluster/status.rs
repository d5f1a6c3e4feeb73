//! `tasker cluster status`: for the local cluster, every instance with its
//! pid, port, whether its process runs and its `/ready` answers, and each
//! node's role as its `GET /v1/cluster` tells (`leader.node_id` against its
//! own `node_id`); with `--server` and no local cluster, the cluster view of
//! that server.
//!
//! The cluster view is read as loose JSON, every field optional: nodes of
//! another version may lack `leader` or `nodes`, which then show as `-`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::state::{self, ClusterFile, Instance, Kind, StateDir};
use crate::cli::{ClusterStatusArgs, Output};
use crate::output::{Table, emit, emit_json};
use crate::status::{Failure, Status};

/// One instance as `status` sees it now.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub kind: Kind,
    /// `leader` or `follower` for a node that knows the leader, else its kind.
    pub role: String,
    pub pid: u32,
    pub port: Option<u16>,
    pub url: Option<String>,
    pub log: PathBuf,
    /// The process runs.
    pub alive: bool,
    /// `GET /ready` answered 200 (nodes and balancer; none for the others).
    pub ready: Option<bool>,
    /// The node id it reports (nodes).
    pub node_id: Option<String>,
    /// The leader it reports (nodes), when it knows one.
    pub leader: Option<String>,
}

/// The whole local cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub state_dir: PathBuf,
    pub database_url: String,
    pub balancer_url: Option<String>,
    pub instances: Vec<InstanceStatus>,
}

impl Report {
    /// Every process runs and every probe answers ready.
    pub fn healthy(&self) -> bool {
        self.instances
            .iter()
            .all(|i| i.alive && i.ready != Some(false))
    }
}

pub async fn run(args: &ClusterStatusArgs) -> anyhow::Result<Status> {
    let state = StateDir::new(&std::path::absolute(&args.state.state_dir)?);
    let Some(cluster) = state.load()? else {
        if let Some(server) = &args.server {
            return remote(server, args.output).await;
        }
        return Err(Failure {
            status: Status::NotFound,
            message: format!(
                "no local cluster in {} (start one with `tasker cluster up`, or pass --server URL \
                 for a running server's view)",
                state.dir.display()
            ),
        }
        .into());
    };
    let report = gather(&state, &cluster).await;
    match args.output {
        Output::Json => emit_json(&report)?,
        Output::Text => emit(&render(&report))?,
    }
    Ok(if report.healthy() {
        Status::Ok
    } else {
        Status::Failed
    })
}

/// An HTTP client for probes: short timeouts, so that a hung instance
/// shows as not ready instead of stalling the command.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client with default TLS settings")
}

/// Probes every instance of `cluster`, all at once.
pub async fn gather(state: &StateDir, cluster: &ClusterFile) -> Report {
    let http = http_client();
    let probes = cluster.instances.iter().map(|i| probe(&http, i));
    Report {
        state_dir: state.dir.clone(),
        database_url: cluster.database_url.clone(),
        balancer_url: cluster.balancer_url().map(str::to_owned),
        instances: futures::future::join_all(probes).await,
    }
}

async fn probe(http: &reqwest::Client, instance: &Instance) -> InstanceStatus {
    let alive = state::alive(instance);
    let mut status = InstanceStatus {
        name: instance.name.clone(),
        kind: instance.kind,
        role: instance.kind.as_str().to_owned(),
        pid: instance.pid,
        port: instance.port,
        url: instance.url.clone(),
        log: instance.log.clone(),
        alive,
        ready: None,
        node_id: None,
        leader: None,
    };
    let (Kind::Node | Kind::Balancer, Some(url)) = (instance.kind, &instance.url) else {
        return status;
    };
    status.ready = Some(
        alive
            && http
                .get(format!("{url}/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
    );
    if instance.kind == Kind::Node && alive {
        let view = cluster_view(http, url).await.unwrap_or(Value::Null);
        status.node_id = view["node_id"].as_str().map(str::to_owned);
        status.leader = view["leader"]["node_id"].as_str().map(str::to_owned);
        if let (Some(node), Some(leader)) = (&status.node_id, &status.leader) {
            status.role = if node == leader { "leader" } else { "follower" }.to_owned();
        }
    }
    status
}

async fn cluster_view(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let reply = http.get(format!("{url}/v1/cluster")).send().await?;
    Ok(reply.error_for_status()?.json().await?)
}

/// The instances as a table, then where the balancer and database are.
pub fn render(report: &Report) -> String {
    let mut table = Table::new(&[
        "INSTANCE", "ROLE", "PID", "PORT", "PROCESS", "READY", "LEADER", "LOG",
    ]);
    for i in &report.instances {
        table.row(vec![
            i.name.clone(),
            i.role.clone(),
            i.pid.to_string(),
            dash(i.port),
            if i.alive { "running" } else { "stopped" }.to_owned(),
            match i.ready {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => "-".to_owned(),
            },
            i.leader.clone().unwrap_or_else(|| "-".to_owned()),
            i.log.display().to_string(),
        ]);
    }
    format!(
        "{table}balancer: {}\ndatabase: {}\nstate:    {}\n",
        report.balancer_url.as_deref().unwrap_or("-"),
        report.database_url,
        report.state_dir.display()
    )
}

/// `--server` without a local cluster: that server's view of its cluster.
async fn remote(server: &str, output: Output) -> anyhow::Result<Status> {
    let url = server.trim_end_matches('/');
    let view = cluster_view(&http_client(), url)
        .await
        .map_err(|e| Failure::unreachable(format!("cannot read GET {url}/v1/cluster: {e}")))?;
    match output {
        Output::Json => emit_json(&view)?,
        Output::Text => emit(&render_view(&view))?,
    }
    Ok(Status::Ok)
}

/// A server's cluster view for people: the answering node, the leader, the
/// nodes (when the server lists them) and the workers.
pub fn render_view(view: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "answered by: {} (version {}, up {} s)\nleader:      {}\n",
        text(&view["node_id"]),
        text(&view["version"]),
        text(&view["uptime_seconds"]),
        match &view["leader"] {
            Value::Null => "-".to_owned(),
            leader => format!(
                "{} (term {})",
                text(&leader["node_id"]),
                text(&leader["term"])
            ),
        }
    );
    if let Some(nodes) = view["nodes"].as_array() {
        let mut table = Table::new(&[
            "NODE",
            "VERSION",
            "ADDRESS",
            "PID",
            "LAST HEARTBEAT",
            "LEADER",
            "SKEW",
        ]);
        for node in nodes {
            table.row(
                [
                    "node_id",
                    "version",
                    "address",
                    "pid",
                    "last_heartbeat_at",
                    "leader",
                    "version_skew",
                ]
                .iter()
                .map(|key| text(&node[*key]))
                .collect(),
            );
        }
        out.push_str(&format!("\n{table}"));
    }
    let workers = view["workers"].as_array().cloned().unwrap_or_default();
    let mut table = Table::new(&["WORKER", "NAMESPACES", "IN FLIGHT", "NODE", "LAST SEEN"]);
    for worker in &workers {
        let namespaces = worker["namespaces"]
            .as_array()
            .map(|ns| ns.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "-".to_owned());
        table.row(vec![
            text(&worker["worker_id"]),
            namespaces,
            text(&worker["in_flight"]),
            text(&worker["node_id"]),
            text(&worker["last_seen_at"]),
        ]);
    }
    out.push_str(&format!("\n{table}"));
    out
}

fn dash(value: Option<u16>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_without_leader_or_nodes_shows_dashes() {
        let view = serde_json::json!({
            "node_id": "node-1", "version": "0.1.0", "uptime_seconds": 3,
            "workers": [{"worker_id": "w1", "namespaces": ["examples"], "node_id": "node-1",
                         "last_seen_at": "2026-11-30T08:00:00Z"}]
        });
        let text = render_view(&view);
        assert!(text.contains("leader:      -"), "{text}");
        assert!(!text.contains("VERSION"), "no nodes table: {text}");
        assert!(text.contains("w1"), "{text}");
    }

    #[test]
    fn a_view_with_leader_and_nodes_shows_them() {
        let view = serde_json::json!({
            "node_id": "node-1", "version": "0.1.0", "uptime_seconds": 3,
            "leader": {"node_id": "node-2", "term": 4},
            "nodes": [{"node_id": "node-2", "version": "0.1.0", "address": "http://127.0.0.1:8082",
                       "pid": 12, "leader": true, "version_skew": false}],
            "workers": []
        });
        let text = render_view(&view);
        assert!(text.contains("leader:      node-2 (term 4)"), "{text}");
        assert!(text.contains("http://127.0.0.1:8082"), "{text}");
    }
}

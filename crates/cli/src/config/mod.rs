//! The server's configuration: one TOML file, layered.
//!
//! ```text
//!  built-in defaults ─▶ file (--config / TASKER_CONFIG) ─▶ TASKER_<SECTION>_<KEY> ─▶ flags
//!                         later layers override earlier ones, key by key
//! ```
//!
//! Every field has an effect and a documented default (docs/configuration.md
//! lists them; a test keeps [`fields::FIELDS`] and the structs in step).
//! Nothing here may accept a key it does not know or a value it would later
//! ignore: an unknown key, a value of the wrong type and a value out of range
//! are all errors that name the key.

mod fields;
mod load;
mod validate;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker_model::HumanDuration;

pub use load::{Error, Flag, Layers};

/// The whole configuration, as the server runs with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub engine: EngineSection,
    pub cluster: ClusterSection,
    pub maintenance: MaintenanceSection,
    pub retention: RetentionSection,
    pub auth: AuthConfig,
    pub log: LogConfig,
}

/// `[server]`: the HTTP listener and this node's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server binds, `host:port`. Default `127.0.0.1:8080`.
    pub listen: String,
    /// This node's name in transitions, worker records and `/v1/cluster`.
    /// Default `<hostname>-<pid>`.
    pub node_id: String,
    /// Largest request body accepted, in bytes; must exceed
    /// `engine.max_payload_bytes` to leave room for the envelope. Default 2 MiB.
    pub max_body_bytes: usize,
    /// After SIGTERM/ctrl-c, how long in-flight requests may take to finish
    /// before the server exits anyway. Default `10s`.
    pub shutdown_grace: HumanDuration,
    /// How often the database gauges of `/metrics` are refreshed in the
    /// background. Default `5s`.
    pub metrics_refresh_interval: HumanDuration,
}

/// `[database]`: the PostgreSQL connection pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL. Default `postgres://postgres@127.0.0.1:5432/tasker`.
    pub url: String,
    /// Most connections the pool opens. Default 16.
    pub max_connections: u32,
    /// Connections the pool keeps open when idle. Default 1.
    pub min_connections: u32,
    /// Longest wait for a free connection before a request fails (503
    /// `unavailable`). Default `10s`.
    pub acquire_timeout: HumanDuration,
    /// How often the node checks that the database is reachable, on a
    /// connection of its own; `/ready` answers from the last check, and while
    /// it failed requests are refused at once. Default `1s`.
    pub health_check_interval: HumanDuration,
    /// How long one such check may take before the database counts as
    /// unreachable. Default `1s`.
    pub health_check_timeout: HumanDuration,
}

/// `[engine]`: leases, payload limits and long-polling (see
/// [`tasker_engine::EngineConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// How long a claimed step stays leased without a heartbeat; whole
    /// seconds. Default `30s`.
    pub lease_duration: HumanDuration,
    /// Largest task context, step result or error details, in bytes of JSON.
    /// Default 1 MiB.
    pub max_payload_bytes: usize,
    /// Most steps one poll may claim. Default 100.
    pub max_claim_batch: u32,
    /// Most bytes of parent results shipped with one claimed step; larger
    /// ones are sent as references. Default 1 MiB.
    pub max_parent_results_bytes: usize,
    /// Most instances one fan-out step may get in one task. Default 10000.
    pub max_fan_out_instances: u32,
    /// The longest a namespace's claim loop sleeps while polls wait and
    /// nothing woke it (a safety net for lost notifications). Default `5s`.
    pub poll_recheck_interval: HumanDuration,
    /// Longest a worker's long-poll may wait. Default `30s`.
    pub max_poll_wait: HumanDuration,
    /// Group-commit transactions of worker reports in flight at once.
    /// Default 2.
    pub report_writers: usize,
    /// A worker not heard from for this long is no longer listed. Default `60s`.
    pub worker_liveness: HumanDuration,
}

/// `[cluster]`: this node's record in the node registry and the election
/// of the leader (see [`tasker_engine::ClusterConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The URL other nodes and operators reach this node at, shown in
    /// `GET /v1/cluster`. Default empty: `http://<address the listener bound>`.
    pub advertise_address: String,
    /// How often this node refreshes its registry record. Default `2s`.
    pub node_heartbeat_interval: HumanDuration,
    /// A node without a heartbeat for this long is no longer listed; its
    /// record is deleted after ten times this. Default `10s`.
    pub node_timeout: HumanDuration,
    /// How long a leadership lease lasts; renewed every third of it. A dead
    /// leader is replaced within about this long. Default `15s`.
    pub leader_lease: HumanDuration,
}

/// `[maintenance]`: the leader's sweeps (see
/// [`tasker_engine::maintenance::MaintenanceConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSection {
    /// How often the leader fails attempts past their step's timeout.
    /// Default `5s`.
    pub timeout_sweep_interval: HumanDuration,
    /// How often the leader fails tasks past their deadline. Default `5s`.
    pub deadline_sweep_interval: HumanDuration,
    /// How often the leader looks for stuck work. Default `60s`.
    pub stuck_sweep_interval: HumanDuration,
    /// Most tasks one sweep transaction changes. Default 500.
    pub batch_size: u32,
    /// How often the leader vacuums queue tables. Default `10s`.
    pub queue_vacuum_interval: HumanDuration,
    /// Dead row versions that make a queue table due for a vacuum.
    /// Default 1000.
    pub queue_vacuum_dead_rows: u64,
}

/// `[retention]`: what the leader deletes and when (see
/// [`tasker_engine::retention::RetentionConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// How long finished tasks are kept. Default `720h` (30 days).
    pub horizon: HumanDuration,
    /// `<state>=<duration>` per final state, for every namespace. Default none.
    pub state_horizons: Vec<String>,
    /// `<namespace>=<duration>` or `<namespace>.<state>=<duration>`.
    /// Default none.
    pub namespace_horizons: Vec<String>,
    /// Most rows one delete statement takes. Default 1000.
    pub batch_size: u32,
    /// Pause between two batches. Default `100ms`.
    pub batch_pause: HumanDuration,
    /// Time between two retention passes. Default `5m`.
    pub interval: HumanDuration,
    /// How long after its task's creation an idempotency key is released
    /// (once the task finished). Default `24h`.
    pub idempotency_key_expiry: HumanDuration,
    /// A worker record not seen for this long is deleted. Default `24h`.
    pub worker_expiry: HumanDuration,
}

/// `[auth]`: bearer tokens per role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a bearer token on every non-probe endpoint. Default `true`;
    /// turning it off is for local development only.
    pub enabled: bool,
    /// Tokens that may use every endpoint. Default none.
    pub admin_tokens: Vec<String>,
    /// Tokens for namespaces, templates, tasks and steps. Default none.
    pub operator_tokens: Vec<String>,
    /// Tokens for the worker plane only. Default none.
    pub worker_tokens: Vec<String>,
    /// Read-only tokens: the management API's GET endpoints and the
    /// dashboard without its actions. Default none.
    pub viewer_tokens: Vec<String>,
}

/// `[log]`: what the server logs and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: a level (`info`) or directives
    /// (`info,tasker_engine=debug`). Default `info`.
    pub level: String,
    /// `text` for people, `json` for log collectors. Default `text`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

const MIB: usize = 1024 * 1024;

fn secs(s: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(s))
}

impl Default for Config {
    fn default() -> Self {
        let engine = tasker_engine::EngineConfig::default();
        let pool = tasker_postgres::PoolConfig::default();
        let cluster = tasker_engine::ClusterConfig::default();
        let maintenance = tasker_engine::maintenance::MaintenanceConfig::default();
        let retention = tasker_engine::retention::RetentionConfig::default();
        Self {
            server: ServerConfig {
                listen: "127.0.0.1:8080".into(),
                node_id: default_node_id(),
                max_body_bytes: 2 * MIB,
                shutdown_grace: secs(10),
                metrics_refresh_interval: secs(5),
            },
            database: DatabaseConfig {
                url: "postgres://postgres@127.0.0.1:5432/tasker".into(),
                max_connections: pool.max_connections,
                min_connections: pool.min_connections,
                acquire_timeout: HumanDuration(pool.acquire_timeout),
                health_check_interval: HumanDuration(pool.monitor.check_interval),
                health_check_timeout: HumanDuration(pool.monitor.check_timeout),
            },
            engine: EngineSection {
                lease_duration: HumanDuration(engine.lease_duration),
                max_payload_bytes: engine.max_payload_bytes,
                max_claim_batch: engine.max_claim_batch,
                max_parent_results_bytes: engine.max_parent_results_bytes,
                max_fan_out_instances: engine.max_fan_out_instances,
                poll_recheck_interval: HumanDuration(engine.poll_recheck_interval),
                max_poll_wait: HumanDuration(engine.max_poll_wait),
                report_writers: engine.report_writers,
                worker_liveness: HumanDuration(engine.worker_liveness),
            },
            cluster: ClusterSection {
                advertise_address: String::new(),
                node_heartbeat_interval: HumanDuration(cluster.node_heartbeat_interval),
                node_timeout: HumanDuration(cluster.node_timeout),
                leader_lease: HumanDuration(cluster.leader_lease),
            },
            maintenance: MaintenanceSection {
                timeout_sweep_interval: HumanDuration(maintenance.timeout_sweep_interval),
                deadline_sweep_interval: HumanDuration(maintenance.deadline_sweep_interval),
                stuck_sweep_interval: HumanDuration(maintenance.stuck_sweep_interval),
                batch_size: maintenance.batch_size,
                queue_vacuum_interval: HumanDuration(maintenance.queue_vacuum_interval),
                queue_vacuum_dead_rows: maintenance.queue_vacuum_dead_rows,
            },
            retention: RetentionSection {
                horizon: HumanDuration(retention.horizon),
                state_horizons: Vec::new(),
                namespace_horizons: Vec::new(),
                batch_size: retention.batch_size,
                batch_pause: HumanDuration(retention.batch_pause),
                interval: HumanDuration(retention.interval),
                idempotency_key_expiry: HumanDuration(retention.idempotency_key_expiry),
                worker_expiry: HumanDuration(retention.worker_expiry),
            },
            auth: AuthConfig {
                enabled: true,
                admin_tokens: Vec::new(),
                operator_tokens: Vec::new(),
                worker_tokens: Vec::new(),
                viewer_tokens: Vec::new(),
            },
            log: LogConfig {
                level: "info,sqlx=warn".into(),
                format: LogFormat::Text,
            },
        }
    }
}

/// `<hostname>-<pid>`: unique among the nodes of a cluster and readable in
/// transitions. Falls back to a random name where the hostname is unknown.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("{host}-{}", std::process::id()),
        None => format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
    }
}

impl Config {
    /// The engine's settings.
    pub fn engine_config(&self) -> tasker_engine::EngineConfig {
        let e = &self.engine;
        tasker_engine::EngineConfig {
            lease_duration: e.lease_duration.as_duration(),
            max_payload_bytes: e.max_payload_bytes,
            max_claim_batch: e.max_claim_batch,
            max_parent_results_bytes: e.max_parent_results_bytes,
            max_fan_out_instances: e.max_fan_out_instances,
            poll_recheck_interval: e.poll_recheck_interval.as_duration(),
            max_poll_wait: e.max_poll_wait.as_duration(),
            report_writers: e.report_writers,
            worker_liveness: e.worker_liveness.as_duration(),
        }
    }

    /// The node registry's and the election's settings.
    pub fn cluster_config(&self) -> tasker_engine::ClusterConfig {
        let c = &self.cluster;
        tasker_engine::ClusterConfig {
            node_heartbeat_interval: c.node_heartbeat_interval.as_duration(),
            node_timeout: c.node_timeout.as_duration(),
            leader_lease: c.leader_lease.as_duration(),
        }
    }

    /// The leader's sweeps' settings.
    pub fn maintenance_config(&self) -> tasker_engine::maintenance::MaintenanceConfig {
        let m = &self.maintenance;
        tasker_engine::maintenance::MaintenanceConfig {
            timeout_sweep_interval: m.timeout_sweep_interval.as_duration(),
            deadline_sweep_interval: m.deadline_sweep_interval.as_duration(),
            stuck_sweep_interval: m.stuck_sweep_interval.as_duration(),
            batch_size: m.batch_size,
            queue_vacuum_interval: m.queue_vacuum_interval.as_duration(),
            queue_vacuum_dead_rows: m.queue_vacuum_dead_rows,
        }
    }

    /// Retention's settings. The horizon rules must have passed
    /// [`Config::validate`]; one that does not parse is left out.
    pub fn retention_config(&self) -> tasker_engine::retention::RetentionConfig {
        use tasker_engine::retention::{NamespaceHorizon, RetentionConfig, StateHorizon};
        let r = &self.retention;
        RetentionConfig {
            horizon: r.horizon.as_duration(),
            state_horizons: r
                .state_horizons
                .iter()
                .filter_map(|text| StateHorizon::parse(text).ok())
                .collect(),
            namespace_horizons: r
                .namespace_horizons
                .iter()
                .filter_map(|text| NamespaceHorizon::parse(text).ok())
                .collect(),
            batch_size: r.batch_size,
            batch_pause: r.batch_pause.as_duration(),
            interval: r.interval.as_duration(),
            idempotency_key_expiry: r.idempotency_key_expiry.as_duration(),
            worker_expiry: r.worker_expiry.as_duration(),
        }
    }

    /// The URL this node advertises: `cluster.advertise_address`, or
    /// `http://<bound>` when it is empty.
    pub fn advertise_address(&self, bound: std::net::SocketAddr) -> String {
        match self.cluster.advertise_address.as_str() {
            "" => format!("http://{bound}"),
            configured => configured.trim_end_matches('/').to_owned(),
        }
    }

    /// The connection pool's settings.
    pub fn pool_config(&self) -> tasker_postgres::PoolConfig {
        let d = &self.database;
        tasker_postgres::PoolConfig {
            max_connections: d.max_connections,
            min_connections: d.min_connections,
            acquire_timeout: d.acquire_timeout.as_duration(),
            monitor: tasker_postgres::MonitorConfig {
                check_interval: d.health_check_interval.as_duration(),
                check_timeout: d.health_check_timeout.as_duration(),
            },
        }
    }

    /// A copy safe to print: tokens and the database password replaced.
    pub fn redacted(&self) -> Config {
        const HIDDEN: &str = "<redacted>";
        let mut copy = self.clone();
        for tokens in [
            &mut copy.auth.admin_tokens,
            &mut copy.auth.operator_tokens,
            &mut copy.auth.worker_tokens,
            &mut copy.auth.viewer_tokens,
        ] {
            tokens.iter_mut().for_each(|t| *t = HIDDEN.into());
        }
        copy.database.url = redact_url_password(&copy.database.url, HIDDEN);
        copy
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:<hidden>@host/db`.
pub(crate) fn redact_url_password(url: &str, hidden: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:{hidden}{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_tokens_and_the_database_password() {
        let mut config = Config::default();
        config.auth.admin_tokens = vec!["s3cret-admin".into()];
        config.auth.worker_tokens = vec!["w1".into(), "w2".into()];
        config.database.url = "postgres://app:hunter2@db:5432/tasker?sslmode=require".into();
        let shown = config.redacted();
        assert_eq!(shown.auth.admin_tokens, ["<redacted>"]);
        assert_eq!(shown.auth.worker_tokens, ["<redacted>", "<redacted>"]);
        assert_eq!(
            shown.database.url,
            "postgres://app:<redacted>@db:5432/tasker?sslmode=require"
        );
        let text = toml::to_string(&shown).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("hunter2"));
    }

    #[test]
    fn urls_without_a_password_are_shown_as_they_are() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/tasker",
            "postgres:///tasker?host=/run/postgresql",
            "not a url",
        ] {
            assert_eq!(redact_url_password(url, "x"), url);
        }
    }

    const DOCS: &str = include_str!("../../../../docs/configuration.md");

    /// docs/configuration.md is the reference: every key must be there with
    /// its real default and variable.
    #[test]
    fn the_documentation_lists_every_key_with_its_default_and_variable() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for field in fields::FIELDS {
            let default = &defaults[field.section][field.key];
            let shown = if field.key == "node_id" {
                "\"<hostname>-<pid>\"".to_owned()
            } else {
                default.to_string()
            };
            let row = format!("| `{}` | `{shown}`", field.key);
            let line = DOCS
                .lines()
                .find(|l| l.starts_with(&row))
                .unwrap_or_else(|| panic!("docs/configuration.md lacks a row {row}"));
            assert!(line.contains(&field.env_var()), "{line}");
        }
    }

    #[test]
    fn the_documented_example_file_is_valid() {
        let start = DOCS.find("```toml\n").expect("an example") + "```toml\n".len();
        let text = &DOCS[start..start + DOCS[start..].find("```").unwrap()];
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        let layers = Layers {
            file: Some(file.path().to_owned()),
            env: vec![(
                "TASKER_AUTH_ADMIN_TOKENS".into(),
                "0123456789abcdef0123".into(),
            )],
            flags: vec![],
        };
        let config = layers.load_valid().unwrap();
        assert_eq!(config.server.node_id, "tasker-a");
    }

    #[test]
    fn defaults_match_the_engine_and_pool_defaults() {
        let config = Config::default();
        let engine = config.engine_config();
        let expected = tasker_engine::EngineConfig::default();
        assert_eq!(engine.lease_duration, expected.lease_duration);
        assert_eq!(engine.max_payload_bytes, 1024 * 1024);
        assert_eq!(engine.max_poll_wait, expected.max_poll_wait);
        assert_eq!(config.pool_config().max_connections, 16);
        assert!(config.auth.enabled, "auth is on unless turned off");
    }
}

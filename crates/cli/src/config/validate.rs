//! [`Config::validate`]: the checks that types alone cannot make. Every
//! problem is reported at once, each naming its key.

use std::fmt;
use std::time::Duration;

use tasker_model::HumanDuration;

use super::Config;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// `section.key` (or `auth.*_tokens` for a rule over several keys).
    pub key: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Shortest bearer token accepted: shorter ones are guessable.
const MIN_TOKEN_CHARS: usize = 16;
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Issue {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn at_least(&mut self, key: &str, value: HumanDuration, min: Duration) {
        if value.as_duration() < min {
            self.push(
                key,
                format!("\"{value}\" must be at least {}", HumanDuration(min)),
            );
        }
    }

    fn at_most(&mut self, key: &str, value: HumanDuration, max: Duration) {
        if value.as_duration() > max {
            self.push(
                key,
                format!("\"{value}\" must be at most {}", HumanDuration(max)),
            );
        }
    }

    fn in_range<T: PartialOrd + fmt::Display>(&mut self, key: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.push(key, format!("{value} must be between {min} and {max}"));
        }
    }
}

impl Config {
    /// Every problem with this configuration; empty when it is usable.
    pub fn validate(&self) -> Vec<Issue> {
        let mut issues = Issues::default();
        self.validate_server(&mut issues);
        self.validate_database(&mut issues);
        self.validate_engine(&mut issues);
        self.validate_cluster(&mut issues);
        self.validate_maintenance(&mut issues);
        self.validate_retention(&mut issues);
        self.validate_auth(&mut issues);
        self.validate_log(&mut issues);
        issues.0
    }

    fn validate_server(&self, issues: &mut Issues) {
        let s = &self.server;
        if let Err(message) = check_listen(&s.listen) {
            issues.push("server.listen", message);
        }
        if s.node_id.is_empty() || s.node_id.len() > 128 || s.node_id.contains(char::is_whitespace)
        {
            issues.push(
                "server.node_id",
                format!("\"{}\" must be 1-128 characters without spaces", s.node_id),
            );
        }
        if s.max_body_bytes <= self.engine.max_payload_bytes {
            issues.push(
                "server.max_body_bytes",
                format!(
                    "{} must be larger than engine.max_payload_bytes ({}), to leave room for the request around the payload",
                    s.max_body_bytes, self.engine.max_payload_bytes
                ),
            );
        }
        issues.at_most(
            "server.shutdown_grace",
            s.shutdown_grace,
            Duration::from_secs(600),
        );
        issues.at_least(
            "server.metrics_refresh_interval",
            s.metrics_refresh_interval,
            Duration::from_millis(100),
        );
        issues.at_most(
            "server.metrics_refresh_interval",
            s.metrics_refresh_interval,
            Duration::from_secs(600),
        );
    }

    fn validate_database(&self, issues: &mut Issues) {
        let d = &self.database;
        if !(d.url.starts_with("postgres://") || d.url.starts_with("postgresql://")) {
            issues.push(
                "database.url",
                "must be a PostgreSQL URL: postgres://user[:password]@host[:port]/database",
            );
        }
        issues.in_range("database.max_connections", d.max_connections, 1, 10_000);
        if d.min_connections > d.max_connections {
            issues.push(
                "database.min_connections",
                format!(
                    "{} must not exceed database.max_connections ({})",
                    d.min_connections, d.max_connections
                ),
            );
        }
        issues.at_least(
            "database.acquire_timeout",
            d.acquire_timeout,
            Duration::from_millis(100),
        );
        for (key, value) in [
            ("database.health_check_interval", d.health_check_interval),
            ("database.health_check_timeout", d.health_check_timeout),
        ] {
            issues.at_least(key, value, Duration::from_millis(50));
            issues.at_most(key, value, Duration::from_secs(60));
        }
    }

    fn validate_engine(&self, issues: &mut Issues) {
        let e = &self.engine;
        issues.at_least(
            "engine.lease_duration",
            e.lease_duration,
            Duration::from_secs(1),
        );
        issues.at_most(
            "engine.lease_duration",
            e.lease_duration,
            Duration::from_secs(24 * 3600),
        );
        if !e.lease_duration.as_millis().is_multiple_of(1000) {
            issues.push(
                "engine.lease_duration",
                format!(
                    "\"{}\" must be a whole number of seconds (queue visibility is counted in seconds)",
                    e.lease_duration
                ),
            );
        }
        issues.in_range(
            "engine.max_payload_bytes",
            e.max_payload_bytes,
            1024,
            256 * 1024 * 1024,
        );
        issues.in_range("engine.max_claim_batch", e.max_claim_batch, 1, 1000);
        issues.in_range(
            "engine.max_parent_results_bytes",
            e.max_parent_results_bytes,
            1024,
            1024 * 1024 * 1024,
        );
        issues.in_range(
            "engine.max_fan_out_instances",
            e.max_fan_out_instances,
            1,
            tasker_model::template::MAX_FAN_OUT_INSTANCES,
        );
        issues.at_least(
            "engine.poll_recheck_interval",
            e.poll_recheck_interval,
            Duration::from_millis(10),
        );
        issues.at_most(
            "engine.max_poll_wait",
            e.max_poll_wait,
            Duration::from_secs(300),
        );
        issues.in_range("engine.report_writers", e.report_writers, 1, 16);
        issues.at_least(
            "engine.worker_liveness",
            e.worker_liveness,
            Duration::from_secs(1),
        );
    }

    fn validate_cluster(&self, issues: &mut Issues) {
        let c = &self.cluster;
        let address = &c.advertise_address;
        if !address.is_empty()
            && (!(address.starts_with("http://") || address.starts_with("https://"))
                || address.contains(char::is_whitespace)
                || address.len() <= "https://".len())
        {
            issues.push(
                "cluster.advertise_address",
                format!(
                    "\"{address}\" must be a URL like \"http://10.0.0.5:8080\", or empty for http://<listen address>"
                ),
            );
        }
        issues.at_least(
            "cluster.node_heartbeat_interval",
            c.node_heartbeat_interval,
            Duration::from_millis(100),
        );
        issues.at_most(
            "cluster.node_heartbeat_interval",
            c.node_heartbeat_interval,
            Duration::from_secs(600),
        );
        if c.node_timeout.as_duration() < c.node_heartbeat_interval.as_duration() * 2 {
            issues.push(
                "cluster.node_timeout",
                format!(
                    "\"{}\" must be at least twice cluster.node_heartbeat_interval ({}), or live nodes would drop out between two heartbeats",
                    c.node_timeout, c.node_heartbeat_interval
                ),
            );
        }
        issues.at_least(
            "cluster.leader_lease",
            c.leader_lease,
            Duration::from_secs(1),
        );
        issues.at_most(
            "cluster.leader_lease",
            c.leader_lease,
            Duration::from_secs(3600),
        );
    }

    fn validate_maintenance(&self, issues: &mut Issues) {
        let m = &self.maintenance;
        for (key, value) in [
            (
                "maintenance.timeout_sweep_interval",
                m.timeout_sweep_interval,
            ),
            (
                "maintenance.deadline_sweep_interval",
                m.deadline_sweep_interval,
            ),
            ("maintenance.stuck_sweep_interval", m.stuck_sweep_interval),
            ("maintenance.queue_vacuum_interval", m.queue_vacuum_interval),
        ] {
            issues.at_least(key, value, Duration::from_millis(10));
            issues.at_most(key, value, Duration::from_secs(3600));
        }
        issues.in_range("maintenance.batch_size", m.batch_size, 1, 10_000);
        issues.in_range(
            "maintenance.queue_vacuum_dead_rows",
            m.queue_vacuum_dead_rows,
            1,
            u64::from(u32::MAX),
        );
    }

    fn validate_retention(&self, issues: &mut Issues) {
        use tasker_engine::retention::{NamespaceHorizon, StateHorizon};
        let r = &self.retention;
        issues.at_least("retention.horizon", r.horizon, Duration::from_secs(1));
        for (i, text) in r.state_horizons.iter().enumerate() {
            if let Err(message) = StateHorizon::parse(text) {
                issues.push(&format!("retention.state_horizons[{i}]"), message);
            }
        }
        for (i, text) in r.namespace_horizons.iter().enumerate() {
            if let Err(message) = NamespaceHorizon::parse(text) {
                issues.push(&format!("retention.namespace_horizons[{i}]"), message);
            }
        }
        issues.in_range("retention.batch_size", r.batch_size, 1, 100_000);
        issues.at_most(
            "retention.batch_pause",
            r.batch_pause,
            Duration::from_secs(60),
        );
        issues.at_least("retention.interval", r.interval, Duration::from_secs(1));
        issues.at_least(
            "retention.idempotency_key_expiry",
            r.idempotency_key_expiry,
            Duration::from_secs(60),
        );
        issues.at_least(
            "retention.worker_expiry",
            r.worker_expiry,
            self.engine
                .worker_liveness
                .as_duration()
                .max(Duration::from_secs(60)),
        );
    }

    fn validate_auth(&self, issues: &mut Issues) {
        let a = &self.auth;
        let roles = [
            ("auth.admin_tokens", &a.admin_tokens),
            ("auth.operator_tokens", &a.operator_tokens),
            ("auth.worker_tokens", &a.worker_tokens),
            ("auth.viewer_tokens", &a.viewer_tokens),
        ];
        if a.enabled && roles.iter().all(|(_, tokens)| tokens.is_empty()) {
            issues.push(
                "auth.*_tokens",
                "auth is enabled but auth.admin_tokens, auth.operator_tokens, \
                 auth.worker_tokens and auth.viewer_tokens are all empty: add a token (e.g. \
                 TASKER_AUTH_ADMIN_TOKENS) or set auth.enabled = false for local development",
            );
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (key, tokens) in roles {
            for (i, token) in tokens.iter().enumerate() {
                let at = format!("{key}[{i}]");
                if token.chars().count() < MIN_TOKEN_CHARS {
                    issues.push(
                        &at,
                        format!(
                            "tokens must be at least {MIN_TOKEN_CHARS} characters; generate one with `openssl rand -hex 32`"
                        ),
                    );
                } else if token.contains(|c: char| c.is_whitespace() || c.is_control()) {
                    issues.push(&at, "tokens must not contain spaces or control characters");
                }
                if let Some((other, _)) = seen.iter().find(|(_, t)| *t == token.as_str()) {
                    issues.push(
                        &at,
                        format!("the same token is also listed in {other}; give each role its own tokens"),
                    );
                }
                seen.push((key, token));
            }
        }
    }

    fn validate_log(&self, issues: &mut Issues) {
        if let Err(message) = check_log_level(&self.log.level) {
            issues.push("log.level", message);
        }
    }
}

/// `host:port`, with a numeric port; the host is resolved when binding.
fn check_listen(listen: &str) -> Result<(), String> {
    let valid = listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{listen}\" must be host:port, e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8080\""
        ))
    }
}

/// A level, or comma-separated directives where each is a level or
/// `target=level`. A bare word that is not a level would silently mean
/// "everything from a target of that name", so it is refused.
fn check_log_level(level: &str) -> Result<(), String> {
    let explain = || {
        format!(
            "\"{level}\" must be one of {} or directives like \"info,tasker_engine=debug\"",
            LEVELS.join(", ")
        )
    };
    for directive in level.split(',').map(str::trim) {
        let level_part = match directive.split_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(explain()),
            None => directive,
        };
        if !LEVELS.contains(&level_part.to_ascii_lowercase().as_str()) {
            return Err(explain());
        }
    }
    tracing_subscriber::EnvFilter::try_new(level).map_err(|e| format!("{}: {e}", explain()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn valid() -> Config {
        let mut config = Config::default();
        config.auth.admin_tokens = vec![TOKEN.into()];
        config
    }

    fn keys(config: &Config) -> Vec<String> {
        config.validate().into_iter().map(|i| i.key).collect()
    }

    #[test]
    fn defaults_with_a_token_are_valid() {
        assert_eq!(valid().validate(), []);
    }

    #[test]
    fn auth_enabled_without_tokens_names_the_token_keys() {
        let issues = Config::default().validate();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].key, "auth.*_tokens");
        assert!(issues[0].message.contains("auth.admin_tokens"));
        assert!(issues[0].message.contains("auth.enabled = false"));

        let mut dev = Config::default();
        dev.auth.enabled = false;
        assert_eq!(dev.validate(), []);
    }

    #[test]
    fn the_body_limit_must_exceed_the_payload_limit() {
        let mut config = valid();
        config.server.max_body_bytes = config.engine.max_payload_bytes;
        assert_eq!(keys(&config), ["server.max_body_bytes"]);
        assert!(
            config.validate()[0]
                .message
                .contains("engine.max_payload_bytes")
        );
    }

    #[test]
    fn a_zero_lease_is_refused_with_its_key_and_value() {
        let mut config = valid();
        config.engine.lease_duration = HumanDuration::parse("0s").unwrap();
        let issues = config.validate();
        assert_eq!(
            issues[0].to_string(),
            "engine.lease_duration: \"0s\" must be at least 1s"
        );
        config.engine.lease_duration = HumanDuration::parse("1500ms").unwrap();
        assert!(
            config.validate()[0]
                .message
                .contains("whole number of seconds")
        );
    }

    #[test]
    fn out_of_range_values_are_each_reported() {
        let mut config = valid();
        config.server.listen = "8080".into();
        config.server.node_id = String::new();
        config.database.url = "mysql://x".into();
        config.database.max_connections = 2;
        config.database.min_connections = 3;
        config.database.acquire_timeout = HumanDuration::parse("0s").unwrap();
        config.database.health_check_interval = HumanDuration::parse("10ms").unwrap();
        config.database.health_check_timeout = HumanDuration::parse("5m").unwrap();
        config.engine.max_claim_batch = 0;
        config.engine.poll_recheck_interval = HumanDuration::parse("1ms").unwrap();
        config.engine.max_poll_wait = HumanDuration::parse("1h").unwrap();
        config.engine.worker_liveness = HumanDuration::parse("0s").unwrap();
        config.server.shutdown_grace = HumanDuration::parse("1h").unwrap();
        config.log.level = "verbose".into();
        assert_eq!(
            keys(&config),
            [
                "server.listen",
                "server.node_id",
                "server.shutdown_grace",
                "database.url",
                "database.min_connections",
                "database.acquire_timeout",
                "database.health_check_interval",
                "database.health_check_timeout",
                "engine.max_claim_batch",
                "engine.poll_recheck_interval",
                "engine.max_poll_wait",
                "engine.worker_liveness",
                "log.level",
            ]
        );
    }

    #[test]
    fn cluster_settings_are_checked_each_by_its_key() {
        let mut config = valid();
        config.cluster.advertise_address = "10.0.0.5:8080".into();
        config.cluster.node_heartbeat_interval = HumanDuration::parse("5s").unwrap();
        config.cluster.node_timeout = HumanDuration::parse("6s").unwrap();
        config.cluster.leader_lease = HumanDuration::parse("500ms").unwrap();
        let issues = config.validate();
        assert_eq!(
            keys(&config),
            [
                "cluster.advertise_address",
                "cluster.node_timeout",
                "cluster.leader_lease"
            ]
        );
        assert!(issues[1].message.contains("twice"), "{}", issues[1]);

        let mut config = valid();
        config.cluster.advertise_address = "https://tasker-a.internal:8443/".into();
        assert_eq!(config.validate(), []);
        let bound = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            config.advertise_address(bound),
            "https://tasker-a.internal:8443"
        );
        config.cluster.advertise_address = String::new();
        assert_eq!(config.advertise_address(bound), "http://0.0.0.0:8080");
    }

    #[test]
    fn retention_settings_are_checked_each_by_its_key() {
        let mut config = valid();
        config.retention.state_horizons = vec!["failed=2160h".into(), "running=1h".into()];
        config.retention.namespace_horizons = vec!["Orders=1h".into(), "scratch.failed=2h".into()];
        config.retention.batch_size = 0;
        config.retention.worker_expiry = HumanDuration::parse("30s").unwrap();
        let issues = config.validate();
        assert_eq!(
            keys(&config),
            [
                "retention.state_horizons[1]",
                "retention.namespace_horizons[0]",
                "retention.batch_size",
                "retention.worker_expiry"
            ]
        );
        assert!(issues[0].message.contains("final state"), "{}", issues[0]);

        let mut config = valid();
        config.retention.state_horizons = vec!["cancelled=24h".into()];
        config.retention.namespace_horizons =
            vec!["scratch=1h".into(), "orders.failed=4320h".into()];
        assert_eq!(config.validate(), []);
        let retention = config.retention_config();
        assert_eq!(retention.state_horizons.len(), 1);
        assert_eq!(retention.namespace_horizons.len(), 2);
        assert_eq!(retention.horizon, Duration::from_secs(30 * 24 * 3600));
    }

    #[test]
    fn tokens_must_be_long_distinct_and_printable() {
        let mut config = valid();
        config.auth.operator_tokens = vec!["short".into(), TOKEN.into()];
        config.auth.worker_tokens = vec!["with space 0123456789".into()];
        assert_eq!(
            keys(&config),
            [
                "auth.operator_tokens[0]",
                "auth.operator_tokens[1]",
                "auth.worker_tokens[0]"
            ]
        );
        assert!(config.validate()[1].message.contains("auth.admin_tokens"));
    }

    #[test]
    fn listen_addresses() {
        for ok in ["127.0.0.1:8080", "0.0.0.0:0", "[::]:8080", "localhost:80"] {
            assert!(check_listen(ok).is_ok(), "{ok}");
        }
        for bad in ["8080", ":8080", "127.0.0.1", "host:http", "host:70000"] {
            assert!(check_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_levels_and_directives() {
        for ok in ["info", "DEBUG", "warn,tasker_engine=debug", "off"] {
            assert!(check_log_level(ok).is_ok(), "{ok}");
        }
        for bad in ["verbose", "info,tasker_engine", "=debug", "tasker=loud", ""] {
            assert!(check_log_level(bad).is_err(), "{bad}");
        }
    }
}

//! Settings of the API layer of a node. Every field has an effect and a
//! documented default; [`ApiConfig::validate`] names the bad key.

use std::time::Duration;

use tasker_engine::EngineConfig;
use tasker_model::Timestamp;

/// Default request body limit: 2 MiB, above the engine's default 1 MiB
/// payload limit so that an oversized context or result is refused with the
/// engine's precise message rather than a bare 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// This node's id, shown by `GET /v1/cluster`. Default `"local"`.
    pub node_id: String,
    /// When this node started, shown by `GET /v1/cluster`. Default: now.
    pub started_at: Timestamp,
    /// Bearer tokens per role. Default: enabled, no tokens (everything but
    /// the probes refused).
    pub auth: AuthConfig,
    /// Largest request body accepted, in bytes; larger requests get 413
    /// `payload_too_large`. Must exceed the engine's `max_payload_bytes`.
    /// Default 2 MiB.
    pub max_body_bytes: usize,
    /// How often workers are told to heartbeat (answer to register). Must be
    /// shorter than the lease. Default: a third of the engine's lease (10 s).
    pub heartbeat_interval: Duration,
    /// Version reported by `GET /v1/cluster` and the OpenAPI description.
    /// Default: this crate's version.
    pub version: String,
    /// How often the gauges `/metrics` reads from the database (queue
    /// depths, leases, delayed retries) are refreshed in the background; a
    /// scrape serves the last reading. Default 5 s.
    pub metrics_refresh_interval: Duration,
}

/// Bearer tokens per role (see `docs/api.md`, Auth).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `false` lets every request through; only for local development, and
    /// only when configured so explicitly. Default `true`.
    pub enabled: bool,
    /// Tokens that may use everything. Default none.
    pub admin_tokens: Vec<String>,
    /// Tokens for namespaces, templates, tasks, step retry/resolve and the
    /// cluster view. Default none.
    pub operator_tokens: Vec<String>,
    /// Tokens for the worker plane only. Default none.
    pub worker_tokens: Vec<String>,
    /// Read-only tokens: the management API's GET endpoints and the
    /// dashboard without its actions. Default none.
    pub viewer_tokens: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            admin_tokens: Vec::new(),
            operator_tokens: Vec::new(),
            worker_tokens: Vec::new(),
            viewer_tokens: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// No auth at all: every request is let through.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

// Tokens are secrets: never print them.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("admin_tokens", &self.admin_tokens.len())
            .field("operator_tokens", &self.operator_tokens.len())
            .field("worker_tokens", &self.worker_tokens.len())
            .field("viewer_tokens", &self.viewer_tokens.len())
            .finish()
    }
}

/// A setting that cannot work, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self::for_engine(&EngineConfig::default())
    }
}

impl ApiConfig {
    /// Defaults that fit `engine`: heartbeats at a third of its lease, a body
    /// limit of 2 MiB or twice its payload limit, whichever is larger.
    pub fn for_engine(engine: &EngineConfig) -> Self {
        Self {
            node_id: "local".to_owned(),
            started_at: chrono::Utc::now(),
            auth: AuthConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES.max(engine.max_payload_bytes.saturating_mul(2)),
            heartbeat_interval: engine.lease_duration / 3,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            metrics_refresh_interval: Duration::from_secs(5),
        }
    }

    /// Checks the settings against each other and against the engine's.
    pub fn validate(&self, engine: &EngineConfig) -> Result<(), ConfigError> {
        let bad = |key, message: String| Err(ConfigError { key, message });
        if self.node_id.is_empty() || self.node_id.len() > 128 {
            return bad("node_id", "must be 1-128 characters".into());
        }
        if self.max_body_bytes <= engine.max_payload_bytes {
            return bad(
                "max_body_bytes",
                format!(
                    "is {} but must exceed the engine's max_payload_bytes ({}), or payloads the \
                     engine accepts could never arrive",
                    self.max_body_bytes, engine.max_payload_bytes
                ),
            );
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= engine.lease_duration {
            return bad(
                "heartbeat_interval",
                format!(
                    "is {:?} but must be above zero and shorter than the lease ({:?})",
                    self.heartbeat_interval, engine.lease_duration
                ),
            );
        }
        self.auth.validate()
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let lists: [(&'static str, &Vec<String>); 4] = [
            ("auth.admin_tokens", &self.admin_tokens),
            ("auth.operator_tokens", &self.operator_tokens),
            ("auth.worker_tokens", &self.worker_tokens),
            ("auth.viewer_tokens", &self.viewer_tokens),
        ];
        for (key, tokens) in lists {
            if tokens.iter().any(|t| t.trim().is_empty()) {
                return Err(ConfigError {
                    key,
                    message: "contains an empty token".into(),
                });
            }
            for (other_key, others) in lists {
                if other_key != key && tokens.iter().any(|t| others.contains(t)) {
                    return Err(ConfigError {
                        key,
                        message: format!("shares a token with {other_key}; give each role its own"),
                    });
                }
            }
        }
        if self.enabled && lists.iter().all(|(_, tokens)| tokens.is_empty()) {
            return Err(ConfigError {
                key: "auth",
                message: "auth is enabled but no tokens are configured: add tokens, or set \
                          auth.enabled = false for local development"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_tokens() -> ApiConfig {
        ApiConfig {
            auth: AuthConfig {
                admin_tokens: vec!["a".into()],
                ..AuthConfig::default()
            },
            ..ApiConfig::default()
        }
    }

    #[test]
    fn defaults_fit_the_default_engine() {
        let engine = EngineConfig::default();
        let config = with_tokens();
        assert_eq!(config.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        config.validate(&engine).unwrap();
    }

    #[test]
    fn body_limit_must_exceed_payload_limit() {
        let config = ApiConfig {
            max_body_bytes: 1024 * 1024,
            ..with_tokens()
        };
        let err = config.validate(&EngineConfig::default()).unwrap_err();
        assert_eq!(err.key, "max_body_bytes");
    }

    #[test]
    fn heartbeat_must_be_shorter_than_lease() {
        let config = ApiConfig {
            heartbeat_interval: Duration::from_secs(30),
            ..with_tokens()
        };
        let err = config.validate(&EngineConfig::default()).unwrap_err();
        assert_eq!(err.key, "heartbeat_interval");
    }

    #[test]
    fn enabled_auth_needs_tokens_and_disabled_does_not() {
        let engine = EngineConfig::default();
        let err = ApiConfig::default().validate(&engine).unwrap_err();
        assert_eq!(err.key, "auth");
        let open = ApiConfig {
            auth: AuthConfig::disabled(),
            ..ApiConfig::default()
        };
        open.validate(&engine).unwrap();
    }

    #[test]
    fn tokens_are_not_empty_nor_shared_between_roles() {
        let engine = EngineConfig::default();
        let mut config = with_tokens();
        config.auth.worker_tokens = vec![" ".into()];
        assert_eq!(
            config.validate(&engine).unwrap_err().key,
            "auth.worker_tokens"
        );
        config.auth.worker_tokens = vec!["a".into()];
        assert_eq!(
            config.validate(&engine).unwrap_err().key,
            "auth.admin_tokens"
        );
    }

    #[test]
    fn debug_never_prints_tokens() {
        let config = with_tokens();
        let printed = format!("{config:?}");
        assert!(!printed.contains("\"a\""), "{printed}");
    }
}

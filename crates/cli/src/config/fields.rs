//! The list of every configuration key, with its type: how an environment
//! variable's text becomes a TOML value, and which keys exist at all.

/// What kind of value a key holds, which decides how its environment
/// variable is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text as given.
    Text,
    /// A whole number.
    Integer,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A duration with a unit, e.g. `30s`.
    Duration,
    /// A list of text; in an environment variable, comma-separated.
    List,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub section: &'static str,
    pub key: &'static str,
    pub kind: Kind,
}

impl Kind {
    /// Whether a TOML value has this kind's type; the message says what was
    /// expected (values are checked in full when deserialized).
    pub fn check(self, value: &toml::Value) -> Result<(), String> {
        let (fits, expected) = match self {
            Kind::Text => (value.is_str(), "text in quotes"),
            Kind::Integer => (value.is_integer(), "a whole number"),
            Kind::Bool => (value.is_bool(), "true or false"),
            Kind::Duration => (
                value.is_str(),
                "a duration in quotes with a unit, e.g. \"30s\" or \"500ms\"",
            ),
            Kind::List => (
                value
                    .as_array()
                    .is_some_and(|items| items.iter().all(toml::Value::is_str)),
                "a list of text, e.g. [\"a\", \"b\"]",
            ),
        };
        if fits {
            Ok(())
        } else {
            Err(format!("{value} must be {expected}"))
        }
    }
}

impl Field {
    /// `section.key`, the name used in messages.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    /// `TASKER_<SECTION>_<KEY>`.
    pub fn env_var(&self) -> String {
        format!(
            "TASKER_{}_{}",
            self.section.to_uppercase(),
            self.key.to_uppercase()
        )
    }

    /// The TOML value an environment variable's text stands for.
    pub fn parse_env(&self, text: &str) -> Result<toml::Value, String> {
        let text = text.trim();
        Ok(match self.kind {
            Kind::Text | Kind::Duration => toml::Value::String(text.to_owned()),
            Kind::Integer => toml::Value::Integer(
                text.replace('_', "")
                    .parse()
                    .map_err(|_| format!("\"{text}\" is not a whole number"))?,
            ),
            Kind::Bool => toml::Value::Boolean(match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("\"{text}\" is not true or false")),
            }),
            Kind::List => toml::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_owned()))
                    .collect(),
            ),
        })
    }
}

const fn field(section: &'static str, key: &'static str, kind: Kind) -> Field {
    Field { section, key, kind }
}

/// Every key, in the order `config show` and the documentation list them.
pub const FIELDS: &[Field] = &[
    field("server", "listen", Kind::Text),
    field("server", "node_id", Kind::Text),
    field("server", "max_body_bytes", Kind::Integer),
    field("server", "shutdown_grace", Kind::Duration),
    field("server", "metrics_refresh_interval", Kind::Duration),
    field("database", "url", Kind::Text),
    field("database", "max_connections", Kind::Integer),
    field("database", "min_connections", Kind::Integer),
    field("database", "acquire_timeout", Kind::Duration),
    field("database", "health_check_interval", Kind::Duration),
    field("database", "health_check_timeout", Kind::Duration),
    field("engine", "lease_duration", Kind::Duration),
    field("engine", "max_payload_bytes", Kind::Integer),
    field("engine", "max_claim_batch", Kind::Integer),
    field("engine", "max_parent_results_bytes", Kind::Integer),
    field("engine", "max_fan_out_instances", Kind::Integer),
    field("engine", "poll_recheck_interval", Kind::Duration),
    field("engine", "max_poll_wait", Kind::Duration),
    field("engine", "report_writers", Kind::Integer),
    field("engine", "worker_liveness", Kind::Duration),
    field("cluster", "advertise_address", Kind::Text),
    field("cluster", "node_heartbeat_interval", Kind::Duration),
    field("cluster", "node_timeout", Kind::Duration),
    field("cluster", "leader_lease", Kind::Duration),
    field("maintenance", "timeout_sweep_interval", Kind::Duration),
    field("maintenance", "deadline_sweep_interval", Kind::Duration),
    field("maintenance", "stuck_sweep_interval", Kind::Duration),
    field("maintenance", "batch_size", Kind::Integer),
    field("maintenance", "queue_vacuum_interval", Kind::Duration),
    field("maintenance", "queue_vacuum_dead_rows", Kind::Integer),
    field("retention", "horizon", Kind::Duration),
    field("retention", "state_horizons", Kind::List),
    field("retention", "namespace_horizons", Kind::List),
    field("retention", "batch_size", Kind::Integer),
    field("retention", "batch_pause", Kind::Duration),
    field("retention", "interval", Kind::Duration),
    field("retention", "idempotency_key_expiry", Kind::Duration),
    field("retention", "worker_expiry", Kind::Duration),
    field("auth", "enabled", Kind::Bool),
    field("auth", "admin_tokens", Kind::List),
    field("auth", "operator_tokens", Kind::List),
    field("auth", "worker_tokens", Kind::List),
    field("auth", "viewer_tokens", Kind::List),
    field("log", "level", Kind::Text),
    field("log", "format", Kind::Text),
];

/// The sections, in order.
pub fn sections() -> Vec<&'static str> {
    let mut sections: Vec<&str> = FIELDS.iter().map(|f| f.section).collect();
    sections.dedup();
    sections
}

pub fn find(section: &str, key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.section == section && f.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The registry and the structs must name the same keys with the same
    /// kinds, or a key would be unreachable from the environment (or
    /// accepted there and then refused).
    #[test]
    fn the_registry_lists_exactly_the_fields_of_config() {
        let table = toml::Table::try_from(Config::default()).unwrap();
        let mut from_structs = Vec::new();
        for (section, keys) in &table {
            for (key, value) in keys.as_table().unwrap() {
                let kind = match value {
                    toml::Value::Integer(_) => Kind::Integer,
                    toml::Value::Boolean(_) => Kind::Bool,
                    toml::Value::Array(_) => Kind::List,
                    toml::Value::String(s)
                        if tasker_model::HumanDuration::parse(s).is_ok() && !s.contains(':') =>
                    {
                        Kind::Duration
                    }
                    toml::Value::String(_) => Kind::Text,
                    other => panic!("{section}.{key}: unexpected value {other}"),
                };
                from_structs.push((format!("{section}.{key}"), kind));
            }
        }
        let mut from_registry: Vec<_> = FIELDS.iter().map(|f| (f.path(), f.kind)).collect();
        from_structs.sort_by(|a, b| a.0.cmp(&b.0));
        from_registry.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(from_structs, from_registry);
    }

    #[test]
    fn file_values_must_have_the_kind_of_their_key() {
        assert!(Kind::Duration.check(&"30s".into()).is_ok());
        let err = Kind::Duration.check(&toml::Value::Integer(30)).unwrap_err();
        assert_eq!(
            err,
            "30 must be a duration in quotes with a unit, e.g. \"30s\" or \"500ms\""
        );
        assert!(
            Kind::List
                .check(&toml::Value::Array(vec![1.into()]))
                .is_err()
        );
        assert!(Kind::List.check(&toml::Value::Array(vec![])).is_ok());
        assert!(Kind::Bool.check(&"true".into()).is_err());
        assert!(Kind::Integer.check(&toml::Value::Float(1.5)).is_err());
    }

    #[test]
    fn environment_names_follow_section_and_key() {
        let f = find("auth", "admin_tokens").unwrap();
        assert_eq!(f.env_var(), "TASKER_AUTH_ADMIN_TOKENS");
        assert_eq!(
            find("database", "url").unwrap().env_var(),
            "TASKER_DATABASE_URL"
        );
    }

    #[test]
    fn environment_text_becomes_typed_values() {
        let list = find("auth", "worker_tokens").unwrap();
        assert_eq!(
            list.parse_env(" a, b ,,c ").unwrap(),
            toml::Value::Array(vec!["a".into(), "b".into(), "c".into()])
        );
        let int = find("engine", "max_claim_batch").unwrap();
        assert_eq!(int.parse_env("1_000").unwrap(), toml::Value::Integer(1000));
        assert!(int.parse_env("lots").unwrap_err().contains("whole number"));
        let flag = find("auth", "enabled").unwrap();
        assert_eq!(
            flag.parse_env("FALSE").unwrap(),
            toml::Value::Boolean(false)
        );
        assert_eq!(flag.parse_env("on").unwrap(), toml::Value::Boolean(true));
        assert!(flag.parse_env("maybe").is_err());
    }
}

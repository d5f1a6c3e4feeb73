//! Layering: defaults, then the file, then the environment, then flags, each
//! overriding the keys it sets. Every value remembers where it came from, so
//! an error can say which file, variable or flag to fix.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Config;
use super::fields::{self, FIELDS};
use super::validate::Issue;

/// A value set by a command-line flag: the key it sets, the flag's name for
/// messages, and the value.
#[derive(Debug, Clone)]
pub struct Flag {
    /// `section.key`, one of [`FIELDS`].
    pub key: &'static str,
    /// The flag as the user typed it, e.g. `--listen`.
    pub flag: &'static str,
    pub value: toml::Value,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {} is not valid TOML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("unknown configuration section [{section}] in {origin}; the sections are {}", fields::sections().join(", "))]
    UnknownSection { section: String, origin: Origin },
    #[error(
        "unknown configuration key {section}.{key} in {origin}; the keys of [{section}] are {}",
        keys_of(section)
    )]
    UnknownKey {
        section: String,
        key: String,
        origin: Origin,
    },
    #[error(
        "unknown configuration variable {var}; the variables of [{section}] are {}",
        vars_of(section)
    )]
    UnknownVariable { var: String, section: String },
    #[error("{key}: {message} (set by {origin})")]
    Value {
        key: String,
        message: String,
        origin: Origin,
    },
    #[error("invalid configuration:\n{}", issues.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid { issues: Vec<Issue> },
}

fn keys_of(section: &str) -> String {
    FIELDS
        .iter()
        .filter(|f| f.section == section)
        .map(|f| f.key)
        .collect::<Vec<_>>()
        .join(", ")
}

fn vars_of(section: &str) -> String {
    FIELDS
        .iter()
        .filter(|f| f.section == section)
        .map(|f| f.env_var())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The layers above the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// The configuration file, if any.
    pub file: Option<PathBuf>,
    /// Environment variables; only `TASKER_<SECTION>_…` ones are read.
    pub env: Vec<(String, String)>,
    /// Command-line flags.
    pub flags: Vec<Flag>,
}

impl Layers {
    /// The file and flags given, with this process's environment.
    pub fn from_process(file: Option<PathBuf>, flags: Vec<Flag>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
            flags,
        }
    }

    /// Merges the layers and checks every value's type; does not run
    /// [`Config::validate`] (see [`Layers::load_valid`]).
    pub fn load(&self) -> Result<Config, Error> {
        self.load_over(Config::default())
    }

    /// [`Layers::load`] over other defaults than the built-in ones (`tasker
    /// dev` turns auth off unless a layer turns it on).
    pub fn load_over(&self, defaults: Config) -> Result<Config, Error> {
        let mut merged = Merged::over(defaults);
        if let Some(path) = &self.file {
            merged.apply_file(path)?;
        }
        let mut env: Vec<_> = self.env.iter().collect();
        env.sort();
        for (var, value) in env {
            merged.apply_env(var, value)?;
        }
        for flag in &self.flags {
            let (section, key) = flag.key.split_once('.').expect("flag keys are section.key");
            merged.set(section, key, flag.value.clone(), Origin::Flag(flag.flag));
        }
        merged.into_config()
    }

    /// [`Layers::load`], then [`Config::validate`].
    pub fn load_valid(&self) -> Result<Config, Error> {
        self.load_valid_over(Config::default())
    }

    /// [`Layers::load_over`], then [`Config::validate`].
    pub fn load_valid_over(&self, defaults: Config) -> Result<Config, Error> {
        let config = self.load_over(defaults)?;
        let issues = config.validate();
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(Error::Invalid { issues })
        }
    }
}

/// The merged TOML table and the origin of each key in it.
struct Merged {
    table: toml::Table,
    origins: HashMap<String, Origin>,
}

impl Merged {
    fn over(defaults: Config) -> Self {
        let table = toml::Table::try_from(defaults).expect("defaults serialize");
        Self {
            table,
            origins: HashMap::new(),
        }
    }

    fn set(&mut self, section: &str, key: &str, value: toml::Value, origin: Origin) {
        debug_assert!(fields::find(section, key).is_some());
        self.table
            .get_mut(section)
            .and_then(toml::Value::as_table_mut)
            .expect("every section has defaults")
            .insert(key.to_owned(), value);
        self.origins.insert(format!("{section}.{key}"), origin);
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: toml::Table = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let origin = Origin::File(path.to_owned());
        for (section, keys) in file {
            let Some(keys) = keys
                .as_table()
                .filter(|_| fields::sections().contains(&&*section))
            else {
                return Err(Error::UnknownSection {
                    section,
                    origin: origin.clone(),
                });
            };
            for (key, value) in keys {
                let Some(field) = fields::find(&section, key) else {
                    return Err(Error::UnknownKey {
                        section,
                        key: key.clone(),
                        origin,
                    });
                };
                field.kind.check(value).map_err(|message| Error::Value {
                    key: field.path(),
                    message,
                    origin: origin.clone(),
                })?;
                self.set(&section, key, value.clone(), origin.clone());
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, var: &str, text: &str) -> Result<(), Error> {
        let Some(section) = fields::sections()
            .into_iter()
            .find(|s| var.starts_with(&format!("TASKER_{}_", s.to_uppercase())))
        else {
            // TASKER_CONFIG, TASKER_SERVER, TASKER_TOKEN and the like belong
            // to the command line, not to the configuration.
            return Ok(());
        };
        let Some(field) = FIELDS.iter().find(|f| f.env_var() == var) else {
            return Err(Error::UnknownVariable {
                var: var.to_owned(),
                section: section.to_owned(),
            });
        };
        let origin = Origin::Env(var.to_owned());
        let value = field.parse_env(text).map_err(|message| Error::Value {
            key: field.path(),
            message,
            origin: origin.clone(),
        })?;
        self.set(field.section, field.key, value, origin);
        Ok(())
    }

    fn into_config(self) -> Result<Config, Error> {
        serde_path_to_error::deserialize(toml::Value::Table(self.table)).map_err(|e| {
            let key = e.path().to_string();
            // serde reports a list element as `auth.admin_tokens[0]`; the
            // origin belongs to the key.
            let origin = self
                .origins
                .get(key.split('[').next().unwrap_or(&key))
                .cloned()
                .unwrap_or(Origin::Default);
            Error::Value {
                key,
                // The bare message: the key is named already.
                message: e.into_inner().message().to_owned(),
                origin,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use super::*;
    use crate::config::LogFormat;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Loads a file holding `text` over the defaults; the error, if any, as
    /// text, and the file's path as messages show it.
    fn file_error(text: &str) -> (String, String) {
        let f = file(text);
        let error = Layers {
            file: Some(f.path().to_owned()),
            ..Layers::default()
        }
        .load()
        .expect_err("the file is refused");
        (error.to_string(), f.path().display().to_string())
    }

    fn env_error(pairs: &[(&str, &str)]) -> String {
        Layers {
            env: env(pairs),
            ..Layers::default()
        }
        .load()
        .expect_err("the environment is refused")
        .to_string()
    }

    #[test]
    fn without_layers_the_defaults_apply() {
        let config = Layers::default().load().unwrap();
        let defaults = Config::default();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.engine, defaults.engine);
        assert_eq!(config.database, defaults.database);
        assert!(config.auth.enabled);
    }

    #[test]
    fn each_layer_overrides_the_one_below_key_by_key() {
        let f = file(
            r#"
            [server]
            listen = "0.0.0.0:9000"
            node_id = "from-file"
            [engine]
            lease_duration = "45s"
            max_claim_batch = 10
            [log]
            format = "json"
            "#,
        );
        let layers = Layers {
            file: Some(f.path().to_owned()),
            env: env(&[
                ("TASKER_SERVER_LISTEN", "0.0.0.0:9100"),
                ("TASKER_ENGINE_MAX_CLAIM_BATCH", "20"),
                ("TASKER_AUTH_ADMIN_TOKENS", "one, two"),
                ("PATH", "/bin"),
                ("TASKER_SERVER", "http://ignored"),
            ]),
            flags: vec![Flag {
                key: "server.listen",
                flag: "--listen",
                value: "127.0.0.1:9200".into(),
            }],
        };
        let config = layers.load().unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9200", "flag beats env");
        assert_eq!(config.server.node_id, "from-file", "file beats default");
        assert_eq!(config.engine.max_claim_batch, 20, "env beats file");
        assert_eq!(
            config.engine.lease_duration.as_duration(),
            Duration::from_secs(45)
        );
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.auth.admin_tokens, ["one", "two"]);
        assert_eq!(
            config.engine.max_poll_wait,
            Config::default().engine.max_poll_wait,
            "untouched keys keep their defaults"
        );
    }

    #[test]
    fn auth_can_be_turned_off_from_the_environment() {
        let layers = Layers {
            env: env(&[("TASKER_AUTH_ENABLED", "false")]),
            ..Layers::default()
        };
        assert!(!layers.load_valid().unwrap().auth.enabled);
    }

    #[test]
    fn other_defaults_are_overridden_by_every_layer() {
        let mut defaults = Config::default();
        defaults.auth.enabled = false;
        let config = Layers::default().load_valid_over(defaults.clone()).unwrap();
        assert!(!config.auth.enabled);
        let layers = Layers {
            env: env(&[
                ("TASKER_AUTH_ENABLED", "true"),
                ("TASKER_AUTH_ADMIN_TOKENS", "0123456789abcdef0123"),
            ]),
            ..Layers::default()
        };
        assert!(layers.load_valid_over(defaults).unwrap().auth.enabled);
    }

    #[test]
    fn unknown_keys_and_sections_in_the_file_are_errors() {
        let (err, _) = file_error("[engine]\nlease = \"30s\"\n");
        assert!(err.contains("engine.lease "), "{err}");
        assert!(
            err.contains("lease_duration"),
            "lists the known keys: {err}"
        );

        let (err, _) = file_error("[engines]\nlease_duration = \"30s\"\n");
        assert!(err.contains("[engines]"), "{err}");

        let (err, _) = file_error("listen = \"0.0.0.0:1\"\n");
        assert!(
            err.contains("section [listen]"),
            "a key outside any section: {err}"
        );
    }

    #[test]
    fn unknown_variables_of_a_known_section_are_errors() {
        let err = env_error(&[("TASKER_ENGINE_LEASE", "30s")]);
        assert!(err.contains("TASKER_ENGINE_LEASE;"), "{err}");
        assert!(err.contains("TASKER_ENGINE_LEASE_DURATION"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_key_and_where_it_came_from() {
        let (err, path) = file_error("[engine]\nlease_duration = \"soon\"\n");
        assert!(err.starts_with("engine.lease_duration: "), "{err}");
        assert!(err.contains(&path), "{err}");

        let (err, _) = file_error("[engine]\nlease_duration = 30\n");
        assert!(
            err.starts_with("engine.lease_duration: 30 must be a duration"),
            "{err}"
        );

        let err = env_error(&[("TASKER_DATABASE_MAX_CONNECTIONS", "-3")]);
        assert!(err.starts_with("database.max_connections: "), "{err}");
        assert!(err.contains("TASKER_DATABASE_MAX_CONNECTIONS"), "{err}");

        let err = env_error(&[("TASKER_LOG_FORMAT", "xml")]);
        assert!(err.starts_with("log.format: "), "{err}");
        assert!(err.contains("json"), "says what is allowed: {err}");

        let err = env_error(&[("TASKER_AUTH_ENABLED", "perhaps")]);
        assert!(err.starts_with("auth.enabled: "), "{err}");
    }

    #[test]
    fn a_missing_or_malformed_file_is_an_error() {
        let err = Layers {
            file: Some("/nonexistent/tasker.toml".into()),
            ..Layers::default()
        }
        .load()
        .unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");

        let (err, _) = file_error("[server\nlisten = 1");
        assert!(err.contains("is not valid TOML"), "{err}");
    }

    #[test]
    fn load_valid_reports_every_issue() {
        let err = Layers {
            env: env(&[("TASKER_ENGINE_LEASE_DURATION", "0s")]),
            ..Layers::default()
        }
        .load_valid()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("engine.lease_duration: \"0s\" must be at least 1s"),
            "{err}"
        );
        assert!(err.contains("auth.admin_tokens"), "{err}");
    }
}

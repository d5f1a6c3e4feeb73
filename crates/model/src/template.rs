//! Templates: the YAML (or JSON) definition of a workflow as a DAG of steps.
//!
//! Parsing never trusts its input: [`Template::from_yaml`] and
//! [`Template::from_json`] return a template only after [`Template::validate`]
//! found nothing wrong, and validation reports *every* problem with its path so
//! an author fixes a file in one pass rather than one error at a time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::duration::HumanDuration;
use crate::graph;

mod shape;
mod version_order;

pub use version_order::{VersionRank, compare_versions};

/// Upper bounds that keep a template from asking for something absurd.
pub const MAX_STEPS: usize = 500;
pub const MAX_ATTEMPTS: u32 = 100;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest task deadline a template (or a task) may set: 30 days.
pub const MAX_DEADLINE: Duration = Duration::from_secs(30 * 24 * 3600);
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
pub const MAX_MULTIPLIER: f64 = 10.0;

/// A workflow definition: `namespace/name@version` and its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub name: String,
    /// 1-64 characters without spaces, `/` or `@`. Where none is given the
    /// newest is used: see [`VersionRank`] for the order.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema that every task's context must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_schema: Option<serde_json::Value>,
    /// How long a task may take from its creation; past it the task fails
    /// with `deadline_exceeded`. A task may set its own. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<HumanDuration>,
    pub steps: Vec<StepDef>,
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub name: String,
    /// The name a worker registers its handler under.
    pub handler: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// How long one attempt may run before it is failed as a timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Free-form settings handed to the handler with every attempt.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// A decision step: its result `{"branches": [...]}` names which of the
    /// steps that depend on it run; the others are skipped. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decision: bool,
    /// When the step runs given its parents' states. Default `all`.
    #[serde(default, skip_serializing_if = "Convergence::is_default")]
    pub convergence: Convergence,
    /// Run one instance of this step per item (or chunk of items) of its
    /// parent's result `{"items": [...]}`. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOut>,
}

/// A fan-out step: one instance per chunk of its source's items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanOut {
    /// The parent (its only one) whose result `{"items": [...]}` is split.
    pub over: String,
    /// Items per instance. Default 1.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u32,
    /// Most instances a task may create for this step; the server's
    /// `engine.max_fan_out_instances` caps it. Default: that cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
}

/// Largest `fan_out.chunk_size`.
pub const MAX_CHUNK_SIZE: u32 = 100_000;
/// Largest `fan_out.max_instances` a template may ask for (the server's
/// cap may be lower).
pub const MAX_FAN_OUT_INSTANCES: u32 = 1_000_000;

fn default_chunk_size() -> u32 {
    1
}

/// When a step with parents runs, given how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convergence {
    /// Every parent complete or resolved; a skipped parent skips the step.
    #[default]
    All,
    /// Every parent complete, resolved or skipped: runs even when some (or
    /// all) of its parents were skipped.
    AllDone,
    /// As soon as one parent is complete or resolved; skipped only when
    /// every parent was skipped. The other parents still run, and a failure
    /// among them still fails the task.
    Any,
}

impl Convergence {
    pub const NAMES: [&'static str; 3] = ["all", "all_done", "any"];

    fn is_default(&self) -> bool {
        *self == Convergence::All
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Convergence::All => "all",
            Convergence::AllDone => "all_done",
            Convergence::Any => "any",
        }
    }
}

/// How often a step is tried and how long to wait between tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts including the first; `1` never retries. Default 3.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
}

/// Exponential backoff: `initial * multiplier^(retry-1)`, capped at `max`,
/// spread by `jitter` (a fraction: 0.1 means ±10%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    #[serde(default = "default_initial")]
    pub initial: HumanDuration,
    #[serde(default = "default_max")]
    pub max: HumanDuration,
    #[serde(default = "default_multiplier")]
    pub multiplier: f64,
    #[serde(default = "default_jitter")]
    pub jitter: f64,
}

/// Why a task deadline (of a template or of one task) is refused.
pub fn check_deadline(deadline: Duration) -> Result<(), String> {
    if deadline.is_zero() {
        Err("must be greater than zero".into())
    } else if deadline > MAX_DEADLINE {
        Err(format!(
            "{} exceeds the limit of 720h (30 days)",
            HumanDuration(deadline)
        ))
    } else {
        Ok(())
    }
}

fn default_namespace() -> String {
    "default".to_owned()
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_max_attempts() -> u32 {
    3
}
fn default_initial() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_multiplier() -> f64 {
    2.0
}
fn default_jitter() -> f64 {
    0.1
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            backoff: Backoff::default(),
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: default_initial(),
            max: default_max(),
            multiplier: default_multiplier(),
            jitter: default_jitter(),
        }
    }
}

/// One thing wrong with a template, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("template is not valid {format}: {message}")]
    Parse {
        format: &'static str,
        message: String,
    },
    #[error("template {reference} is invalid: {}", issues.iter().map(Issue::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        reference: String,
        issues: Vec<Issue>,
    },
}

impl Template {
    /// Parses and validates a YAML template. A document that is not YAML at
    /// all is [`Error::Parse`]; anything else wrong with it, from unknown
    /// fields to dependency cycles, is reported at once as [`Error::Invalid`].
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        match serde_yaml::from_str::<Template>(text) {
            Ok(template) => template.validated(),
            Err(first) => {
                let parse = || Error::Parse {
                    format: "YAML",
                    message: first.to_string(),
                };
                let document: serde_json::Value =
                    serde_yaml::from_str(text).map_err(|_| parse())?;
                Err(Self::explain_refusal(document, true).unwrap_or_else(parse))
            }
        }
    }

    /// Parses and validates a JSON template; errors as for [`Template::from_yaml`].
    pub fn from_json(value: serde_json::Value) -> Result<Self, Error> {
        match Template::deserialize(&value) {
            Ok(template) => template.validated(),
            Err(first) => {
                let parse = || Error::Parse {
                    format: "JSON",
                    message: first.to_string(),
                };
                Err(Self::explain_refusal(value, false).unwrap_or_else(parse))
            }
        }
    }

    /// For a document serde refused: every shape problem together with every
    /// validation problem of the rest, or `None` when the shape check cannot
    /// account for serde's refusal (the caller then reports serde's error).
    fn explain_refusal(mut document: serde_json::Value, scalars_as_text: bool) -> Option<Error> {
        let mut issues = shape::check(&mut document, scalars_as_text);
        if issues.is_empty() {
            return None;
        }
        let repaired = Template::deserialize(&document).ok()?;
        let shape_paths: Vec<String> = issues.iter().map(|i| i.path.clone()).collect();
        issues.extend(
            repaired
                .validate()
                .into_iter()
                .filter(|issue| !shape_paths.iter().any(|p| shape::is_within(&issue.path, p))),
        );
        Some(Error::Invalid {
            reference: repaired.reference(),
            issues,
        })
    }

    fn validated(self) -> Result<Self, Error> {
        let issues = self.validate();
        if issues.is_empty() {
            Ok(self)
        } else {
            Err(Error::Invalid {
                reference: self.reference(),
                issues,
            })
        }
    }

    /// `namespace/name@version`.
    pub fn reference(&self) -> String {
        format!("{}/{}@{}", self.namespace, self.name, self.version)
    }

    /// Stable digest of the content; identical content re-registered is a no-op.
    pub fn content_hash(&self) -> String {
        // serde_json maps are ordered, so the serialization is canonical.
        let bytes = serde_json::to_vec(self).expect("template serializes");
        let digest = Sha256::digest(&bytes);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Names of the steps that depend on step `index`, in template order.
    pub fn children_of(&self, index: usize) -> Vec<&str> {
        let name = &self.steps[index].name;
        self.steps
            .iter()
            .filter(|s| s.depends_on.contains(name))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Indices of each step's parents, in template order.
    pub fn parent_indices(&self) -> Vec<Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        self.steps
            .iter()
            .map(|s| {
                s.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect()
    }

    /// Every problem with the template; empty when it is valid.
    pub fn validate(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        let mut push = |path: String, message: String| issues.push(Issue { path, message });

        if let Err(m) = validate_namespace(&self.namespace) {
            push("namespace".into(), m);
        }
        if let Err(m) = validate_identifier(&self.name) {
            push("name".into(), m);
        }
        if self.version.trim().is_empty()
            || self.version.len() > 64
            || self
                .version
                .contains(|c: char| c.is_whitespace() || c == '/' || c == '@')
        {
            push(
                "version".into(),
                format!(
                    "\"{}\" must be 1-64 characters without spaces, '/' or '@'",
                    self.version
                ),
            );
        }
        if let Some(schema) = &self.context_schema
            && !(schema.is_object() || schema.is_boolean())
        {
            push(
                "context_schema".into(),
                "must be a JSON Schema object".into(),
            );
        }
        if self.steps.is_empty() {
            push("steps".into(), "a template needs at least one step".into());
        }
        if self.steps.len() > MAX_STEPS {
            push(
                "steps".into(),
                format!("{} steps exceed the limit of {MAX_STEPS}", self.steps.len()),
            );
        }

        let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if let Err(m) = validate_identifier(&step.name) {
                push(format!("{at}.name"), m);
            }
            if let Some(first) = first_seen.get(step.name.as_str()) {
                push(
                    format!("{at}.name"),
                    format!(
                        "duplicate step \"{}\" (first defined at steps[{first}])",
                        step.name
                    ),
                );
            } else {
                first_seen.insert(&step.name, i);
            }
            if step.handler.trim().is_empty() || step.handler.len() > 128 {
                push(format!("{at}.handler"), "must be 1-128 characters".into());
            }
            let mut seen_deps = Vec::new();
            for (j, dep) in step.depends_on.iter().enumerate() {
                let dep_at = format!("{at}.depends_on[{j}]");
                if dep == &step.name {
                    push(dep_at, format!("step \"{dep}\" depends on itself"));
                } else if !self.steps.iter().any(|s| &s.name == dep) {
                    push(
                        dep_at,
                        format!("step \"{}\" depends on unknown step \"{dep}\"", step.name),
                    );
                } else if seen_deps.contains(&dep) {
                    push(dep_at, format!("\"{dep}\" is listed twice"));
                }
                seen_deps.push(dep);
            }
            validate_retry(&step.retry, &format!("{at}.retry"), &mut push);
            if step.decision && !self.steps.iter().any(|s| s.depends_on.contains(&step.name)) {
                push(
                    format!("{at}.decision"),
                    format!(
                        "decision step \"{}\" has no branches: no step depends on it",
                        step.name
                    ),
                );
            }
            if let Some(fan_out) = &step.fan_out {
                self.validate_fan_out(step, fan_out, &at, &mut push);
            }
            if step.convergence != Convergence::All && step.depends_on.is_empty() {
                push(
                    format!("{at}.convergence"),
                    format!(
                        "\"{}\" needs parents to converge on; step \"{}\" has no depends_on",
                        step.convergence.as_str(),
                        step.name
                    ),
                );
            }
            let timeout = step.timeout.as_duration();
            if timeout.is_zero() {
                push(format!("{at}.timeout"), "must be greater than zero".into());
            } else if timeout > MAX_TIMEOUT {
                push(
                    format!("{at}.timeout"),
                    format!("{} exceeds the limit of 24h", step.timeout),
                );
            }
        }

        if let Some(deadline) = &self.deadline
            && let Err(message) = check_deadline(deadline.as_duration())
        {
            push("deadline".into(), message);
        }

        if let Some(cycle) = graph::find_cycle(&self.steps) {
            push(
                "steps".into(),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            );
        }
        issues
    }
}

impl Template {
    fn validate_fan_out(
        &self,
        step: &StepDef,
        fan_out: &FanOut,
        at: &str,
        push: &mut impl FnMut(String, String),
    ) {
        let source = self.steps.iter().find(|s| s.name == fan_out.over);
        if !step.depends_on.contains(&fan_out.over) {
            push(
                format!("{at}.fan_out.over"),
                format!(
                    "fan-out step \"{}\" must depend on \"{}\", the step whose items it runs over",
                    step.name, fan_out.over
                ),
            );
        } else if step.depends_on.len() > 1 {
            push(
                format!("{at}.depends_on"),
                format!(
                    "fan-out step \"{}\" may depend only on its source \"{}\"",
                    step.name, fan_out.over
                ),
            );
        }
        if let Some(source) = source {
            if source.fan_out.is_some() {
                push(
                    format!("{at}.fan_out.over"),
                    format!(
                        "\"{}\" is itself a fan-out step; fan-outs do not nest",
                        source.name
                    ),
                );
            }
            if source.decision {
                push(
                    format!("{at}.fan_out.over"),
                    format!(
                        "\"{}\" is a decision step; a fan-out needs a step that returns items",
                        source.name
                    ),
                );
            }
        }
        if step.decision {
            push(
                format!("{at}.decision"),
                "a fan-out step cannot be a decision".into(),
            );
        }
        if step.convergence != Convergence::All {
            push(
                format!("{at}.convergence"),
                "a fan-out step runs when its source completes; it takes no convergence rule"
                    .into(),
            );
        }
        if !(1..=MAX_CHUNK_SIZE).contains(&fan_out.chunk_size) {
            push(
                format!("{at}.fan_out.chunk_size"),
                format!(
                    "{} must be between 1 and {MAX_CHUNK_SIZE}",
                    fan_out.chunk_size
                ),
            );
        }
        if let Some(max) = fan_out.max_instances
            && !(1..=MAX_FAN_OUT_INSTANCES).contains(&max)
        {
            push(
                format!("{at}.fan_out.max_instances"),
                format!("{max} must be between 1 and {MAX_FAN_OUT_INSTANCES}"),
            );
        }
    }

    /// Template indices of the fan-out steps that run over step `index`'s items.
    pub fn fan_outs_over(&self, index: usize) -> Vec<usize> {
        let name = &self.steps[index].name;
        (0..self.steps.len())
            .filter(|&i| {
                self.steps[i]
                    .fan_out
                    .as_ref()
                    .is_some_and(|f| &f.over == name)
            })
            .collect()
    }
}

fn validate_retry(retry: &RetryPolicy, at: &str, push: &mut impl FnMut(String, String)) {
    if retry.max_attempts == 0 {
        push(
            format!("{at}.max_attempts"),
            "must be at least 1 (1 means never retry)".into(),
        );
    } else if retry.max_attempts > MAX_ATTEMPTS {
        push(
            format!("{at}.max_attempts"),
            format!("{} exceeds the limit of {MAX_ATTEMPTS}", retry.max_attempts),
        );
    }
    let b = &retry.backoff;
    if b.initial.as_duration() > MAX_BACKOFF {
        push(
            format!("{at}.backoff.initial"),
            "exceeds the limit of 24h".into(),
        );
    }
    if b.max.as_duration() > MAX_BACKOFF {
        push(
            format!("{at}.backoff.max"),
            "exceeds the limit of 24h".into(),
        );
    }
    if b.max < b.initial {
        push(
            format!("{at}.backoff.max"),
            format!("{} is less than initial {}", b.max, b.initial),
        );
    }
    if !(1.0..=MAX_MULTIPLIER).contains(&b.multiplier) {
        push(
            format!("{at}.backoff.multiplier"),
            format!("{} must be between 1 and {MAX_MULTIPLIER}", b.multiplier),
        );
    }
    if !(0.0..=1.0).contains(&b.jitter) {
        push(
            format!("{at}.backoff.jitter"),
            format!("{} must be a fraction between 0 and 1", b.jitter),
        );
    }
}

/// Namespaces name PGMQ queues, so they follow its rules for names.
pub fn validate_namespace(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "namespace \"{name}\" must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
        ))
    }
}

fn validate_identifier(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" must be 1-64 characters of letters, digits, '_', '-' or '.'"
        ))
    }
}

//! Tasks on the wire: what a client sends to create one, how it filters a
//! list, and the pages it gets back.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Task, TaskState};

/// A task to create: the engine's input and the body of `POST /v1/tasks`
/// (one item of `POST /v1/tasks/batch`), as the client sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TaskCreate, example = json!({"namespace": "examples", "template": "linear", "context": {"even_number": 2}, "tags": ["demo"], "deadline": "1h"})))]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Default `default`.
    #[serde(default = "default_namespace")]
    #[cfg_attr(feature = "openapi", schema(example = "examples"))]
    pub namespace: String,
    /// Template name within the namespace.
    #[cfg_attr(feature = "openapi", schema(example = "linear"))]
    pub template: String,
    /// Template version; default (`None`) the newest (highest in version
    /// order).
    #[serde(default)]
    pub version: Option<String>,
    /// A JSON object, checked against the template's context schema.
    /// Default `{}`.
    #[serde(default = "empty_object")]
    pub context: serde_json::Value,
    /// Unique per namespace: a second create with the same key, template and
    /// context returns the first task (200) and creates nothing; with another
    /// template or context it is 409 `idempotency_conflict`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// How long the task may take from its creation, e.g. `30m` (units
    /// `ms`, `s`, `m`, `h`; at most `720h`). Past it the task fails with
    /// `deadline_exceeded`. Default: the template's `deadline`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "30m"))]
    pub deadline: Option<crate::HumanDuration>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl NewTask {
    /// A task of the newest version of `namespace/template` with an empty
    /// context, no idempotency key and no tags.
    pub fn new(namespace: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            template: template.into(),
            version: None,
            context: serde_json::json!({}),
            idempotency_key: None,
            tags: Vec::new(),
            deadline: None,
        }
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    pub fn context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilter {
    pub namespace: Option<String>,
    pub template: Option<String>,
    pub state: Option<TaskState>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size; backends cap it at 500. Default 50.
    pub limit: Option<u32>,
    /// Only tasks whose id starts with these hex digits (1 to 32; dashes
    /// ignored), as `git` finds a commit by a prefix of its hash.
    pub id_prefix: Option<String>,
    /// Only tasks carrying this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only tasks created at or after this time.
    #[serde(default)]
    pub created_after: Option<crate::Timestamp>,
    /// Only tasks created before this time.
    #[serde(default)]
    pub created_before: Option<crate::Timestamp>,
}

impl TaskFilter {
    /// The smallest and the largest id that start with `id_prefix`: UUIDs
    /// sort by their bytes, i.e. by their hex digits, so a prefix is a range
    /// that an index on the id scans cheaply. `Err` says what is wrong with
    /// the prefix.
    pub fn id_range(&self) -> Result<Option<(Uuid, Uuid)>, String> {
        let Some(prefix) = &self.id_prefix else {
            return Ok(None);
        };
        let digits: String = prefix.chars().filter(|c| *c != '-').collect();
        if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(format!(
                "id_prefix {prefix:?} must be 1 to 32 hexadecimal digits (dashes are ignored)"
            ));
        }
        let bound = |fill: char| {
            let mut hex = digits.to_ascii_lowercase();
            hex.extend(std::iter::repeat_n(fill, 32 - digits.len()));
            Uuid::parse_str(&hex).expect("32 hex digits are a uuid")
        };
        Ok(Some((bound('0'), bound('f'))))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a task's history, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryPage {
    pub transitions: Vec<crate::Transition>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod id_prefix_tests {
    use super::*;

    fn range(prefix: &str) -> Result<Option<(Uuid, Uuid)>, String> {
        TaskFilter {
            id_prefix: Some(prefix.into()),
            ..TaskFilter::default()
        }
        .id_range()
    }

    #[test]
    fn a_prefix_is_the_range_of_ids_that_start_with_it() {
        let (low, high) = range("0193A1-b").unwrap().unwrap();
        assert_eq!(low.to_string(), "0193a1b0-0000-0000-0000-000000000000");
        assert_eq!(high.to_string(), "0193a1bf-ffff-ffff-ffff-ffffffffffff");
        let full = "0193a1b2-0000-7000-8000-000000000001";
        assert_eq!(
            range(full).unwrap(),
            Some((full.parse().unwrap(), full.parse().unwrap()))
        );
        assert_eq!(TaskFilter::default().id_range(), Ok(None));
    }

    #[test]
    fn a_prefix_that_is_not_hex_or_too_long_is_refused() {
        for bad in ["", "-", "xyz", "0193 a1", &"a".repeat(33)] {
            let err = range(bad).unwrap_err();
            assert!(err.contains("hexadecimal"), "{bad}: {err}");
        }
    }
}

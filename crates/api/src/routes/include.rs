//! `?include=`: which large fields a list answer carries. Lists leave out a
//! task's `context` and a step's `result` unless asked, so that a page of
//! tasks or a task of 500 steps costs what its small fields cost; one task
//! or one step (`GET /v1/tasks/{id}`, `GET /v1/steps/{id}`) always carries
//! them. An unknown name is 400 `invalid` naming `include`.

use serde::Serialize;

use crate::error::ApiError;

/// The large fields one list endpoint may include.
#[derive(Debug, Clone, Copy)]
pub struct Includable(&'static [&'static str]);

/// `GET /v1/tasks`.
pub const TASK_FIELDS: Includable = Includable(&["context"]);
/// `GET /v1/tasks/{id}/steps`.
pub const STEP_FIELDS: Includable = Includable(&["result"]);

/// The fields a request asked for.
#[derive(Debug, Clone, Default)]
pub struct Include {
    fields: Vec<&'static str>,
    all: &'static [&'static str],
}

impl Includable {
    /// Parses `a,b` (empty or absent: none).
    pub fn parse(self, text: Option<&str>) -> Result<Include, ApiError> {
        let mut fields = Vec::new();
        for name in text.unwrap_or_default().split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            match self.0.iter().find(|known| **known == name) {
                Some(known) => fields.push(*known),
                None => {
                    return Err(tasker_engine::Error::Invalid {
                        field: "include".into(),
                        message: format!(
                            "{name:?} cannot be included here; the fields are {}",
                            self.0.join(", ")
                        ),
                    }
                    .into());
                }
            }
        }
        Ok(Include {
            fields,
            all: self.0,
        })
    }
}

impl Include {
    /// `item` as JSON without the includable fields that were not asked for.
    pub fn apply<T: Serialize>(&self, item: &T) -> serde_json::Value {
        let mut value = serde_json::to_value(item).expect("records serialize");
        if let Some(object) = value.as_object_mut() {
            for field in self.all {
                if !self.fields.contains(field) {
                    object.remove(*field);
                }
            }
        }
        value
    }
}

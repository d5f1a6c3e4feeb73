//! The shape check behind [`Template::from_yaml`](super::Template::from_yaml)
//! and [`Template::from_json`](super::Template::from_json).
//!
//! serde stops at the first unknown field or unreadable value, which would
//! make an author fix a file one error at a time. When serde refuses a
//! document, this module walks it as plain data, names *every* unknown field,
//! missing field, wrong type and bad duration with its path, and replaces each
//! bad value with its default (or a placeholder) so the rest of the document
//! can still be deserialized and [`validate`](super::Template::validate)d.
//!
//! It must never let a document through that serde rejects: its output is only
//! ever used to build an error.

use serde_json::{Map, Value};

use super::{Convergence, Issue};
use crate::duration::HumanDuration;

/// What a field must hold.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// A string or null.
    OptionalText,
    /// Any JSON value.
    Any,
    /// A whole number that fits a `u32`.
    Count,
    Bool,
    /// One of these words.
    OneOf(&'static [&'static str]),
    Number,
    Duration,
    TextList,
    Object(&'static [Field]),
    ObjectList(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    kind: Kind,
    /// Required fields get a placeholder when missing or unreadable, because
    /// serde has no default for them.
    required: bool,
}

const fn field(name: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
    }
}

const TEMPLATE: &[Field] = &[
    field("namespace", Kind::Text, false),
    field("name", Kind::Text, true),
    field("version", Kind::Text, true),
    field("description", Kind::OptionalText, false),
    field("context_schema", Kind::Any, false),
    field("steps", Kind::ObjectList(STEP), true),
];

const STEP: &[Field] = &[
    field("name", Kind::Text, true),
    field("handler", Kind::Text, true),
    field("depends_on", Kind::TextList, false),
    field("retry", Kind::Object(RETRY), false),
    field("timeout", Kind::Duration, false),
    field("config", Kind::Any, false),
    field("decision", Kind::Bool, false),
    field("convergence", Kind::OneOf(&Convergence::NAMES), false),
    field("fan_out", Kind::Object(FAN_OUT), false),
];

const FAN_OUT: &[Field] = &[
    field("over", Kind::Text, true),
    field("chunk_size", Kind::Count, false),
    field("max_instances", Kind::Count, false),
];

const RETRY: &[Field] = &[
    field("max_attempts", Kind::Count, false),
    field("backoff", Kind::Object(BACKOFF), false),
];

const BACKOFF: &[Field] = &[
    field("initial", Kind::Duration, false),
    field("max", Kind::Duration, false),
    field("multiplier", Kind::Number, false),
    field("jitter", Kind::Number, false),
];

/// Checks a whole template document, repairing `document` in place.
///
/// `scalars_as_text` accepts numbers and booleans where text is expected, as
/// YAML does for unquoted scalars (`version: 2`).
pub(super) fn check(document: &mut Value, scalars_as_text: bool) -> Vec<Issue> {
    let mut checker = Checker {
        scalars_as_text,
        issues: Vec::new(),
    };
    match document.as_object_mut() {
        Some(map) => checker.object(map, TEMPLATE, ""),
        None => checker.issue("", "a template must be a mapping of fields"),
    }
    checker.issues
}

struct Checker {
    scalars_as_text: bool,
    issues: Vec<Issue>,
}

impl Checker {
    fn issue(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            path: if path.is_empty() {
                "(template)".into()
            } else {
                path.into()
            },
            message: message.into(),
        });
    }

    fn object(&mut self, map: &mut Map<String, Value>, fields: &[Field], at: &str) {
        let join = |name: &str| {
            if at.is_empty() {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            }
        };
        let unknown: Vec<String> = map
            .keys()
            .filter(|key| !fields.iter().any(|f| f.name == key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            map.remove(&key);
            let expected: Vec<&str> = fields.iter().map(|f| f.name).collect();
            self.issue(
                &join(&key),
                format!("unknown field; expected one of: {}", expected.join(", ")),
            );
        }
        for f in fields {
            let path = join(f.name);
            let ok = match map.get_mut(f.name) {
                Some(value) => self.value(value, f.kind, &path),
                None if f.required => {
                    self.issue(&path, "missing required field");
                    false
                }
                None => true,
            };
            if !ok && f.required {
                map.insert(f.name.into(), placeholder(f.kind));
            } else if !ok {
                map.remove(f.name);
            }
        }
    }

    /// Checks one value; `false` means it was reported and must be replaced.
    fn value(&mut self, value: &mut Value, kind: Kind, at: &str) -> bool {
        match kind {
            Kind::Any => true,
            Kind::OptionalText if value.is_null() => true,
            Kind::Text | Kind::OptionalText => self.text(value, at),
            Kind::Count => {
                let ok = value.as_u64().is_some_and(|n| u32::try_from(n).is_ok());
                if !ok {
                    self.issue(at, format!("{value} must be a whole number"));
                }
                ok
            }
            Kind::Bool => {
                let ok = value.is_boolean();
                if !ok {
                    self.issue(at, format!("{value} must be true or false"));
                }
                ok
            }
            Kind::OneOf(words) => {
                let ok = value.as_str().is_some_and(|v| words.contains(&v));
                if !ok {
                    self.issue(at, format!("{value} must be one of: {}", words.join(", ")));
                }
                ok
            }
            Kind::Number => {
                let ok = value.is_number();
                if !ok {
                    self.issue(at, format!("{value} must be a number"));
                }
                ok
            }
            Kind::Duration => {
                if self.scalars_as_text && value.is_number() {
                    *value = Value::String(value.to_string());
                }
                match value.as_str().map(HumanDuration::parse) {
                    Some(Ok(_)) => true,
                    Some(Err(message)) => {
                        self.issue(at, message);
                        false
                    }
                    None => {
                        self.issue(
                            at,
                            format!("{value} must be a duration with a unit, e.g. \"30s\""),
                        );
                        false
                    }
                }
            }
            Kind::TextList => match value.as_array_mut() {
                Some(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        if !self.text(item, &format!("{at}[{i}]")) {
                            *item = placeholder(Kind::Text);
                        }
                    }
                    true
                }
                None => {
                    self.issue(at, "must be a list of step names");
                    false
                }
            },
            Kind::Object(fields) => match value.as_object_mut() {
                Some(map) => {
                    self.object(map, fields, at);
                    true
                }
                None => {
                    self.issue(at, "must be a mapping of fields");
                    false
                }
            },
            Kind::ObjectList(fields) => match value.as_array_mut() {
                Some(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        let item_at = format!("{at}[{i}]");
                        match item.as_object_mut() {
                            Some(map) => self.object(map, fields, &item_at),
                            None => {
                                self.issue(&item_at, "must be a mapping of fields");
                                *item = placeholder_object(fields);
                            }
                        }
                    }
                    true
                }
                None => {
                    self.issue(at, "must be a list");
                    false
                }
            },
        }
    }

    fn text(&mut self, value: &mut Value, at: &str) -> bool {
        if self.scalars_as_text && (value.is_number() || value.is_boolean()) {
            *value = Value::String(value.to_string());
        }
        let ok = value.is_string();
        if !ok {
            self.issue(at, format!("{value} must be text"));
        }
        ok
    }
}

fn placeholder(kind: Kind) -> Value {
    match kind {
        Kind::ObjectList(_) | Kind::TextList => Value::Array(Vec::new()),
        Kind::Object(_) => Value::Object(Map::new()),
        _ => Value::String(String::new()),
    }
}

/// An object holding a placeholder for every required field.
fn placeholder_object(fields: &[Field]) -> Value {
    let map = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| (f.name.to_owned(), placeholder(f.kind)))
        .collect();
    Value::Object(map)
}

/// Whether `issue` concerns `path` or something inside it, so an issue caused
/// only by a placeholder is not reported on top of the real one.
pub(super) fn is_within(issue: &str, path: &str) -> bool {
    issue
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[cfg(test)]
mod tests {
    use super::is_within;

    #[test]
    fn is_within_matches_whole_path_segments_only() {
        assert!(is_within("steps[1]", "steps[1]"));
        assert!(is_within("steps[1].name", "steps[1]"));
        assert!(is_within("steps[1].depends_on[0]", "steps[1].depends_on"));
        assert!(!is_within("steps[10].name", "steps[1]"));
        assert!(!is_within("namespace", "name"));
    }
}

//! Compiled context schemas, per template. Templates are immutable, so a
//! schema compiled once stays right.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tasker_model::TemplateRecord;
use tasker_model::template::Issue;
use uuid::Uuid;

use crate::Error;

#[derive(Default)]
pub struct SchemaCache {
    compiled: RwLock<HashMap<Uuid, Arc<jsonschema::Validator>>>,
}

/// Compiles a schema, or says why it is not one.
pub fn compile(schema: &serde_json::Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// Every problem with a context schema, each with its path under `root`
/// (`context_schema.properties.n.type`): all that the meta-schema finds,
/// or, when it finds none, why the schema still does not compile (an
/// unresolvable `$ref`, a bad regular expression).
pub fn schema_issues(root: &str, schema: &serde_json::Value) -> Vec<Issue> {
    let meta_issues: Vec<Issue> = match jsonschema::meta::validator_for(schema) {
        Ok(meta) => meta
            .iter_errors(schema)
            .map(|e| Issue {
                path: dotted_path(root, &e.instance_path().to_string()),
                message: e.to_string(),
            })
            .collect(),
        Err(e) => vec![Issue {
            path: dotted_path(root, "/$schema"),
            message: format!("unknown meta-schema: {e}"),
        }],
    };
    if !meta_issues.is_empty() {
        return meta_issues;
    }
    match jsonschema::validator_for(schema) {
        Ok(_) => Vec::new(),
        Err(e) => vec![Issue {
            path: dotted_path(root, &e.schema_path().to_string()),
            message: format!("not a valid JSON Schema: {e}"),
        }],
    }
}

/// A JSON pointer (`/properties/n/required/0`) in the template's path style
/// (`context_schema.properties.n.required[0]`).
fn dotted_path(root: &str, pointer: &str) -> String {
    let mut path = root.to_owned();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push('.');
            path.push_str(&segment);
        }
    }
    path
}

impl SchemaCache {
    /// Checks `context` against the template's schema, reporting every
    /// violation with its JSON pointer.
    pub fn check(
        &self,
        template: &TemplateRecord,
        context: &serde_json::Value,
    ) -> Result<(), Error> {
        let Some(schema) = &template.definition.context_schema else {
            return Ok(());
        };
        let cached = self
            .compiled
            .read()
            .expect("schema cache lock")
            .get(&template.id)
            .cloned();
        let validator = match cached {
            Some(v) => v,
            None => {
                let v = Arc::new(compile(schema).map_err(|message| Error::Invalid {
                    field: "context_schema".into(),
                    message,
                })?);
                self.compiled
                    .write()
                    .expect("schema cache lock")
                    .insert(template.id, v.clone());
                v
            }
        };
        let issues: Vec<Issue> = validator
            .iter_errors(context)
            .map(|e| Issue {
                path: format!("context{}", e.instance_path()),
                message: e.to_string(),
            })
            .collect();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Error::ContextInvalid {
                template: format!(
                    "{}/{}@{}",
                    template.namespace, template.name, template.version
                ),
                issues,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(schema: serde_json::Value) -> Vec<String> {
        schema_issues("context_schema", &schema)
            .into_iter()
            .map(|i| i.path)
            .collect()
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let issues = paths(json!({
            "type": "object",
            "properties": {"n": {"type": "integr"}, "s": {"minLength": -1}},
            "required": "n"
        }));
        for expected in [
            "context_schema.properties.n.type",
            "context_schema.properties.s.minLength",
            "context_schema.required",
        ] {
            assert!(
                issues.iter().any(|p| p == expected),
                "{expected} in {issues:?}"
            );
        }
    }

    #[test]
    fn a_valid_schema_has_no_issues() {
        assert!(paths(json!({"type": "object", "required": ["n"]})).is_empty());
        assert!(paths(json!(true)).is_empty());
    }

    #[test]
    fn pointers_become_template_paths() {
        assert_eq!(dotted_path("c", ""), "c");
        assert_eq!(dotted_path("c", "/required/0"), "c.required[0]");
        assert_eq!(dotted_path("c", "/properties/a~1b"), "c.properties.a/b");
    }
}

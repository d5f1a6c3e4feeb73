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

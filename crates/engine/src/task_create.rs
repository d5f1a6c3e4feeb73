//! Creating tasks, one or many: each item's input is checked on its own
//! (text the database cannot store, the context's shape, size and schema,
//! the template it names), then every item that passed is written by one
//! store call, in one transaction. A single create is a batch of one.

use std::collections::HashMap;

use tasker_model::{Task, TemplateRecord};
use tasker_store::{NewTask, TaskCreate};

use crate::{Engine, Error, Result, nul_check};

/// The most tasks one batch may create.
pub const MAX_BATCH_TASKS: usize = 1000;

/// What the items of one batch named (namespace, template, version): the
/// template, or the parts of its not-found answer.
type Templates = HashMap<
    (String, String, Option<String>),
    std::result::Result<TemplateRecord, (String, Option<String>, Vec<String>)>,
>;

/// An item that passed its checks: what to write and what to compare an
/// existing task of its idempotency key against.
struct Checked {
    template: TemplateRecord,
    asked_version: bool,
    create: TaskCreate,
}

impl Engine {
    /// Creates a task after checking its context; returns `created` false
    /// when the idempotency key named an existing task of the same template
    /// and context (see [`Error::IdempotencyConflict`] for the rule).
    pub async fn task_create(&self, new: NewTask) -> Result<(Task, bool)> {
        self.task_create_many(vec![new])
            .await?
            .pop()
            .expect("one answer per item")
    }

    /// Creates tasks in one transaction, answering each item in order as
    /// [`Engine::task_create`] would: an item refused on its own (unknown
    /// template, invalid context, idempotency conflict, too large) does not
    /// fail the others. A database error fails the whole batch and nothing
    /// is written. Items of one batch sharing an idempotency key are one
    /// task: the first creates it, the others get it back (`created` false)
    /// when they ask for the same template and context, else a conflict.
    /// At most [`MAX_BATCH_TASKS`] items.
    pub async fn task_create_many(&self, items: Vec<NewTask>) -> Result<Vec<Result<(Task, bool)>>> {
        if items.len() > MAX_BATCH_TASKS {
            return Err(Error::Invalid {
                field: "tasks".into(),
                message: format!(
                    "{} tasks in one batch; the limit is {MAX_BATCH_TASKS}: send them in several batches",
                    items.len()
                ),
            });
        }
        // Templates looked up once per batch, by what the items named.
        let mut templates = Templates::new();
        let mut answers: Vec<Option<Result<(Task, bool)>>> = Vec::with_capacity(items.len());
        let mut checked: Vec<(usize, Checked)> = Vec::new();
        for (i, new) in items.into_iter().enumerate() {
            match self.task_check(new, &mut templates).await {
                Ok(item) => {
                    checked.push((i, item));
                    answers.push(None);
                }
                // The database failing fails the whole batch, never one item.
                Err(
                    e @ Error::Store(
                        tasker_store::Error::Database(_) | tasker_store::Error::Unavailable { .. },
                    ),
                ) => return Err(e),
                Err(refused) => answers.push(Some(Err(refused))),
            }
        }
        if !checked.is_empty() {
            let creates = checked.iter().map(|(_, c)| c.create.clone()).collect();
            let written = self.store.task_create_many(creates).await?;
            for ((i, item), outcome) in checked.into_iter().zip(written) {
                answers[i] = Some(match outcome {
                    Ok((task, false)) => idempotent_match(
                        &task,
                        &item.template,
                        item.asked_version,
                        &item.create.context,
                    )
                    .map(|()| (task, false)),
                    Ok(created) => Ok(created),
                    Err(e) => Err(e.into()),
                });
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every item is answered"))
            .collect())
    }

    /// Every check a create makes of `new` (its template found, its
    /// context fitting the template's schema), answered with what the store
    /// writes for it, without writing anything.
    pub(crate) async fn task_checked(&self, new: NewTask) -> Result<TaskCreate> {
        Ok(self.task_check(new, &mut Templates::new()).await?.create)
    }

    /// Every check of one item before anything is written.
    async fn task_check(&self, mut new: NewTask, templates: &mut Templates) -> Result<Checked> {
        // No context (or `null`) is the empty object.
        if new.context.is_null() {
            new.context = serde_json::Value::Object(serde_json::Map::new());
        }
        nul_check::check_text("namespace", &new.namespace)?;
        nul_check::check_text("template", &new.template)?;
        if let Some(version) = &new.version {
            nul_check::check_text("version", version)?;
        }
        if !new.context.is_object() {
            return Err(Error::Invalid {
                field: "context".into(),
                message: "must be a JSON object, e.g. {\"order_id\": 42}".into(),
            });
        }
        nul_check::check_json(&new.context, "context")?;
        self.check_size("context", &new.context)?;
        if let Some(key) = &new.idempotency_key {
            if key.is_empty() || key.len() > 255 {
                return Err(Error::Invalid {
                    field: "idempotency_key".into(),
                    message: "must be 1-255 characters".into(),
                });
            }
            nul_check::check_text("idempotency_key", key)?;
        }
        for (i, tag) in new.tags.iter().enumerate() {
            nul_check::check_text(&format!("tags[{i}]"), tag)?;
        }
        if let Some(deadline) = new.deadline
            && let Err(message) = tasker_model::template::check_deadline(deadline.as_duration())
        {
            return Err(Error::Invalid {
                field: "deadline".into(),
                message,
            });
        }
        let named = (new.namespace, new.template, new.version);
        let template = match templates.get(&named) {
            Some(Ok(template)) => template.clone(),
            // Not found again: the same answer, without reading the
            // catalog for near names again.
            Some(Err((what, hint, did_you_mean))) => {
                return Err(Error::Store(tasker_store::Error::NotFound {
                    what: what.clone(),
                    hint: hint.clone(),
                    did_you_mean: did_you_mean.clone(),
                }));
            }
            None => {
                match self
                    .template_get(&named.0, &named.1, named.2.as_deref())
                    .await
                {
                    Ok(template) => {
                        templates.insert(named.clone(), Ok(template.clone()));
                        template
                    }
                    Err(Error::Store(tasker_store::Error::NotFound {
                        what,
                        hint,
                        did_you_mean,
                    })) => {
                        templates.insert(
                            named,
                            Err((what.clone(), hint.clone(), did_you_mean.clone())),
                        );
                        return Err(Error::Store(tasker_store::Error::NotFound {
                            what,
                            hint,
                            did_you_mean,
                        }));
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        self.schemas.check(&template, &new.context)?;
        Ok(Checked {
            asked_version: named.2.is_some(),
            create: TaskCreate {
                template_id: template.id,
                context: new.context,
                idempotency_key: new.idempotency_key,
                tags: new.tags,
                deadline: new.deadline.map(|d| d.as_duration()),
            },
            template,
        })
    }
}

/// The idempotency rule: a key names one task. Sending it again with the
/// same template (and the same version, when one is named) and the same
/// context returns that task; anything else is a conflict, because the
/// caller asked for a different task than the key already stands for.
fn idempotent_match(
    task: &Task,
    template: &TemplateRecord,
    asked_version: bool,
    context: &serde_json::Value,
) -> Result<()> {
    let differs = if task.namespace != template.namespace || task.template_name != template.name {
        Some(format!(
            "of template {}/{}@{}",
            task.namespace, task.template_name, task.template_version
        ))
    } else if asked_version && task.template_version != template.version {
        Some(format!(
            "of template version {} (not {})",
            task.template_version, template.version
        ))
    } else if &task.context != context {
        Some("with a different context".to_owned())
    } else {
        None
    };
    match differs {
        Some(differs) => Err(Error::IdempotencyConflict {
            key: task.idempotency_key.clone().unwrap_or_default(),
            task_id: task.id,
            differs,
        }),
        None => Ok(()),
    }
}

//! The policy of creating tasks in a batch, shared by every backend:
//! resolving each item's template and queue (a template gone refuses only
//! its item, a database error refuses the batch), which items are written
//! and which are answered with the task of an earlier item holding the same
//! idempotency key, and the answers themselves. Writing the rows stays a
//! backend method (a bulk insert, not a `TaskRun` over locked rows).
//!
//! ```text
//!  create_many(backend, items)
//!    prepare                 templates and queues, before any transaction;
//!                            refused items answered, new task ids chosen
//!    tasks_create            the backend's rows, committed: created_task /
//!                            existing_key_missing per row, then finish
//!                            (items sharing an earlier item's key)
//!    after_commit            wake the polls of the namespaces with ready steps
//! ```
//!
//! Must never: run SQL or open a transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tasker_model::{Task, TaskState, TemplateRecord, Timestamp};
use uuid::Uuid;

use crate::backend::{Backend, Written};
use crate::{Error, Result, TaskCreate};

/// What a batch writes: the items to insert, in order, and the items whose
/// key an earlier item of the batch holds, as (item, earlier item).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Creations {
    pub write: Vec<usize>,
    pub same_key_as: Vec<(usize, usize)>,
}

/// Splits `items` into those to write and those sharing an idempotency key
/// (within one namespace) with an earlier item: the first writes, the
/// others are answered with its task. `namespaces[i]` is item `i`'s
/// namespace, `None` when the item is refused already (neither written nor
/// holding its key).
pub fn creations(items: &[TaskCreate], namespaces: &[Option<&str>]) -> Creations {
    let mut creations = Creations::default();
    let mut first_with_key: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, (item, namespace)) in items.iter().zip(namespaces).enumerate() {
        let Some(namespace) = namespace else {
            continue;
        };
        if let Some(key) = &item.idempotency_key {
            match first_with_key.entry((namespace, key.as_str())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    creations.same_key_as.push((i, *first.get()));
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        creations.write.push(i);
    }
    creations
}

/// Creates one task: a batch of one.
pub async fn create<B: Backend>(backend: &B, item: &TaskCreate) -> Result<(Task, bool)> {
    create_many(backend, std::slice::from_ref(item))
        .await?
        .pop()
        .expect("one answer per item")
}

/// Creates tasks in one transaction. Each item is answered on its own (a
/// template gone refuses only its item); a database error fails them all
/// and writes nothing. An idempotency key that several items share is
/// written once, by the first; the others are answered with its task
/// (`created` false), and the engine judges whether they asked for the same
/// task.
pub async fn create_many<B: Backend>(backend: &B, items: &[TaskCreate]) -> Result<Vec<Answer>> {
    let prepared = prepare(backend, items).await?;
    if prepared.rows.is_empty() {
        return Ok(finish(prepared.answers, &prepared.same_key_as));
    }
    let Inserted { answers, ready } = backend.tasks_create(items, prepared).await?;
    backend.after_commit(&Written {
        ready,
        events: Vec::new(),
    });
    Ok(answers)
}

/// A template and its namespace's queue, or why the item cannot use it.
pub type Resolved = std::result::Result<(Arc<TemplateRecord>, String), Error>;

/// One item's answer: its task and whether this call created it.
pub type Answer = Result<(Task, bool)>;

/// What a backend's insert of new tasks returns.
#[derive(Debug)]
pub struct Inserted {
    /// Every item's answer, in order ([`finish`]ed).
    pub answers: Vec<Answer>,
    /// Per namespace, how many steps became ready (to announce after the
    /// commit).
    pub ready: Vec<(String, usize)>,
}

/// A row to insert: the item it answers and the id chosen for it.
#[derive(Debug)]
pub struct NewRow {
    pub item: usize,
    pub task_id: Uuid,
}

/// What a backend's write needs: every item's template and queue (read
/// before the transaction), answers of the items refused already, and the
/// rows to insert.
#[derive(Debug)]
pub struct Prepared {
    /// By template id.
    pub resolved: HashMap<Uuid, Resolved>,
    /// By item; `None` for the items still to answer.
    pub answers: Vec<Option<Answer>>,
    /// Items whose key an earlier item holds, for [`finish`].
    pub same_key_as: Vec<(usize, usize)>,
    pub rows: Vec<NewRow>,
}

/// The template and queue of a row's item in `resolved` (every row has
/// them).
pub fn resolved_of<'a>(
    resolved: &'a HashMap<Uuid, Resolved>,
    items: &[TaskCreate],
    row: &NewRow,
) -> &'a (Arc<TemplateRecord>, String) {
    resolved[&items[row.item].template_id]
        .as_ref()
        .expect("rows have resolved templates")
}

/// Resolves the items' templates and queues and picks the new tasks' ids,
/// before any transaction. An item whose template or namespace is gone is
/// answered with that error alone; a database that fails or is unavailable
/// fails the batch.
pub async fn prepare<B: Backend>(backend: &B, items: &[TaskCreate]) -> Result<Prepared> {
    let mut resolved: HashMap<Uuid, Resolved> = HashMap::new();
    for item in items {
        if resolved.contains_key(&item.template_id) {
            continue;
        }
        let found = match backend.template_by_id(item.template_id).await {
            Ok(template) => match backend.queue_of(&template.namespace).await {
                Ok(queue) => Ok((template, queue)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let found = match found {
            Err(e @ (Error::Database(_) | Error::Unavailable { .. })) => return Err(e),
            other => other,
        };
        resolved.insert(item.template_id, found);
    }

    let mut answers: Vec<Option<Answer>> = (0..items.len()).map(|_| None).collect();
    let mut namespaces: Vec<Option<&str>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match &resolved[&item.template_id] {
            Ok((template, _)) => namespaces.push(Some(template.namespace.as_str())),
            Err(e) => {
                answers[i] = Some(Err(e.duplicate()));
                namespaces.push(None);
            }
        }
    }
    // Items whose key an earlier item of the batch holds: answered with its task.
    let Creations { write, same_key_as } = creations(items, &namespaces);
    let rows: Vec<NewRow> = write
        .into_iter()
        .map(|item| NewRow {
            item,
            task_id: Uuid::now_v7(),
        })
        .collect();
    Ok(Prepared {
        resolved,
        answers,
        same_key_as,
        rows,
    })
}

/// The deadline a new task gets: its own, else its template's.
pub fn deadline_of(item: &TaskCreate, template: &TemplateRecord) -> Option<Duration> {
    item.deadline
        .or(template.definition.deadline.map(|d| d.as_duration()))
}

/// The task just written for `item`, as its answer.
pub fn created_task(
    item: &TaskCreate,
    template: &TemplateRecord,
    task_id: Uuid,
    state: TaskState,
    now: Timestamp,
    deadline_at: Option<Timestamp>,
) -> Task {
    Task {
        id: task_id,
        namespace: template.namespace.clone(),
        template_id: template.id,
        template_name: template.name.clone(),
        template_version: template.version.clone(),
        state,
        context: item.context.clone(),
        idempotency_key: item.idempotency_key.clone(),
        tags: item.tags.clone(),
        created_at: now,
        updated_at: now,
        finished_at: None,
        deadline_at,
    }
}

/// The answer for a row whose key a stored task held at the insert but
/// which is gone now (deleted since).
pub fn existing_key_missing(namespace: &str, key: Option<&str>) -> Error {
    Error::not_found(format!(
        "task with idempotency key {:?} in namespace \"{namespace}\"",
        key.unwrap_or_default()
    ))
}

/// Answers items that share an earlier item's key with that item's task.
pub fn finish(mut answers: Vec<Option<Answer>>, same_key_as: &[(usize, usize)]) -> Vec<Answer> {
    for &(i, first) in same_key_as {
        answers[i] = Some(match &answers[first] {
            Some(Ok((task, _))) => Ok((task.clone(), false)),
            Some(Err(e)) => Err(e.duplicate()),
            None => unreachable!("the first item with a key is answered"),
        });
    }
    answers
        .into_iter()
        .map(|a| a.expect("every item is answered"))
        .collect()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn item(key: Option<&str>) -> TaskCreate {
        TaskCreate {
            template_id: Uuid::nil(),
            context: serde_json::Value::Null,
            idempotency_key: key.map(str::to_owned),
            tags: Vec::new(),
            deadline: None,
        }
    }

    #[test]
    fn a_key_is_written_once_per_namespace_by_its_first_item() {
        let items = [
            item(Some("k")),
            item(None),
            item(Some("k")),
            item(Some("k")),
            item(None),
        ];
        let namespaces = [
            Some("orders"),
            Some("orders"),
            Some("orders"),
            Some("billing"),
            Some("orders"),
        ];
        assert_eq!(
            creations(&items, &namespaces),
            Creations {
                write: vec![0, 1, 3, 4],
                same_key_as: vec![(2, 0)],
            }
        );
    }

    #[test]
    fn a_refused_item_neither_writes_nor_holds_its_key() {
        let items = [item(Some("k")), item(Some("k"))];
        assert_eq!(
            creations(&items, &[None, Some("orders")]),
            Creations {
                write: vec![1],
                same_key_as: Vec::new(),
            }
        );
    }

    fn task(id: Uuid) -> Task {
        created_task(
            &item(None),
            &TemplateRecord {
                id: Uuid::nil(),
                namespace: "orders".into(),
                name: "t".into(),
                version: "1".into(),
                content_hash: String::new(),
                definition: serde_json::from_value(serde_json::json!({
                    "namespace": "orders",
                    "name": "t",
                    "version": "1",
                    "steps": [{"name": "a", "handler": "h"}],
                }))
                .unwrap(),
                created_at: Timestamp::default(),
            },
            id,
            TaskState::Running,
            Timestamp::default(),
            None,
        )
    }

    #[test]
    fn an_item_sharing_a_key_gets_the_first_items_answer_not_created() {
        let first = task(Uuid::now_v7());
        let answers = vec![
            Some(Ok((first.clone(), true))),
            None,
            Some(Err(Error::not_found("template x"))),
            None,
        ];
        let answers = finish(answers, &[(1, 0), (3, 2)]);
        assert!(matches!(&answers[0], Ok((task, true)) if task.id == first.id));
        assert!(matches!(&answers[1], Ok((task, false)) if task.id == first.id));
        assert!(matches!(&answers[3], Err(Error::NotFound { what, .. }) if what == "template x"));
    }

    #[test]
    fn a_key_gone_since_the_insert_names_key_and_namespace() {
        assert_eq!(
            existing_key_missing("orders", Some("k1")).to_string(),
            "task with idempotency key \"k1\" in namespace \"orders\" not found"
        );
    }
}

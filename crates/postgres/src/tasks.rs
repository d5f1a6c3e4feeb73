//! Task operations: create (one or many), read, list. Cancelling is the
//! store crate's orchestration.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Row;
use tasker_model::{Step, Task, TaskRun, TemplateRecord, Timestamp, Transition};
use tasker_store::orchestration::task_creation::{self, Creations};
use tasker_store::{Error, Result, TaskCreate, TaskFilter, TaskPage};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::{commit_error, db};
use crate::queue::{self, StepMessage};
use crate::rows::{self, TASK_COLUMNS, TASK_FROM};

/// Creates one task: a batch of one.
pub async fn create(store: &PgStore, params: &TaskCreate) -> Result<(Task, bool)> {
    create_many(store, std::slice::from_ref(params))
        .await?
        .pop()
        .expect("one answer per item")
}

/// A template and its namespace's queue, or why the item cannot use it.
type Resolved = std::result::Result<(Arc<TemplateRecord>, String), Error>;

/// A row to insert: the item it answers and the ids chosen for it.
struct NewRow {
    item: usize,
    task_id: Uuid,
}

/// Creates tasks in one transaction: one insert of every task row (a row
/// whose idempotency key exists is skipped and answered with the task the
/// key names), one `send_batch` per queue for the root steps, one insert of
/// every step and one of every transition. Each item is answered on its
/// own; a database error fails them all and writes nothing.
///
/// An idempotency key that several items share is written once, by the
/// first; the others are answered with its task (`created` false), and the
/// engine judges whether they asked for the same task.
pub async fn create_many(
    store: &PgStore,
    items: &[TaskCreate],
) -> Result<Vec<Result<(Task, bool)>>> {
    let prepared = prepare(store, items).await?;
    if prepared.rows.is_empty() {
        return Ok(finish(prepared.answers, &prepared.same_key_as));
    }
    let mut tx = store.pool.begin().await.map_err(db)?;
    let (answers, ready) = write(store, &mut tx, items, prepared).await?;
    tx.commit().await.map_err(commit_error)?;
    store.announce(&ready);
    Ok(answers)
}

/// What [`write`] needs: every item's template and queue (read before the
/// transaction), answers of the items refused already, and the rows to
/// insert.
pub struct Prepared {
    resolved: HashMap<Uuid, Resolved>,
    answers: Vec<Option<Result<(Task, bool)>>>,
    same_key_as: Vec<(usize, usize)>,
    rows: Vec<NewRow>,
}

/// Resolves the items' templates and queues and picks the new tasks' ids,
/// before any transaction.
pub async fn prepare(store: &PgStore, items: &[TaskCreate]) -> Result<Prepared> {
    let mut resolved: HashMap<Uuid, Resolved> = HashMap::new();
    for item in items {
        if resolved.contains_key(&item.template_id) {
            continue;
        }
        let found = match catalog::template_by_id(store, item.template_id).await {
            Ok(template) => match catalog::queue_of(store, &template.namespace).await {
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

    let mut answers: Vec<Option<Result<(Task, bool)>>> = (0..items.len()).map(|_| None).collect();
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
    let Creations { write, same_key_as } = task_creation::creations(items, &namespaces);
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

/// Writes the prepared tasks in the caller's transaction: the task rows,
/// their root steps' queue messages, every step and transition. Returns
/// each item's answer and, per namespace, how many steps became ready (to
/// announce after the commit).
pub async fn write(
    store: &PgStore,
    tx: &mut sqlx::PgConnection,
    items: &[TaskCreate],
    prepared: Prepared,
) -> Result<(Vec<Result<(Task, bool)>>, Vec<(String, usize)>)> {
    let Prepared {
        resolved,
        mut answers,
        same_key_as,
        rows,
    } = prepared;
    let template_of = |row: &NewRow| -> &(Arc<TemplateRecord>, String) {
        resolved[&items[row.item].template_id]
            .as_ref()
            .expect("rows have resolved templates")
    };

    // Keyed rows in key order, so that two batches sharing keys wait for
    // each other in one order instead of deadlocking.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |r: usize| {
            let row = &rows[r];
            (
                template_of(row).0.namespace.as_str(),
                items[row.item].idempotency_key.as_deref(),
            )
        };
        key(a).cmp(&key(b))
    });
    let inserted = sqlx::query(
        "INSERT INTO tasker.tasks (id, namespace, template_id, state, context, idempotency_key, tags, created_at, updated_at, deadline_at) \
         SELECT r.id, r.namespace, r.template_id, 'running', r.context, r.idempotency_key, \
                ARRAY(SELECT jsonb_array_elements_text(r.tags)), c.at, c.at, \
                c.at + make_interval(secs => r.deadline) \
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::text[], $6::jsonb[], $7::float8[]) \
              WITH ORDINALITY AS r(id, namespace, template_id, context, idempotency_key, tags, deadline, n), \
              LATERAL (SELECT clock_timestamp() AS at OFFSET 0) c \
         ORDER BY r.n \
         ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING id, created_at, deadline_at",
    )
    .bind(order.iter().map(|&r| rows[r].task_id).collect::<Vec<_>>())
    .bind(
        order
            .iter()
            .map(|&r| template_of(&rows[r]).0.namespace.clone())
            .collect::<Vec<_>>(),
    )
    .bind(order.iter().map(|&r| items[rows[r].item].template_id).collect::<Vec<_>>())
    .bind(order.iter().map(|&r| &items[rows[r].item].context).collect::<Vec<_>>())
    .bind(
        order
            .iter()
            .map(|&r| items[rows[r].item].idempotency_key.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        order
            .iter()
            .map(|&r| serde_json::json!(items[rows[r].item].tags))
            .collect::<Vec<_>>(),
    )
    .bind(
        order
            .iter()
            .map(|&r| {
                // The task's own deadline, else its template's.
                let item = &items[rows[r].item];
                item.deadline
                    .or(template_of(&rows[r]).0.definition.deadline.map(|d| d.as_duration()))
                    .map(|d| d.as_secs_f64())
            })
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let created_at: HashMap<Uuid, Timestamp> = inserted
        .iter()
        .map(|row| (row.get("id"), row.get("created_at")))
        .collect();
    let deadline_at: HashMap<Uuid, Option<Timestamp>> = inserted
        .iter()
        .map(|row| (row.get("id"), row.get("deadline_at")))
        .collect();

    // Keys that already existed: hand back the tasks they name.
    let (new_rows, existing_rows): (Vec<&NewRow>, Vec<&NewRow>) = rows
        .iter()
        .partition(|row| created_at.contains_key(&row.task_id));
    if !existing_rows.is_empty() {
        let found = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM {TASK_FROM} \
             WHERE (t.namespace, t.idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        ))
        .bind(
            existing_rows
                .iter()
                .map(|row| template_of(row).0.namespace.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            existing_rows
                .iter()
                .map(|row| items[row.item].idempotency_key.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut by_key: HashMap<(String, Option<String>), Task> = HashMap::new();
        for row in &found {
            let task = rows::task(row)?;
            by_key.insert((task.namespace.clone(), task.idempotency_key.clone()), task);
        }
        for row in existing_rows {
            let item = &items[row.item];
            let namespace = &template_of(row).0.namespace;
            let key = (namespace.clone(), item.idempotency_key.clone());
            answers[row.item] = Some(match by_key.get(&key) {
                Some(task) => Ok((task.clone(), false)),
                // Only a key of a task deleted since the insert.
                None => Err(Error::not_found(format!(
                    "task with idempotency key {:?} in namespace \"{namespace}\"",
                    item.idempotency_key.as_deref().unwrap_or_default()
                ))),
            });
        }
    }

    // Plans of the new tasks; root steps' messages, one send per queue.
    struct Planned<'a> {
        row: &'a NewRow,
        template: &'a TemplateRecord,
        step_ids: Vec<Uuid>,
        run: TaskRun<'a>,
        now: Timestamp,
        msg_of: Vec<Option<i64>>,
    }
    let mut planned: Vec<Planned> = new_rows
        .iter()
        .map(|row| {
            let template = template_of(row).0.as_ref();
            let definition = &template.definition;
            let step_ids: Vec<Uuid> = definition.steps.iter().map(|_| Uuid::now_v7()).collect();
            let now = created_at[&row.task_id];
            let run = TaskRun::create(definition, row.task_id, &step_ids, now);
            Planned {
                row,
                template,
                msg_of: vec![None; step_ids.len()],
                step_ids,
                run,
                now,
            }
        })
        .collect();
    let mut per_queue: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (p, plan) in planned.iter().enumerate() {
        let queue = template_of(plan.row).1.as_str();
        let sends = per_queue.entry(queue).or_default();
        sends.extend(plan.run.plan.enqueue.iter().map(|&s| (p, s)));
    }
    let mut ready: HashMap<String, usize> = HashMap::new();
    for (queue_name, sends) in &per_queue {
        if sends.is_empty() {
            continue;
        }
        let bodies: Vec<StepMessage> = sends
            .iter()
            .map(|&(p, s)| StepMessage {
                task_id: planned[p].row.task_id,
                step_id: planned[p].step_ids[s],
                handler: planned[p].template.definition.steps[s].handler.clone(),
            })
            .collect();
        let msg_ids = queue::send(tx, queue_name, &bodies).await?;
        for (&(p, s), id) in sends.iter().zip(msg_ids) {
            planned[p].msg_of[s] = Some(id);
        }
        let namespace = planned[sends[0].0].template.namespace.clone();
        *ready.entry(namespace).or_default() += sends.len();
    }

    // Every step and every transition, one insert each.
    let mut step_task = Vec::new();
    let mut step_ids = Vec::new();
    let mut positions = Vec::new();
    let mut names = Vec::new();
    let mut states = Vec::new();
    let mut msg_ids = Vec::new();
    let mut h_task = Vec::new();
    let mut h_step = Vec::new();
    let mut h_from = Vec::new();
    let mut h_to = Vec::new();
    let mut h_reason = Vec::new();
    let mut h_at = Vec::new();
    for plan in &planned {
        for (s, step) in plan.template.definition.steps.iter().enumerate() {
            step_task.push(plan.row.task_id);
            step_ids.push(plan.step_ids[s]);
            positions.push(s as i16);
            names.push(step.name.as_str());
            states.push(plan.run.steps[s].state.as_str());
            msg_ids.push(plan.msg_of[s]);
        }
        for t in &plan.run.plan.transitions {
            h_task.push(plan.row.task_id);
            h_step.push(t.step_id);
            h_from.push(t.from_state);
            h_to.push(t.to_state);
            h_reason.push(t.reason.clone());
            h_at.push(plan.now);
        }
    }
    if !planned.is_empty() {
        sqlx::query(
            "WITH new_steps AS ( \
                INSERT INTO tasker.steps (id, task_id, position, name, state, msg_id) \
                SELECT s.id, s.task_id, s.position, s.name, s.state, s.msg_id \
                FROM unnest($1::uuid[], $2::uuid[], $3::int2[], $4::text[], $5::text[], $6::bigint[]) \
                     AS s(task_id, id, position, name, state, msg_id) \
                RETURNING 1 \
             ), history AS ( \
                INSERT INTO tasker.transitions (task_id, step_id, from_state, to_state, reason, at, node_id) \
                SELECT h.task_id, h.step_id, h.from_state, h.to_state, h.reason, h.at, $13 \
                FROM unnest($7::uuid[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::timestamptz[]) \
                     AS h(task_id, step_id, from_state, to_state, reason, at) \
                RETURNING 1 \
             ) \
             SELECT (SELECT count(*) FROM new_steps), (SELECT count(*) FROM history)",
        )
        .bind(&step_task)
        .bind(&step_ids)
        .bind(&positions)
        .bind(&names)
        .bind(&states)
        .bind(&msg_ids)
        .bind(&h_task)
        .bind(&h_step)
        .bind(&h_from)
        .bind(&h_to)
        .bind(&h_reason)
        .bind(&h_at)
        .bind(store.node_id())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    let ready: Vec<(String, usize)> = ready.into_iter().collect();

    for plan in planned {
        let item = &items[plan.row.item];
        answers[plan.row.item] = Some(Ok((
            Task {
                id: plan.row.task_id,
                namespace: plan.template.namespace.clone(),
                template_id: plan.template.id,
                template_name: plan.template.name.clone(),
                template_version: plan.template.version.clone(),
                state: plan.run.task.state,
                context: item.context.clone(),
                idempotency_key: item.idempotency_key.clone(),
                tags: item.tags.clone(),
                created_at: plan.now,
                updated_at: plan.now,
                finished_at: None,
                deadline_at: deadline_at.get(&plan.row.task_id).copied().flatten(),
            },
            true,
        )));
    }
    Ok((finish(answers, &same_key_as), ready))
}

/// Answers items that share an earlier item's key with that item's task.
fn finish(
    mut answers: Vec<Option<Result<(Task, bool)>>>,
    same_key_as: &[(usize, usize)],
) -> Vec<Result<(Task, bool)>> {
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

pub async fn get(store: &PgStore, id: Uuid) -> Result<Task> {
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    rows::task(&row)
}

pub async fn list(store: &PgStore, filter: &TaskFilter) -> Result<TaskPage> {
    let limit = filter.limit.unwrap_or(50).clamp(1, 500) as i64;
    let cursor = filter
        .cursor
        .as_deref()
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| Error::Invalid {
                field: "cursor".into(),
                message: format!("\"{c}\" is not a cursor returned by a previous page"),
            })
        })
        .transpose()?;
    let id_range = filter.id_range().map_err(|message| Error::Invalid {
        field: "id_prefix".into(),
        message,
    })?;
    let rows = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} \
         WHERE ($1::text IS NULL OR t.namespace = $1) \
           AND ($2::text IS NULL OR tp.name = $2) \
           AND ($3::text IS NULL OR t.state = $3) \
           AND ($4::uuid IS NULL OR t.id < $4) \
           AND ($6::uuid IS NULL OR t.id BETWEEN $6 AND $7) \
           AND ($8::text IS NULL OR $8 = ANY(t.tags)) \
           AND ($9::timestamptz IS NULL OR t.created_at >= $9) \
           AND ($10::timestamptz IS NULL OR t.created_at < $10) \
         ORDER BY t.id DESC LIMIT $5"
    ))
    .bind(&filter.namespace)
    .bind(&filter.template)
    .bind(filter.state.map(|s| s.as_str()))
    .bind(cursor)
    .bind(limit + 1)
    .bind(id_range.map(|(low, _)| low))
    .bind(id_range.map(|(_, high)| high))
    .bind(&filter.tag)
    .bind(filter.created_after)
    .bind(filter.created_before)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut tasks = rows.iter().map(rows::task).collect::<Result<Vec<_>>>()?;
    let next_cursor = if tasks.len() as i64 > limit {
        tasks.truncate(limit as usize);
        tasks.last().map(|t| t.id.to_string())
    } else {
        None
    };
    Ok(TaskPage { tasks, next_cursor })
}

pub async fn steps(store: &PgStore, id: Uuid) -> Result<Vec<Step>> {
    let template_id: Uuid =
        sqlx::query_scalar("SELECT template_id FROM tasker.tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("task {id}")))?;
    let template = catalog::template_by_id(store, template_id).await?;
    let rows = sqlx::query(&format!(
        "SELECT {} FROM tasker.steps WHERE task_id = $1 ORDER BY position",
        rows::STEP_COLUMNS
    ))
    .bind(id)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter().map(|r| rows::step(r, &template)).collect()
}

pub async fn history(store: &PgStore, id: Uuid, after: i64, limit: u32) -> Result<Vec<Transition>> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.tasks WHERE id = $1)")
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .map_err(db)?;
    if !exists {
        return Err(Error::not_found(format!("task {id}")));
    }
    let rows = sqlx::query(
        "SELECT h.id, h.task_id, h.step_id, s.name AS step_name, h.from_state, h.to_state, \
                h.attempt, h.worker_id, h.node_id, h.reason, h.at \
         FROM tasker.transitions h LEFT JOIN tasker.steps s ON s.id = h.step_id \
         WHERE h.task_id = $1 AND h.id > $2 ORDER BY h.id LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    Ok(rows.iter().map(rows::transition).collect())
}

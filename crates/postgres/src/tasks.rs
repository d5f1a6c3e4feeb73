//! Task operations: the rows of task creation, read, list. Creating's
//! policy and cancelling are the store crate's orchestration.

use std::collections::HashMap;

use sqlx::Row;
use tasker_model::{Step, Task, TaskRun, TemplateRecord, Timestamp, Transition};
use tasker_store::orchestration::task_creation::{self, Inserted, NewRow, Prepared};
use tasker_store::paging::TaskListRead;
use tasker_store::{Error, Result, TaskCreate, TaskFilter, TaskPage};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::db;
use crate::queue::{self, StepMessage};
use crate::rows::{self, TASK_COLUMNS, TASK_FROM};

/// Writes the prepared tasks in the caller's transaction: one insert of
/// every task row (a row whose idempotency key exists is skipped and
/// answered with the task the key names), one send per queue for the root
/// steps, one insert of every step and one of every transition.
pub async fn write(
    store: &PgStore,
    tx: &mut sqlx::PgConnection,
    items: &[TaskCreate],
    prepared: Prepared,
) -> Result<Inserted> {
    let Prepared {
        resolved,
        mut answers,
        same_key_as,
        rows,
    } = prepared;
    let template_of = |row: &NewRow| task_creation::resolved_of(&resolved, items, row);

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
                task_creation::deadline_of(&items[rows[r].item], &template_of(&rows[r]).0)
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
                None => Err(task_creation::existing_key_missing(
                    namespace,
                    item.idempotency_key.as_deref(),
                )),
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
            task_creation::created_task(
                item,
                plan.template,
                plan.row.task_id,
                plan.run.task.state,
                plan.now,
                deadline_at.get(&plan.row.task_id).copied().flatten(),
            ),
            true,
        )));
    }
    Ok(Inserted {
        answers: task_creation::finish(answers, &same_key_as),
        ready,
    })
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
    let read = TaskListRead::of(filter)?;
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
    .bind(read.below)
    .bind(i64::from(read.limit) + 1)
    .bind(read.id_range.map(|(low, _)| low))
    .bind(read.id_range.map(|(_, high)| high))
    .bind(&filter.tag)
    .bind(filter.created_after)
    .bind(filter.created_before)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let tasks = rows.iter().map(rows::task).collect::<Result<Vec<_>>>()?;
    Ok(read.page(tasks))
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

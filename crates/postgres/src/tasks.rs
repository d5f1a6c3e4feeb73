//! Task operations: the rows of task creation, read, list. Creating's
//! policy and cancelling are the store crate's orchestration.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;
use tasker_model::{Step, Task, TaskRun, TemplateRecord, Timestamp, Transition};
use tasker_store::orchestration::task_creation::{self, Inserted, NewRow, Prepared};
use tasker_store::paging::TaskListRead;
use tasker_store::{Error, Result, TaskCreate, TaskFilter, TaskPage, Unavailability};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::db;
use crate::queue;
use crate::rows::{self, TASK_COLUMNS, TASK_FROM};

/// Creates the prepared tasks: [`write`] on a connection of its own, where
/// the statement is its own transaction (one round trip instead of five:
/// no `BEGIN`, no `COMMIT`, and durable as any commit of the pool's
/// connections). A connection lost during it leaves the outcome unknown
/// unless none of the new task ids exists: then nothing was written and the
/// error stays a lost connection, which the caller's retry runs again.
pub async fn create(store: &PgStore, items: &[TaskCreate], prepared: Prepared) -> Result<Inserted> {
    let ids: Vec<Uuid> = prepared.rows.iter().map(|row| row.task_id).collect();
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let written = write(store, &mut conn, items, prepared).await;
    let Err(Error::Unavailable {
        why: Unavailability::ConnectionLost,
        cause,
    }) = written
    else {
        return written;
    };
    drop(conn);
    // Its neighbours in the pool may be gone too: the check must not take one.
    store.acquire_check.connection_lost();
    let exists: std::result::Result<bool, sqlx::Error> =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.tasks WHERE id = ANY($1))")
            .bind(&ids)
            .fetch_one(&store.pool)
            .await;
    let why = match exists {
        Ok(false) => Unavailability::ConnectionLost,
        Ok(true) | Err(_) => Unavailability::CommitUnknown,
    };
    Err(Error::Unavailable { why, cause })
}

/// Writes the prepared tasks in one statement: every task row (a row whose
/// idempotency key exists is skipped and answered with the task the key
/// names), the root steps' messages (one insert per queue), every step and
/// every transition of the tasks it inserted, all stamped with one reading
/// of the database clock. On a connection without a transaction the
/// statement commits by itself; in the caller's transaction (a schedule's
/// fire) it commits with it.
pub async fn write(
    store: &PgStore,
    conn: &mut sqlx::PgConnection,
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

    // Every row's plan, before the statement tells which rows it inserted
    // (a row whose key exists writes none of it). The plan's clock is not
    // stored: the statement stamps the rows with its own.
    struct Planned<'a> {
        row: &'a NewRow,
        template: &'a TemplateRecord,
        step_ids: Vec<Uuid>,
        run: TaskRun<'a>,
    }
    let planned: Vec<Planned> = rows
        .iter()
        .map(|row| {
            let template = template_of(row).0.as_ref();
            let definition = &template.definition;
            let step_ids: Vec<Uuid> = definition.steps.iter().map(|_| Uuid::now_v7()).collect();
            let run = TaskRun::create(definition, row.task_id, &step_ids, Timestamp::UNIX_EPOCH);
            Planned {
                row,
                template,
                step_ids,
                run,
            }
        })
        .collect();
    let queues: BTreeSet<&str> = rows.iter().map(|row| template_of(row).1.as_str()).collect();
    let queue_number: HashMap<&str, i32> = queues
        .iter()
        .enumerate()
        .map(|(k, &queue)| (queue, k as i32))
        .collect();

    let mut sends = MessageColumns::default();
    let mut steps = StepColumns::default();
    let mut history = TransitionColumns::default();
    for plan in &planned {
        let task_id = plan.row.task_id;
        let steps_of = &plan.template.definition.steps;
        for &s in &plan.run.plan.enqueue {
            sends.task_id.push(task_id);
            sends.step_id.push(plan.step_ids[s]);
            sends.handler.push(steps_of[s].handler.as_str());
            sends
                .queue
                .push(queue_number[template_of(plan.row).1.as_str()]);
        }
        for (s, step) in steps_of.iter().enumerate() {
            steps.task_id.push(task_id);
            steps.id.push(plan.step_ids[s]);
            steps.position.push(s as i16);
            steps.name.push(step.name.as_str());
            steps.state.push(plan.run.steps[s].state.as_str());
        }
        for t in &plan.run.plan.transitions {
            history.task_id.push(task_id);
            history.step_id.push(t.step_id);
            history.from_state.push(t.from_state);
            history.to_state.push(t.to_state);
            history.reason.push(t.reason.clone());
        }
    }

    let inserted = sqlx::query(&create_sql(queues.iter().copied()))
        .bind(order.iter().map(|&r| rows[r].task_id).collect::<Vec<_>>())
        .bind(
            order
                .iter()
                .map(|&r| template_of(&rows[r]).0.namespace.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            order
                .iter()
                .map(|&r| items[rows[r].item].template_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            order
                .iter()
                .map(|&r| &items[rows[r].item].context)
                .collect::<Vec<_>>(),
        )
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
        .bind(&sends.task_id)
        .bind(&sends.step_id)
        .bind(&sends.handler)
        .bind(&sends.queue)
        .bind(&steps.task_id)
        .bind(&steps.id)
        .bind(&steps.position)
        .bind(&steps.name)
        .bind(&steps.state)
        .bind(&history.task_id)
        .bind(&history.step_id)
        .bind(&history.from_state)
        .bind(&history.to_state)
        .bind(&history.reason)
        .bind(store.node_id())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let created: HashMap<Uuid, (Timestamp, Option<Timestamp>)> = inserted
        .iter()
        .map(|row| {
            (
                row.get("id"),
                (row.get("created_at"), row.get("deadline_at")),
            )
        })
        .collect();

    // Keys that already existed: hand back the tasks they name.
    let existing_rows: Vec<&NewRow> = rows
        .iter()
        .filter(|row| !created.contains_key(&row.task_id))
        .collect();
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
        .fetch_all(&mut *conn)
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

    let mut ready: HashMap<String, usize> = HashMap::new();
    for plan in planned {
        let Some(&(created_at, deadline_at)) = created.get(&plan.row.task_id) else {
            continue;
        };
        if !plan.run.plan.enqueue.is_empty() {
            *ready.entry(plan.template.namespace.clone()).or_default() +=
                plan.run.plan.enqueue.len();
        }
        let item = &items[plan.row.item];
        answers[plan.row.item] = Some(Ok((
            task_creation::created_task(
                item,
                plan.template,
                plan.row.task_id,
                plan.run.task.state,
                created_at,
                deadline_at,
            ),
            true,
        )));
    }
    Ok(Inserted {
        answers: task_creation::finish(answers, &same_key_as),
        ready: ready.into_iter().collect(),
    })
}

/// The creation statement for the queues a batch sends to (in name order,
/// so that each set of queues has one text and one prepared statement per
/// connection; queue `k` of the list is `queue = k` in `$11`). Only the
/// tasks the first insert wrote get messages, steps and transitions; a step
/// finds its message's id by its own id. Returns the tasks written.
fn create_sql<'q>(queues: impl Iterator<Item = &'q str>) -> String {
    let mut sql = String::from(CREATE_SQL_HEAD);
    let mut sent = Vec::new();
    for (k, queue) in queues.enumerate() {
        let table = queue::queue_table(queue);
        sql.push_str(&format!(
            ", sent_{k} AS (\n    INSERT INTO {table} (vt, message)\n    \
             SELECT c.at, {body}\n    \
             FROM unnest($8::uuid[], $9::uuid[], $10::text[], $11::int[]) AS m(task_id, id, handler, queue), c\n    \
             WHERE m.queue = {k} AND m.task_id IN (SELECT id FROM new_tasks)\n    \
             RETURNING msg_id, (message->>'step_id')::uuid AS step_id\n)",
            body = queue::MESSAGE_BODY,
        ));
        sent.push(format!("SELECT msg_id, step_id FROM sent_{k}"));
    }
    if sent.is_empty() {
        sent.push("SELECT NULL::bigint AS msg_id, NULL::uuid AS step_id WHERE false".into());
    }
    sql.push_str(&CREATE_SQL_TAIL.replace("{sent}", &sent.join(" UNION ALL ")));
    sql
}

/// The tasks' insert, ahead of the per-queue sends.
const CREATE_SQL_HEAD: &str = r#"WITH c AS MATERIALIZED (
    SELECT clock_timestamp() AS at
), new_tasks AS (
    INSERT INTO tasker.tasks (id, namespace, template_id, state, context, idempotency_key, tags,
                              created_at, updated_at, deadline_at)
    SELECT r.id, r.namespace, r.template_id, 'running', r.context, r.idempotency_key,
           ARRAY(SELECT jsonb_array_elements_text(r.tags)), c.at, c.at,
           c.at + make_interval(secs => r.deadline)
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::text[], $6::jsonb[], $7::float8[])
         WITH ORDINALITY AS r(id, namespace, template_id, context, idempotency_key, tags, deadline, n), c
    ORDER BY r.n
    ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, created_at, deadline_at
)"#;

/// The steps and transitions, after the sends; `{sent}` is the union of
/// every queue's sent messages.
const CREATE_SQL_TAIL: &str = r#", sent AS (
    {sent}
), new_steps AS (
    INSERT INTO tasker.steps (id, task_id, position, name, state, msg_id)
    SELECT s.id, s.task_id, s.position, s.name, s.state, sent.msg_id
    FROM unnest($12::uuid[], $13::uuid[], $14::int2[], $15::text[], $16::text[])
         AS s(task_id, id, position, name, state)
    LEFT JOIN sent ON sent.step_id = s.id
    WHERE s.task_id IN (SELECT id FROM new_tasks)
    RETURNING 1
), history AS (
    INSERT INTO tasker.transitions (task_id, step_id, from_state, to_state, reason, at, node_id)
    SELECT h.task_id, h.step_id, h.from_state, h.to_state, h.reason, c.at, $22
    FROM unnest($17::uuid[], $18::uuid[], $19::text[], $20::text[], $21::text[])
         WITH ORDINALITY AS h(task_id, step_id, from_state, to_state, reason, n), c
    WHERE h.task_id IN (SELECT id FROM new_tasks)
    ORDER BY h.n
    RETURNING 1
)
SELECT id, created_at, deadline_at FROM new_tasks"#;

#[derive(Default)]
struct MessageColumns<'a> {
    task_id: Vec<Uuid>,
    step_id: Vec<Uuid>,
    handler: Vec<&'a str>,
    queue: Vec<i32>,
}

#[derive(Default)]
struct StepColumns<'a> {
    task_id: Vec<Uuid>,
    id: Vec<Uuid>,
    position: Vec<i16>,
    name: Vec<&'a str>,
    state: Vec<&'static str>,
}

#[derive(Default)]
struct TransitionColumns {
    task_id: Vec<Uuid>,
    step_id: Vec<Option<Uuid>>,
    from_state: Vec<Option<&'static str>>,
    to_state: Vec<&'static str>,
    reason: Vec<Option<String>>,
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

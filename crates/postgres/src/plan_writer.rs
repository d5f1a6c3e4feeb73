//! Writes the plans of one or more `TaskRun`s in the caller's
//! transaction, in one statement: it updates steps and tasks (a step sent a
//! new queue message takes the next id of its queue's sequence, and the
//! message is inserted from the step update's `RETURNING`, so no part of
//! the statement joins one batch's rows to another's), appends
//! transitions, deletes and hides messages. Only a fan-out adds a round
//! trip before (its new instance rows, which the update must see) and after
//! (gathering finished fan-outs' results). What to announce and observe
//! after the commit is derived by the orchestration.

use std::collections::{BTreeMap, HashMap};

use sqlx::{PgConnection, Row};
use tasker_model::Timestamp;
use tasker_store::Result;
use tasker_store::backend::Pending;
use uuid::Uuid;

use crate::error::db;
use crate::queue;

/// Writes the plans of `runs` (see `tasker_store::backend::Transaction::plan_write`).
pub async fn write(
    conn: &mut PgConnection,
    node_id: &str,
    runs: &mut [Pending<'_, '_>],
) -> Result<()> {
    if runs.iter().all(|p| p.run.plan.is_empty()) {
        return Ok(());
    }

    // 0. Fan-out instances: their rows exist (pending) before anything
    // refers to them.
    insert_instances(conn, runs).await?;

    // 1. The queues the batch touches, in name order: a step sent a new
    // message names its queue by its place here. Every step sent one is
    // written.
    let mut queues = QueueChanges::default();
    for pending in runs.iter_mut() {
        queues.of(pending.queue);
        let plan = &mut pending.run.plan;
        plan.dirty_steps.extend(plan.enqueue.iter().copied());
        plan.dirty_steps
            .extend(plan.enqueue_leased.iter().map(|&(s, _)| s));
    }
    let queue_numbers: HashMap<&str, i32> = queues
        .0
        .keys()
        .enumerate()
        .map(|(k, &queue)| (queue, k as i32))
        .collect();

    // 2. Everything in one statement.
    let mut steps = StepColumns::default();
    let mut tasks = TaskColumns::default();
    let mut history = TransitionColumns::default();
    for pending in runs.iter() {
        let run = &*pending.run;
        let plan = &run.plan;
        // When each new message becomes visible (`None`: now); steps leased
        // as they were released get one hidden for their lease.
        let sent: HashMap<usize, Option<Timestamp>> = plan
            .enqueue
            .iter()
            .map(|&s| (s, None))
            .chain(plan.enqueue_leased.iter().map(|&(s, at)| (s, Some(at))))
            .collect();
        let queue = queue_numbers[pending.queue];
        for &i in &plan.dirty_steps {
            let row = &run.steps[i];
            let send = sent.get(&i);
            steps.send_queue.push(send.map(|_| queue));
            steps.send_at.push(send.copied().flatten());
            steps.handler.push(send.map(|_| run.def(i).handler.clone()));
            let result = plan
                .results
                .iter()
                .rev()
                .find(|(s, _)| *s == i)
                .map(|(_, v)| v.clone());
            let error = plan
                .errors
                .iter()
                .rev()
                .find(|(s, _)| *s == i)
                .map(|(_, e)| e.clone());
            steps.id.push(row.id);
            steps.state.push(row.state.as_str());
            steps.attempt.push(row.attempt as i32);
            steps.lease_token.push(row.lease_token);
            steps.lease_expires_at.push(row.lease_expires_at);
            steps.msg_id.push(row.msg_id);
            steps.retry_at.push(row.retry_at);
            steps.worker_id.push(row.worker_id.clone());
            steps.started_at.push(row.started_at);
            steps.finished_at.push(row.finished_at);
            steps
                .branches
                .push(row.branches.as_ref().map(|b| b.join("\n")));
            steps
                .fan_out_count
                .push(row.fan_out_count.map(|n| n as i32));
            steps.set_result.push(result.is_some());
            steps.result.push(result);
            steps.set_error.push(error.is_some());
            steps.error.push(
                error
                    .flatten()
                    .map(|e| serde_json::to_value(e).expect("error serializes")),
            );
        }
        if plan.task_changed {
            tasks.id.push(run.task.id);
            tasks.state.push(run.task.state.as_str());
            tasks.finished_at.push(run.task.finished_at);
        }
        for t in &plan.transitions {
            history.task_id.push(t.task_id);
            history.step_id.push(t.step_id);
            history.from_state.push(t.from_state);
            history.to_state.push(t.to_state);
            history.attempt.push(t.attempt.map(|a| a as i32));
            history.worker_id.push(t.worker_id.clone());
            history.reason.push(t.reason.clone());
            history.at.push(t.at);
        }
        let changes = queues.of(pending.queue);
        changes.deletes.extend(plan.delete_messages.iter().copied());
        for &(m, at) in &plan.set_visibility {
            changes.hides.insert(m, at);
        }
    }

    let sql = write_sql(queues.0.keys().copied());
    let mut query = sqlx::query(&sql)
        .bind(&steps.id)
        .bind(&steps.state)
        .bind(&steps.attempt)
        .bind(&steps.lease_token)
        .bind(&steps.lease_expires_at)
        .bind(&steps.msg_id)
        .bind(&steps.retry_at)
        .bind(&steps.worker_id)
        .bind(&steps.started_at)
        .bind(&steps.finished_at)
        .bind(&steps.set_result)
        .bind(&steps.result)
        .bind(&steps.set_error)
        .bind(&steps.error)
        .bind(&steps.branches)
        .bind(&steps.fan_out_count)
        .bind(&steps.send_queue)
        .bind(&steps.send_at)
        .bind(&steps.handler)
        .bind(&tasks.id)
        .bind(&tasks.state)
        .bind(&tasks.finished_at)
        .bind(&history.task_id)
        .bind(&history.step_id)
        .bind(&history.from_state)
        .bind(&history.to_state)
        .bind(&history.attempt)
        .bind(&history.worker_id)
        .bind(&history.reason)
        .bind(&history.at)
        .bind(node_id);
    for changes in queues.0.into_values() {
        // A message both deleted and hidden in one batch (a heartbeat and
        // the complete of one step) is deleted: one statement must not
        // change a row twice.
        let hides: Vec<(i64, Timestamp)> = changes
            .hides
            .into_iter()
            .filter(|(m, _)| !changes.deletes.contains(m))
            .collect();
        let (hide_ids, hide_at): (Vec<i64>, Vec<Timestamp>) = hides.into_iter().unzip();
        query = query.bind(changes.deletes).bind(hide_ids).bind(hide_at);
    }
    let sent = query.fetch_all(&mut *conn).await.map_err(db)?;
    if !sent.is_empty() {
        let msg_ids: HashMap<Uuid, i64> = sent
            .iter()
            .map(|row| (row.get("step_id"), row.get("msg_id")))
            .collect();
        for pending in runs.iter_mut() {
            for step in &mut pending.run.steps {
                if let Some(&id) = msg_ids.get(&step.id) {
                    step.msg_id = Some(id);
                }
            }
        }
    }
    gather(conn, runs).await
}

/// Inserts the fan-out instances the runs created, pending and without a
/// message (the rest of the plan sends it and updates the row).
async fn insert_instances(conn: &mut PgConnection, runs: &[Pending<'_, '_>]) -> Result<()> {
    let mut rows = InstanceColumns::default();
    for pending in runs {
        let run = &*pending.run;
        for new in &run.plan.new_steps {
            let row = &run.steps[new.index];
            let instance = row.instance.expect("a new step is a fan-out instance");
            rows.id.push(row.id);
            rows.task_id.push(run.task.id);
            rows.position.push(new.index as i32);
            rows.name.push(run.name(new.index));
            rows.of.push(instance.of as i32);
            rows.number.push(instance.number as i32);
            rows.items.push(serde_json::Value::Array(new.items.clone()));
        }
    }
    if rows.id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO tasker.steps (id, task_id, position, name, state, fan_out_of, fan_out_number, items) \
         SELECT id, task_id, position, name, 'pending', fan_out_of, fan_out_number, items \
         FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::int[], $6::int[], $7::jsonb[]) \
              AS n(id, task_id, position, name, fan_out_of, fan_out_number, items)",
    )
    .bind(&rows.id)
    .bind(&rows.task_id)
    .bind(&rows.position)
    .bind(&rows.name)
    .bind(&rows.of)
    .bind(&rows.number)
    .bind(&rows.items)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Stores, as the result of each fan-out step whose instances all finished,
/// the list of their results in instance order. Runs after the step rows
/// were written, so the last instance's result is included.
async fn gather(conn: &mut PgConnection, runs: &[Pending<'_, '_>]) -> Result<()> {
    let ids: Vec<Uuid> = runs
        .iter()
        .flat_map(|p| p.run.plan.gather.iter().map(|&i| p.run.steps[i].id))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE tasker.steps g SET result = ( \
             SELECT COALESCE(jsonb_agg(i.result ORDER BY i.position), '[]'::jsonb) \
             FROM tasker.steps i WHERE i.task_id = g.task_id AND i.fan_out_of = g.position) \
         WHERE g.id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

#[derive(Default)]
struct InstanceColumns {
    id: Vec<Uuid>,
    task_id: Vec<Uuid>,
    position: Vec<i32>,
    name: Vec<String>,
    of: Vec<i32>,
    number: Vec<i32>,
    items: Vec<serde_json::Value>,
}

/// The write statement for the queues a batch touches (in name order, so
/// that each set of queues has one text and one prepared statement per
/// connection). Data-modifying CTEs run exactly once, read or not. A step
/// sent a message takes the next id of its queue's sequence in the step
/// update (queue `k` of the list is `send_queue = k`), and each queue's
/// messages are inserted from the update's `RETURNING` with those ids. Each
/// queue also gets one delete and one visibility update, bound after
/// `$31`. The statement returns the (step, message) pairs sent.
fn write_sql<'q>(queues: impl Iterator<Item = &'q str>) -> String {
    let queues: Vec<&str> = queues.collect();
    let next_ids: String = queues
        .iter()
        .enumerate()
        .map(|(k, queue)| {
            format!(
                " WHEN {k} THEN nextval(pg_get_serial_sequence('{}', 'msg_id'))",
                queue::queue_table(queue).replace('\'', "''")
            )
        })
        .collect();
    let mut sql = String::from("WITH ");
    sql.push_str(&WRITE_SQL_HEAD.replace("{next_ids}", &next_ids));
    for (k, queue) in queues.iter().enumerate() {
        let table = queue::queue_table(queue);
        let (ids, hide_ids, hide_at) = (32 + 3 * k, 33 + 3 * k, 34 + 3 * k);
        sql.push_str(&format!(
            ", sent_{k} AS (\n    INSERT INTO {table} (msg_id, vt, message) OVERRIDING SYSTEM VALUE\n    \
             SELECT msg_id, coalesce(send_at, clock_timestamp()), {body}\n    \
             FROM step_updates WHERE send_queue = {k}\n    RETURNING 1\n\
             ), deleted_{k} AS (\n    DELETE FROM {table} WHERE msg_id = ANY(${ids}::bigint[]) RETURNING 1\n\
             ), hidden_{k} AS (\n    UPDATE {table} q SET vt = v.at\n    \
             FROM unnest(${hide_ids}::bigint[], ${hide_at}::timestamptz[]) AS v(id, at)\n    \
             WHERE q.msg_id = v.id RETURNING 1\n)",
            body = queue::MESSAGE_BODY,
        ));
    }
    sql.push_str("\nSELECT id AS step_id, msg_id FROM step_updates WHERE send_queue IS NOT NULL");
    sql
}

/// The part of the write statement that every batch has; `{next_ids}` is
/// the `WHEN` arm of each queue's sequence.
const WRITE_SQL_HEAD: &str = r#"
step_updates AS (
    UPDATE tasker.steps s SET
        state = u.state, attempt = u.attempt, lease_token = u.lease_token,
        lease_expires_at = u.lease_expires_at,
        msg_id = CASE u.send_queue{next_ids} ELSE u.msg_id END,
        retry_at = u.retry_at,
        worker_id = u.worker_id, started_at = u.started_at, finished_at = u.finished_at,
        result = CASE WHEN u.set_result THEN u.result ELSE s.result END,
        error = CASE WHEN u.set_error THEN u.error ELSE s.error END,
        branches = string_to_array(u.branches, E'\n'), fan_out_count = u.fan_out_count
    FROM unnest($1::uuid[], $2::text[], $3::int[], $4::uuid[], $5::timestamptz[], $6::bigint[],
                $7::timestamptz[], $8::text[], $9::timestamptz[], $10::timestamptz[],
                $11::bool[], $12::jsonb[], $13::bool[], $14::jsonb[], $15::text[], $16::int[],
                $17::int[], $18::timestamptz[], $19::text[])
        AS u(id, state, attempt, lease_token, lease_expires_at, msg_id, retry_at, worker_id,
             started_at, finished_at, set_result, result, set_error, error, branches,
             fan_out_count, send_queue, send_at, handler)
    WHERE s.id = u.id
    RETURNING s.id, s.task_id, s.msg_id, u.send_queue, u.send_at, u.handler
), task_updates AS (
    UPDATE tasker.tasks t SET state = u.state, finished_at = u.finished_at, updated_at = clock_timestamp()
    FROM unnest($20::uuid[], $21::text[], $22::timestamptz[]) AS u(id, state, finished_at)
    WHERE t.id = u.id
    RETURNING 1
), history AS (
    INSERT INTO tasker.transitions (task_id, step_id, from_state, to_state, attempt, worker_id, reason, at, node_id)
    SELECT h.*, $31 FROM unnest($23::uuid[], $24::uuid[], $25::text[], $26::text[], $27::int[],
                               $28::text[], $29::text[], $30::timestamptz[])
        AS h(task_id, step_id, from_state, to_state, attempt, worker_id, reason, at)
    RETURNING 1
)"#;

/// Queue messages a write sends, deletes and hides, by queue name.
#[derive(Default)]
struct QueueChanges<'q>(BTreeMap<&'q str, MessageChanges>);

impl<'q> QueueChanges<'q> {
    fn of(&mut self, queue: &'q str) -> &mut MessageChanges {
        self.0.entry(queue).or_default()
    }
}

#[derive(Default)]
struct MessageChanges {
    deletes: Vec<i64>,
    /// New visibility times; the last one set for a message wins, as it
    /// would have one call at a time.
    hides: BTreeMap<i64, Timestamp>,
}

#[derive(Default)]
struct StepColumns {
    id: Vec<Uuid>,
    state: Vec<&'static str>,
    attempt: Vec<i32>,
    lease_token: Vec<Option<Uuid>>,
    lease_expires_at: Vec<Option<Timestamp>>,
    msg_id: Vec<Option<i64>>,
    retry_at: Vec<Option<Timestamp>>,
    worker_id: Vec<Option<String>>,
    started_at: Vec<Option<Timestamp>>,
    finished_at: Vec<Option<Timestamp>>,
    /// Branch names joined by newlines (step names hold none): a nullable
    /// array per row does not fit one `unnest` column.
    branches: Vec<Option<String>>,
    fan_out_count: Vec<Option<i32>>,
    /// The queue (place in the batch's list) of a message sent to the
    /// step, when it becomes visible, and the handler it names.
    send_queue: Vec<Option<i32>>,
    send_at: Vec<Option<Timestamp>>,
    handler: Vec<Option<String>>,
    set_result: Vec<bool>,
    result: Vec<Option<serde_json::Value>>,
    set_error: Vec<bool>,
    error: Vec<Option<serde_json::Value>>,
}

#[derive(Default)]
struct TaskColumns {
    id: Vec<Uuid>,
    state: Vec<&'static str>,
    finished_at: Vec<Option<Timestamp>>,
}

#[derive(Default)]
struct TransitionColumns {
    task_id: Vec<Uuid>,
    step_id: Vec<Option<Uuid>>,
    from_state: Vec<Option<&'static str>>,
    to_state: Vec<&'static str>,
    attempt: Vec<Option<i32>>,
    worker_id: Vec<Option<String>>,
    reason: Vec<Option<String>>,
    at: Vec<Timestamp>,
}

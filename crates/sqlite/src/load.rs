//! Loading tasks and their step rows for [`TaskRun`](tasker_model::TaskRun)s
//! inside a writing transaction.
//!
//! Inside `BEGIN IMMEDIATE` this connection holds the database's write lock,
//! so nothing else changes a row until the commit: "locking" a task is
//! loading it, and no task is ever held by someone else (a `FreeTasks` lock
//! skips none). Must never: be called outside a writing transaction, where
//! what it loads could change before the plan is written.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};
use tasker_model::Timestamp;
use tasker_model::task_run::{Instance, StepRow, TaskRow};
use tasker_store::backend::Payloads;
use tasker_store::{Error, Result};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::{clock, db};

/// A task row with what loading it needs to find its template and queue.
pub struct TaskLoaded {
    pub namespace: String,
    pub template_id: Uuid,
    pub task: TaskRow,
    pub steps: Vec<StepRow>,
}

/// Which tasks to load: by id, or the tasks owning some steps.
pub enum Which<'a> {
    Tasks(&'a [Uuid]),
    TasksOfSteps(&'a [Uuid]),
}

/// Loads the tasks (by id) with their step rows in position order, and
/// the store's clock read after loading.
pub async fn tasks(
    conn: &mut SqliteConnection,
    which: Which<'_>,
) -> Result<(HashMap<Uuid, TaskLoaded>, Timestamp)> {
    let (filter, ids) = match which {
        Which::Tasks(ids) => ("id IN (SELECT value FROM json_each(?))", ids),
        Which::TasksOfSteps(ids) => (
            "id IN (SELECT task_id FROM steps WHERE id IN (SELECT value FROM json_each(?)))",
            ids,
        ),
    };
    let ids = uuid_list(ids);
    let task_rows = sqlx::query(&format!(
        "SELECT id, namespace, template_id, state, finished_at, deadline_at FROM tasks \
         WHERE {filter} ORDER BY id"
    ))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let found: Vec<Uuid> = task_rows
        .iter()
        .map(|r| r.get::<Hyphenated, _>("id").into_uuid())
        .collect();

    let step_rows = sqlx::query(
        "SELECT task_id, id, state, attempt, lease_token, lease_expires_at, msg_id, retry_at, \
                worker_id, started_at, finished_at, branches, fan_out_count, fan_out_of, \
                fan_out_number \
         FROM steps WHERE task_id IN (SELECT value FROM json_each(?)) ORDER BY task_id, position",
    )
    .bind(uuid_list(&found))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut steps: HashMap<Uuid, Vec<StepRow>> = HashMap::new();
    for row in &step_rows {
        let task_id = row.get::<Hyphenated, _>("task_id").into_uuid();
        steps.entry(task_id).or_default().push(step_row(row)?);
    }

    let mut loaded = HashMap::with_capacity(task_rows.len());
    for row in task_rows {
        let id = row.get::<Hyphenated, _>("id").into_uuid();
        let state: String = row.get("state");
        loaded.insert(
            id,
            TaskLoaded {
                namespace: row.get("namespace"),
                template_id: row.get::<Hyphenated, _>("template_id").into_uuid(),
                task: TaskRow {
                    id,
                    state: state.parse().map_err(|m: String| corrupt(&m))?,
                    finished_at: clock::from_micros_opt(row.get("finished_at")),
                    deadline_at: clock::from_micros_opt(row.get("deadline_at")),
                },
                steps: steps.remove(&id).unwrap_or_default(),
            },
        );
    }
    Ok((loaded, clock::now()))
}

/// Which of these tasks exist.
pub async fn existing(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    let rows: Vec<Hyphenated> =
        sqlx::query_scalar("SELECT id FROM tasks WHERE id IN (SELECT value FROM json_each(?))")
            .bind(uuid_list(ids))
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    Ok(rows.into_iter().map(Hyphenated::into_uuid).collect())
}

/// Reads the contexts of `tasks`, the results of the steps at `parents`
/// (task, position) and the items of the `instances` (step ids).
pub async fn payloads(
    conn: &mut SqliteConnection,
    tasks: &[Uuid],
    parents: &[(Uuid, usize)],
    instances: &[Uuid],
) -> Result<Payloads> {
    let mut payloads = Payloads::default();
    let json = |text: Option<String>| -> Result<serde_json::Value> {
        text.map_or(Ok(serde_json::Value::Null), |t| {
            serde_json::from_str(&t).map_err(|e| corrupt(&e.to_string()))
        })
    };
    if !tasks.is_empty() {
        let rows: Vec<(Hyphenated, String)> = sqlx::query_as(
            "SELECT id, context FROM tasks WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(uuid_list(tasks))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        for (id, context) in rows {
            payloads
                .contexts
                .insert(id.into_uuid(), json(Some(context))?);
        }
    }
    if !parents.is_empty() {
        let pairs = serde_json::to_string(
            &parents
                .iter()
                .map(|(task, position)| serde_json::json!([task, position]))
                .collect::<Vec<_>>(),
        )
        .expect("pairs serialize");
        let rows: Vec<(Hyphenated, i64, Option<String>)> = sqlx::query_as(
            "SELECT s.task_id, s.position, s.result FROM steps s \
             JOIN json_each(?) p ON s.task_id = json_extract(p.value, '$[0]') \
                                AND s.position = json_extract(p.value, '$[1]')",
        )
        .bind(pairs)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        for (task, position, result) in rows {
            payloads
                .results
                .insert((task.into_uuid(), position as usize), json(result)?);
        }
    }
    if !instances.is_empty() {
        let rows: Vec<(Hyphenated, Option<String>)> = sqlx::query_as(
            "SELECT id, items FROM steps WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(uuid_list(instances))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        for (id, items) in rows {
            let list = match json(items)? {
                serde_json::Value::Array(list) => list,
                _ => Vec::new(),
            };
            payloads.items.insert(id.into_uuid(), list);
        }
    }
    Ok(payloads)
}

fn step_row(row: &sqlx::sqlite::SqliteRow) -> Result<StepRow> {
    let state: String = row.get("state");
    let branches: Option<String> = row.get("branches");
    Ok(StepRow {
        id: row.get::<Hyphenated, _>("id").into_uuid(),
        state: state.parse().map_err(|m: String| corrupt(&m))?,
        attempt: u32::try_from(row.get::<i64, _>("attempt"))
            .map_err(|e| corrupt(&e.to_string()))?,
        lease_token: row
            .get::<Option<Hyphenated>, _>("lease_token")
            .map(Hyphenated::into_uuid),
        lease_expires_at: clock::from_micros_opt(row.get("lease_expires_at")),
        msg_id: row.get("msg_id"),
        retry_at: clock::from_micros_opt(row.get("retry_at")),
        worker_id: row.get("worker_id"),
        started_at: clock::from_micros_opt(row.get("started_at")),
        finished_at: clock::from_micros_opt(row.get("finished_at")),
        branches: branches
            .map(|b| serde_json::from_str(&b))
            .transpose()
            .map_err(|e| corrupt(&e.to_string()))?,
        fan_out_count: row.get::<Option<i64>, _>("fan_out_count").map(|n| n as u32),
        instance: match (
            row.get::<Option<i64>, _>("fan_out_of"),
            row.get::<Option<i64>, _>("fan_out_number"),
        ) {
            (Some(of), Some(number)) => Some(Instance {
                of: of as usize,
                number: number as u32,
            }),
            _ => None,
        },
    })
}

/// A list of uuids as the JSON array `json_each` reads (hyphenated, as the
/// columns hold them).
pub fn uuid_list(ids: &[Uuid]) -> String {
    serde_json::to_string(ids).expect("ids serialize")
}

pub fn corrupt(message: &str) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

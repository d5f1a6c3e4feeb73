//! Loading tasks into [`TaskRun`]s inside a transaction, locked.
//!
//! Task rows are locked in id order so that transactions touching several
//! tasks (batched completions, batched claims) cannot deadlock each other.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgConnection, Row};
use tasker_model::task_run::{Instance, StepRow, TaskRow};
use tasker_model::{TaskRun, TemplateRecord, Timestamp};
use tasker_store::{Error, Result};
use uuid::Uuid;

use crate::PgStore;
use crate::catalog;
use crate::error::{commit_error, db, with_retry};
use crate::plan_writer::{self, Pending};

/// A locked task with what a [`TaskRun`] needs.
pub struct LoadedTask {
    pub namespace: String,
    pub queue: String,
    pub template: Arc<TemplateRecord>,
    pub task: TaskRow,
    pub steps: Vec<StepRow>,
    /// `engine.max_fan_out_instances` when the task was loaded.
    pub max_fan_out: u32,
}

impl LoadedTask {
    /// The parents of row `index` without building a whole run (a task
    /// with a large fan-out has many rows): a template step's parents, none
    /// for a fan-out instance.
    pub fn parents_of(&self, index: usize) -> Vec<usize> {
        let steps = &self.template.definition.steps;
        match steps.get(index) {
            Some(step) => step
                .depends_on
                .iter()
                .filter_map(|d| self.template.definition.step_index(d))
                .collect(),
            None => Vec::new(),
        }
    }

    pub fn run(&self) -> TaskRun<'_> {
        let mut run = TaskRun::new(
            &self.template.definition,
            self.task.clone(),
            self.steps.clone(),
        );
        run.max_fan_out = self.max_fan_out;
        run
    }
}

/// Which tasks to lock.
#[derive(Debug, Clone, Copy)]
pub enum Lock<'a> {
    Tasks(&'a [Uuid]),
    /// The tasks that own these steps (a step never changes task).
    TasksOfSteps(&'a [Uuid]),
    /// These tasks, skipping those another transaction holds. Claims lock
    /// this way: they hold queue messages already, and waiting for a task
    /// while holding its messages would invert the one lock order (task rows,
    /// then messages) that completions and cancels follow.
    FreeTasks(&'a [Uuid]),
}

/// Locks the tasks and loads their steps. Returns the tasks found (by id) and
/// the database clock read after the locks were granted.
pub async fn lock_tasks(
    store: &PgStore,
    conn: &mut PgConnection,
    lock: Lock<'_>,
) -> Result<(HashMap<Uuid, LoadedTask>, Timestamp)> {
    let (filter, ids, wait) = match lock {
        Lock::Tasks(ids) => ("id = ANY($1)", ids, ""),
        Lock::TasksOfSteps(ids) => (
            "id IN (SELECT task_id FROM tasker.steps WHERE id = ANY($1))",
            ids,
            "",
        ),
        Lock::FreeTasks(ids) => ("id = ANY($1)", ids, " SKIP LOCKED"),
    };
    let task_rows = sqlx::query(&format!(
        "SELECT id, namespace, template_id, state, finished_at, deadline_at FROM tasker.tasks \
         WHERE {filter} ORDER BY id FOR UPDATE{wait}"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let ids: Vec<Uuid> = task_rows.iter().map(|r| r.get("id")).collect();

    let step_rows = sqlx::query(
        "SELECT task_id, id, state, attempt, lease_token, lease_expires_at, msg_id, retry_at, \
                worker_id, started_at, finished_at, branches, fan_out_count, fan_out_of, \
                fan_out_number, clock_timestamp() AS now \
         FROM tasker.steps WHERE task_id = ANY($1) ORDER BY task_id, position",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;

    let mut now: Option<Timestamp> = None;
    let mut steps: HashMap<Uuid, Vec<StepRow>> = HashMap::new();
    for row in &step_rows {
        now = Some(row.get("now"));
        let state: String = row.get("state");
        let attempt: i32 = row.get("attempt");
        steps.entry(row.get("task_id")).or_default().push(StepRow {
            id: row.get("id"),
            state: state.parse().map_err(|m: String| corrupt(&m))?,
            attempt: attempt as u32,
            lease_token: row.get("lease_token"),
            lease_expires_at: row.get("lease_expires_at"),
            msg_id: row.get("msg_id"),
            retry_at: row.get("retry_at"),
            worker_id: row.get("worker_id"),
            started_at: row.get("started_at"),
            finished_at: row.get("finished_at"),
            branches: row.get("branches"),
            fan_out_count: row.get::<Option<i32>, _>("fan_out_count").map(|n| n as u32),
            instance: match (
                row.get::<Option<i32>, _>("fan_out_of"),
                row.get::<Option<i32>, _>("fan_out_number"),
            ) {
                (Some(of), Some(number)) => Some(Instance {
                    of: of as usize,
                    number: number as u32,
                }),
                _ => None,
            },
        });
    }
    let now = match now {
        Some(now) => now,
        None => sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?,
    };

    let mut loaded = HashMap::with_capacity(task_rows.len());
    for row in task_rows {
        let id: Uuid = row.get("id");
        let namespace: String = row.get("namespace");
        let state: String = row.get("state");
        let template = catalog::template_by_id(store, row.get("template_id")).await?;
        let queue = catalog::queue_of(store, &namespace).await?;
        let steps = steps.remove(&id).unwrap_or_default();
        let defined = template.definition.steps.len();
        if steps.len() < defined
            || steps[..defined].iter().any(|s| s.instance.is_some())
            || steps[defined..]
                .iter()
                .any(|s| s.instance.is_none_or(|i| i.of >= defined))
        {
            return Err(corrupt(&format!("task {id} has {} step rows", steps.len())));
        }
        loaded.insert(
            id,
            LoadedTask {
                namespace,
                queue,
                template,
                task: TaskRow {
                    id,
                    state: state.parse().map_err(|m: String| corrupt(&m))?,
                    finished_at: row.get("finished_at"),
                    deadline_at: row.get("deadline_at"),
                },
                steps,
                max_fan_out: store.max_fan_out(),
            },
        );
    }
    Ok((loaded, now))
}

fn corrupt(message: &str) -> Error {
    Error::Database(format!("unexpected row: {message}").into())
}

/// Whether a commit waits for its WAL record to reach disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Results, creations, failures, cancellations: accepted work must
    /// survive a crash.
    Flushed,
    /// Claims and heartbeats: losing one in a crash only means the step is
    /// delivered again when its (shorter) lease runs out, and the lease fences
    /// the forgotten holder. Skipping the flush wait saves a disk sync per
    /// claim; any later flushed commit makes it durable anyway (the WAL is
    /// written in order).
    Relaxed,
}

/// Commits `tx`, without waiting for the flush when `durability` allows.
pub async fn commit(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    durability: Durability,
) -> Result<()> {
    if durability == Durability::Relaxed {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(commit_error)
}

/// Runs `op` on one locked task (`what` names it in a not-found error),
/// writes its plan and commits; retried whole after a deadlock.
pub async fn with_task<T, F>(
    store: &PgStore,
    lock: Lock<'_>,
    what: &str,
    durability: Durability,
    op: F,
) -> Result<T>
where
    F: Fn(&mut TaskRun<'_>, Timestamp) -> Result<T>,
{
    with_retry(store, || async {
        let mut tx = store.pool.begin().await.map_err(db)?;
        let (loaded, now) = lock_tasks(store, &mut tx, lock).await?;
        let task = loaded
            .values()
            .next()
            .ok_or_else(|| Error::not_found(what))?;
        let mut run = task.run();
        let value = op(&mut run, now)?;
        let written = plan_writer::write(
            &mut tx,
            store.node_id(),
            &mut [Pending {
                queue: &task.queue,
                namespace: &task.namespace,
                run: &mut run,
            }],
        )
        .await?;
        commit(tx, durability).await?;
        store.after_commit(&written);
        Ok(value)
    })
    .await
}

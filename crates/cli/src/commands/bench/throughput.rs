//! `throughput`: how fast a node runs tasks, two ways.
//!
//! - **Burn-down of pre-created tasks**: N tasks of a shape are created
//!   while no worker runs, then M worker processes of C slots each start and
//!   run them all; the window is the first claim → the last finalization.
//! - **Created while running**: the workers run first, then N one-step tasks
//!   are created in batches (`POST /v1/tasks/batch`, [`BATCH_SIZE`] per
//!   request, [`BATCHES_IN_FLIGHT`] requests at once) and run as they
//!   arrive; the window is the first task's creation → the last
//!   finalization, so creating them is part of the rate.
//!
//! Both windows come from the database clock; row churn and commits per
//! step from PostgreSQL's statistics over the same interval. On a SQLite
//! node the same instants are read over the API
//! ([`over_http`](super::over_http)) and the statistics only PostgreSQL
//! keeps are not measured (`None`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use sqlx::PgPool;
use tasker_client::{Client, NewTask};
use tasker_model::Timestamp;

use super::database::{self, Churn};
use super::over_http;
use super::processes::{WorkerProcesses, memory_of};
use super::progress::Progress;
use super::shapes::{NAMESPACE, Shape};

/// Creates in flight at once while filling the queue.
const CREATE_CONCURRENCY: usize = 16;
/// Tasks per batch request when creating while the workers run.
pub const BATCH_SIZE: usize = 100;
/// Batch requests in flight when creating while the workers run.
pub const BATCHES_IN_FLIGHT: usize = 4;

/// When a run's tasks are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Created {
    /// All of them, before the workers start (a burn-down).
    Before,
    /// In batches, while the workers run.
    WhileRunning,
}

impl Created {
    pub fn label(self) -> &'static str {
        match self {
            Created::Before => "before",
            Created::WhileRunning => "while running",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BurnDown {
    pub shape: &'static str,
    pub created: Created,
    pub tasks: usize,
    pub steps: usize,
    pub workers: usize,
    pub concurrency: usize,
    /// First claim (tasks created before) or first creation (tasks created
    /// while running) → last finalization, database clock.
    pub seconds: f64,
    pub tasks_per_second: f64,
    pub steps_per_second: f64,
    /// Transactions the database committed or rolled back, per step;
    /// `None`: not measured (SQLite).
    pub transactions_per_step: Option<f64>,
    /// Row versions left dead (updates and deletes), per step, by table;
    /// `None`: not measured (SQLite).
    pub dead_rows_per_step: Option<BTreeMap<String, f64>>,
    /// The server node's peak resident memory so far (when the benchmark
    /// started the node).
    pub server_peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Workers<'a> {
    pub server: &'a str,
    pub token: Option<&'a str>,
    pub count: usize,
    pub concurrency: usize,
    pub report_requests: usize,
}

/// Runs `tasks` tasks of `shape`, created as `created` says. With `pool`
/// (PostgreSQL) the run is watched and timed with SQL and its statistics
/// are read; without, it is watched and timed over the API.
pub async fn run(
    client: &Client,
    pool: Option<&PgPool>,
    (shape, created): (Shape, Created),
    tasks: usize,
    workers: &Workers<'_>,
    server_pid: Option<u32>,
) -> anyhow::Result<BurnDown> {
    let tag = format!("bench:burn-down-{}", uuid::Uuid::now_v7());
    let new = NewTask::new(NAMESPACE, shape.name).tags([tag.clone()]);
    // How many of the run's tasks exist so far.
    let existing = AtomicUsize::new(0);
    if created == Created::Before {
        create_one_by_one(client, &new, tasks).await?;
        existing.store(tasks, Ordering::Release);
    }
    let feed = async {
        match created {
            Created::Before => Ok(()),
            Created::WhileRunning => create_in_batches(client, &new, tasks, &existing).await,
        }
    };

    let steps = tasks * shape.step_count();
    let ((first_claim, last_finish, complete), statistics) = match pool {
        Some(pool) => {
            let (window, transactions, churn) =
                run_on_postgres(pool, client, &tag, (tasks, shape, created), workers, feed).await?;
            let transactions_per_step = transactions as f64 / steps as f64;
            (
                window,
                Some((transactions_per_step, dead_per_step(&churn, steps))),
            )
        }
        None => {
            let running = start_workers(client, workers).await?;
            let waited = async {
                tokio::try_join!(
                    feed,
                    over_http::wait_ended(client, &tag, (tasks, &existing), shape)
                )
            }
            .await;
            running.stop().await;
            waited?;
            (over_http::window(client, &tag, created).await?, None)
        }
    };
    if complete as usize != tasks {
        bail!("{complete} of {tasks} {} tasks completed", shape.name);
    }
    let (Some(first), Some(last)) = (first_claim, last_finish) else {
        bail!("the run left no start or finish times");
    };
    let seconds = ((last - first).num_microseconds().unwrap_or(0) as f64 / 1e6).max(1e-6);
    let (transactions_per_step, dead_rows_per_step) = statistics.unzip();
    Ok(BurnDown {
        shape: shape.name,
        created,
        tasks,
        steps,
        workers: workers.count,
        concurrency: workers.concurrency,
        seconds,
        tasks_per_second: tasks as f64 / seconds,
        steps_per_second: steps as f64 / seconds,
        transactions_per_step,
        dead_rows_per_step,
        server_peak_rss_bytes: server_pid.and_then(memory_of).map(|(_, peak)| peak),
    })
}

/// Fills the queue before a burn-down, [`CREATE_CONCURRENCY`] requests at a
/// time.
async fn create_one_by_one(client: &Client, new: &NewTask, tasks: usize) -> anyhow::Result<()> {
    let mut progress = Progress::new(
        format!("throughput: creating {} tasks", new.template),
        tasks as u64,
    );
    let mut created = futures::stream::iter(0..tasks)
        .map(|_| client.task_create(new))
        .buffer_unordered(CREATE_CONCURRENCY);
    while created.try_next().await?.is_some() {
        progress.inc();
    }
    progress.finish();
    Ok(())
}

/// Creates `tasks` tasks in batches of [`BATCH_SIZE`], [`BATCHES_IN_FLIGHT`]
/// requests at a time, counting them in `existing` (the workers run
/// meanwhile; the progress shown is theirs).
async fn create_in_batches(
    client: &Client,
    new: &NewTask,
    tasks: usize,
    existing: &AtomicUsize,
) -> anyhow::Result<()> {
    let batch = vec![new.clone(); BATCH_SIZE];
    let sizes = (0..tasks)
        .step_by(BATCH_SIZE)
        .map(|start| (tasks - start).min(BATCH_SIZE));
    let mut requests = futures::stream::iter(sizes)
        .map(|size| client.task_create_batch(&batch[..size]))
        .buffer_unordered(BATCHES_IN_FLIGHT);
    while let Some(answers) = requests.try_next().await? {
        for answer in &answers {
            if let Err(refused) = answer {
                bail!("a batched create was refused: {refused}");
            }
        }
        existing.fetch_add(answers.len(), Ordering::Release);
    }
    Ok(())
}

/// Starts the worker processes and waits until each has registered with
/// the server, so that a run timed from its first creation does not count
/// the workers' start-up.
async fn start_workers(client: &Client, workers: &Workers<'_>) -> anyhow::Result<WorkerProcesses> {
    let running = WorkerProcesses::start(
        workers.server,
        workers.token,
        NAMESPACE,
        workers.count,
        (workers.concurrency, workers.report_requests),
    )?;
    let ids = running.worker_ids();
    let started = Instant::now();
    loop {
        let live = client
            .cluster()
            .await
            .context("cannot list the workers")?
            .workers;
        let registered = ids
            .iter()
            .filter(|id| live.iter().any(|w| &w.worker.worker_id == *id))
            .count();
        if registered == ids.len() {
            return Ok(running);
        }
        if started.elapsed() > Duration::from_secs(30) {
            running.stop().await;
            bail!(
                "{registered} of {} bench workers registered within 30s",
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// First claim, last finish and tasks complete.
type Window = (Option<Timestamp>, Option<Timestamp>, i64);

/// Runs the workers (and `feed`, which creates the tasks when they are
/// created while running) until every task of `tag` ended, reading
/// PostgreSQL's transaction count and row churn before and after: the
/// window, the transactions and the churn of the run.
async fn run_on_postgres(
    pool: &PgPool,
    client: &Client,
    tag: &str,
    (tasks, shape, created): (usize, Shape, Created),
    workers: &Workers<'_>,
    feed: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<(Window, i64, BTreeMap<String, Churn>)> {
    // The creation's own transactions reach the statistics late: without
    // waiting them out they would be counted as the burn-down's.
    database::let_statistics_settle().await;
    let churn_before = database::churn(pool).await?;
    let transactions_before = database::transactions(pool).await?;
    let running = start_workers(client, workers).await?;
    let waited = async { tokio::try_join!(feed, wait_finished(pool, tag, tasks, shape)) }.await;
    running.stop().await;
    waited?;
    database::let_statistics_settle().await;
    let transactions = database::transactions(pool).await? - transactions_before;
    let churn = database::churn_between(&churn_before, &database::churn(pool).await?);

    let window: Window = sqlx::query_as(
        "SELECT CASE WHEN $2 THEN min(created_at) ELSE \
                (SELECT min(tr.at) FROM tasker.transitions tr JOIN tasker.tasks t ON t.id = tr.task_id \
                 WHERE t.tags @> ARRAY[$1] AND tr.step_id IS NOT NULL AND tr.to_state = 'running') END, \
                max(finished_at), count(*) FILTER (WHERE state = 'complete') \
         FROM tasker.tasks WHERE tags @> ARRAY[$1]",
    )
    .bind(tag)
    .bind(created == Created::WhileRunning)
    .fetch_one(pool)
    .await?;
    Ok((window, transactions, churn))
}

fn dead_per_step(churn: &BTreeMap<String, Churn>, steps: usize) -> BTreeMap<String, f64> {
    churn
        .iter()
        .filter(|(_, delta)| delta.dead() > 0)
        .map(|(table, delta)| (table.clone(), delta.dead() as f64 / steps as f64))
        .collect()
}

/// Waits until every task of the run has ended; gives up when none ends for
/// a minute.
async fn wait_finished(pool: &PgPool, tag: &str, tasks: usize, shape: Shape) -> anyhow::Result<()> {
    let mut progress = Progress::new(
        format!("throughput: running {} tasks", shape.name),
        tasks as u64,
    );
    let mut last = (0, Instant::now());
    loop {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasker.tasks WHERE tags @> ARRAY[$1] AND state <> 'running'",
        )
        .bind(tag)
        .fetch_one(pool)
        .await
        .context("cannot count finished tasks")?;
        progress.set(ended as u64);
        if ended as usize >= tasks {
            progress.finish();
            return Ok(());
        }
        if ended > last.0 {
            last = (ended, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            bail!("no task finished for 60s ({ended} of {tasks} done): are the workers running?");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! `soak`: steady work for a few minutes in three phases, to show whether
//! Tasker stays healthy when PostgreSQL cannot reclaim dead rows.
//!
//! ```text
//!   clean ──────────────► held ───────────────────────► released ─────────►
//!   steady load           + another session holds        holder rolled back:
//!                         `BEGIN; SELECT txid_current()`  vacuum may reclaim
//!                         idle: nothing dead is reclaimed  what piled up
//! ```
//!
//! A feeder keeps the namespace's queue at a fixed backlog (one-step tasks,
//! created in batches) while the worker processes burn it down, so the load
//! is the same in every phase and only the database's state differs. Per
//! phase: steps finished per second, the claim latency of those steps
//! (task created → step claimed, database clock), and the dead tuples of the
//! hot tables at the end of the phase. A healthy design keeps the middle
//! phase close to the first and returns to it after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};
use tasker_client::{Client, NewTask};
use tasker_model::Timestamp;

use super::processes::WorkerProcesses;
use super::progress::Progress;
use super::shapes::{NAMESPACE, ONE};
use super::summary::Summary;
use super::throughput::Workers;

/// Tasks per batch request while topping the backlog up.
const FEED_BATCH: usize = 100;
/// The tag of every task the soak creates.
const TAG: &str = "bench:soak";
/// How often the feeder looks at the backlog.
const FEED_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub shape: &'static str,
    pub workers: usize,
    pub concurrency: usize,
    /// Queue messages (ready or running steps) the feeder keeps waiting.
    pub backlog: usize,
    pub phases: Vec<SoakPhase>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakPhase {
    /// `clean`, `held` or `released`.
    pub name: &'static str,
    pub seconds: f64,
    /// Steps that finished within the phase.
    pub steps: u64,
    pub steps_per_second: f64,
    /// Task created → its step claimed, for the steps finished in the phase.
    pub claim_latency: Option<Summary>,
    /// Dead tuples at the end of the phase, per table of the `tasker` and
    /// `pgmq` schemas (tables with none left out).
    pub dead_tuples: BTreeMap<String, i64>,
    /// Size of those tables with their indexes at the end of the phase.
    pub table_bytes: i64,
}

impl SoakPhase {
    pub fn dead_tuples_total(&self) -> i64 {
        self.dead_tuples.values().sum()
    }
}

pub async fn run(
    client: &Client,
    pool: &PgPool,
    database_url: &str,
    workers: &Workers<'_>,
    phase_length: Duration,
) -> anyhow::Result<Soak> {
    let backlog = (workers.count * workers.concurrency * 2).max(FEED_BATCH);
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = tokio::spawn(feed(client.clone(), pool.clone(), backlog, stop.clone()));
    let running = WorkerProcesses::start(
        workers.server,
        workers.token,
        NAMESPACE,
        workers.count,
        (workers.concurrency, workers.report_requests),
    )?;

    let phases = match first_finish(pool, &feeder).await {
        Ok(()) => run_phases(pool, database_url, phase_length).await,
        Err(error) => Err(error),
    };
    stop.store(true, Ordering::Relaxed);
    let fed = feeder.await.context("the feeder panicked")?;
    // The backlog runs out before the workers stop: the run leaves no task
    // behind unfinished.
    let drained = match &fed {
        Ok(()) => drain(pool).await,
        Err(_) => Ok(()),
    };
    running.stop().await;
    fed?;
    let phases = phases?;
    drained?;
    Ok(Soak {
        shape: ONE.name,
        workers: workers.count,
        concurrency: workers.concurrency,
        backlog,
        phases,
    })
}

async fn run_phases(
    pool: &PgPool,
    database_url: &str,
    phase_length: Duration,
) -> anyhow::Result<Vec<SoakPhase>> {
    let mut phases = vec![measure_phase(pool, "clean", phase_length).await?];

    let mut holder = PgConnection::connect(database_url)
        .await
        .context("cannot open the connection that holds a transaction")?;
    sqlx::query("BEGIN").execute(&mut holder).await?;
    sqlx::query("SELECT txid_current()")
        .execute(&mut holder)
        .await?;
    let held = measure_phase(pool, "held", phase_length).await;
    sqlx::query("ROLLBACK").execute(&mut holder).await?;
    holder.close().await?;
    phases.push(held?);

    phases.push(measure_phase(pool, "released", phase_length).await?);
    Ok(phases)
}

async fn measure_phase(
    pool: &PgPool,
    name: &'static str,
    length: Duration,
) -> anyhow::Result<SoakPhase> {
    let started: Timestamp = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await?;
    let mut progress = Progress::new(format!("soak: {name}"), length.as_secs().max(1));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    for _ in 0..length.as_secs().max(1) {
        ticker.tick().await;
        progress.inc();
    }
    progress.finish();
    let ended: Timestamp = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await?;

    let waits: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM s.started_at - t.created_at)::float8 * 1000 \
         FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id \
         WHERE s.state = 'complete' AND s.finished_at >= $1 AND s.finished_at < $2",
    )
    .bind(started)
    .bind(ended)
    .fetch_all(pool)
    .await
    .context("cannot read the phase's steps")?;
    let seconds = ((ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6).max(1e-6);
    let steps = waits.len() as u64;
    let (dead_tuples, table_bytes) = dead_tuples(pool).await?;
    Ok(SoakPhase {
        name,
        seconds,
        steps,
        steps_per_second: steps as f64 / seconds,
        claim_latency: Summary::of(waits),
        dead_tuples,
        table_bytes,
    })
}

/// Dead tuples per table and the tables' total size, as the statistics say now.
async fn dead_tuples(pool: &PgPool) -> anyhow::Result<(BTreeMap<String, i64>, i64)> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query(
        "SELECT schemaname || '.' || relname, n_dead_tup, pg_total_relation_size(relid) \
         FROM pg_stat_user_tables WHERE schemaname IN ('tasker', 'pgmq')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut bytes = 0;
    let mut dead = BTreeMap::new();
    for row in &rows {
        bytes += row.get::<i64, _>(2);
        let count: i64 = row.get(1);
        if count > 0 {
            dead.insert(row.get::<String, _>(0), count);
        }
    }
    Ok((dead, bytes))
}

/// Waits until the workers have finished a soak task: the phases measure
/// a steady state, not the workers' start.
async fn first_finish(
    pool: &PgPool,
    feeder: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        if feeder.is_finished() {
            anyhow::bail!("the feeder stopped before any soak task finished");
        }
        let finished: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tasker.tasks WHERE tags @> ARRAY[$1] AND state = 'complete')",
        )
        .bind(TAG)
        .fetch_one(pool)
        .await?;
        if finished {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("no soak task finished within 60s: are the workers running?");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the queue is empty, giving up when it stops shrinking for
/// a minute.
async fn drain(pool: &PgPool) -> anyhow::Result<()> {
    let depth_query = format!("SELECT count(*) FROM pgmq.q_tasker_{NAMESPACE}");
    let mut last = (i64::MAX, std::time::Instant::now());
    loop {
        let depth: i64 = sqlx::query_scalar(&depth_query).fetch_one(pool).await?;
        if depth == 0 {
            return Ok(());
        }
        if depth < last.0 {
            last = (depth, std::time::Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the soak's backlog stopped shrinking at {depth} steps");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps about `backlog` messages in the namespace's queue until `stop`.
async fn feed(
    client: Client,
    pool: PgPool,
    backlog: usize,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let batch = vec![NewTask::new(NAMESPACE, ONE.name).tags([TAG]); FEED_BATCH];
    let depth_query = format!("SELECT count(*) FROM pgmq.q_tasker_{NAMESPACE}");
    while !stop.load(Ordering::Relaxed) {
        let depth: i64 = sqlx::query_scalar(&depth_query)
            .fetch_one(&pool)
            .await
            .context("cannot read the queue's depth")?;
        let mut missing = backlog.saturating_sub(depth as usize);
        while missing > 0 && !stop.load(Ordering::Relaxed) {
            let size = missing.min(FEED_BATCH);
            for answer in client.task_create_batch(&batch[..size]).await? {
                answer
                    .map_err(|refused| anyhow::anyhow!("a soak create was refused: {refused}"))?;
            }
            missing -= size;
        }
        tokio::time::sleep(FEED_INTERVAL).await;
    }
    Ok(())
}

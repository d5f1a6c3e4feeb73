//! `create`: tasks created over HTTP one by one (each request waits for the
//! previous answer), with many requests in flight, and in batches of
//! [`BATCH_SIZE`] (`POST /v1/tasks/batch`, one request at a time). The
//! tasks are then cancelled, so that they never reach a worker of a later
//! scenario.

use std::time::Instant;

use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use tasker_client::{Client, NewTask};

use super::progress::Progress;
use super::shapes::{NAMESPACE, Shape};
use super::summary::Summary;

/// Requests in flight for the concurrent run.
pub const CONCURRENCY: usize = 16;
/// Tasks per request for the batched run.
pub const BATCH_SIZE: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Creation {
    pub shape: &'static str,
    pub tasks: usize,
    /// One request at a time: each request's time as the client saw it.
    pub sequential: Option<Summary>,
    pub sequential_per_second: f64,
    /// [`CONCURRENCY`] requests in flight.
    pub concurrent_per_second: f64,
    pub concurrency: usize,
    /// Batches of [`BATCH_SIZE`], one request at a time.
    pub batched_per_second: f64,
    pub batch_size: usize,
}

pub async fn run(client: &Client, shape: Shape, tasks: usize) -> anyhow::Result<Creation> {
    let new = NewTask::new(NAMESPACE, shape.name).tags(["bench:create"]);
    let mut ids = Vec::with_capacity(tasks * 3);

    let mut progress = Progress::new(format!("create: {} one by one", shape.name), tasks as u64);
    let mut times = Vec::with_capacity(tasks);
    let started = Instant::now();
    for _ in 0..tasks {
        let sent = Instant::now();
        let (task, _) = client.task_create(&new).await?;
        times.push(sent.elapsed().as_secs_f64() * 1000.0);
        ids.push(task.id);
        progress.inc();
    }
    let sequential_per_second = tasks as f64 / started.elapsed().as_secs_f64();
    progress.finish();

    let mut progress = Progress::new(
        format!("create: {} with {CONCURRENCY} in flight", shape.name),
        tasks as u64,
    );
    let started = Instant::now();
    let mut created = futures::stream::iter(0..tasks)
        .map(|_| client.task_create(&new))
        .buffer_unordered(CONCURRENCY);
    while let Some((task, _)) = created.try_next().await? {
        ids.push(task.id);
        progress.inc();
    }
    let concurrent_per_second = tasks as f64 / started.elapsed().as_secs_f64();
    progress.finish();

    let mut progress = Progress::new(
        format!("create: {} in batches of {BATCH_SIZE}", shape.name),
        tasks as u64,
    );
    let batch = vec![new.clone(); BATCH_SIZE];
    let started = Instant::now();
    let mut left = tasks;
    while left > 0 {
        let size = left.min(BATCH_SIZE);
        for answer in client.task_create_batch(&batch[..size]).await? {
            let (task, _) = answer
                .map_err(|refused| anyhow::anyhow!("a batched create was refused: {refused}"))?;
            ids.push(task.id);
            progress.inc();
        }
        left -= size;
    }
    let batched_per_second = tasks as f64 / started.elapsed().as_secs_f64();
    progress.finish();

    let mut progress = Progress::new("create: cancelling the created tasks", ids.len() as u64);
    let mut cancelled = futures::stream::iter(ids)
        .map(|id| client.task_cancel(id, Some("benchmark cleanup")))
        .buffer_unordered(CONCURRENCY);
    while cancelled.try_next().await?.is_some() {
        progress.inc();
    }
    progress.finish();

    Ok(Creation {
        shape: shape.name,
        tasks,
        sequential: Summary::of(times),
        sequential_per_second,
        concurrent_per_second,
        concurrency: CONCURRENCY,
        batched_per_second,
        batch_size: BATCH_SIZE,
    })
}

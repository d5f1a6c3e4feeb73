//! `create`: tasks created over HTTP one by one (each request waits for the
//! previous answer) and with many requests in flight. The tasks are then
//! cancelled, so that they never reach a worker of a later scenario.

use std::time::Instant;

use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use tasker_client::{Client, NewTask};

use super::progress::Progress;
use super::shapes::{NAMESPACE, Shape};
use super::summary::Summary;

/// Requests in flight for the concurrent run.
pub const CONCURRENCY: usize = 16;

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
}

pub async fn run(client: &Client, shape: Shape, tasks: usize) -> anyhow::Result<Creation> {
    let new = NewTask::new(NAMESPACE, shape.name).tags(["bench:create"]);
    let mut ids = Vec::with_capacity(tasks * 2);

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
    })
}

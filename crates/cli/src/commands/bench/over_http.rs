//! What a throughput run reads over the API when it cannot read the
//! database (a SQLite node): whether every task of the run has ended, and
//! the window the rate is taken over — the first step claim of the run (the
//! earliest step `running` transition; the first task's `created_at` when
//! the tasks were created while running) to the last task's `finished_at`.
//! These are the instants the PostgreSQL path reads with SQL, recorded by
//! the same server clock, so the two rates mean the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use tasker_client::Client;
use tasker_model::wire::TaskFilter;
use tasker_model::{Task, TaskState, Timestamp};

use super::progress::Progress;
use super::shapes::Shape;
use super::throughput::Created;

/// The largest page the API serves.
const PAGE: u32 = 500;
/// Histories read at once while finding the first claim.
const HISTORY_CONCURRENCY: usize = 8;
/// How often to ask how many tasks still run: each ask is a read the node
/// serves while it is being measured, so not too often.
const POLL: Duration = Duration::from_millis(500);

/// Every task carrying `tag`, optionally only those in `state`.
async fn tagged(client: &Client, tag: &str, state: Option<TaskState>) -> anyhow::Result<Vec<Task>> {
    let mut tasks = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .task_list(&TaskFilter {
                tag: Some(tag.to_owned()),
                state,
                limit: Some(PAGE),
                cursor,
                ..TaskFilter::default()
            })
            .await
            .context("cannot list the burn-down's tasks")?;
        tasks.extend(page.tasks);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(tasks),
        }
    }
}

/// Waits until every task of the run has ended; gives up when none ends for
/// a minute. `created` counts the run's tasks created so far (all of them
/// when they were created before the run).
pub async fn wait_ended(
    client: &Client,
    tag: &str,
    (tasks, created): (usize, &AtomicUsize),
    shape: Shape,
) -> anyhow::Result<()> {
    let mut progress = Progress::new(
        format!("throughput: running {} tasks", shape.name),
        tasks as u64,
    );
    let mut last = (0, Instant::now());
    loop {
        // Counted before the listing, so that a task created meanwhile can
        // only make the count of ended tasks too low, never too high.
        let existing = created.load(Ordering::Acquire);
        let running = tagged(client, tag, Some(TaskState::Running)).await?.len();
        let ended = existing.saturating_sub(running);
        progress.set(ended as u64);
        if ended >= tasks {
            progress.finish();
            return Ok(());
        }
        if ended > last.0 {
            last = (ended, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            bail!("no task finished for 60s ({ended} of {tasks} done): are the workers running?");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The start of the run (its first step claim; its first creation when the
/// tasks were created while running) and its last finish, and how many of
/// its tasks completed.
pub async fn window(
    client: &Client,
    tag: &str,
    created: Created,
) -> anyhow::Result<(Option<Timestamp>, Option<Timestamp>, i64)> {
    let tasks = tagged(client, tag, None).await?;
    let complete = tasks
        .iter()
        .filter(|task| task.state == TaskState::Complete)
        .count() as i64;
    let last_finish = tasks.iter().filter_map(|task| task.finished_at).max();
    if created == Created::WhileRunning {
        let first_created = tasks.iter().map(|task| task.created_at).min();
        return Ok((first_created, last_finish, complete));
    }
    let first_claims: Vec<Option<Timestamp>> = futures::stream::iter(&tasks)
        .map(|task| async move {
            let history = client.task_history(task.id).await?;
            Ok::<_, anyhow::Error>(
                history
                    .iter()
                    .filter(|t| t.step_id.is_some() && t.to_state == "running")
                    .map(|t| t.at)
                    .min(),
            )
        })
        .buffer_unordered(HISTORY_CONCURRENCY)
        .try_collect()
        .await?;
    let first_claim = first_claims.into_iter().flatten().min();
    Ok((first_claim, last_finish, complete))
}

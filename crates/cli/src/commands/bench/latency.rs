//! `latency`: one task at a time through one worker process, for each DAG
//! shape. Create → complete comes from the task's own timestamps and each
//! handoff (a parent's completion → its child's start) from the recorded
//! transitions, both on the database clock, so polling for the end adds
//! nothing to the figures.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;
use tasker_client::{Client, NewTask};
use tasker_model::{TaskState, Timestamp, Transition};
use uuid::Uuid;

use super::progress::Progress;
use super::shapes::{NAMESPACE, Shape};
use super::summary::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct ShapeLatency {
    pub shape: &'static str,
    pub steps: usize,
    /// `created_at` → `finished_at` of each task.
    pub create_to_complete: Option<Summary>,
    /// The start of a step (its first `running`) → the start of the step it
    /// released (the last parent to start, for a join). With a no-op handler
    /// this is what one step costs on the critical path: the report, its
    /// commit and the next claim.
    pub handoff: Option<Summary>,
}

/// Runs `runs` tasks of `shape` one after another (after two warm-up runs)
/// and summarizes them.
pub async fn run(client: &Client, shape: Shape, runs: usize) -> anyhow::Result<ShapeLatency> {
    let mut progress = Progress::new(format!("latency: {}", shape.name), runs as u64);
    let mut finished = Vec::with_capacity(runs);
    for run in 0..runs + 2 {
        let (task, _) = client
            .task_create(&NewTask::new(NAMESPACE, shape.name).tags(["bench:latency"]))
            .await?;
        let done = wait_finished(client, task.id).await?;
        if run >= 2 {
            finished.push(done);
            progress.inc();
        }
    }
    progress.finish();

    let mut totals = Vec::with_capacity(runs);
    let mut handoffs = Vec::new();
    for (id, created_at, finished_at) in finished {
        totals.push(millis(finished_at - created_at));
        handoffs.extend(handoffs_of(shape, &client.task_history(id).await?));
    }
    Ok(ShapeLatency {
        shape: shape.name,
        steps: shape.step_count(),
        create_to_complete: Summary::of(totals),
        handoff: Summary::of(handoffs),
    })
}

/// Waits for a task to end; an end other than `complete` is an error, since
/// every benchmark step succeeds.
async fn wait_finished(client: &Client, id: Uuid) -> anyhow::Result<(Uuid, Timestamp, Timestamp)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task = client.task_get(id).await?;
        match (task.state, task.finished_at) {
            (TaskState::Complete, Some(at)) => return Ok((id, task.created_at, at)),
            (TaskState::Running, _) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (TaskState::Running, _) => {
                bail!("task {id} did not finish within 60s: is a bench worker running?")
            }
            (state, _) => bail!("task {id} ended {state}, not complete"),
        }
    }
}

/// Milliseconds from the start of each step's last parent to start to the
/// step's own first start.
fn handoffs_of(shape: Shape, history: &[Transition]) -> Vec<f64> {
    let mut started: HashMap<&str, Timestamp> = HashMap::new();
    for transition in history {
        if let Some(step) = transition.step_name.as_deref()
            && transition.to_state == "running"
        {
            started.entry(step).or_insert(transition.at);
        }
    }
    shape
        .steps
        .iter()
        .filter(|(_, parents)| !parents.is_empty())
        .filter_map(|(step, parents)| {
            let released = parents.iter().map(|p| started.get(p)).max()??;
            Some(millis(*started.get(step)? - *released))
        })
        .collect()
}

fn millis(duration: chrono::TimeDelta) -> f64 {
    duration.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::shapes::DIAMOND;

    fn transition(step: &str, to: &str, at_ms: i64) -> Transition {
        Transition {
            id: 0,
            task_id: Uuid::nil(),
            step_id: Some(Uuid::nil()),
            step_name: Some(step.to_owned()),
            from_state: None,
            to_state: to.to_owned(),
            attempt: Some(1),
            worker_id: None,
            node_id: None,
            reason: None,
            at: Timestamp::UNIX_EPOCH + chrono::TimeDelta::milliseconds(at_ms),
        }
    }

    #[test]
    fn a_handoff_runs_from_the_last_parent_start_to_the_child_start() {
        let history = [
            transition("start", "running", 0),
            transition("start", "complete", 10),
            transition("left", "running", 10),
            transition("right", "running", 13),
            transition("left", "complete", 20),
            transition("right", "retrying", 30),
            transition("right", "running", 40),
            transition("right", "complete", 45),
            transition("join", "running", 45),
        ];
        let mut handoffs = handoffs_of(DIAMOND, &history);
        handoffs.sort_by(f64::total_cmp);
        // left and right after start; join after right's first start.
        assert_eq!(handoffs, vec![10.0, 13.0, 32.0]);
    }
}

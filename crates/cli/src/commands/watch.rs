//! `tasker task watch`: follows a task until it finishes. On a terminal the
//! step table is redrawn in place; otherwise (a pipe, a CI log) one line is
//! printed per change, and with `--output json` one JSON object per change.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use tasker_client::{Client, Step, StepState, Task, TaskState};
use tasker_model::Timestamp;
use uuid::Uuid;

use crate::cli::Output;
use crate::output::{Table, emit};
use crate::status::Status;

/// How often the task and its steps are fetched.
const INTERVAL: Duration = Duration::from_millis(500);
/// How long the server may stay unreachable before watching gives up.
const PATIENCE: Duration = Duration::from_secs(30);

pub async fn run(client: &Client, id: Uuid, output: Output) -> anyhow::Result<Status> {
    let live = output == Output::Text && std::io::stdout().is_terminal();
    let mut tracker = Tracker::default();
    let mut drawn_lines = 0;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let fetched = async {
            Ok::<_, tasker_client::Error>((
                client.task_get(id).await?,
                client.task_steps(id).await?,
            ))
        }
        .await;
        let (task, steps) = match fetched {
            Ok(fetched) => {
                unreachable_since = None;
                fetched
            }
            Err(e) if e.is_unavailable() => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    eprintln!("server unavailable ({e}); still trying");
                    Instant::now()
                });
                if since.elapsed() > PATIENCE {
                    return Err(e.into());
                }
                tokio::time::sleep(INTERVAL).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let now = chrono::Utc::now();
        if live {
            let text = frame(&task, &steps, now);
            // Back to the start of the previous frame, clear it, draw anew.
            let back = if drawn_lines > 0 {
                format!("\x1b[{drawn_lines}F\x1b[J")
            } else {
                String::new()
            };
            emit(&format!("{back}{text}"))?;
            drawn_lines = text.lines().count();
        } else {
            for change in tracker.changes(&task, &steps) {
                let line = match output {
                    Output::Json => change_json(&change)?,
                    Output::Text => change_line(&change, now),
                };
                emit(&format!("{line}\n"))?;
            }
        }
        if task.state.is_terminal() {
            return Ok(if task.state == TaskState::Complete {
                Status::Ok
            } else {
                Status::Failed
            });
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// What changed between two looks at a task.
#[derive(Debug, PartialEq)]
enum Change<'a> {
    Step(&'a Step),
    Task(&'a Task),
}

/// Remembers what was last seen, to report only changes.
#[derive(Debug, Default)]
struct Tracker {
    steps: HashMap<Uuid, (StepState, u32)>,
    task: Option<TaskState>,
}

impl Tracker {
    /// Steps whose state or attempt changed (all of them the first time),
    /// then the task if its state changed.
    fn changes<'a>(&mut self, task: &'a Task, steps: &'a [Step]) -> Vec<Change<'a>> {
        let mut changes = Vec::new();
        for step in steps {
            let now = (step.state, step.attempt);
            if self.steps.insert(step.id, now) != Some(now) {
                changes.push(Change::Step(step));
            }
        }
        if self.task.replace(task.state) != Some(task.state) {
            changes.push(Change::Task(task));
        }
        changes
    }
}

fn clock(now: Timestamp) -> String {
    now.format("%H:%M:%S").to_string()
}

fn change_line(change: &Change, now: Timestamp) -> String {
    match change {
        Change::Step(step) => {
            let mut line = format!(
                "{} step {} {} (attempt {}/{})",
                clock(now),
                step.name,
                step.state,
                step.attempt,
                step.max_attempts
            );
            if let Some(error) = &step.error
                && matches!(step.state, StepState::Retrying | StepState::Failed)
            {
                line.push_str(&format!(": {}: {}", error.error_type, error.message));
            }
            line
        }
        Change::Task(task) => format!("{} task {} {}", clock(now), task.id, task.state),
    }
}

fn change_json(change: &Change) -> anyhow::Result<String> {
    let value = match change {
        Change::Step(step) => serde_json::json!({ "event": "step", "step": step }),
        Change::Task(task) => serde_json::json!({ "event": "task", "task": task }),
    };
    Ok(serde_json::to_string(&value)?)
}

/// The whole picture, for redrawing on a terminal.
fn frame(task: &Task, steps: &[Step], now: Timestamp) -> String {
    let end = task.finished_at.unwrap_or(now);
    let elapsed = (end - task.created_at).num_milliseconds().max(0) as f64 / 1000.0;
    let mut table = Table::new(&["step", "state", "attempt", "error"]);
    for step in steps {
        table.row(vec![
            step.name.clone(),
            step.state.to_string(),
            format!("{}/{}", step.attempt, step.max_attempts),
            step.error
                .as_ref()
                .map(|e| format!("{}: {}", e.error_type, e.message))
                .unwrap_or_default(),
        ]);
    }
    format!(
        "task {} {}/{}@{}: {} ({elapsed:.1}s)\n\n{table}",
        task.id, task.namespace, task.template_name, task.template_version, task.state
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_records::{at, step, task};

    #[test]
    fn only_changes_are_reported_after_the_first_look() {
        let mut tracker = Tracker::default();
        let running = task(TaskState::Running);
        let first = [step(1, StepState::Ready, 0), step(2, StepState::Pending, 0)];
        assert_eq!(
            tracker.changes(&running, &first).len(),
            3,
            "everything at first"
        );
        assert!(tracker.changes(&running, &first).is_empty(), "nothing new");

        let second = [
            step(1, StepState::Running, 1),
            step(2, StepState::Pending, 0),
        ];
        assert_eq!(
            tracker.changes(&running, &second),
            [Change::Step(&second[0])]
        );

        // A retry that is claimed again within one interval: same state,
        // new attempt.
        let third = [
            step(1, StepState::Running, 2),
            step(2, StepState::Pending, 0),
        ];
        assert_eq!(tracker.changes(&running, &third), [Change::Step(&third[0])]);

        let done = task(TaskState::Complete);
        assert_eq!(tracker.changes(&done, &third), [Change::Task(&done)]);
    }

    #[test]
    fn lines_carry_time_step_state_attempt_and_error() {
        let mut failed = step(1, StepState::Failed, 3);
        failed.error = Some(tasker_model::StepError {
            error_type: "boom".into(),
            message: "it broke".into(),
            details: serde_json::Value::Null,
            retryable: false,
        });
        assert_eq!(
            change_line(&Change::Step(&failed), at(3)),
            "22:13:23 step step_1 failed (attempt 3/3): boom: it broke"
        );
        let t = task(TaskState::Failed);
        assert_eq!(
            change_line(&Change::Task(&t), at(4)),
            format!("22:13:24 task {} failed", Uuid::nil())
        );
        let json: serde_json::Value =
            serde_json::from_str(&change_json(&Change::Task(&t)).unwrap()).unwrap();
        assert_eq!(json["event"], "task");
        assert_eq!(json["task"]["state"], "failed");
    }

    #[test]
    fn the_frame_shows_the_task_and_a_row_per_step() {
        let text = frame(
            &task(TaskState::Running),
            &[
                step(1, StepState::Running, 1),
                step(2, StepState::Pending, 0),
            ],
            at(12),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with("examples/linear@1: running (12.0s)"),
            "{text}"
        );
        assert!(lines[2].starts_with("STEP"), "{text}");
        assert!(lines[3].starts_with("step_1  running  1/3"), "{text}");
        assert_eq!(lines.len(), 5);
    }
}

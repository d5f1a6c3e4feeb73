//! `tasker task watch`: follows a task until it finishes. On a terminal the
//! step table is redrawn in place; otherwise (a pipe, a CI log) one line is
//! printed per transition of the task's history, stamped with the time it
//! happened; with `--output json` one JSON object per changed step, and the
//! task last, once it finished.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use tasker_client::{Client, Step, StepState, Task, TaskState, Transition, Worker};
use tasker_model::Timestamp;
use uuid::Uuid;

use super::worker_list::{live_workers, warn_uncovered};
use crate::cli::Output;
use crate::output::{StepStatus, Table, clock, emit};
use crate::status::Status;

/// How often the task and its steps are fetched.
const INTERVAL: Duration = Duration::from_millis(500);
/// How long the server may stay unreachable before watching gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// One look at the task.
struct Look {
    task: Task,
    steps: Vec<Step>,
    history: Vec<Transition>,
}

/// The task first, then its steps, then its history: once the task is seen
/// finished, its steps are in their final states (the same transaction
/// finished them), and the history, read last, holds every transition,
/// including the one into each step's state as read.
async fn look(client: &Client, id: Uuid) -> Result<Look, tasker_client::Error> {
    let task = client.task_get(id).await?;
    let steps = client.task_steps(id).await?;
    let history = client.task_history(id).await?;
    Ok(Look {
        task,
        steps,
        history,
    })
}

pub async fn run(client: &Client, id: Uuid, output: Output) -> anyhow::Result<Status> {
    let live = output == Output::Text && std::io::stdout().is_terminal();
    let mut tracker = Tracker::default();
    let mut printed = Printed::default();
    let mut drawn_lines = 0;
    let mut unreachable_since: Option<Instant> = None;
    let mut workers: Option<Vec<Worker>> = None;
    let mut warned = false;
    loop {
        let Look {
            task,
            steps,
            history,
        } = match look(client, id).await {
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
        if let Some(fresh) = live_workers(client).await {
            workers = Some(fresh);
        }
        if !warned && !task.state.is_terminal() {
            warned = true;
            warn_uncovered(
                workers.as_deref(),
                &task.namespace,
                steps
                    .iter()
                    .filter(|s| !s.state.is_terminal())
                    .map(|s| (s.name.as_str(), s.handler.as_str())),
            );
        }
        let status = StepStatus {
            namespace: &task.namespace,
            steps: &steps,
            workers: workers.as_deref(),
            now: chrono::Utc::now(),
        };
        if live {
            let text = frame(&task, &steps, &status);
            // Back to the start of the previous frame, clear it, draw anew.
            let back = if drawn_lines > 0 {
                format!("\x1b[{drawn_lines}F\x1b[J")
            } else {
                String::new()
            };
            emit(&format!("{back}{text}"))?;
            drawn_lines = text.lines().count();
        } else {
            let lines = match output {
                Output::Json => tracker
                    .changes(&task, &steps)
                    .iter()
                    .map(|change| change_json(change, &history))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                Output::Text => printed.lines(&task, &history, &status),
            };
            for line in lines {
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

/// The text lines: which transitions were printed already.
#[derive(Debug, Default)]
struct Printed {
    /// Id of the last transition printed.
    last: Option<i64>,
    /// Steps already said to be blocked.
    blocked: Vec<Uuid>,
}

impl Printed {
    /// A line per transition not printed before, in the order they happened,
    /// except that the task's finishing comes after the step changes it
    /// caused (a cancellation records the task first); then, once the task
    /// is over, a line per step left blocked by a failed one. The history
    /// is read after the task, so it may already hold the task's end while
    /// the task read was still running: the end waits for the next look,
    /// which sees the task finished, so that it is always the last line.
    fn lines(&mut self, task: &Task, history: &[Transition], status: &StepStatus) -> Vec<String> {
        let finishes_task = |t: &Transition| {
            t.step_id.is_none()
                && t.to_state
                    .parse::<TaskState>()
                    .is_ok_and(|s| s.is_terminal())
        };
        let latest_task_change = history.iter().rev().find(|t| t.step_id.is_none());
        let held = |t: &Transition| {
            !task.state.is_terminal()
                && finishes_task(t)
                && latest_task_change.is_some_and(|latest| latest.id == t.id)
        };
        let new: Vec<&Transition> = history
            .iter()
            .filter(|t| self.last.is_none_or(|last| t.id > last))
            .take_while(|t| !held(t))
            .collect();
        if let Some(last) = new.iter().map(|t| t.id).max() {
            self.last = Some(last);
        }
        // A task's end is moved past the step changes of the same moment
        // (the same transaction), no further.
        let mut lines = Vec::new();
        let mut finish: Option<&Transition> = None;
        for t in new {
            if let Some(end) = finish
                && (t.step_id.is_none() || t.at != end.at)
            {
                lines.push(transition_line(end, task, history, status));
                finish = None;
            }
            if finishes_task(t) {
                finish = Some(t);
            } else {
                lines.push(transition_line(t, task, history, status));
            }
        }
        if task.state.is_terminal() {
            let at = task.finished_at.unwrap_or(status.now);
            for step in status.steps {
                if let Some(failed) = status.failed_upstream(step)
                    && !self.blocked.contains(&step.id)
                {
                    self.blocked.push(step.id);
                    lines.push(format!(
                        "{} step {} blocked — \"{}\" failed",
                        clock(at),
                        step.name,
                        failed.name
                    ));
                }
            }
        }
        if let Some(end) = finish {
            lines.push(transition_line(end, task, history, status));
        }
        lines
    }
}

/// `09:14:02 step start running (attempt 1/3)`, at the time it happened,
/// with the recorded reason (a failure's error) and, for the step's latest
/// transition, what it waits for now.
fn transition_line(
    t: &Transition,
    task: &Task,
    history: &[Transition],
    status: &StepStatus,
) -> String {
    let mut line = match (&t.step_id, &t.step_name) {
        (Some(step_id), name) => {
            let step = status.steps.iter().find(|s| s.id == *step_id);
            let mut line = format!(
                "{} step {} {}",
                clock(t.at),
                name.as_deref().unwrap_or("?"),
                t.to_state
            );
            if let (Some(attempt), Some(step)) = (t.attempt, step) {
                line.push_str(&format!(" (attempt {attempt}/{})", step.max_attempts));
            }
            if let Some(reason) = &t.reason {
                line.push_str(&format!(": {reason}"));
            }
            let latest = history
                .iter()
                .rev()
                .find(|h| h.step_id == Some(*step_id))
                .is_some_and(|h| h.id == t.id);
            if let Some(step) = step
                && latest
                && step.state.as_str() == t.to_state
                && let Some(note) = status.note(step)
            {
                line.push_str(&format!(" — {note}"));
            }
            return line;
        }
        (None, _) => format!("{} task {} {}", clock(t.at), task.id, t.to_state),
    };
    if let Some(reason) = &t.reason {
        line.push_str(&format!(": {reason}"));
    }
    line
}

/// What changed between two looks at a task, for the JSON events.
#[derive(Debug, PartialEq)]
enum Change<'a> {
    Step(&'a Step),
    Task(&'a Task),
}

/// Remembers what was last seen, to report only changes.
#[derive(Debug, Default)]
struct Tracker {
    steps: HashMap<Uuid, (StepState, u32)>,
}

impl Tracker {
    /// Steps whose state or attempt changed (all of them the first time),
    /// then, once it finished, the task: the task is always the last event.
    fn changes<'a>(&mut self, task: &'a Task, steps: &'a [Step]) -> Vec<Change<'a>> {
        let mut changes = Vec::new();
        for step in steps {
            let now = (step.state, step.attempt);
            if self.steps.insert(step.id, now) != Some(now) {
                changes.push(Change::Step(step));
            }
        }
        if task.state.is_terminal() {
            changes.push(Change::Task(task));
        }
        changes
    }
}

/// `{"event":"step","at":…,"step":Step}` or `{"event":"task","at":…,"task":Task}`;
/// `at` is when the step or task entered its state, from its history.
fn change_json(change: &Change, history: &[Transition]) -> anyhow::Result<String> {
    let entered = |step_id: Option<Uuid>, state: &str| {
        history
            .iter()
            .rev()
            .find(|t| t.step_id == step_id && t.to_state == state)
            .map(|t| t.at)
    };
    let value = match change {
        Change::Step(step) => serde_json::json!({
            "event": "step",
            "at": entered(Some(step.id), step.state.as_str()),
            "step": step,
        }),
        Change::Task(task) => serde_json::json!({
            "event": "task",
            "at": entered(None, task.state.as_str()).or(task.finished_at),
            "task": task,
        }),
    };
    Ok(serde_json::to_string(&value)?)
}

/// The whole picture, for redrawing on a terminal.
fn frame(task: &Task, steps: &[Step], status: &StepStatus) -> String {
    let end: Timestamp = task.finished_at.unwrap_or(status.now);
    let elapsed = (end - task.created_at).num_milliseconds().max(0) as f64 / 1000.0;
    let mut table = Table::new(&["step", "state", "attempt", "error"]);
    for step in steps {
        table.row(vec![
            step.name.clone(),
            status.label(step),
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

    fn status<'a>(steps: &'a [Step], now: Timestamp) -> StepStatus<'a> {
        StepStatus {
            namespace: "examples",
            steps,
            workers: None,
            now,
        }
    }

    fn transition(id: i64, step: Option<&Step>, from: &str, to: &str, at: Timestamp) -> Transition {
        Transition {
            id,
            task_id: Uuid::nil(),
            step_id: step.map(|s| s.id),
            step_name: step.map(|s| s.name.clone()),
            from_state: Some(from.into()),
            to_state: to.into(),
            attempt: None,
            worker_id: None,
            node_id: None,
            reason: None,
            at,
        }
    }

    #[test]
    fn lines_carry_the_time_each_transition_happened_not_when_it_was_seen() {
        let mut failed = step(1, StepState::Failed, 3);
        failed.error = Some(tasker_model::StepError {
            error_type: "boom".into(),
            message: "it broke".into(),
            details: serde_json::Value::Null,
            retryable: false,
        });
        let mut retrying = transition(2, Some(&failed), "running", "retrying", at(2));
        retrying.attempt = Some(2);
        retrying.reason = Some("boom: it broke".into());
        let mut gave_up = transition(3, Some(&failed), "running", "failed", at(3));
        gave_up.attempt = Some(3);
        gave_up.reason = Some("boom: it broke".into());
        let history = [
            transition(1, Some(&failed), "pending", "ready", at(1)),
            retrying,
            gave_up,
        ];
        let steps = [failed];
        let running = task(TaskState::Running);
        // Seen long after all of it happened.
        let mut printed = Printed::default();
        let lines = printed.lines(&running, &history, &status(&steps, at(60)));
        assert_eq!(
            lines,
            [
                "22:13:21 step step_1 ready",
                "22:13:22 step step_1 retrying (attempt 2/3): boom: it broke",
                "22:13:23 step step_1 failed (attempt 3/3): boom: it broke",
            ]
        );
        assert!(
            printed
                .lines(&running, &history, &status(&steps, at(61)))
                .is_empty(),
            "nothing twice"
        );
    }

    #[test]
    fn the_task_finishing_is_the_last_line_even_when_recorded_first() {
        let a = step(1, StepState::Cancelled, 1);
        let b = step(2, StepState::Cancelled, 0);
        let mut cancel = transition(2, None, "running", "cancelled", at(5));
        cancel.reason = Some("testing".into());
        let history = [
            transition(1, Some(&a), "ready", "running", at(1)),
            cancel,
            transition(3, Some(&a), "running", "cancelled", at(5)),
            transition(4, Some(&b), "pending", "cancelled", at(5)),
        ];
        let steps = [a, b];
        let mut done = task(TaskState::Cancelled);
        done.finished_at = Some(at(5));
        let lines = Printed::default().lines(&done, &history, &status(&steps, at(6)));
        assert_eq!(
            lines.last().map(String::as_str),
            Some(format!("22:13:25 task {} cancelled: testing", Uuid::nil()).as_str()),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 4, "{lines:?}");
    }

    #[test]
    fn the_task_end_seen_in_the_history_first_waits_for_the_task_to_show_it() {
        let a = step(1, StepState::Failed, 1);
        let mut b = step(2, StepState::Pending, 0);
        b.depends_on = vec!["step_1".into()];
        let history = [
            transition(1, Some(&a), "running", "failed", at(1)),
            transition(2, None, "running", "failed", at(1)),
        ];
        let steps = [a, b];
        let mut printed = Printed::default();
        // The task was read running, its history a moment later.
        let lines = printed.lines(&task(TaskState::Running), &history, &status(&steps, at(2)));
        assert_eq!(lines, ["22:13:21 step step_1 failed"]);
        let mut failed = task(TaskState::Failed);
        failed.finished_at = Some(at(1));
        let lines = printed.lines(&failed, &history, &status(&steps, at(2)));
        assert_eq!(
            lines,
            [
                "22:13:21 step step_2 blocked — \"step_1\" failed".to_owned(),
                format!("22:13:21 task {} failed", Uuid::nil()),
            ]
        );

        // A task that failed and was reopened by a manual retry goes on.
        let mut reopened = history.to_vec();
        reopened.push(transition(3, None, "failed", "running", at(5)));
        reopened.push(transition(4, Some(&steps[0]), "failed", "ready", at(5)));
        let lines =
            Printed::default().lines(&task(TaskState::Running), &reopened, &status(&steps, at(6)));
        let said: Vec<&str> = lines.iter().map(|l| &l[9..]).collect();
        assert_eq!(
            said,
            [
                "step step_1 failed".to_owned(),
                format!("task {} failed", Uuid::nil()),
                format!("task {} running", Uuid::nil()),
                "step step_1 ready".to_owned(),
            ],
            "in the order it happened"
        );
    }

    #[test]
    fn steps_left_blocked_are_said_before_the_task_fails() {
        let a = step(1, StepState::Failed, 1);
        let mut b = step(2, StepState::Pending, 0);
        b.depends_on = vec!["step_1".into()];
        let history = [
            transition(1, Some(&a), "running", "failed", at(1)),
            transition(2, None, "running", "failed", at(1)),
        ];
        let steps = [a, b];
        let mut failed = task(TaskState::Failed);
        failed.finished_at = Some(at(1));
        let lines = Printed::default().lines(&failed, &history, &status(&steps, at(2)));
        assert_eq!(lines[1], "22:13:21 step step_2 blocked — \"step_1\" failed");
        assert!(lines[2].ends_with(" failed"), "{lines:?}");
    }

    #[test]
    fn a_retrying_line_says_when_the_next_attempt_runs() {
        let mut s = step(1, StepState::Retrying, 1);
        s.retry_at = Some(at(7));
        let mut t = transition(1, Some(&s), "running", "retrying", at(3));
        t.attempt = Some(1);
        let history = [t];
        let steps = [s];
        let lines =
            Printed::default().lines(&task(TaskState::Running), &history, &status(&steps, at(3)));
        assert_eq!(
            lines,
            ["22:13:23 step step_1 retrying (attempt 1/3) — next attempt in 4s (at 22:13:27)"]
        );
    }

    #[test]
    fn json_events_are_steps_then_the_finished_task_last() {
        let mut tracker = Tracker::default();
        let running = task(TaskState::Running);
        let first = [step(1, StepState::Ready, 0), step(2, StepState::Pending, 0)];
        assert_eq!(
            tracker.changes(&running, &first).len(),
            2,
            "every step at first, no task event while it runs"
        );
        assert!(tracker.changes(&running, &first).is_empty(), "nothing new");

        // A retry that is claimed again within one interval: same state,
        // new attempt.
        let second = [
            step(1, StepState::Running, 2),
            step(2, StepState::Pending, 0),
        ];
        assert_eq!(
            tracker.changes(&running, &second),
            [Change::Step(&second[0])]
        );

        let done = task(TaskState::Complete);
        let last = [
            step(1, StepState::Complete, 2),
            step(2, StepState::Complete, 1),
        ];
        assert_eq!(
            tracker.changes(&done, &last),
            [
                Change::Step(&last[0]),
                Change::Step(&last[1]),
                Change::Task(&done)
            ]
        );

        let history = [transition(9, Some(&last[0]), "running", "complete", at(4))];
        let json: serde_json::Value =
            serde_json::from_str(&change_json(&Change::Step(&last[0]), &history).unwrap()).unwrap();
        assert_eq!(json["event"], "step");
        assert_eq!(json["at"], "2023-11-14T22:13:24Z");
        let json: serde_json::Value =
            serde_json::from_str(&change_json(&Change::Task(&done), &history).unwrap()).unwrap();
        assert_eq!(json["event"], "task");
        assert_eq!(json["task"]["state"], "complete");
    }

    #[test]
    fn the_frame_shows_the_task_and_a_row_per_step() {
        let steps = [
            step(1, StepState::Running, 1),
            step(2, StepState::Pending, 0),
        ];
        let text = frame(&task(TaskState::Running), &steps, &status(&steps, at(12)));
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

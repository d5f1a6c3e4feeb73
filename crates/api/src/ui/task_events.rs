//! `GET /ui/tasks/{id}/events`: server-sent events that carry the task
//! page's live fragment whenever the task changes, so the graph and the
//! step table advance without a reload. Ends with a `done` event once the
//! task is finished (the script then closes the stream instead of
//! reconnecting).
//!
//! The engine has no per-task change feed, so each open stream reads the
//! task's state once per [`CHECK_EVERY`] and sends only when something
//! changed: one cheap read per watching browser, never per step of work,
//! and nothing on the engine's critical path.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tasker_model::{Step, Task};

use super::UiError;
use super::session::Viewer;
use super::task_page::{self, TaskView};
use crate::state::AppState;

/// How often an open stream looks at its task.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// What changes when a task advances: its state and update time, and each
/// step's state and attempt.
fn fingerprint(task: &Task, steps: &[Step]) -> String {
    let mut print = format!("{}|{}", task.state.as_str(), task.updated_at);
    for step in steps {
        print.push_str(&format!(
            "|{}:{}:{}",
            step.id,
            step.state.as_str(),
            step.attempt
        ));
    }
    print
}

pub async fn stream(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let id = super::parse_id("task", &id)?;
    // Refuse an unknown task before the stream starts.
    state.engine.task_get(id).await?;
    let events = futures::stream::unfold(
        (state, viewer, None::<String>, false),
        move |(state, viewer, mut last, finished)| async move {
            if finished {
                return None;
            }
            loop {
                let view = match task_page::load(&state, id).await {
                    Ok(view) => view,
                    Err(_) => {
                        // The task is gone (retention) or the database is
                        // away: end; the browser's retry will find out.
                        return None;
                    }
                };
                let print = fingerprint(&view.task, &view.steps);
                let done = view.task.state.is_terminal();
                if last.as_deref() != Some(print.as_str()) {
                    last = Some(print);
                    let event = live_event(&view, &viewer);
                    return Some((Ok(event), (state, viewer, last, done)));
                }
                tokio::time::sleep(CHECK_EVERY).await;
            }
        },
    );
    let done = futures::stream::once(async { Ok(Event::default().event("done").data("finished")) });
    let events = futures::StreamExt::chain(events, done);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn live_event(view: &TaskView, viewer: &Viewer) -> Event {
    // A newline would split the data into lines; as a character reference
    // it reads the same (newlines only occur in text, e.g. pretty JSON),
    // and escaped text carries no carriage return.
    let html = task_page::live_fragment(view, viewer).replace('\n', "&#10;");
    Event::default().event("live").data(html)
}

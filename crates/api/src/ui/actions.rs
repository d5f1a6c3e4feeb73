//! The dashboard's actions: cancel a task, retry or resolve a step, retry
//! or resolve dead letters in bulk, pause, resume and trigger a schedule.
//! Each is a form POST that needs an operator (or admin) session and the
//! session's CSRF token ([`Viewer::check_action`]), calls the engine, and
//! answers 303 back to the page it came from.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use tasker_engine::maintenance::DeadLetterSelection;
use uuid::Uuid;

use super::form;
use super::session::{Refused, Viewer};
use super::{UiError, parse_id};
use crate::state::AppState;

/// Largest action form: a bulk selection of 1000 ids fits.
const MAX_FORM_BYTES: usize = 128 * 1024;

/// The form of an action, once the session may act.
async fn checked_form(
    viewer: &Viewer,
    request: Request<Body>,
) -> Result<Vec<(String, String)>, Refused> {
    let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| Refused(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    let pairs = form::parse(&body);
    viewer.check_action(&pairs)?;
    Ok(pairs)
}

fn see_other(to: String) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

fn done(result: Result<Response, UiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

pub async fn task_cancel(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Response {
    let pairs = match checked_form(&viewer, request).await {
        Ok(pairs) => pairs,
        Err(refused) => return refused.into_response(),
    };
    done(
        async {
            let id = parse_id("task", &id)?;
            let reason = form::first(&pairs, "reason")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("cancelled from the dashboard");
            state.engine.task_cancel(id, Some(reason)).await?;
            Ok(see_other(format!("/ui/tasks/{id}")))
        }
        .await,
    )
}

async fn step_action(state: &AppState, id: &str, retry: bool) -> Result<Response, UiError> {
    let id = parse_id("step", id)?;
    let step = if retry {
        state.engine.step_retry(id).await?
    } else {
        state.engine.step_resolve(id, None).await?
    };
    Ok(see_other(format!("/ui/tasks/{}", step.task_id)))
}

pub async fn step_retry(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Response {
    match checked_form(&viewer, request).await {
        Ok(_) => done(step_action(&state, &id, true).await),
        Err(refused) => refused.into_response(),
    }
}

pub async fn step_resolve(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Response {
    match checked_form(&viewer, request).await {
        Ok(_) => done(step_action(&state, &id, false).await),
        Err(refused) => refused.into_response(),
    }
}

/// The ticked steps of the dead-letter form.
fn selected_steps(pairs: &[(String, String)]) -> Result<Vec<Uuid>, UiError> {
    let ids = form::all(pairs, "step")
        .into_iter()
        .map(|id| parse_id("step", id))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(UiError::bad_request("Select at least one dead letter."));
    }
    Ok(ids)
}

async fn dead_letters_action(
    state: &AppState,
    pairs: &[(String, String)],
    retry: bool,
) -> Result<Response, UiError> {
    let selection = DeadLetterSelection {
        ids: Some(selected_steps(pairs)?),
        ..DeadLetterSelection::default()
    };
    let outcome = if retry {
        state.engine.dead_letter_retry(&selection).await?
    } else {
        state.engine.dead_letter_resolve(&selection, None).await?
    };
    if let Some(refused) = outcome.refused.first() {
        return Err(UiError::bad_request(format!(
            "{} of {} applied; step {} refused: {}",
            outcome.applied, outcome.matched, refused.step_id, refused.message
        )));
    }
    Ok(see_other("/ui/dead-letters".into()))
}

pub async fn dead_letters_retry(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    request: Request<Body>,
) -> Response {
    match checked_form(&viewer, request).await {
        Ok(pairs) => done(dead_letters_action(&state, &pairs, true).await),
        Err(refused) => refused.into_response(),
    }
}

pub async fn dead_letters_resolve(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    request: Request<Body>,
) -> Response {
    match checked_form(&viewer, request).await {
        Ok(pairs) => done(dead_letters_action(&state, &pairs, false).await),
        Err(refused) => refused.into_response(),
    }
}

#[derive(Debug, Clone, Copy)]
enum ScheduleAction {
    Pause,
    Resume,
    Trigger,
}

async fn schedule_action(
    state: &AppState,
    id: &str,
    action: ScheduleAction,
) -> Result<Response, UiError> {
    let id = parse_id("schedule", id)?;
    match action {
        ScheduleAction::Pause => {
            state.engine.schedule_set_paused(id, true).await?;
        }
        ScheduleAction::Resume => {
            state.engine.schedule_set_paused(id, false).await?;
        }
        ScheduleAction::Trigger => {
            let (_, task) = state.engine.schedule_trigger(id).await?;
            if let Some(task) = task {
                return Ok(see_other(format!("/ui/tasks/{}", task.id)));
            }
        }
    }
    Ok(see_other("/ui/schedules".into()))
}

async fn schedule_route(
    state: AppState,
    viewer: Viewer,
    id: String,
    request: Request<Body>,
    action: ScheduleAction,
) -> Response {
    match checked_form(&viewer, request).await {
        Ok(_) => done(schedule_action(&state, &id, action).await),
        Err(refused) => refused.into_response(),
    }
}

pub async fn schedule_pause(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Response {
    schedule_route(state, viewer, id, request, ScheduleAction::Pause).await
}

pub async fn schedule_resume(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Response {
    schedule_route(state, viewer, id, request, ScheduleAction::Resume).await
}

pub async fn schedule_trigger(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Response {
    schedule_route(state, viewer, id, request, ScheduleAction::Trigger).await
}

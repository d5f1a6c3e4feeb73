//! The web dashboard under `/ui`: server-rendered pages over the engine,
//! with their stylesheet and script compiled into the binary, so a node
//! serves it with nothing to install, build or fetch (it works offline).
//!
//! ```text
//!  /ui/login ─────────────▶ session (token cookie)      /ui/assets/* (open)
//!  /ui/...  ─▶ require_viewer ─▶ page handler ─▶ tasker_engine::Engine
//!                  │ no valid token: 303 /ui/login
//!                  ▼
//!            POST action ─▶ Viewer::check_action (operator role + CSRF)
//! ```
//!
//! Pages call the engine directly, never the HTTP API. The script only
//! enhances: it refreshes marked sections in place, follows a running task
//! over server-sent events and asks before an action; every page and
//! action also works without it. See `docs/dashboard.md`.

mod actions;
mod activity_chart;
mod dag_svg;
mod dead_letters_page;
mod form;
mod html;
mod overview_page;
mod schedules_page;
mod session;
mod step_attempts;
mod task_events;
mod task_page;
mod tasks_page;
mod templates_page;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

const CSS: &str = include_str!("../../assets/ui.css");
const JS: &str = include_str!("../../assets/ui.js");

pub fn router(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(overview_page::page))
        .route("/ui/", get(overview_page::page))
        .route("/ui/tasks", get(tasks_page::page))
        .route("/ui/tasks/{id}", get(task_page::page))
        .route("/ui/tasks/{id}/live", get(task_page::live))
        .route("/ui/tasks/{id}/events", get(task_events::stream))
        .route("/ui/tasks/{id}/cancel", post(actions::task_cancel))
        .route("/ui/steps/{id}/retry", post(actions::step_retry))
        .route("/ui/steps/{id}/resolve", post(actions::step_resolve))
        .route("/ui/templates", get(templates_page::list))
        .route(
            "/ui/templates/{namespace}/{name}",
            get(templates_page::detail),
        )
        .route("/ui/dead-letters", get(dead_letters_page::page))
        .route("/ui/dead-letters/retry", post(actions::dead_letters_retry))
        .route(
            "/ui/dead-letters/resolve",
            post(actions::dead_letters_resolve),
        )
        .route("/ui/schedules", get(schedules_page::page))
        .route("/ui/schedules/{id}/pause", post(actions::schedule_pause))
        .route("/ui/schedules/{id}/resume", post(actions::schedule_resume))
        .route(
            "/ui/schedules/{id}/trigger",
            post(actions::schedule_trigger),
        )
        .route("/ui/logout", post(session::logout))
        .route_layer(from_fn_with_state(
            state.authenticator(),
            session::require_viewer,
        ));
    Router::new()
        .merge(pages)
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/assets/ui.css", get(css))
        .route("/ui/assets/ui.js", get(js))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// The id in a dashboard path; a malformed one names no `what` (404).
pub fn parse_id(what: &str, text: &str) -> Result<uuid::Uuid, UiError> {
    uuid::Uuid::parse_str(text)
        .map_err(|_| UiError::not_found(format!("no {what} {text:?}: not a valid id")))
}

/// A page that could not be shown: the API's error (status and a message
/// that never carries database text), rendered as a page.
#[derive(Debug)]
pub struct UiError(ApiError);

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<tasker_engine::Error> for UiError {
    fn from(error: tasker_engine::Error) -> Self {
        Self(error.into())
    }
}

impl UiError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self(ApiError::not_found(message))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(ApiError::bad_request(message))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.status_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Already logged where it was made.
            return session::refusal(status, "Something went wrong on the server; see its log.");
        }
        session::refusal(status, self.0.message())
    }
}

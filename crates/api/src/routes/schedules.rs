//! Schedules: create, list, get, replace, delete, pause, resume, trigger
//! now, backfill a range, and a schedule's fires. Firing itself is the
//! leader's (see `tasker_engine::Scheduler`); these handlers only change
//! and read schedules, or fire one on request.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tasker_model::{Schedule, ScheduleFire, ScheduleSpec, Task};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, Path, Query};
use crate::state::AppState;

/// A schedule with its next fire times.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The next fire times (before jitter), up to five; empty while paused.
    pub upcoming: Vec<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// `POST /v1/schedules/{id}/backfill`: fire every time of `[start, end)`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"}))]
pub struct BackfillRequest {
    /// The first time of the range (included).
    pub start: DateTime<Utc>,
    /// The end of the range (excluded); after `start`, not in the future,
    /// and at most 1000 fire times after `start`.
    pub end: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillResult {
    /// The fires this backfill recorded, oldest first.
    pub fires: Vec<ScheduleFire>,
    /// Times of the range that had a fire already: not run again.
    pub already_fired: Vec<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerResult {
    pub fire: ScheduleFire,
    /// The task started; `null` when it could not be (see `fire.message`).
    pub task: Option<Task>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FireList {
    /// Newest fire time first.
    pub fires: Vec<ScheduleFire>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FireListQuery {
    /// How many, default 50, at most 1000.
    pub limit: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/schedules", post(create).get(list))
        .route(
            "/v1/schedules/{id}",
            get(get_one).put(update).delete(delete),
        )
        .route("/v1/schedules/{id}/pause", post(pause))
        .route("/v1/schedules/{id}/resume", post(resume))
        .route("/v1/schedules/{id}/trigger", post(trigger))
        .route("/v1/schedules/{id}/backfill", post(backfill))
        .route("/v1/schedules/{id}/fires", get(fires))
}

fn view(state: &AppState, schedule: Schedule) -> ScheduleView {
    let upcoming = state
        .engine
        .schedule_upcoming(&schedule, tasker_engine::UPCOMING);
    ScheduleView { schedule, upcoming }
}

/// Create a schedule.
///
/// Starts a task of a template with a fixed context on a cron expression
/// (in a time zone) or at a fixed interval. The template must exist and
/// the context fit its schema. An invalid cron expression, time zone,
/// interval or jitter is 422 `schedule_invalid` naming the field in
/// `details.field`.
#[utoipa::path(post, operation_id = "schedule_create", path = "/v1/schedules", tag = "schedules", security(("bearer" = [])),
    request_body = ScheduleSpec,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 409, description = "`schedule_conflict`: the name is taken", body = ErrorBody),
        (status = 422, description = "`schedule_invalid` (details.field) or `context_invalid`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<ScheduleSpec>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let schedule = state.engine.schedule_create(spec).await?;
    Ok((StatusCode::CREATED, Json(view(&state, schedule))))
}

/// List schedules.
#[utoipa::path(get, operation_id = "schedule_list", path = "/v1/schedules", tag = "schedules", security(("bearer" = [])),
    responses((status = 200, body = ScheduleList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = state.engine.schedule_list().await?;
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(|s| view(&state, s)).collect(),
    }))
}

/// Get a schedule.
#[utoipa::path(get, operation_id = "schedule_get", path = "/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<ScheduleView>, ApiError> {
    let schedule = state.engine.schedule_get(id).await?;
    Ok(Json(view(&state, schedule)))
}

/// Replace a schedule.
///
/// The whole spec, checked as on create. The next fire time is computed
/// anew from now; an interval counts from now when it changed. Past fires
/// stay.
#[utoipa::path(put, operation_id = "schedule_update", path = "/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = ScheduleSpec,
    responses(
        (status = 200, body = ScheduleView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`schedule_conflict`: the name is taken", body = ErrorBody),
        (status = 422, description = "`schedule_invalid` (details.field) or `context_invalid`", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    JsonBody(spec): JsonBody<ScheduleSpec>,
) -> Result<Json<ScheduleView>, ApiError> {
    let schedule = state.engine.schedule_update(id, spec).await?;
    Ok(Json(view(&state, schedule)))
}

/// Delete a schedule.
///
/// With its fire records; tasks it started stay.
#[utoipa::path(delete, operation_id = "schedule_delete", path = "/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.engine.schedule_delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause a schedule.
///
/// It does not fire until resumed; a paused schedule has no next fire time.
#[utoipa::path(post, operation_id = "schedule_pause", path = "/v1/schedules/{id}/pause", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<ScheduleView>, ApiError> {
    let schedule = state.engine.schedule_set_paused(id, true).await?;
    Ok(Json(view(&state, schedule)))
}

/// Resume a schedule.
///
/// It fires next at its first time after now; times passed while it was
/// paused are not caught up (backfill them if they should run).
#[utoipa::path(post, operation_id = "schedule_resume", path = "/v1/schedules/{id}/resume", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<ScheduleView>, ApiError> {
    let schedule = state.engine.schedule_set_paused(id, false).await?;
    Ok(Json(view(&state, schedule)))
}

/// Fire a schedule now.
///
/// Starts its task now (fire time: now, kind `manual`), also while paused
/// and whatever its overlap policy.
#[utoipa::path(post, operation_id = "schedule_trigger", path = "/v1/schedules/{id}/trigger", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 201, description = "Fired", body = TriggerResult),
        (status = 404, body = ErrorBody)))]
pub async fn trigger(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<TriggerResult>), ApiError> {
    let (fire, task) = state.engine.schedule_trigger(id).await?;
    Ok((StatusCode::CREATED, Json(TriggerResult { fire, task })))
}

/// Backfill a range.
///
/// Fires every time of the schedule in `[start, end)` that has no fire yet
/// (kind `backfill`), oldest first, whatever its overlap policy. A time
/// fired before is never run again. A reversed range, an `end` in the
/// future or a range of more than 1000 times is 422 `schedule_invalid`
/// with `details.field` `end`.
#[utoipa::path(post, operation_id = "schedule_backfill", path = "/v1/schedules/{id}/backfill", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = BackfillRequest,
    responses(
        (status = 200, body = BackfillResult),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`schedule_invalid`, details.field `end`", body = ErrorBody)))]
pub async fn backfill(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<BackfillRequest>,
) -> Result<Json<BackfillResult>, ApiError> {
    let done = state
        .engine
        .schedule_backfill(id, body.start, body.end)
        .await?;
    Ok(Json(BackfillResult {
        fires: done.fires,
        already_fired: done.already_fired,
    }))
}

/// A schedule's fires.
///
/// Each fire with its time, kind (`scheduled`, `manual`, `backfill`),
/// outcome (`started`, `skipped_overlap`, `buffered`, `missed`, `failed`)
/// and task.
#[utoipa::path(get, operation_id = "schedule_fires", path = "/v1/schedules/{id}/fires", tag = "schedules", security(("bearer" = [])),
    params(("id" = Uuid, Path), FireListQuery),
    responses((status = 200, body = FireList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn fires(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<FireListQuery>,
) -> Result<Json<FireList>, ApiError> {
    let limit = match query.limit.filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(format!("limit must be a positive integer, not {s:?}"))
                .with_details(serde_json::json!({ "field": "limit" }))
        })?,
        None => 50,
    };
    let fires = state.engine.schedule_fires(id, limit.min(1000)).await?;
    Ok(Json(FireList { fires }))
}

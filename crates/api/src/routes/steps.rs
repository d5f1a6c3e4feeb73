//! A step by id (`GET /v1/steps/{id}`) and the manual step operations:
//! `POST /v1/steps/{id}/retry` and `POST /v1/steps/{id}/resolve`. (Heartbeat, complete and fail are the
//! worker plane: see [`super::leases`].)

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tasker_model::Step;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{OptionalJsonBody, Path};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"result": {"value": 16}}))]
pub struct StepResolve {
    /// Stored as the step's result and handed to its dependents. Default none.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/steps/{id}", get(get_one))
        .route("/v1/steps/{id}/retry", post(retry))
        .route("/v1/steps/{id}/resolve", post(resolve))
}

/// Get a step.
///
/// The step as in its task's step list: state, attempt, lease, result or
/// error.
#[utoipa::path(get, operation_id = "step_get", path = "/v1/steps/{id}", tag = "steps", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Step),
        (status = 404, description = "No such step", body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Step>, ApiError> {
    Ok(Json(state.engine.step_get(id).await?))
}

/// Retry a failed step.
///
/// The step runs again with a fresh attempt budget; a failed task runs again
/// too.
#[utoipa::path(post, operation_id = "step_retry", path = "/v1/steps/{id}/retry", tag = "steps", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Step),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`wrong_state`, `task_finished`", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Step>, ApiError> {
    Ok(Json(state.engine.step_retry(id).await?))
}

/// Resolve a step by hand.
///
/// A failed or pending step becomes `resolved`: it counts as complete for its
/// dependents, which receive `result`.
#[utoipa::path(post, operation_id = "step_resolve", path = "/v1/steps/{id}/resolve", tag = "steps", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = Option<StepResolve>, description = "Optional"),
    responses(
        (status = 200, body = Step),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`wrong_state`, `task_finished`", body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody<StepResolve>,
) -> Result<Json<Step>, ApiError> {
    let result = body.unwrap_or_default().result;
    Ok(Json(state.engine.step_resolve(id, result).await?))
}

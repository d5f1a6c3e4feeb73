//! The worker plane's lease endpoints: heartbeat, complete, fail and release
//! a claimed step. Each must present the current lease (`attempt` and
//! `token`); a stale one is refused with 409 and changes nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tasker_model::{HeartbeatOutcome, Lease, Recorded, StepError};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, Path};
use crate::state::AppState;

/// The lease being presented (heartbeat and release).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Heartbeat {
    pub attempt: u32,
    pub token: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatReply {
    /// The extended lease; `null` when `cancelled`.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The task was cancelled: stop working, a result would be refused.
    pub cancelled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Complete {
    pub attempt: u32,
    pub token: Uuid,
    /// The step's result, handed to its dependents. Default `null`.
    #[serde(default)]
    pub result: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Fail {
    pub attempt: u32,
    pub token: Uuid,
    /// Whether another attempt may succeed. Default `true`.
    #[serde(default = "yes")]
    pub retryable: bool,
    /// A short machine-readable kind, 1-128 characters.
    #[schema(example = "payment_declined")]
    pub error_type: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordedOutcome {
    /// The report changed the step.
    Applied,
    /// The same lease already reported; nothing changed (a safe re-send).
    Duplicate,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedReply {
    pub recorded: RecordedOutcome,
}

impl From<Recorded> for RecordedReply {
    fn from(recorded: Recorded) -> Self {
        let recorded = match recorded {
            Recorded::Applied => RecordedOutcome::Applied,
            Recorded::Duplicate => RecordedOutcome::Duplicate,
        };
        Self { recorded }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/steps/{id}/heartbeat", post(heartbeat))
        .route("/v1/steps/{id}/complete", post(complete))
        .route("/v1/steps/{id}/fail", post(fail))
        .route("/v1/steps/{id}/release", post(release))
}

/// Counts refusals of stale leases before handing the error on.
fn refused(state: &AppState, error: tasker_engine::Error) -> ApiError {
    let error = ApiError::from(error);
    if error.status_code() == StatusCode::CONFLICT {
        state.metrics.lease_refused(error.code());
    }
    error
}

/// Extend a lease.
///
/// Extends the lease of a running step and says whether its task was cancelled.
#[utoipa::path(post, operation_id = "step_heartbeat", path = "/v1/steps/{id}/heartbeat", tag = "leases", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Step id")),
    request_body = Heartbeat,
    responses(
        (status = 200, body = HeartbeatReply),
        (status = 409, description = "`lease_expired`, `lease_mismatch` (also for an unknown step), `step_not_running`, `step_timed_out`", body = ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(step_id): Path<Uuid>,
    JsonBody(body): JsonBody<Heartbeat>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    let lease = Lease {
        step_id,
        attempt: body.attempt,
        token: body.token,
    };
    let outcome = state
        .engine
        .step_heartbeat(&lease)
        .await
        .map_err(|e| refused(&state, e))?;
    match outcome {
        HeartbeatOutcome::Extended { lease_expires_at } => Ok(Json(HeartbeatReply {
            lease_expires_at: Some(lease_expires_at),
            cancelled: false,
        })),
        HeartbeatOutcome::Cancelled => Ok(Json(HeartbeatReply {
            lease_expires_at: None,
            cancelled: true,
        })),
        HeartbeatOutcome::TimedOut => {
            state.metrics.lease_refused("step_timed_out");
            Err(ApiError::new(
                "step_timed_out",
                "the attempt ran past the step's timeout and was failed as `timeout`; \
                 stop working on it",
            ))
        }
    }
}

/// Report a step's result.
///
/// Ready children are dispatched and the task finalized in the same
/// transaction.
#[utoipa::path(post, operation_id = "step_complete", path = "/v1/steps/{id}/complete", tag = "leases", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Step id")),
    request_body = Complete,
    responses(
        (status = 200, body = RecordedReply),
        (status = 409, description = "`lease_expired`, `lease_mismatch` (also for an unknown step), `task_cancelled`, `step_not_running`", body = ErrorBody),
        (status = 413, description = "Result over the payload limit", body = ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    Path(step_id): Path<Uuid>,
    JsonBody(body): JsonBody<Complete>,
) -> Result<Json<RecordedReply>, ApiError> {
    let lease = Lease {
        step_id,
        attempt: body.attempt,
        token: body.token,
    };
    let recorded = state
        .engine
        .step_complete(lease, body.result)
        .await
        .map_err(|e| refused(&state, e))?;
    state.metrics.step_completed(recorded);
    Ok(Json(recorded.into()))
}

/// Report a failed attempt.
///
/// Retried after the backoff when `retryable` and attempts remain; otherwise
/// the step fails, and the task with it when nothing else can run.
#[utoipa::path(post, operation_id = "step_fail", path = "/v1/steps/{id}/fail", tag = "leases", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Step id")),
    request_body = Fail,
    responses(
        (status = 200, body = RecordedReply),
        (status = 400, body = ErrorBody),
        (status = 409, description = "`lease_expired`, `lease_mismatch` (also for an unknown step), `task_cancelled`, `step_not_running`", body = ErrorBody)))]
pub async fn fail(
    State(state): State<AppState>,
    Path(step_id): Path<Uuid>,
    JsonBody(body): JsonBody<Fail>,
) -> Result<Json<RecordedReply>, ApiError> {
    let lease = Lease {
        step_id,
        attempt: body.attempt,
        token: body.token,
    };
    let retryable = body.retryable;
    let error = StepError {
        error_type: body.error_type,
        message: body.message,
        details: body.details,
        retryable,
    };
    let recorded = state
        .engine
        .step_fail(lease, error)
        .await
        .map_err(|e| refused(&state, e))?;
    state.metrics.step_failed(retryable, recorded);
    Ok(Json(recorded.into()))
}

/// Hand a step back unfinished.
///
/// For a worker that stops before the handler finished: the step is
/// delivered again at once, and the attempt it used is not counted.
#[utoipa::path(post, operation_id = "step_release", path = "/v1/steps/{id}/release", tag = "leases", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Step id")),
    request_body = Heartbeat,
    responses(
        (status = 204, description = "Released: the step is ready again"),
        (status = 409, description = "`lease_expired`, `lease_mismatch` (also for an unknown step), `task_cancelled`, `step_not_running`", body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    Path(step_id): Path<Uuid>,
    JsonBody(body): JsonBody<Heartbeat>,
) -> Result<StatusCode, ApiError> {
    let lease = Lease {
        step_id,
        attempt: body.attempt,
        token: body.token,
    };
    state
        .engine
        .step_release(&lease)
        .await
        .map_err(|e| refused(&state, e))?;
    state.metrics.step_released();
    Ok(StatusCode::NO_CONTENT)
}

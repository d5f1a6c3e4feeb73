//! The worker plane's lease endpoints: heartbeat, complete, fail and release
//! a claimed step. Each must present the current lease (`attempt` and
//! `token`); a stale one is refused with 409 and changes nothing.
//!
//! A complete may also ask for the worker's `next` step: the result is
//! recorded and up to `next.max` ready steps are leased to the worker in the
//! same transaction, so a sequential workflow costs one commit per step
//! handoff instead of a commit, a wake-up and a poll.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tasker_model::{ClaimedStep, HeartbeatOutcome, Lease, Recorded, StepError};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, Path};
use crate::routes::workers::claim_scope;
use crate::state::AppState;

use tasker_model::limits::MAX_WORKER_ID_LEN;

/// The lease being presented (heartbeat and release).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attempt": 1, "token": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b"}))]
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
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attempt": 1, "token": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "result": {"value": 4}}))]
pub struct Complete {
    pub attempt: u32,
    pub token: Uuid,
    /// The step's result, handed to its dependents. Default `null`.
    #[serde(default)]
    pub result: serde_json::Value,
    /// Also lease the worker's next steps in the same transaction. Default
    /// none: a plain complete.
    #[serde(default)]
    pub next: Option<NextRequest>,
}

/// Steps to lease to the reporting worker together with its result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"worker_id": "billing-7f9c", "max": 1}))]
pub struct NextRequest {
    /// The worker the steps are leased to (1-128 characters), as in a poll.
    #[schema(example = "billing-7f9c")]
    pub worker_id: String,
    /// Namespaces to lease from, in order. Default: those the worker
    /// registered with.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Most steps to lease. Default 1; 0 leases nothing; capped by the
    /// server's claim batch.
    #[serde(default)]
    pub max: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attempt": 1, "token": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "retryable": true, "error_type": "upstream_unavailable", "message": "the carrier API answered 503", "details": {"status": 503}}))]
pub struct Fail {
    pub attempt: u32,
    pub token: Uuid,
    /// Whether another attempt may succeed. Default `true`.
    #[serde(default = "yes")]
    pub retryable: bool,
    /// A short machine-readable kind, 1-128 bytes.
    #[schema(example = "payment_declined", min_length = 1, max_length = 128)]
    pub error_type: String,
    /// At most 4096 bytes; longer text goes in `details`.
    #[schema(max_length = 4096)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteReply {
    pub recorded: RecordedOutcome,
    /// Steps leased to the worker with this completion, to run now. Empty
    /// without `next`, for a `duplicate`, when nothing is ready, and on a
    /// node that is shutting down.
    pub next: Vec<ClaimedStep>,
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
        .route("/v1/steps/{id}/result", get(result))
}

/// A step's result, for a worker.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepResult {
    /// `null` while the step has none.
    pub result: Option<serde_json::Value>,
}

/// Fetch a parent's result.
///
/// The result of one step, for a worker whose claim named it in
/// `parent_result_refs` (results over the claim's byte budget are sent this
/// way instead of inline).
#[utoipa::path(get, operation_id = "step_result", path = "/v1/steps/{id}/result", tag = "leases", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Step id")),
    responses((status = 200, body = StepResult), (status = 404, body = ErrorBody)))]
pub async fn result(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<StepResult>, ApiError> {
    let step = state.engine.step_get(id).await?;
    Ok(Json(StepResult {
        result: step.result,
    }))
}

/// Counts refusals of stale leases before handing the error on.
pub(crate) fn refused(state: &AppState, error: tasker_engine::Error) -> ApiError {
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
            Err(timed_out())
        }
    }
}

/// The refusal of a heartbeat that came after the step's timeout.
pub(crate) fn timed_out() -> ApiError {
    ApiError::new(
        "step_timed_out",
        "the attempt ran past the step's timeout and was failed as `timeout`; \
         stop working on it",
    )
}

/// Report a step's result.
///
/// Ready children are dispatched and the task finalized in the same
/// transaction. With `next`, up to `next.max` ready steps are leased to the
/// worker in that transaction too (only when this report was `applied`) and
/// returned to run at once.
#[utoipa::path(post, operation_id = "step_complete", path = "/v1/steps/{id}/complete", tag = "leases", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Step id")),
    request_body = Complete,
    responses(
        (status = 200, body = CompleteReply),
        (status = 400, description = "`invalid` `next.worker_id`; nothing was recorded", body = ErrorBody),
        (status = 404, description = "`namespace_not_found`: `next` named an unknown namespace; `worker_not_registered`: `next` named no namespaces and the worker is not registered. Nothing was recorded", body = ErrorBody),
        (status = 409, description = "`lease_expired`, `lease_mismatch` (also for an unknown step), `task_cancelled`, `step_not_running`", body = ErrorBody),
        (status = 413, description = "Result over the payload limit", body = ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    Path(step_id): Path<Uuid>,
    JsonBody(body): JsonBody<Complete>,
) -> Result<Json<CompleteReply>, ApiError> {
    let lease = Lease {
        step_id,
        attempt: body.attempt,
        token: body.token,
    };
    // A node that is shutting down hands out no new work, as it refuses new
    // polls: the result is recorded and the worker polls another node.
    let next = match body.next {
        Some(next) if !state.engine.is_shutting_down() => Some(resolve_next(&state, next).await?),
        _ => None,
    };
    let (recorded, claimed) = match next {
        Some((worker_id, namespaces, handlers, max)) => state
            .engine
            .step_complete_and_claim(lease, body.result, &worker_id, &namespaces, &handlers, max)
            .await
            .map_err(|e| refused(&state, e))?,
        None => {
            let recorded = state
                .engine
                .step_complete(lease, body.result)
                .await
                .map_err(|e| refused(&state, e))?;
            (recorded, Vec::new())
        }
    };
    state.metrics.step_completed(recorded);
    state.metrics.claims(&claimed);
    Ok(Json(CompleteReply {
        recorded: RecordedReply::from(recorded).recorded,
        next: claimed,
    }))
}

/// Checks `next` before anything is recorded, so a bad request changes
/// nothing: the worker id, its namespaces (the registered ones when none are
/// named, as for a poll) and the handlers it registered. Marks the worker as
/// seen, as a poll does: a worker handed its steps this way may never need
/// to poll.
pub(crate) async fn resolve_next(
    state: &AppState,
    next: NextRequest,
) -> Result<(String, Vec<String>, Vec<String>, u32), ApiError> {
    if next.worker_id.is_empty() || next.worker_id.len() > MAX_WORKER_ID_LEN {
        return Err(tasker_engine::Error::Invalid {
            field: "next.worker_id".into(),
            message: format!("must be 1-{MAX_WORKER_ID_LEN} characters"),
        }
        .into());
    }
    tasker_engine::nul_check::check_text("next.worker_id", &next.worker_id)?;
    state.engine.worker_seen(&next.worker_id);
    let (namespaces, handlers) = claim_scope(state, &next.worker_id, next.namespaces).await?;
    Ok((next.worker_id, namespaces, handlers, next.max.unwrap_or(1)))
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

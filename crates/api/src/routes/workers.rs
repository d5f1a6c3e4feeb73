//! The worker plane's worker endpoints: `POST /v1/workers/register` and the
//! long-poll `POST /v1/workers/{worker_id}/poll`.

use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tasker_model::ClaimedStep;
use tasker_store::{Worker, WorkerRegistration};
use utoipa::ToSchema;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, Path};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"worker_id": "billing-7f9c", "namespaces": ["examples"], "handlers": ["examples.linear.step_1"], "concurrency": 4, "version": "1.0.0"}))]
pub struct WorkerRegister {
    /// 1-128 characters, unique per worker process; registering again
    /// refreshes the record.
    #[schema(example = "billing-7f9c")]
    pub worker_id: String,
    /// Namespaces it polls (at least one; they need not exist yet).
    pub namespaces: Vec<String>,
    /// Handler names it runs: polls and `next` lease it only steps naming one
    /// of them. Default none: any step of its namespaces.
    #[serde(default)]
    pub handlers: Vec<String>,
    /// Steps it runs at once. Default 1.
    #[serde(default = "one")]
    pub concurrency: u32,
    #[serde(default)]
    pub version: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub worker: Worker,
    /// How long a claimed step stays leased without a heartbeat.
    pub lease_seconds: u64,
    /// How often to heartbeat a running step.
    pub heartbeat_interval_ms: u64,
    /// The longest `wait_ms` a poll honours.
    pub max_poll_wait_ms: u64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespaces": ["examples"], "max": 1, "wait_ms": 1000}))]
pub struct Poll {
    /// Namespaces to claim from: the poll takes its steps from whichever
    /// has work first. Default: those the worker registered with.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Most steps to claim. Default 1; capped by the server's claim batch.
    #[serde(default)]
    pub max: Option<u32>,
    /// How long to wait for work when none is ready. Default and cap: the
    /// server's `max_poll_wait_ms`.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Claimed {
    /// Empty when nothing became ready before the wait ended.
    pub steps: Vec<ClaimedStep>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/workers/register", post(register))
        .route("/v1/workers/{worker_id}/poll", post(poll))
}

/// Register a worker.
///
/// Records the worker and tells it the lease and heartbeat timings.
/// Namespaces that do not exist yet are accepted (a worker may start before
/// its templates are registered); polling them is 404 `namespace_not_found`
/// until they exist.
#[utoipa::path(post, operation_id = "worker_register", path = "/v1/workers/register", tag = "workers", security(("bearer" = [])),
    request_body = WorkerRegister,
    responses((status = 200, body = Registered), (status = 400, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<WorkerRegister>,
) -> Result<Json<Registered>, ApiError> {
    let worker = state
        .engine
        .worker_register(WorkerRegistration {
            worker_id: body.worker_id,
            namespaces: body.namespaces,
            handlers: body.handlers,
            concurrency: body.concurrency,
            version: body.version,
        })
        .await?;
    let engine = state.engine.config();
    Ok(Json(Registered {
        worker,
        lease_seconds: engine.lease_duration.as_secs(),
        heartbeat_interval_ms: state.config.heartbeat_interval.as_millis() as u64,
        max_poll_wait_ms: engine.max_poll_wait.as_millis() as u64,
    }))
}

/// Long-poll for steps.
///
/// Claims up to `max` ready steps, waiting up to `wait_ms` for work to arrive;
/// answers as soon as something is claimed, and with no steps when the wait
/// ends or the node begins shutting down.
#[utoipa::path(post, operation_id = "worker_poll", path = "/v1/workers/{worker_id}/poll", tag = "workers",
    security(("bearer" = [])),
    params(("worker_id" = String, Path)),
    request_body(content = Option<Poll>, description = "Optional; every field has a default"),
    responses(
        (status = 200, body = Claimed),
        (status = 400, description = "`invalid`: a bad worker id or namespace name (e.g. a NUL character); `bad_request`: an unknown field", body = ErrorBody),
        (status = 404, description = "`worker_not_registered`: no namespaces given and the worker is not (or no longer) registered: register again. \
            `namespace_not_found`: a polled namespace does not exist: registering again does not help", body = ErrorBody),
        (status = 503, description = "`shutting_down`: poll another node", body = ErrorBody)))]
pub async fn poll(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Poll>,
) -> Result<Json<Claimed>, ApiError> {
    if state.engine.is_shutting_down() {
        return Err(ApiError::shutting_down());
    }
    let body = body.unwrap_or_default();
    let max_wait = state.engine.config().max_poll_wait;
    let wait = body
        .wait_ms
        .map_or(max_wait, Duration::from_millis)
        .min(max_wait);
    let (namespaces, handlers) = claim_scope(&state, &worker_id, body.namespaces).await?;
    let claimed = state
        .engine
        .step_poll(
            &worker_id,
            &namespaces,
            &handlers,
            body.max.unwrap_or(1),
            wait,
        )
        .await?;
    state.metrics.claims(&claimed);
    Ok(Json(Claimed { steps: claimed }))
}

/// What `worker_id` may be leased: the namespaces asked for (or, when none
/// are named, those it registered with: 404 when it is not, or no longer,
/// registered) and the handlers it registered (none: any handler).
pub(crate) async fn claim_scope(
    state: &AppState,
    worker_id: &str,
    namespaces: Option<Vec<String>>,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let worker = state.engine.worker_scope(worker_id).await?;
    let handlers = worker
        .as_ref()
        .map(|w| w.handlers.clone())
        .unwrap_or_default();
    let namespaces = match (namespaces.filter(|ns| !ns.is_empty()), worker) {
        (Some(namespaces), _) => namespaces,
        (None, Some(worker)) => worker.namespaces,
        (None, None) => {
            return Err(ApiError::new(
                "worker_not_registered",
                format!(
                    "worker {worker_id:?} is not registered (or not heard from recently): \
                     register it again, or name the namespaces to poll"
                ),
            ));
        }
    };
    Ok((namespaces, handlers))
}

//! Dead letters: `GET /v1/dead-letters` lists the steps that exhausted
//! their retries (or failed with a non-retryable error) in tasks that can
//! still be reopened, with their last errors; `POST /v1/dead-letters/retry`
//! and `POST /v1/dead-letters/resolve` act on many at once, by ids or by a
//! filter, through the single-step retry and resolve.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tasker_engine::maintenance::{DeadLetterSelection, MAX_BULK};
use tasker_store::{DeadLetterFilter, DeadLetterOutcome, DeadLetterPage};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/dead-letters", get(list))
        .route("/v1/dead-letters/retry", post(retry))
        .route("/v1/dead-letters/resolve", post(resolve))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    pub namespace: Option<String>,
    /// Template name (every version).
    pub template: Option<String>,
    pub handler: Option<String>,
    /// The last error's `error_type`, e.g. `timeout`.
    pub error_type: Option<String>,
    /// Failed at or after this time (RFC 3339).
    pub failed_since: Option<String>,
    /// Failed before this time (RFC 3339).
    pub failed_until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, default 50, at most 500.
    pub limit: Option<String>,
}

/// Which dead letters to retry: `ids`, or every one `filter` selects.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"namespace": "examples", "error_type": "timeout"}, "limit": 100}))]
pub struct DeadLetterRetry {
    /// Step ids; give these or `filter`.
    #[serde(default)]
    pub ids: Option<Vec<Uuid>>,
    /// Every dead letter it selects (up to `limit`); give this or `ids`.
    #[serde(default)]
    pub filter: Option<DeadLetterFilter>,
    /// Most dead letters to act on, default and at most 1000. When the
    /// filter selects more, the answer says `more: true`.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Which dead letters to resolve, and the result their dependents receive.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"namespace": "examples", "handler": "examples.linear.step_2"}, "result": {"value": 16}}))]
pub struct DeadLetterResolve {
    /// Step ids; give these or `filter`.
    #[serde(default)]
    pub ids: Option<Vec<Uuid>>,
    /// Every dead letter it selects (up to `limit`); give this or `ids`.
    #[serde(default)]
    pub filter: Option<DeadLetterFilter>,
    /// Most dead letters to act on, default and at most 1000.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Stored as each step's result and handed to its dependents. Default none.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
}

/// List dead letters.
///
/// Steps that failed for good in tasks that are running or failed (so an
/// operator can still retry or resolve them), oldest step first, with
/// their last error; filtered, with cursor pagination.
#[utoipa::path(get, operation_id = "dead_letter_list", path = "/v1/dead-letters", tag = "dead-letters", security(("bearer" = [])),
    params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = DeadLetterFilter {
        namespace: given(query.namespace),
        template: given(query.template),
        handler: given(query.handler),
        error_type: given(query.error_type),
        failed_since: time("failed_since", given(query.failed_since))?,
        failed_until: time("failed_until", given(query.failed_until))?,
    };
    let limit = given(query.limit)
        .map(|s| {
            s.parse::<u32>().map_err(|_| {
                ApiError::bad_request(format!("limit must be a positive integer, not {s:?}"))
                    .with_details(serde_json::json!({ "field": "limit" }))
            })
        })
        .transpose()?;
    let cursor = given(query.cursor);
    Ok(Json(
        state
            .engine
            .dead_letter_list(&filter, cursor.as_deref(), limit)
            .await?,
    ))
}

fn time(field: &str, text: Option<String>) -> Result<Option<tasker_model::Timestamp>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "{field} must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z, not {t:?}"
                ))
                .with_details(serde_json::json!({ "field": field }))
            })
    })
    .transpose()
}

/// Retry dead letters.
///
/// Each selected step runs again with a fresh attempt budget, as
/// `POST /v1/steps/{id}/retry` does, and its failed task runs again. A step
/// that cannot be retried is listed in `refused` and the others go on.
#[utoipa::path(post, operation_id = "dead_letter_retry", path = "/v1/dead-letters/retry", tag = "dead-letters", security(("bearer" = [])),
    request_body = DeadLetterRetry,
    responses(
        (status = 200, body = DeadLetterOutcome),
        (status = 400, description = "`invalid`: neither or both of `ids` and `filter`, or a `limit` over 1000", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DeadLetterRetry>,
) -> Result<Json<DeadLetterOutcome>, ApiError> {
    let selection = DeadLetterSelection {
        ids: body.ids,
        filter: body.filter,
        limit: body.limit,
    };
    Ok(Json(state.engine.dead_letter_retry(&selection).await?))
}

/// Resolve dead letters.
///
/// Each selected step becomes `resolved`, as `POST /v1/steps/{id}/resolve`
/// does: it counts as complete for its dependents, which receive `result`,
/// and its failed task runs again.
#[utoipa::path(post, operation_id = "dead_letter_resolve", path = "/v1/dead-letters/resolve", tag = "dead-letters", security(("bearer" = [])),
    request_body = DeadLetterResolve,
    responses(
        (status = 200, body = DeadLetterOutcome),
        (status = 400, description = "`invalid`: neither or both of `ids` and `filter`, or a `limit` over 1000", body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DeadLetterResolve>,
) -> Result<Json<DeadLetterOutcome>, ApiError> {
    let selection = DeadLetterSelection {
        ids: body.ids,
        filter: body.filter,
        limit: body.limit,
    };
    Ok(Json(
        state
            .engine
            .dead_letter_resolve(&selection, body.result)
            .await?,
    ))
}

/// The most a bulk request acts on (kept in step with the engine).
const _: () = assert!(MAX_BULK == 1000);

//! Tasks: create (with an idempotency key), create many at once, list, get,
//! cancel, and a task's steps, history and why it waits.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tasker_engine::NewTask;
use tasker_model::{Step, Task, TaskExplanation, Transition};
use tasker_store::TaskFilter;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::include;
use crate::dto::{ErrorBody, ErrorDetail};
use crate::error::ApiError;
use crate::extract::{
    JsonBody, OptionalJsonBody, Path, Query, parse_json_keeping_nul, read_body, require_json,
};
use crate::state::AppState;

/// Many tasks at once (`POST /v1/tasks/batch`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tasks": [
    {"namespace": "examples", "template": "linear", "context": {"even_number": 2}},
    {"namespace": "examples", "template": "linear", "context": {"even_number": 4}, "idempotency_key": "order-4"}
]}))]
pub struct TaskCreateBatch {
    /// At most 1000, each the body of `POST /v1/tasks`. An item that is
    /// not one (an unknown field, a missing template) is refused alone.
    #[schema(value_type = Vec<NewTask>)]
    pub tasks: Vec<serde_json::Value>,
}

/// The answers of a batch, one per item in the order of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskBatchResults {
    pub results: Vec<TaskBatchResult>,
}

/// One item's answer: its task, or why it was refused.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TaskBatchResult {
    Task {
        task: Task,
        /// False when the idempotency key named an existing task (or an
        /// earlier item of the batch with the same key, template and context).
        created: bool,
    },
    /// The error a single create would have answered, e.g.
    /// `not_found`, `context_invalid`, `idempotency_conflict`.
    Error { error: ErrorDetail },
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskListQuery {
    pub namespace: Option<String>,
    /// Template name.
    pub template: Option<String>,
    /// `running`, `complete`, `failed` or `cancelled`.
    pub state: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, default 50, at most 500.
    pub limit: Option<String>,
    /// Only tasks whose id starts with these hex digits (1 to 32, dashes
    /// ignored), e.g. `0193a1`.
    pub id_prefix: Option<String>,
    /// `context` to include each task's context, left out by default.
    pub include: Option<String>,
    /// Only tasks carrying this tag.
    pub tag: Option<String>,
    /// Only tasks created at or after this time (RFC 3339), e.g.
    /// `2026-11-30T12:00:00Z`.
    pub created_after: Option<String>,
    /// Only tasks created before this time (RFC 3339).
    pub created_before: Option<String>,
}

/// An RFC 3339 time of a query parameter.
fn time_param(name: &str, text: &str) -> Result<tasker_model::Timestamp, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name} {text:?} is not an RFC 3339 time, e.g. 2026-11-30T12:00:00Z"
            ))
        })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// Tasks without `context` unless `include=context`.
    #[schema(value_type = Vec<Task>)]
    pub tasks: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "cancelled by an operator"}))]
pub struct TaskCancel {
    /// Recorded in the history of the task and of every step it cancels,
    /// so at most 1024 bytes. Default "cancelled by request".
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepList {
    /// Steps without `result` unless `include=result`.
    #[schema(value_type = Vec<Step>)]
    pub steps: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StepListQuery {
    /// `result` to include each step's result, left out by default.
    pub include: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskHistory {
    pub transitions: Vec<Transition>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, default 200, at most 1000 (larger is 400 `invalid`).
    pub limit: Option<String>,
}

/// A `limit` query parameter: empty means unset; anything but a whole
/// number is 400 `invalid` naming `limit`.
fn parse_limit(text: Option<String>) -> Result<Option<u32>, ApiError> {
    text.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>().map_err(|_| {
                ApiError::from(tasker_engine::Error::Invalid {
                    field: "limit".into(),
                    message: format!("must be a positive whole number, not {s:?}"),
                })
            })
        })
        .transpose()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(create).get(list))
        .route("/v1/tasks/batch", post(create_batch))
        .route("/v1/tasks/{id}", get(get_one))
        .route("/v1/tasks/{id}/cancel", post(cancel))
        .route("/v1/tasks/{id}/steps", get(steps))
        .route("/v1/tasks/{id}/history", get(history))
        .route("/v1/tasks/{id}/explain", get(explain))
}

/// Create a task.
///
/// Creates a task of a template after checking its context against the
/// template's schema; its root steps are ready at once. With an
/// `idempotency_key` that already names a task of the same template (and
/// version, when named) and context, returns that task (200) and creates
/// nothing; the key with anything else is 409 `idempotency_conflict`.
#[utoipa::path(post, operation_id = "task_create", path = "/v1/tasks", tag = "tasks", security(("bearer" = [])),
    request_body = NewTask,
    responses(
        (status = 201, description = "Created", body = Task),
        (status = 200, description = "The idempotency key named an existing task", body = Task),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`: the key names a task of another template or context", body = ErrorBody),
        (status = 413, description = "Context over the payload limit", body = ErrorBody),
        (status = 422, description = "`context_invalid`; details list every `{path, message}`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let (task, created) = state.engine.task_create(body).await?;
    let status = if created {
        state
            .metrics
            .task_created(&task.namespace, &task.template_name);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(task)))
}

/// Create many tasks.
///
/// Creates up to 1000 tasks in one transaction, each item checked as
/// `POST /v1/tasks` checks it. Every item is answered in order, with its
/// task (`created` false when its idempotency key named an existing task)
/// or with the error a single create would have returned: a bad item fails
/// alone. Items sharing an idempotency key are one task: the first creates
/// it, the next get it back when template and context match, else
/// `idempotency_conflict`. A database error fails the whole request (500,
/// or 503 `unavailable`) and creates nothing.
#[utoipa::path(post, operation_id = "task_create_batch", path = "/v1/tasks/batch", tag = "tasks", security(("bearer" = [])),
    request_body = TaskCreateBatch,
    responses(
        (status = 200, description = "One answer per item, in order", body = TaskBatchResults),
        (status = 400, description = "Not a batch, or more than 1000 items", body = ErrorBody),
        (status = 413, description = "Body over the server's limit", body = ErrorBody)))]
pub async fn create_batch(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<TaskBatchResults>, ApiError> {
    require_json(request.headers())?;
    let bytes = read_body(request, &state).await?;
    // NUL characters are refused per item, by the engine's checks.
    let body: TaskCreateBatch = parse_json_keeping_nul(&bytes)?;
    let max = tasker_engine::MAX_BATCH_TASKS;
    if body.tasks.len() > max {
        return Err(ApiError::bad_request(format!(
            "{} tasks in one request; the limit is {max}: send them in several requests",
            body.tasks.len()
        ))
        .with_details(serde_json::json!({ "field": "tasks", "limit": max })));
    }
    let mut answers: Vec<Option<TaskBatchResult>> = Vec::with_capacity(body.tasks.len());
    let mut items = Vec::new();
    for item in body.tasks {
        match serde_path_to_error::deserialize::<_, NewTask>(item) {
            Ok(item) => {
                items.push(item);
                answers.push(None);
            }
            Err(e) => answers.push(Some(refused(&item_refusal(e)))),
        }
    }
    let mut written = state.engine.task_create_many(items).await?.into_iter();
    let results = answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| match written.next().expect("one answer per item") {
                Ok((task, created)) => {
                    if created {
                        state
                            .metrics
                            .task_created(&task.namespace, &task.template_name);
                    }
                    TaskBatchResult::Task { task, created }
                }
                Err(e) => refused(&ApiError::from(e)),
            })
        })
        .collect();
    Ok(Json(TaskBatchResults { results }))
}

/// An item that is not a task body, refused as a single create would be.
fn item_refusal(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner().to_string();
    let refusal = if path == "." {
        ApiError::bad_request(format!("not a task: {inner}"))
    } else {
        ApiError::bad_request(format!("not a task: at {path}: {inner}"))
    };
    if inner.starts_with("unknown field") {
        refusal.with_details(serde_json::json!({ "field": path }))
    } else {
        refusal
    }
}

fn refused(error: &ApiError) -> TaskBatchResult {
    TaskBatchResult::Error {
        error: ErrorDetail {
            code: error.code().to_owned(),
            message: error.message().to_owned(),
            details: error.details().clone(),
        },
    }
}

/// List tasks.
///
/// Newest first, filtered, with cursor pagination; each task without its
/// `context` unless `include=context`.
#[utoipa::path(get, operation_id = "task_list", path = "/v1/tasks", tag = "tasks", security(("bearer" = [])),
    params(TaskListQuery),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<TaskListQuery>,
) -> Result<Json<TaskList>, ApiError> {
    let include = include::TASK_FIELDS.parse(query.include.as_deref())?;
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = TaskFilter {
        namespace: given(query.namespace),
        template: given(query.template),
        state: given(query.state)
            .map(|s| tasker_store::parse_task_state(&s))
            .transpose()?,
        cursor: given(query.cursor),
        limit: given(query.limit)
            .map(|s| {
                s.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(format!("limit must be a positive integer, not {s:?}"))
                })
            })
            .transpose()?,
        id_prefix: given(query.id_prefix),
        tag: given(query.tag),
        created_after: given(query.created_after)
            .map(|t| time_param("created_after", &t))
            .transpose()?,
        created_before: given(query.created_before)
            .map(|t| time_param("created_before", &t))
            .transpose()?,
    };
    let page = state.engine.task_list(&filter).await?;
    Ok(Json(TaskList {
        tasks: page.tasks.iter().map(|t| include.apply(t)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get a task.
#[utoipa::path(get, operation_id = "task_get", path = "/v1/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(state.engine.task_get(id).await?))
}

/// Cancel a task.
///
/// Steps not yet finished become `cancelled`; workers holding them learn it at
/// their next heartbeat, and their results are refused.
#[utoipa::path(post, operation_id = "task_cancel", path = "/v1/tasks/{id}/cancel", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = Option<TaskCancel>, description = "Optional"),
    responses(
        (status = 200, body = Task),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`task_finished`", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody<TaskCancel>,
) -> Result<Json<Task>, ApiError> {
    let reason = body.unwrap_or_default().reason;
    Ok(Json(state.engine.task_cancel(id, reason.as_deref()).await?))
}

/// The steps of a task.
///
/// Each step without its `result` unless `include=result` (`GET
/// /v1/steps/{id}` always has it).
#[utoipa::path(get, operation_id = "task_steps", path = "/v1/tasks/{id}/steps", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), StepListQuery),
    responses((status = 200, body = StepList), (status = 400, description = "`invalid`: an unknown `include`", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn steps(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<StepListQuery>,
) -> Result<Json<StepList>, ApiError> {
    let include = include::STEP_FIELDS.parse(query.include.as_deref())?;
    let steps = state.engine.task_steps(id).await?;
    Ok(Json(StepList {
        steps: steps.iter().map(|s| include.apply(s)).collect(),
    }))
}

/// The history of a task.
///
/// Every state change of the task and its steps, oldest first, a page at a
/// time: follow `next_cursor` until it is `null`.
#[utoipa::path(get, operation_id = "task_history", path = "/v1/tasks/{id}/history", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = TaskHistory), (status = 400, description = "`invalid`: a bad `cursor` or `limit`", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<TaskHistory>, ApiError> {
    let cursor = query.cursor.filter(|s| !s.is_empty());
    let page = state
        .engine
        .task_history_page(id, cursor.as_deref(), parse_limit(query.limit)?)
        .await?;
    Ok(Json(TaskHistory {
        transitions: page.transitions,
        next_cursor: page.next_cursor,
    }))
}

/// Why a task is waiting.
///
/// Per step that is not complete or resolved, what it waits for: parents
/// not done, a failed or cancelled step it depends on, its place in the
/// queue, whether a live worker serves its namespace and handler, who holds
/// its lease and until when, when its next attempt runs. A finished task
/// gets its one-line `summary` ("complete at …").
#[utoipa::path(get, operation_id = "task_explain", path = "/v1/tasks/{id}/explain", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = TaskExplanation, example = json!({
            "task_id": "019ad3c1-7a4e-7c21-9f0e-3b2d5c8a1e47",
            "namespace": "orders",
            "state": "running",
            "summary": "running; 2 of 3 steps not finished",
            "at": "2026-11-30T12:00:00Z",
            "steps": [
                {"step_id": "019ad3c1-7a4e-7c21-9f0e-3b2d5c8a1e48", "name": "charge", "handler": "charge_card",
                 "state": "ready", "attempt": 0, "max_attempts": 3,
                 "reasons": [
                    {"kind": "queued", "since": "2026-11-30T11:55:00Z", "visible_at": "2026-11-30T11:55:00Z"},
                    {"kind": "no_worker_serves_namespace", "namespace": "orders"}]},
                {"step_id": "019ad3c1-7a4e-7c21-9f0e-3b2d5c8a1e49", "name": "ship", "handler": "ship_parcel",
                 "state": "pending", "attempt": 0, "max_attempts": 3,
                 "reasons": [
                    {"kind": "parents_not_done", "parents": [{"name": "charge", "state": "ready"}]},
                    {"kind": "no_worker_serves_namespace", "namespace": "orders"}]}
            ]
        })),
        (status = 404, body = ErrorBody)))]
pub async fn explain(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<TaskExplanation>, ApiError> {
    Ok(Json(state.engine.task_explain(id).await?))
}

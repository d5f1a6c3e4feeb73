//! `POST /v1/templates` (YAML or JSON), `GET /v1/templates`,
//! `GET /v1/templates/{namespace}/{name}`.

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tasker_model::TemplateRecord;
use utoipa::{IntoParams, ToSchema};

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::{Path, Query, content_type, parse_json};
use crate::state::AppState;

/// Content types that mean "the body is the YAML form of the template".
const YAML_TYPES: [&str; 3] = ["application/yaml", "text/yaml", "application/x-yaml"];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateListQuery {
    /// Only this namespace's templates.
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateGetQuery {
    /// A version; default the newest (highest in version order: see the
    /// template reference).
    pub version: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateRecord>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/templates", post(register).get(list))
        .route("/v1/templates/{namespace}/{name}", get(get_one))
}

/// Register a template.
///
/// The body is YAML when `Content-Type` is `application/yaml`, `text/yaml` or
/// `application/x-yaml`, and the JSON form of the template otherwise. Identical
/// content under the same `namespace/name@version` is a no-op (200); different
/// content is 409 `template_conflict`.
#[utoipa::path(post, operation_id = "template_register", path = "/v1/templates", tag = "templates", security(("bearer" = [])),
    request_body(description = "The template, as YAML or as JSON", content(
        (Object = "application/json", example = json!({
            "namespace": "default", "name": "hello", "version": "1",
            "steps": [
                {"name": "greet", "handler": "hello.greet"},
                {"name": "log", "handler": "hello.log", "depends_on": ["greet"]}
            ]
        })),
        (String = "application/yaml", example = "namespace: default\nname: hello\nversion: \"1\"\nsteps:\n  - { name: greet, handler: hello.greet }\n  - { name: log, handler: hello.log, depends_on: [greet] }\n"))),
    responses(
        (status = 201, description = "Registered", body = TemplateRecord),
        (status = 200, description = "Identical template already registered", body = TemplateRecord),
        (status = 400, description = "Malformed body (`bad_request`, `template_parse`)", body = ErrorBody),
        (status = 409, description = "`template_conflict`: same version, different content", body = ErrorBody),
        (status = 422, description = "`template_invalid`; details list every `{path, message}`", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TemplateRecord>), ApiError> {
    let body = body?;
    let is_yaml = content_type(&headers).is_some_and(|ct| YAML_TYPES.contains(&ct.as_str()));
    let (record, created) = if is_yaml {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("the YAML body is not valid UTF-8"))?;
        state.engine.template_register_yaml(text).await?
    } else {
        let value: serde_json::Value = parse_json(&body)?;
        state.engine.template_register_json(value).await?
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)))
}

/// List templates.
#[utoipa::path(get, operation_id = "template_list", path = "/v1/templates", tag = "templates", security(("bearer" = [])),
    params(TemplateListQuery),
    responses((status = 200, body = TemplateList)))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<TemplateListQuery>,
) -> Result<Json<TemplateList>, ApiError> {
    let namespace = query.namespace.filter(|ns| !ns.is_empty());
    let templates = state.engine.template_list(namespace.as_deref()).await?;
    Ok(Json(TemplateList { templates }))
}

/// Get a template.
///
/// The given `version`, or the newest: the highest in version order
/// (semantic and integer versions by value, a pre-release below its release;
/// versions that are not numbers below those that are, ties to the later
/// registration).
#[utoipa::path(get, operation_id = "template_get", path = "/v1/templates/{namespace}/{name}", tag = "templates",
    security(("bearer" = [])),
    params(
        ("namespace" = String, Path, description = "Namespace of the template"),
        ("name" = String, Path, description = "Template name"),
        TemplateGetQuery),
    responses(
        (status = 200, body = TemplateRecord),
        (status = 404, description = "No such template (or version)", body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<TemplateGetQuery>,
) -> Result<Json<TemplateRecord>, ApiError> {
    let version = query.version.filter(|v| !v.is_empty());
    let record = state
        .engine
        .template_get(&namespace, &name, version.as_deref())
        .await?;
    Ok(Json(record))
}

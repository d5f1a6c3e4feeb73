//! `POST /v1/namespaces`, `GET /v1/namespaces`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tasker_model::Namespace;
use utoipa::ToSchema;

use crate::dto::ErrorBody;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "orders"}))]
pub struct NamespaceCreate {
    /// `^[a-z][a-z0-9_]{0,39}$`
    #[schema(example = "orders")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceList {
    pub namespaces: Vec<Namespace>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/namespaces", post(create).get(list))
}

/// Create a namespace.
///
/// Creates the namespace and its queue; an existing one is returned as it is
/// (200).
#[utoipa::path(post, operation_id = "namespace_create", path = "/v1/namespaces", tag = "namespaces", security(("bearer" = [])),
    request_body = NamespaceCreate,
    responses(
        (status = 201, description = "Created", body = Namespace),
        (status = 200, description = "Already existed", body = Namespace),
        (status = 400, description = "Invalid name", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NamespaceCreate>,
) -> Result<(StatusCode, Json<Namespace>), ApiError> {
    let (namespace, created) = state.engine.namespace_create(&body.name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(namespace)))
}

/// List namespaces.
#[utoipa::path(get, operation_id = "namespace_list", path = "/v1/namespaces", tag = "namespaces", security(("bearer" = [])),
    responses((status = 200, body = NamespaceList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<NamespaceList>, ApiError> {
    let namespaces = state.engine.namespace_list().await?;
    Ok(Json(NamespaceList { namespaces }))
}

//! `GET /api-docs/openapi.json` and `GET /docs`: the OpenAPI document and a
//! browsable page that renders it. The page is one self-contained HTML file
//! compiled into the binary; it loads nothing from anywhere but this server,
//! so it works offline and behind strict firewalls.

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::state::AppState;

const PAGE: &str = include_str!("../assets/docs.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-docs/openapi.json", get(openapi_json))
        .route("/docs", get(page))
}

async fn openapi_json(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::openapi(&state.config.version))
}

async fn page() -> Response {
    ([(CACHE_CONTROL, "no-cache")], Html(PAGE)).into_response()
}

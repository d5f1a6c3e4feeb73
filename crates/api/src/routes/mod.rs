//! One module per resource, each exporting `router()`. Handlers translate
//! HTTP to engine calls and return the engine's records as they are; they hold
//! no logic of their own beyond defaults and metrics.

pub mod cluster;
pub mod dead_letters;
mod include;
pub mod leases;
pub mod namespaces;
pub mod probes;
pub mod schedules;
pub mod step_reports;
pub mod steps;
pub mod tasks;
pub mod templates;
pub mod workers;

use crate::error::ApiError;

/// The answer for a path no route matches.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}; see /docs", uri.path()))
}

/// The answer for a known path asked with a method it does not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        "method_not_allowed",
        format!("{} does not take {method}; see /docs", uri.path()),
    )
}

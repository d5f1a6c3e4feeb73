//! The JSON shape of every error response, described for the OpenAPI
//! document ([`crate::ApiError`] writes it). The records the API returns are
//! the domain types themselves (`tasker_model`, `tasker_store::Worker`),
//! which derive `ToSchema` under their `openapi` feature: copying them here
//! would only let the copy drift from what is serialized.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The error body of every failed request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `not_found`, `lease_expired`.
    #[schema(example = "not_found")]
    pub code: String,
    /// What was wrong and what to do, for people.
    pub message: String,
    /// Code-specific: for `template_invalid` and `context_invalid` a list of
    /// `{path, message}`; otherwise usually `null`.
    pub details: Value,
}

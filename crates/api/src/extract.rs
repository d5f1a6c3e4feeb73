//! Request extractors whose refusals are [`ApiError`]s in the documented
//! JSON form, instead of axum's plain-text rejections: a malformed body is
//! 400 `bad_request`, a body that is not JSON by its content type 415
//! `unsupported_media_type`, a body over the limit 413 `payload_too_large`.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON request body that may be absent: an empty body is `None`.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

/// Path parameters; a malformed one (e.g. not a UUID) is 400 `bad_request`.
#[derive(Debug)]
pub struct Path<T>(pub T);

/// Query parameters; a malformed one is 400 `bad_request`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large("the request body is larger than this server accepts")
        } else {
            ApiError::bad_request(format!(
                "could not read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}

/// Reads the whole body, honouring the router's body limit.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Ok(Bytes::from_request(request, state).await?)
}

pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

fn is_json(content_type: &str) -> bool {
    content_type == "application/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"))
}

pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match content_type(headers) {
        Some(ct) if is_json(&ct) => Ok(()),
        Some(ct) => Err(ApiError::unsupported_media_type(format!(
            "this endpoint takes JSON; send Content-Type: application/json (got {ct})"
        ))),
        None => Err(ApiError::unsupported_media_type(
            "this endpoint takes JSON; send Content-Type: application/json",
        )),
    }
}

/// Parses JSON, saying where it went wrong. A string holding a NUL
/// character is refused first, naming where it is (see [`crate::nul_check`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    crate::nul_check::check_body(bytes)?;
    parse_json_keeping_nul(bytes)
}

/// Parses JSON as [`parse_json`] does but lets NUL characters through, for
/// a handler that refuses them itself (per item of a batch).
pub fn parse_json_keeping_nul<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| refusal::<T>(bytes, e))
}

/// Why a body did not parse, with the path to where it went wrong. Parsing
/// again with the path tracked costs only on this, the failing, path.
fn refusal<T: DeserializeOwned>(bytes: &[u8], error: serde_json::Error) -> ApiError {
    let prefix = "the request body is not valid JSON for this endpoint";
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Err(e) = serde_path_to_error::deserialize::<_, T>(&mut deserializer) else {
        return ApiError::bad_request(format!("{prefix}: {error}"));
    };
    let path = e.path().to_string();
    let refused = if path == "." {
        ApiError::bad_request(format!("{prefix}: {}", e.inner()))
    } else {
        ApiError::bad_request(format!("{prefix}: at {path}: {}", e.inner()))
    };
    // The path of an unknown field ends with the field itself.
    if e.inner().to_string().starts_with("unknown field") {
        refused.with_details(serde_json::json!({ "field": path }))
    } else {
        refused
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(request.headers())?;
        let bytes = read_body(request, state).await?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        require_json(&headers)?;
        Ok(OptionalJsonBody(Some(parse_json(&bytes)?)))
    }
}

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in &raw {
                crate::nul_check::check_param(name, value)?;
            }
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection: PathRejection| {
                ApiError::bad_request(format!("bad path parameter: {}", rejection.body_text()))
            })
    }
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(axum::extract::Query(pairs)) =
            axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state).await
        {
            for (name, value) in &pairs {
                crate::nul_check::check_param(name, value)?;
            }
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::bad_request(format!("bad query parameter: {}", rejection.body_text()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(require_json(&headers).is_err());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(require_json(&headers).is_ok());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(require_json(&headers).is_ok());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(require_json(&headers).unwrap_err().status_code(), 415);
    }
}

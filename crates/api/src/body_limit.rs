//! The request body limit (`max_body_bytes`), answered so that the client
//! actually receives the 413.
//!
//! Refusing a body by closing the connection while the client is still
//! sending it loses the answer: the unread bytes make the server's TCP stack
//! reset the connection, and the client (or a proxy such as nginx in front)
//! sees a broken pipe or a 502 instead of `payload_too_large`. So an
//! oversized body is read and thrown away, up to [`DRAIN_MAX_BYTES`] and
//! [`DRAIN_TIMEOUT`], before the 413 is sent; the connection then stays
//! usable. A client that sent `Expect: 100-continue` is answered at once and
//! never sends the body.
//!
//! Bodies within the limit are buffered here and handed on whole, which is
//! what every endpoint does with them anyway.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt;

use crate::error::ApiError;

/// The most of an oversized body read (and discarded) before answering.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024 * 1024;
/// The longest an oversized body is read before answering.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Middleware: buffers the body, refusing one over `limit` bytes with 413.
pub async fn limit(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let expects_continue = parts
            .headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !expects_continue {
            drain(body).await;
        }
        return too_large(limit);
    }
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                return ApiError::bad_request(format!("could not read the request body: {error}"))
                    .into_response();
            }
        };
        if buffer.len() + chunk.len() > limit {
            drain(Body::from_stream(stream)).await;
            return too_large(limit);
        }
        buffer.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(buffer.freeze())))
        .await
}

fn too_large(limit: usize) -> Response {
    ApiError::payload_too_large(format!(
        "the request body is larger than this server accepts ({limit} bytes)"
    ))
    .into_response()
}

/// Reads and discards the rest of a body, within the drain bounds.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len();
            if read > DRAIN_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

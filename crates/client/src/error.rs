//! The client's one error type. Callers decide what to do by kind: an
//! [`Error::Api`] is the server's considered answer (do not blindly repeat
//! the request), an [`Error::Transport`] means the server was not reached or
//! did not answer in time (reconnect with backoff), an [`Error::Decode`]
//! means client and server disagree about the contract.

use serde::Deserialize;

/// Codes of the 409 answers that mean "this lease is no longer yours": the
/// worker must stop the attempt and must not report it again.
pub const LEASE_LOST_CODES: [&str; 5] = [
    "lease_expired",
    "lease_mismatch",
    "task_cancelled",
    "step_not_running",
    "step_timed_out",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status. `code` is the stable machine
    /// code of the `{"error": {...}}` body (see the API documentation); when
    /// the body was not in that shape (a proxy's page, say) `code` is
    /// `http_<status>` and `message` is the start of the body.
    #[error("{code} (HTTP {status}): {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: serde_json::Value,
    },
    /// The request did not get an answer: connection refused or reset, DNS
    /// failure, or a timeout. Safe to retry with backoff for idempotent calls
    /// and for worker reports (leases fence duplicates).
    #[error("request to {url} failed: {message}")]
    Transport {
        url: String,
        /// The transport error and its causes, in one line.
        message: String,
        timed_out: bool,
        /// The transport error itself. Not the error's `source()`: `message`
        /// already carries its text, and a report of the whole chain would
        /// say it twice.
        cause: reqwest::Error,
    },
    /// The server answered successfully but the body was not what the
    /// contract promises.
    #[error("unexpected response from {url}: {message}")]
    Decode { url: String, message: String },
    /// A CA certificate given to [`crate::Client::with_root_certificate`]
    /// cannot be used.
    #[error("invalid CA certificate: {message}")]
    InvalidCertificate { message: String },
    /// The base URL given to [`crate::Client::new`] cannot be used.
    #[error("invalid server URL \"{url}\": {message}")]
    InvalidUrl { url: String, message: String },
}

impl Error {
    /// The HTTP status of an [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The machine code of an [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    /// The server could not be reached, or said it cannot serve right now
    /// (502/503/504: a proxy with no backend, a node not ready or shutting
    /// down). Worth retrying later, possibly on another node.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// Worth sending again for a request that is safe to repeat (worker
    /// reports, fenced by their lease): the server was not reached, or
    /// answered with any 5xx — a 500 during a database outage included.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { status, .. } => (500..=599).contains(status),
            _ => false,
        }
    }

    /// A 409 saying the presented lease is not (or no longer) the step's
    /// current one, or that the attempt was ended by the server (task
    /// cancelled, step timed out). Nothing was changed.
    pub fn is_lease_lost(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                *status == 409 && LEASE_LOST_CODES.contains(&code.as_str())
            }
            _ => false,
        }
    }

    pub(crate) fn transport(url: &reqwest::Url, source: reqwest::Error) -> Self {
        Error::Transport {
            url: url.to_string(),
            message: error_chain(&source),
            timed_out: source.is_timeout(),
            cause: source,
        }
    }

    pub(crate) fn decode(url: &reqwest::Url, message: impl Into<String>) -> Self {
        Error::Decode {
            url: url.to_string(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::Api`] from an error status and its body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: ApiError,
        }
        #[derive(Deserialize)]
        struct ApiError {
            code: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            details: serde_json::Value,
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => Error::Api {
                status,
                code: error.code,
                message: error.message,
                details: error.details,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let message = if text.is_empty() {
                    "no error body".to_owned()
                } else {
                    text.chars().take(200).collect()
                };
                Error::Api {
                    status,
                    code: format!("http_{status}"),
                    message,
                    details: serde_json::Value::Null,
                }
            }
        }
    }
}

/// `reqwest`'s top-level message plus its causes ("error sending request:
/// tcp connect error: Connection refused"), which is what an operator needs.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_error_envelope() {
        let body = br#"{"error":{"code":"lease_mismatch","message":"stale","details":{"x":1}}}"#;
        let error = Error::from_response(409, body);
        match &error {
            Error::Api {
                status,
                code,
                message,
                details,
            } => {
                assert_eq!(*status, 409);
                assert_eq!(code, "lease_mismatch");
                assert_eq!(message, "stale");
                assert_eq!(details, &serde_json::json!({"x": 1}));
            }
            other => panic!("expected Api, got {other:?}"),
        }
        assert!(error.is_lease_lost());
        assert!(!error.is_unavailable());
    }

    #[test]
    fn a_body_without_the_envelope_keeps_status_and_text() {
        let error = Error::from_response(502, b"<html>Bad Gateway</html>");
        assert_eq!(error.code(), Some("http_502"));
        assert!(error.to_string().contains("Bad Gateway"));
        assert!(error.is_unavailable());
        let empty = Error::from_response(500, b"");
        assert_eq!(empty.code(), Some("http_500"));
        assert!(!empty.is_unavailable());
    }

    /// Each cause once, whether the error is shown alone or with its chain.
    fn chain_text(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    #[tokio::test]
    async fn a_transport_error_says_its_cause_once() {
        // A server that hangs up on every connection without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let client = crate::Client::new(&format!("http://{address}"), None).unwrap();
        let error = client.health().await.unwrap_err();
        assert!(error.is_transport(), "{error:?}");
        let text = chain_text(&error);
        assert_eq!(text, error.to_string(), "no cause repeated: {text}");
        assert_eq!(text.matches("error sending request").count(), 1, "{text}");
    }

    #[test]
    fn only_lease_codes_on_409_mean_lease_lost() {
        for code in LEASE_LOST_CODES {
            let body = format!(r#"{{"error":{{"code":"{code}","message":""}}}}"#);
            assert!(Error::from_response(409, body.as_bytes()).is_lease_lost());
        }
        let conflict = Error::from_response(409, br#"{"error":{"code":"template_conflict"}}"#);
        assert!(!conflict.is_lease_lost());
        let not_found = Error::from_response(404, br#"{"error":{"code":"lease_expired"}}"#);
        assert!(!not_found.is_lease_lost());
    }
}

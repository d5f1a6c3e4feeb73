//! A typed async client for the Tasker HTTP API (see `docs/api.md`): probes,
//! namespaces, templates, tasks and steps for operators, and the worker
//! plane (register, poll, heartbeat, complete, complete-and-claim, fail,
//! release) for workers.
//!
//! The client reuses the domain records of `tasker-model` and the params of
//! `tasker-store` on the wire, so a field renamed on the server fails to
//! compile here rather than to decode at run time. It holds no state besides
//! the connection pool: any node behind a load balancer can answer any call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker_client::Error> {
//! use tasker_client::{Client, NewTask};
//!
//! let client = Client::new("http://127.0.0.1:8080", None)?;
//! let (task, created) = client
//!     .task_create(&NewTask::new("examples", "linear").context(serde_json::json!({"even_number": 2})))
//!     .await?;
//! println!("{} {}", task.id, if created { "created" } else { "existing" });
//! # Ok(())
//! # }
//! ```
//!
//! `http://` and `https://` (TLS through rustls, no OpenSSL): a server
//! certificate is trusted when it chains to the system's roots or the
//! bundled web roots, or to a CA added with [`Client::with_root_certificate`]
//! (a private CA of a TLS-terminating load balancer).

mod dead_letters;
mod error;
mod namespaces;
mod probes;
mod schedules;
mod step_reports;
mod tasks;
mod templates;
mod worker_plane;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;

pub use dead_letters::DeadLetterSelection;
pub use error::{Error, LEASE_LOST_CODES};
pub use probes::{ClusterInfo, Health, Readiness, ReadinessChecks};
pub use schedules::{Backfilled, ScheduleView, Triggered};
pub use step_reports::{LeaseReport, LeaseReportAnswer};
pub use tasker_model::wire::NewTask;
pub use tasks::TaskRefusal;
pub use worker_plane::{FailReport, HeartbeatReply, NextRequest, RegisterReply};

// The records the client returns, so callers need not depend on the crates
// that define them.
pub use tasker_model::schedule::{CatchUp, FireKind, FireOutcome, OverlapPolicy};
pub use tasker_model::wire::{
    DeadLetter, DeadLetterFilter, DeadLetterOutcome, DeadLetterPage, HistoryPage, SweepRecord,
    TaskFilter, TaskPage, Worker, WorkerRegistration,
};
pub use tasker_model::{
    ClaimedStep, FanOutItems, Lease, MAX_REPORTS_PER_REQUEST, Namespace, Recorded, Schedule,
    ScheduleFire, ScheduleSpec, Step, StepError, StepExplanation, StepState, Task, TaskExplanation,
    TaskState, TemplateRecord, Transition, WaitReason,
};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest any call but a long-poll may take, connection included. Default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest to wait for a TCP connection. Default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than its `wait` a long-poll may take before the client
/// gives up: the server's own reply time and a claim that races the deadline.
pub const POLL_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);

/// A handle on one Tasker server (or a load balancer in front of several).
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Extra trusted CAs, kept to build `http` again when one is added.
    extra_roots: Vec<reqwest::Certificate>,
    base: Url,
    token: Option<String>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`;
    /// a path prefix such as `http://proxy/tasker/` is kept; without a
    /// scheme, `127.0.0.1:8080` or `tasker.internal`, `http://` is meant).
    /// `token` is sent as `Authorization: Bearer <token>`; `None` for a
    /// server with auth off.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self> {
        let invalid = |message: &str| Error::InvalidUrl {
            url: base_url.to_owned(),
            message: message.to_owned(),
        };
        let mut base =
            Url::parse(&with_scheme(base_url.trim())).map_err(|e| invalid(&e.to_string()))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(invalid("use an http:// or https:// URL"));
        }
        if base.cannot_be_a_base() {
            return Err(invalid("the URL cannot carry a path"));
        }
        base.set_query(None);
        base.set_fragment(None);
        let http = http_client(&[]).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self {
            http,
            extra_roots: Vec::new(),
            base,
            token: token.filter(|t| !t.is_empty()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// Also trusts the CA certificates in `pem` (one or more PEM blocks) for
    /// `https://` servers, besides the system's and the bundled web roots:
    /// for a server or load balancer whose certificate a private CA signed.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Self> {
        let invalid = |message: String| Error::InvalidCertificate { message };
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| invalid(e.to_string()))?;
        if certificates.is_empty() {
            return Err(invalid("no PEM certificate found".into()));
        }
        self.extra_roots.extend(certificates);
        self.http = http_client(&self.extra_roots).map_err(|e| invalid(e.to_string()))?;
        Ok(self)
    }

    /// Replaces the per-call timeout (long-polls excepted: they always get
    /// their wait plus [`POLL_TIMEOUT_MARGIN`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The server URL this client talks to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `base` + path segments, each percent-encoded as needed.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in Client::new that the URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let builder = self
            .http
            .request(method, url.clone())
            .timeout(self.request_timeout);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a request and returns the status and body of any answer, error
    /// statuses included; only a missing answer is an error here.
    async fn exchange(&self, url: &Url, builder: RequestBuilder) -> Result<(u16, bytes::Bytes)> {
        let response = builder.send().await.map_err(|e| Error::transport(url, e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::transport(url, e))?;
        Ok((status, body))
    }

    /// Sends a request, turns error statuses into [`Error::Api`] and decodes
    /// the body of a success. Returns the status with it (201 vs 200 matters
    /// to creates). A success without a body (204 No Content) decodes only
    /// as `()`: use `call::<()>` for endpoints that answer nothing.
    async fn call<T: DeserializeOwned>(
        &self,
        url: &Url,
        builder: RequestBuilder,
    ) -> Result<(u16, T)> {
        let (status, body) = self.exchange(url, builder).await?;
        if !(200..300).contains(&status) {
            return Err(Error::from_response(status, &body));
        }
        Ok((status, decode(url, &body)?))
    }
}

/// The HTTP client every call goes through, trusting `extra_roots` too.
fn http_client(extra_roots: &[reqwest::Certificate]) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .user_agent(concat!("tasker-client/", env!("CARGO_PKG_VERSION")));
    for root in extra_roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build()
}

/// `host[:port][/path]` without a scheme as `http://…`; anything else as
/// given (a URL with a scheme, or text that is no address and fails later).
fn with_scheme(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains("://") {
        return text.into();
    }
    let authority = text.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 address without a port: `[::1]`.
        Some((_, rest)) if authority.ends_with(']') && !rest.is_empty() => (authority, None),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        format!("http://{text}").into()
    } else {
        text.into()
    }
}

fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T> {
    if body.is_empty() {
        // An empty body is not JSON; read it as `null`, which only `()` (and
        // `Option`) accept, so a call expecting a record still fails clearly.
        return serde_json::from_value(serde_json::Value::Null)
            .map_err(|_| Error::decode(url, "the answer had no body where JSON was expected"));
    }
    serde_json::from_slice(body).map_err(|e| Error::decode(url, e.to_string()))
}

#[cfg(test)]
mod tests;

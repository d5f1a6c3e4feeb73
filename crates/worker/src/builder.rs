//! [`WorkerBuilder`]: every setting of a worker, with its default.

use std::sync::Arc;
use std::time::Duration;

use tasker_client::Client;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::handler::Handler;
use crate::step_runner::Handlers;
use crate::worker::Worker;

/// Longest worker id the server accepts (declared with the other protocol
/// limits in the model).
pub use tasker_model::limits::MAX_WORKER_ID_LEN;

/// Settings of a [`Worker`]; start with [`Worker::builder`].
pub struct WorkerBuilder {
    pub(crate) client: Client,
    pub(crate) worker_id: Option<String>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) handlers: Handlers,
    pub(crate) concurrency: usize,
    pub(crate) poll_wait: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) report_retry_for: Duration,
    pub(crate) report_requests_in_flight: usize,
    pub(crate) backoff: Backoff,
    pub(crate) version: Option<String>,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("worker_id", &self.worker_id)
            .field("namespaces", &self.namespaces)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl WorkerBuilder {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            worker_id: None,
            namespaces: Vec::new(),
            handlers: Handlers::new(),
            concurrency: 4,
            poll_wait: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(30),
            report_retry_for: Duration::from_secs(60),
            report_requests_in_flight: 4,
            backoff: Backoff::default(),
            version: None,
        }
    }

    /// Unique name of this worker process, 1-128 characters. Default
    /// `<hostname>-<pid>`.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Namespaces to take steps from, tried in this order on every poll.
    /// Replaces earlier calls. Default `["default"]`.
    pub fn namespaces(mut self, namespaces: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one namespace to poll.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespaces.push(namespace.into());
        self
    }

    /// Registers `handler` under `name`, the `handler:` that template steps
    /// give. A second handler under the same name replaces the first.
    pub fn handler(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.handlers.insert(name.into(), Arc::new(handler));
        self
    }

    /// Registers an already shared handler under `name`.
    pub fn handler_arc(mut self, name: impl Into<String>, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(name.into(), handler);
        self
    }

    /// Most steps run at once; each poll asks for as many as there are free
    /// slots. Default 4.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// How long one long-poll waits for work before asking again (the
    /// server caps it at its `max_poll_wait_ms`). Default 20 s.
    pub fn poll_wait(mut self, wait: Duration) -> Self {
        self.poll_wait = wait;
        self
    }

    /// How long running handlers may go on after shutdown is requested
    /// before they are aborted and their steps released. Default 30 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long to keep re-sending a complete or fail report while the
    /// server is unreachable. Default 60 s. (A release at shutdown gets 5 s
    /// instead: the process is exiting.)
    pub fn report_retry_for(mut self, budget: Duration) -> Self {
        self.report_retry_for = budget;
        self
    }

    /// Most report requests (completes, fails, releases) this worker keeps
    /// in flight at once; reports that finish while that many are in flight
    /// wait and go together in the next request (`POST /v1/steps/reports`).
    /// One makes every finished slot wait for the request before it as well
    /// as its own; a few let results go at once while the server writes
    /// others. 1-64, default 4.
    pub fn report_requests_in_flight(mut self, requests: usize) -> Self {
        self.report_requests_in_flight = requests;
        self
    }

    /// Waits between attempts to reach an unavailable server (registering,
    /// polling, reporting, heartbeating). Default: 200 ms doubling to 10 s.
    pub fn reconnect_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The version this worker reports when registering (shown in the
    /// cluster view). Default `tasker-worker/<sdk version>`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Checks the settings; `Error::Config` names the bad one.
    pub fn build(self) -> Result<Worker, Error> {
        let worker_id = self.worker_id.clone().unwrap_or_else(default_worker_id);
        if worker_id.is_empty() || worker_id.len() > MAX_WORKER_ID_LEN {
            return Err(config(
                "worker_id",
                &format!("must be 1-{MAX_WORKER_ID_LEN} characters"),
            ));
        }
        if worker_id.contains('/') {
            return Err(config("worker_id", "must not contain '/'"));
        }
        let namespaces = if self.namespaces.is_empty() {
            vec!["default".to_owned()]
        } else {
            self.namespaces.clone()
        };
        if namespaces.iter().any(String::is_empty) {
            return Err(config("namespaces", "a namespace name is empty"));
        }
        if self.handlers.is_empty() {
            return Err(config(
                "handlers",
                "register at least one handler with .handler(name, handler)",
            ));
        }
        if self.concurrency == 0 {
            return Err(config("concurrency", "must be at least 1"));
        }
        if !(1..=64).contains(&self.report_requests_in_flight) {
            return Err(config("report_requests_in_flight", "must be 1-64"));
        }
        if self.poll_wait.is_zero() {
            return Err(config("poll_wait", "must be more than zero"));
        }
        Ok(Worker::new(self, worker_id, namespaces))
    }
}

fn config(field: &'static str, message: &str) -> Error {
    Error::Config {
        field,
        message: message.to_owned(),
    }
}

/// `<hostname>-<pid>`: unique per live process on a host, and readable in
/// the cluster view.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let mut id: String = host
        .chars()
        .map(|c| if c == '/' { '-' } else { c })
        .take(100)
        .collect();
    id.push('-');
    id.push_str(&std::process::id().to_string());
    id
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::handler::handler_fn;

    fn builder() -> WorkerBuilder {
        let client = Client::new("http://127.0.0.1:1", None).unwrap();
        Worker::builder(client).handler("noop", handler_fn(|_| async { Ok(json!(null)) }))
    }

    fn field_of(result: Result<Worker, Error>) -> &'static str {
        match result {
            Err(Error::Config { field, .. }) => field,
            Err(other) => panic!("expected a config error, got {other}"),
            Ok(_) => panic!("expected a config error, got a worker"),
        }
    }

    #[test]
    fn defaults_are_usable() {
        let worker = builder().build().unwrap();
        assert_eq!(worker.namespaces(), ["default".to_owned()]);
        assert_eq!(worker.handler_names(), vec!["noop".to_owned()]);
        assert!(
            worker
                .worker_id()
                .ends_with(&std::process::id().to_string())
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        assert_eq!(field_of(builder().concurrency(0).build()), "concurrency");
        assert_eq!(field_of(builder().worker_id("").build()), "worker_id");
        assert_eq!(field_of(builder().worker_id("a/b").build()), "worker_id");
        assert_eq!(
            field_of(builder().worker_id("x".repeat(129)).build()),
            "worker_id"
        );
        assert_eq!(field_of(builder().namespace("").build()), "namespaces");
        assert_eq!(
            field_of(builder().poll_wait(Duration::ZERO).build()),
            "poll_wait"
        );
        for requests in [0, 65] {
            assert_eq!(
                field_of(builder().report_requests_in_flight(requests).build()),
                "report_requests_in_flight"
            );
        }
        let client = Client::new("http://127.0.0.1:1", None).unwrap();
        assert_eq!(field_of(Worker::builder(client).build()), "handlers");
    }
}

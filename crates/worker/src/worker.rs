//! [`Worker`]: registers with the server, long-polls for as many steps as
//! it has free slots, runs each in a [`StepRunner`], and shuts down
//! gracefully.
//!
//! ```text
//!   register (retry while unavailable)
//!      │
//!      ▼
//!   ┌─▶ wait for a free slot ─▶ poll(max = free slots) ─▶ spawn a runner per step
//!   └──────────────────────────────────┘        │ transport error: back off, re-register
//!
//!   each runner keeps its slot while the server hands it a next step with
//!   the completion of the last one (see `step_runner`), then frees it
//!
//!   shutdown: stop polling (abort the open poll) and asking for next steps
//!             ─▶ wait up to the grace period, or until the server stops answering
//!             ─▶ abort what still runs and release its steps
//!                (POST /v1/steps/{id}/release: ready again at once, attempt not counted)
//! ```
//!
//! While it waits out the grace, the worker probes the server (`GET
//! /health`): a finished handler's result and a release can only be
//! delivered to a server that answers. When it stops answering (it was
//! stopped first, say), waiting longer only keeps the process alive for
//! nothing, so the worker ends the grace early, tries the releases briefly
//! and exits.
//!
//! Failure: a poll aborted at shutdown may already have claimed steps on the
//! server; they are redelivered when their lease expires, like any step of a
//! worker that disappeared. So are steps leased in the reply to a complete
//! that never arrived, and a step whose release could not be delivered
//! within its budget; a release refused with a 409 needs nothing further
//! (the lease was already gone).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tasker_client::{Client, NextRequest, WorkerRegistration};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::backoff::Backoff;
use crate::builder::WorkerBuilder;
use crate::error::Error;
use crate::reporter::Reporter;
use crate::shutdown_phase::ShutdownPhase;
use crate::step_runner::{Handlers, RELEASE_REPORT_BUDGET, StepRunner};

/// Shortest heartbeat interval honoured, whatever the server says.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);

/// During the shutdown grace: how often the server is probed, and how many
/// probes in a row must find it unreachable before the grace is cut short.
const GONE_PROBE_INTERVAL: Duration = Duration::from_millis(250);
const GONE_PROBE_FAILURES: u32 = 3;

/// How long releases may still try once the server was found unreachable:
/// one or two attempts, in case it was only restarting.
const GONE_RELEASE_BOUND: Duration = Duration::from_secs(1);

pub struct Worker {
    client: Client,
    worker_id: String,
    namespaces: Vec<String>,
    handlers: Handlers,
    concurrency: usize,
    poll_wait: Duration,
    shutdown_grace: Duration,
    report_retry_for: Duration,
    report_requests_in_flight: usize,
    backoff: Backoff,
    version: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker_id", &self.worker_id)
            .field("namespaces", &self.namespaces)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts configuring a worker that talks to the server through `client`.
    pub fn builder(client: Client) -> WorkerBuilder {
        WorkerBuilder::new(client)
    }

    pub(crate) fn new(builder: WorkerBuilder, worker_id: String, namespaces: Vec<String>) -> Self {
        Self {
            client: builder.client,
            worker_id,
            namespaces,
            handlers: builder.handlers,
            concurrency: builder.concurrency,
            poll_wait: builder.poll_wait,
            shutdown_grace: builder.shutdown_grace,
            report_retry_for: builder.report_retry_for,
            report_requests_in_flight: builder.report_requests_in_flight,
            backoff: builder.backoff,
            version: builder
                .version
                .unwrap_or_else(|| concat!("tasker-worker/", env!("CARGO_PKG_VERSION")).to_owned()),
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Names of the registered handlers, sorted.
    pub fn handler_names(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    fn registration(&self) -> WorkerRegistration {
        WorkerRegistration {
            worker_id: self.worker_id.clone(),
            namespaces: self.namespaces.clone(),
            handlers: self.handler_names(),
            concurrency: u32::try_from(self.concurrency).unwrap_or(u32::MAX),
            version: Some(self.version.clone()),
        }
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully (see the
    /// module docs) and returns. Fails only when the server refuses the
    /// registration for a reason retrying cannot fix; an unreachable server
    /// is retried with backoff, for as long as it takes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let registration = self.registration();
        let reply = tokio::select! {
            reply = self.register(&registration) => reply?,
            () = &mut shutdown => {
                tracing::info!(worker_id = %self.worker_id, "shutdown requested before registering");
                return Ok(());
            }
        };
        let heartbeat_interval = reply.heartbeat_interval().max(MIN_HEARTBEAT_INTERVAL);
        let poll_wait = match reply.max_poll_wait() {
            Duration::ZERO => self.poll_wait,
            cap => self.poll_wait.min(cap),
        };
        tracing::info!(
            worker_id = %self.worker_id,
            namespaces = ?self.namespaces,
            handlers = self.handlers.len(),
            concurrency = self.concurrency,
            lease_seconds = reply.lease_seconds,
            ?heartbeat_interval,
            "worker registered"
        );

        let runner = Arc::new(StepRunner {
            handlers: self.handlers.clone(),
            heartbeat_client: self
                .client
                .clone()
                .with_request_timeout(heartbeat_interval.max(Duration::from_secs(1))),
            heartbeat_interval,
            backoff: self.backoff,
            reporter: Reporter::new(
                self.client.clone(),
                self.backoff,
                self.report_requests_in_flight,
            ),
            report_budget: self.report_retry_for,
            next: NextRequest {
                worker_id: self.worker_id.clone(),
                namespaces: self.namespaces.clone(),
                max: 1,
            },
        });
        let (phase_tx, phase_rx) = watch::channel(ShutdownPhase::Running);
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut running = JoinSet::new();
        let mut poll_failures: u32 = 0;

        loop {
            while running.try_join_next().is_some() {}
            // One free slot at least, then every other free one.
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let mut permits = vec![first];
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            if poll_failures > 0 {
                // The server came back, or another node answers: make sure
                // it knows this worker (its records may have been lost).
                if let Err(error) = self.client.worker_register(&registration).await {
                    tracing::debug!(%error, "re-registering failed; polling anyway");
                }
            }
            let max = u32::try_from(permits.len()).unwrap_or(u32::MAX);
            let polled = tokio::select! {
                polled = self.client.worker_poll(&self.worker_id, &self.namespaces, max, poll_wait) => polled,
                () = &mut shutdown => break,
            };
            match polled {
                Ok(steps) => {
                    if poll_failures > 0 {
                        tracing::info!(failures = poll_failures, "polling again after failures");
                    }
                    poll_failures = 0;
                    if steps.len() > permits.len() {
                        tracing::warn!(
                            asked = permits.len(),
                            got = steps.len(),
                            "the server returned more steps than asked for; running them all"
                        );
                    }
                    for claimed in steps {
                        let permit = permits.pop();
                        let runner = runner.clone();
                        let phase = phase_rx.clone();
                        running.spawn(async move {
                            runner.run(claimed, phase).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => {
                    poll_failures = poll_failures.saturating_add(1);
                    drop(permits);
                    let delay = self.backoff.next_delay(poll_failures);
                    if error.is_unavailable() {
                        tracing::warn!(%error, retry_in = ?delay, failures = poll_failures, "server unavailable; polling again later");
                    } else {
                        tracing::error!(%error, retry_in = ?delay, failures = poll_failures, "poll refused; polling again later");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = &mut shutdown => break,
                    }
                }
            }
        }

        // From here on, runners ask for no next steps.
        phase_tx.send_replace(ShutdownPhase::Draining);
        self.drain(running, phase_tx).await;
        Ok(())
    }

    /// Registers, retrying with backoff through transport errors and 5xx.
    async fn register(
        &self,
        registration: &WorkerRegistration,
    ) -> Result<tasker_client::RegisterReply, Error> {
        let mut failures: u32 = 0;
        loop {
            match self.client.worker_register(registration).await {
                Ok(reply) => return Ok(reply),
                // Any 5xx too: a node whose database is down answers 503
                // `unavailable`, and an unexpected fault 500; registering
                // again is always safe.
                Err(error) if error.is_retryable() => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff.next_delay(failures);
                    tracing::warn!(
                        %error,
                        server = %self.client.base_url(),
                        retry_in = ?delay,
                        failures,
                        "server unavailable; retrying registration"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(Error::Register(error)),
            }
        }
    }

    /// Lets running steps finish within the grace period, then aborts and
    /// releases the rest.
    async fn drain(&self, mut running: JoinSet<()>, phase: watch::Sender<ShutdownPhase>) {
        if running.is_empty() {
            tracing::info!(worker_id = %self.worker_id, "worker stopped");
            return;
        }
        tracing::info!(
            running = running.len(),
            grace = ?self.shutdown_grace,
            "shutting down: letting running steps finish"
        );
        let server_gone = tokio::select! {
            () = join_all(&mut running) => None,
            () = tokio::time::sleep(self.shutdown_grace) => Some(false),
            () = self.server_gone() => Some(true),
        };
        if let Some(server_gone) = server_gone {
            if server_gone {
                tracing::warn!(
                    running = running.len(),
                    server = %self.client.base_url(),
                    "the server stopped answering; not waiting out the shutdown grace. \
                     Steps whose release cannot be delivered come back when their leases expire"
                );
            } else {
                tracing::warn!(
                    running = running.len(),
                    "shutdown grace ran out; aborting handlers and releasing their steps"
                );
            }
            phase.send_replace(ShutdownPhase::Releasing);
            // Runners report the release within their own budget; this bound
            // only guards against one that does not return, or cuts the
            // retries short when the server is gone.
            let bound = if server_gone {
                GONE_RELEASE_BOUND
            } else {
                RELEASE_REPORT_BUDGET + Duration::from_secs(1)
            };
            if tokio::time::timeout(bound, join_all(&mut running))
                .await
                .is_err()
            {
                running.abort_all();
            }
        }
        tracing::info!(worker_id = %self.worker_id, "worker stopped");
    }
}

impl Worker {
    /// Resolves once [`GONE_PROBE_FAILURES`] probes in a row found the
    /// server unavailable; never while it answers.
    async fn server_gone(&self) {
        let probe = self
            .client
            .clone()
            .with_request_timeout(GONE_PROBE_INTERVAL);
        let mut failures = 0;
        loop {
            tokio::time::sleep(GONE_PROBE_INTERVAL).await;
            match probe.health().await {
                Err(error) if error.is_unavailable() => {
                    failures += 1;
                    tracing::debug!(%error, failures, "server probe failed during shutdown");
                    if failures >= GONE_PROBE_FAILURES {
                        return;
                    }
                }
                _ => failures = 0,
            }
        }
    }
}

async fn join_all(set: &mut JoinSet<()>) {
    while let Some(joined) = set.join_next().await {
        if let Err(error) = joined
            && error.is_panic()
        {
            tracing::error!(%error, "a step runner panicked");
        }
    }
}

//! The worker plane: register, long-poll, heartbeat, complete, fail,
//! release. Every report presents the step's [`Lease`]; a stale one is
//! refused with a 409 (see [`crate::Error::is_lease_lost`]) and changes
//! nothing, so re-sending a report after a transport error is always safe.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tasker_model::wire::{Worker, WorkerRegistration};
use tasker_model::{ClaimedStep, Lease, Recorded, Timestamp};

use crate::{Client, POLL_TIMEOUT_MARGIN, Result};

/// The answer to `POST /v1/workers/register`: the server's lease settings,
/// which a worker must follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterReply {
    pub worker: Worker,
    /// How long a claimed step stays leased without a heartbeat.
    pub lease_seconds: u64,
    /// How often to heartbeat a running step.
    pub heartbeat_interval_ms: u64,
    /// The longest `wait` a poll is honoured with.
    pub max_poll_wait_ms: u64,
}

impl RegisterReply {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    pub fn max_poll_wait(&self) -> Duration {
        Duration::from_millis(self.max_poll_wait_ms)
    }

    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// When the extended lease runs out; `None` when `cancelled` (the lease
    /// was not extended).
    pub lease_expires_at: Option<Timestamp>,
    /// The task was cancelled: stop the handler; its result would be refused.
    pub cancelled: bool,
}

/// Why an attempt failed, as `POST /v1/steps/{id}/fail` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailReport {
    /// `true`: the engine retries after the step's backoff while attempts
    /// remain. `false`: the step fails now.
    pub retryable: bool,
    /// Short machine-readable kind, 1-128 characters (`timeout`, `panic`, ...).
    pub error_type: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

/// What `step_complete_and_claim` asks to be leased together with the
/// result (`"next"` in `POST /v1/steps/{id}/complete`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRequest {
    /// The worker the steps are leased to: the one reporting.
    pub worker_id: String,
    /// Namespaces to lease from, in order. Empty: those the worker
    /// registered with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Most steps to lease; 0 makes it a plain complete. Never ask for more
    /// than the worker can start at once: their leases start ticking now.
    pub max: u32,
}

#[derive(Serialize)]
struct LeaseBody<'a, T: Serialize> {
    attempt: u32,
    token: uuid::Uuid,
    #[serde(flatten)]
    extra: &'a T,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct ResultBody<'a> {
    result: &'a serde_json::Value,
}

#[derive(Deserialize)]
struct RecordedReply {
    recorded: RecordedWire,
}

#[derive(Serialize)]
struct CompleteBody<'a> {
    result: &'a serde_json::Value,
    next: &'a NextRequest,
}

#[derive(Deserialize)]
struct CompleteReply {
    recorded: RecordedWire,
    /// Absent from a server that predates `next`: it leased nothing.
    #[serde(default)]
    next: Vec<ClaimedStep>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordedWire {
    Applied,
    Duplicate,
}

impl From<RecordedWire> for Recorded {
    fn from(wire: RecordedWire) -> Self {
        match wire {
            RecordedWire::Applied => Recorded::Applied,
            RecordedWire::Duplicate => Recorded::Duplicate,
        }
    }
}

impl Client {
    /// Announces a worker (again: registering is idempotent and refreshes
    /// the registration).
    pub async fn worker_register(
        &self,
        registration: &WorkerRegistration,
    ) -> Result<RegisterReply> {
        let url = self.url(&["v1", "workers", "register"]);
        let builder = self.request(Method::POST, &url).json(registration);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Long-polls for up to `max` steps of `namespaces` (tried in order),
    /// waiting up to `wait` (the server caps it at its `max_poll_wait_ms`).
    /// Returns an empty list at the deadline or when the node shuts down.
    /// The request's own timeout is `wait` plus [`POLL_TIMEOUT_MARGIN`].
    pub async fn worker_poll(
        &self,
        worker_id: &str,
        namespaces: &[String],
        max: u32,
        wait: Duration,
    ) -> Result<Vec<ClaimedStep>> {
        #[derive(Serialize)]
        struct Body<'a> {
            namespaces: &'a [String],
            max: u32,
            wait_ms: u64,
        }
        #[derive(Deserialize)]
        struct Reply {
            steps: Vec<ClaimedStep>,
        }
        let url = self.url(&["v1", "workers", worker_id, "poll"]);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let builder = self
            .request(Method::POST, &url)
            .timeout(wait.saturating_add(POLL_TIMEOUT_MARGIN))
            .json(&Body {
                namespaces,
                max,
                wait_ms,
            });
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.steps)
    }

    /// Extends the lease of a running step. A 409 `step_timed_out` means the
    /// attempt ran past the step's timeout and was failed by the server.
    pub async fn step_heartbeat(&self, lease: &Lease) -> Result<HeartbeatReply> {
        let url = self.url(&["v1", "steps", &lease.step_id.to_string(), "heartbeat"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&lease_body(lease, &Empty {}));
        Ok(self.call(&url, builder).await?.1)
    }

    /// Records the attempt's result. `Duplicate` when this lease already
    /// reported (a re-send after a lost reply).
    pub async fn step_complete(
        &self,
        lease: &Lease,
        result: &serde_json::Value,
    ) -> Result<Recorded> {
        let url = self.url(&["v1", "steps", &lease.step_id.to_string(), "complete"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&lease_body(lease, &ResultBody { result }));
        let (_, reply): (_, RecordedReply) = self.call(&url, builder).await?;
        Ok(reply.recorded.into())
    }

    /// Records the attempt's result and, in the same server transaction,
    /// leases up to `next.max` ready steps to `next.worker_id`, returned to
    /// run at once: a sequential workflow then needs no poll between steps.
    ///
    /// Steps are leased only when the result was `Applied`; a `Duplicate`
    /// (a re-send) gets none. A reply lost in transit may have carried
    /// leased steps: they come back to some worker when their leases expire.
    /// A 404 `namespace_not_found` (an unknown namespace) or
    /// `worker_not_registered` (none named and the worker not registered) or
    /// 400 `invalid` (bad worker id) recorded nothing.
    pub async fn step_complete_and_claim(
        &self,
        lease: &Lease,
        result: &serde_json::Value,
        next: &NextRequest,
    ) -> Result<(Recorded, Vec<ClaimedStep>)> {
        let url = self.url(&["v1", "steps", &lease.step_id.to_string(), "complete"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&lease_body(lease, &CompleteBody { result, next }));
        let (_, reply): (_, CompleteReply) = self.call(&url, builder).await?;
        Ok((reply.recorded.into(), reply.next))
    }

    /// Records that the attempt failed.
    pub async fn step_fail(&self, lease: &Lease, report: &FailReport) -> Result<Recorded> {
        let url = self.url(&["v1", "steps", &lease.step_id.to_string(), "fail"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&lease_body(lease, report));
        let (_, reply): (_, RecordedReply) = self.call(&url, builder).await?;
        Ok(reply.recorded.into())
    }

    /// Hands the step back unfinished (a worker stopping before its handler
    /// is done): it is delivered again at once, with the same attempt number,
    /// and the attempt is not counted. The server answers 204 No Content.
    ///
    /// Unlike complete and fail, a release is not answered `duplicate` when
    /// repeated: the released lease is gone, so a re-send after a lost reply
    /// gets a 409 lease code, meaning there is nothing left to release.
    pub async fn step_release(&self, lease: &Lease) -> Result<()> {
        let url = self.url(&["v1", "steps", &lease.step_id.to_string(), "release"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&lease_body(lease, &Empty {}));
        let (_, ()) = self.call(&url, builder).await?;
        Ok(())
    }
}

fn lease_body<'a, T: Serialize>(lease: &Lease, extra: &'a T) -> LeaseBody<'a, T> {
    LeaseBody {
        attempt: lease.attempt,
        token: lease.token,
        extra,
    }
}

//! Runs claimed steps in one concurrency slot: the handler in its own task,
//! heartbeats beside it, the step's timeout, and the report when it ends.
//!
//! ```text
//!   spawn handler ──┬── handler returns ─────────────▶ complete (+ next) / fail
//!                   ├── handler panics ──────────────▶ fail (panic, retryable)
//!                   ├── timeout_ms elapses ──────────▶ abort, fail (timeout, retryable)
//!                   ├── heartbeat: cancelled / 409 ──▶ abort, report nothing
//!                   └── shutdown grace runs out ─────▶ abort, release (attempt not counted)
//!        ▲                                                     │
//!        └──────── a step leased with the complete ◀──────────┘
//! ```
//!
//! Whichever comes first wins; the handler's result is preferred when it is
//! ready at the same moment as another event. Aborting the handler drops its
//! future at its next `.await`: a handler that blocks the thread is not
//! stopped, so blocking work belongs in `spawn_blocking`.
//!
//! While the worker is not shutting down, a successful attempt is completed
//! with `next` (max 1): the server leases this worker's next ready step in
//! the same transaction, and the runner runs it at once in the same slot, so
//! a sequential workflow needs one commit per handoff and no poll. A step
//! that arrives after shutdown began is released at once instead of run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tasker_client::{ClaimedStep, Client, Lease, NextRequest};
use tokio::sync::watch;
use tracing::Instrument;

use crate::attempt_outcome::{AttemptOutcome, Report, panic_message};
use crate::backoff::Backoff;
use crate::cancellation::{CancelReason, Cancellation};
use crate::handler::Handler;
use crate::handler_error::HandlerError;
use crate::reporter::{Reporter, Successor};
use crate::shutdown_phase::{ShutdownPhase, reached, takes_work};
use crate::step_context::StepContext;

/// How long a release may take during shutdown: the process is about to
/// exit, and an undelivered release costs only a lease expiry (and with it
/// the attempt the release would have given back).
pub(crate) const RELEASE_REPORT_BUDGET: Duration = Duration::from_secs(5);

pub(crate) type Handlers = BTreeMap<String, Arc<dyn Handler>>;

pub(crate) struct StepRunner {
    pub(crate) handlers: Handlers,
    /// A client whose per-call timeout is the heartbeat interval, so a hung
    /// heartbeat cannot eat the lease.
    pub(crate) heartbeat_client: Client,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) reporter: Reporter,
    pub(crate) report_budget: Duration,
    /// What a successful completion asks for: this worker, its namespaces,
    /// one step (the slot it frees).
    pub(crate) next: NextRequest,
}

impl StepRunner {
    /// Runs `claimed`, then each step the server leases with a completion,
    /// until none comes back; the caller's concurrency slot stays taken
    /// meanwhile. `phase` tells how far the worker's shutdown has gone.
    pub(crate) async fn run(
        self: Arc<Self>,
        claimed: ClaimedStep,
        phase: watch::Receiver<ShutdownPhase>,
    ) {
        let mut claimed = claimed;
        let mut chained = false;
        loop {
            if chained && !takes_work(&phase) {
                // Leased with a completion just as shutdown began: give it
                // back for another worker rather than start it now.
                self.release_unstarted(&claimed).await;
                return;
            }
            let mut next = self
                .run_one(claimed, phase.clone(), chained)
                .await
                .into_iter();
            let Some(following) = next.next() else {
                return;
            };
            for extra in next {
                // One slot runs one step; an unstarted step would sit
                // without heartbeats until its lease ran out.
                tracing::warn!("the server leased more steps than asked for; releasing the extra");
                self.release_unstarted(&extra).await;
            }
            claimed = following;
            chained = true;
        }
    }

    /// Runs one attempt and reports it; returns the steps leased with its
    /// completion.
    async fn run_one(
        &self,
        claimed: ClaimedStep,
        phase: watch::Receiver<ShutdownPhase>,
        chained: bool,
    ) -> Vec<ClaimedStep> {
        let span = step_span(&claimed);
        async move {
            let lease = claimed.lease;
            let step_name = claimed.step_name.clone();
            if chained {
                tracing::debug!("step leased with the previous step's completion");
            } else {
                tracing::debug!("step claimed");
            }
            let outcome = self.attempt(claimed, phase.clone()).await;
            log_outcome(&outcome);
            let budget = match outcome {
                AttemptOutcome::Released => RELEASE_REPORT_BUDGET,
                _ => self.report_budget,
            };
            let report = outcome.into_report(&step_name);
            // Asked again at each re-send: shutdown may begin meanwhile.
            let successor = Successor {
                next: &self.next,
                wanted: &|| takes_work(&phase),
            };
            self.reporter
                .send(&lease, report, Some(successor), budget)
                .await
        }
        .instrument(span)
        .await
    }

    async fn release_unstarted(&self, claimed: &ClaimedStep) {
        async {
            tracing::info!("releasing a step leased with a completion, unstarted");
            self.reporter
                .send(&claimed.lease, Report::Release, None, RELEASE_REPORT_BUDGET)
                .await;
        }
        .instrument(step_span(claimed))
        .await
    }

    async fn attempt(
        &self,
        claimed: ClaimedStep,
        mut phase: watch::Receiver<ShutdownPhase>,
    ) -> AttemptOutcome {
        let Some(handler) = self.handlers.get(&claimed.handler).cloned() else {
            return AttemptOutcome::HandlerNotFound {
                handler: claimed.handler,
                available: self.handlers.keys().cloned().collect(),
            };
        };
        let lease = claimed.lease;
        let timeout = Duration::from_millis(claimed.timeout_ms);
        let (cancel, cancellation) = Cancellation::new();
        let client = self.heartbeat_client.clone();
        // Parent results left out of the claim for size are fetched first,
        // under the lease's heartbeats and timeout like the handler.
        let mut task = tokio::spawn(
            async move {
                let claimed = with_parent_results(&client, claimed).await?;
                handler.run(StepContext::new(claimed, cancellation)).await
            }
            .in_current_span(),
        );

        let timer = async {
            if timeout.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(timeout).await;
        };
        let (reason, outcome) = tokio::select! {
            biased;
            joined = &mut task => {
                return match joined {
                    Ok(Ok(result)) => AttemptOutcome::Succeeded(result),
                    Ok(Err(error)) => AttemptOutcome::Failed(error),
                    Err(error) if error.is_panic() => {
                        AttemptOutcome::Panicked(panic_message(error.into_panic().as_ref()))
                    }
                    // Only this function aborts the task, and not before
                    // this point; treat it as lost to be safe.
                    Err(_) => AttemptOutcome::Abandoned(CancelReason::LeaseLost),
                };
            }
            () = timer => (CancelReason::TimedOut, AttemptOutcome::TimedOut(timeout)),
            reason = self.heartbeat(&lease) => (reason, AttemptOutcome::Abandoned(reason)),
            () = reached(&mut phase, ShutdownPhase::Releasing) => (CancelReason::Shutdown, AttemptOutcome::Released),
        };
        cancel.cancel(reason);
        task.abort();
        outcome
    }

    /// Heartbeats until the server says to stop; returns why. Transport
    /// failures are retried sooner than the regular beat so that a brief
    /// outage does not cost the lease.
    async fn heartbeat(&self, lease: &Lease) -> CancelReason {
        let mut failures = 0;
        let mut wait = self.heartbeat_interval;
        loop {
            tokio::time::sleep(wait).await;
            match self.heartbeat_client.step_heartbeat(lease).await {
                Ok(reply) if reply.cancelled => return CancelReason::TaskCancelled,
                Ok(_) => {
                    failures = 0;
                    wait = self.heartbeat_interval;
                }
                Err(error) if error.is_lease_lost() => {
                    return match error.code() {
                        Some("step_timed_out") => CancelReason::TimedOut,
                        Some("task_cancelled") => CancelReason::TaskCancelled,
                        _ => CancelReason::LeaseLost,
                    };
                }
                Err(error) => {
                    failures += 1;
                    wait = self
                        .backoff
                        .next_delay(failures)
                        .min(self.heartbeat_interval);
                    tracing::warn!(%error, retry_in = ?wait, "heartbeat failed");
                }
            }
        }
    }
}

fn step_span(claimed: &ClaimedStep) -> tracing::Span {
    tracing::info_span!(
        "step",
        task_id = %claimed.task_id,
        step = %claimed.step_name,
        handler = %claimed.handler,
        attempt = claimed.lease.attempt,
    )
}

fn log_outcome(outcome: &AttemptOutcome) {
    match outcome {
        AttemptOutcome::Succeeded(_) => tracing::debug!("handler succeeded"),
        AttemptOutcome::Failed(error) => {
            tracing::warn!(%error, retryable = error.is_retryable(), "handler failed")
        }
        AttemptOutcome::Panicked(message) => tracing::error!(%message, "handler panicked"),
        AttemptOutcome::TimedOut(timeout) => {
            tracing::warn!(?timeout, "step ran past its timeout; handler aborted")
        }
        AttemptOutcome::HandlerNotFound { handler, .. } => {
            tracing::error!(%handler, "no handler registered under this name")
        }
        AttemptOutcome::Released => {
            tracing::warn!("shutdown grace ran out; handler aborted, releasing the step")
        }
        AttemptOutcome::Abandoned(reason) => {
            tracing::info!(%reason, "server ended the attempt; handler aborted, nothing reported")
        }
    }
}

/// `claimed` with the results its claim named in `parent_result_refs`
/// fetched into `parent_results`; a fetch that fails fails the attempt as
/// retryable (`parent_result_unavailable`).
async fn with_parent_results(
    client: &Client,
    mut claimed: ClaimedStep,
) -> Result<ClaimedStep, HandlerError> {
    for (name, step_id) in std::mem::take(&mut claimed.parent_result_refs) {
        let result = client.step_result(step_id).await.map_err(|error| {
            HandlerError::retryable(format!(
                "cannot fetch the result of parent step {name:?}: {error}"
            ))
            .with_type("parent_result_unavailable")
        })?;
        claimed.parent_results.insert(name, result);
    }
    Ok(claimed)
}

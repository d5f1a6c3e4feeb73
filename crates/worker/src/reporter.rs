//! Sends an attempt's report (complete, fail or release) to the server,
//! retrying through transport failures for a bounded time. Each try goes
//! through the worker's [`ReportBatch`], so reports that finish while
//! another request is in flight are sent together; the answer is still
//! this attempt's own, and so is what is done with it. Retrying is safe
//! because the lease fences reports: a re-sent complete or fail after a lost
//! reply is answered `duplicate`, and any report that arrives after the lease
//! moved on (a re-sent release included: the first one ended the lease) is
//! refused with a 409 and changes nothing.
//!
//! A complete may ask for the worker's next step ([`Successor`]). Re-sends
//! after a transport error ask again (while the worker still takes work):
//! if the lost request was applied, the re-send is a `duplicate` and leases
//! nothing, and the steps leased in the lost reply come back to some worker
//! when their leases expire (counting an attempt); if it never arrived, the
//! re-send records the result and leases the next step as the first would
//! have. Either way no step is run twice at once.

use std::sync::Arc;
use std::time::Duration;

use tasker_client::{
    ClaimedStep, Client, Error as ClientError, FailReport, Lease, LeaseReport, LeaseReportAnswer,
    NextRequest, Recorded,
};
use tokio::time::Instant;

use crate::attempt_outcome::{Report, result_rejected};
use crate::backoff::Backoff;
use crate::report_batch::ReportBatch;

/// An error a report came back with; shared by every report of a request
/// that failed as a whole.
type SendError = Arc<ClientError>;

#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    batch: ReportBatch,
    backoff: Backoff,
}

/// The step to ask for with a completion.
pub(crate) struct Successor<'a> {
    pub(crate) next: &'a NextRequest,
    /// Whether to ask at all: checked before each send, so a re-send after
    /// shutdown began is a plain complete.
    pub(crate) wanted: &'a (dyn Fn() -> bool + Sync),
}

impl Reporter {
    /// Reports go through one [`ReportBatch`] per reporter: those that
    /// finish while `requests_in_flight` requests are in flight are sent
    /// together.
    pub(crate) fn new(client: Client, backoff: Backoff, requests_in_flight: usize) -> Self {
        Self {
            batch: ReportBatch::new(client, requests_in_flight),
            backoff,
        }
    }

    /// Delivers `report`, retrying transport failures for up to `budget`;
    /// a complete asks for `successor` as well. Returns the steps leased
    /// with the completion. Never fails: what could not be delivered is
    /// logged, and the step is then redelivered when its lease expires.
    pub(crate) async fn send(
        &self,
        lease: &Lease,
        report: Report,
        successor: Option<Successor<'_>>,
        budget: Duration,
    ) -> Vec<ClaimedStep> {
        let deadline = Instant::now() + budget;
        match report {
            Report::Nothing => {}
            Report::Complete(result) => {
                if let Some(successor) = successor {
                    return self
                        .complete_and_claim(lease, &result, successor, deadline)
                        .await;
                }
                self.complete(lease, &result, deadline).await;
            }
            Report::Fail(report) => self.fail(lease, report, deadline).await,
            Report::Release => {
                let sent = self
                    .retrying(deadline, || async {
                        self.batch
                            .send(LeaseReport::Release { lease: *lease })
                            .await?;
                        Ok(())
                    })
                    .await;
                log_release(sent);
            }
        }
        Vec::new()
    }

    async fn complete(&self, lease: &Lease, result: &serde_json::Value, deadline: Instant) {
        let sent = self
            .retrying(deadline, || async {
                let (recorded, _) = self.send_complete(lease, result, None).await?;
                Ok(recorded)
            })
            .await;
        match sent {
            Err(error) if is_refused_payload(&error) => {
                tracing::warn!(%error, "the server refused the result; failing the step");
                let report = result_rejected(&error.to_string());
                self.fail(lease, report, deadline).await;
            }
            other => log_outcome("complete", other),
        }
    }

    async fn complete_and_claim(
        &self,
        lease: &Lease,
        result: &serde_json::Value,
        successor: Successor<'_>,
        deadline: Instant,
    ) -> Vec<ClaimedStep> {
        let sent = self
            .retrying(deadline, || async {
                let next = (successor.wanted)().then_some(successor.next);
                self.send_complete(lease, result, next).await
            })
            .await;
        match sent {
            Ok((recorded, next)) => {
                log_outcome("complete", Ok(recorded));
                next
            }
            Err(error) if error.is_lease_lost() || error.is_unavailable() => {
                log_outcome("complete", Err(error));
                Vec::new()
            }
            Err(error) => {
                // Refused, and nothing was recorded: maybe for the `next`
                // part (a namespace the server does not know), maybe for the
                // result itself. A plain complete tells which, and records
                // the result if it can.
                tracing::warn!(%error, "complete with next refused; completing without it");
                self.complete(lease, result, deadline).await;
                Vec::new()
            }
        }
    }

    async fn fail(&self, lease: &Lease, report: FailReport, deadline: Instant) {
        let mut sent = self
            .retrying(deadline, || self.send_fail(lease, &report))
            .await;
        if let Err(error) = &sent
            && is_refused_payload(error)
            && !report.details.is_null()
        {
            // Most likely the details were too large; the failure itself
            // still has to be recorded.
            tracing::warn!(%error, "the server refused the failure report; sending it without details");
            let bare = FailReport {
                details: serde_json::Value::Null,
                ..report
            };
            sent = self
                .retrying(deadline, || self.send_fail(lease, &bare))
                .await;
        }
        log_outcome("fail", sent);
    }

    async fn send_complete(
        &self,
        lease: &Lease,
        result: &serde_json::Value,
        next: Option<&NextRequest>,
    ) -> Result<(Recorded, Vec<ClaimedStep>), SendError> {
        let report = LeaseReport::Complete {
            lease: *lease,
            result: result.clone(),
            next: next.cloned(),
        };
        match self.batch.send(report).await? {
            LeaseReportAnswer::Completed { recorded, next } => Ok((recorded, next)),
            other => unreachable!("a complete answered {other:?}"),
        }
    }

    async fn send_fail(&self, lease: &Lease, report: &FailReport) -> Result<Recorded, SendError> {
        let report = LeaseReport::Fail {
            lease: *lease,
            report: report.clone(),
        };
        match self.batch.send(report).await? {
            LeaseReportAnswer::Failed(recorded) => Ok(recorded),
            other => unreachable!("a fail answered {other:?}"),
        }
    }

    async fn retrying<T, F, Fut>(&self, deadline: Instant, mut call: F) -> Result<T, SendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SendError>>,
    {
        let mut failures = 0;
        loop {
            match call().await {
                Err(error) if error.is_retryable() => {
                    failures += 1;
                    let delay = self.backoff.next_delay(failures);
                    if Instant::now() + delay > deadline {
                        return Err(error);
                    }
                    tracing::warn!(%error, retry_in = ?delay, failures, "report not delivered; retrying");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

fn is_refused_payload(error: &ClientError) -> bool {
    matches!(error.status(), Some(400 | 413 | 422))
}

fn log_outcome(what: &str, sent: Result<Recorded, SendError>) {
    match sent {
        Ok(Recorded::Applied) => tracing::debug!(report = what, "recorded"),
        Ok(Recorded::Duplicate) => {
            tracing::debug!(report = what, "already recorded (a re-sent report)")
        }
        Err(error) if error.is_lease_lost() => tracing::info!(
            report = what,
            %error,
            "the server no longer honours this lease; nothing was recorded"
        ),
        Err(error) => tracing::error!(
            report = what,
            %error,
            "report not delivered; the step will be redelivered when its lease expires"
        ),
    }
}

fn log_release(sent: Result<(), SendError>) {
    match sent {
        Ok(()) => tracing::debug!(report = "release", "released for redelivery"),
        // Also what a re-send gets when the first release went through but
        // its reply was lost.
        Err(error) if error.is_lease_lost() => tracing::info!(
            report = "release",
            %error,
            "the lease is already gone; nothing to release"
        ),
        Err(error) => tracing::error!(
            report = "release",
            %error,
            "release not delivered; the step will be redelivered when its lease expires"
        ),
    }
}

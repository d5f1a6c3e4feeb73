//! [`Engine::step_report_many`]: several reports of lease holders
//! (complete, fail, release, heartbeat) taken together, each checked on its
//! own as the single calls check it, then written through the node's report
//! batcher with whatever else waits there, so a batch of reports and
//! concurrent single reports share one transaction.
//!
//! ```text
//!  items ─▶ check each (payload size, NUL, error type, next) ─┬─ refused: its error
//!                                                            └─ accepted ─▶ report batcher
//!                                                                            │ one transaction
//!  answers, in the order of the items ◀──────────────────────────────────────┘
//! ```
//!
//! It must never let one item fail another: a refusal answers its item
//! alone. Only a database error answers several items at once (every item
//! of the transaction it broke, none of which was written).

use tasker_model::{Lease, StepError};
use tasker_store::{NextClaim, ReportOutcome, StepReport};

use crate::{Engine, Error, Result, check_worker_id, nul_check};

/// Longest `error_type` of a failure report.
use tasker_model::limits::{MAX_ERROR_MESSAGE_LEN, MAX_ERROR_TYPE_LEN};

/// One report of a lease holder, as [`Engine::step_report_many`] takes it.
#[derive(Debug, Clone)]
pub enum Report {
    /// A result; with `next`, more steps leased to the reporting worker in
    /// the same transaction (see [`Engine::step_complete_and_claim`]).
    Complete {
        lease: Lease,
        result: serde_json::Value,
        next: Option<NextScope>,
    },
    Fail {
        lease: Lease,
        error: StepError,
    },
    /// Handed back unfinished: delivered again at once, attempt not counted.
    Release {
        lease: Lease,
    },
    /// Extends the lease by the configured lease duration.
    Heartbeat {
        lease: Lease,
    },
}

/// What a completion's `next` leases: up to `max` steps of `namespaces`
/// (children the completion releases first) whose handler is one of
/// `handlers` (any when empty), for `worker_id`.
#[derive(Debug, Clone)]
pub struct NextScope {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    pub handlers: Vec<String>,
    pub max: u32,
}

impl Engine {
    /// Writes `reports` with the other reports waiting at this node, in one
    /// transaction when they fit in one; returns one answer per report, in
    /// order, each what the single call ([`Engine::step_complete`],
    /// [`Engine::step_complete_and_claim`], [`Engine::step_fail`],
    /// [`Engine::step_release`], [`Engine::step_heartbeat`]) would answer.
    pub async fn step_report_many(&self, reports: Vec<Report>) -> Vec<Result<ReportOutcome>> {
        let mut answers: Vec<Option<Result<ReportOutcome>>> = Vec::with_capacity(reports.len());
        // Per accepted report: the namespaces its `next` names, to tell an
        // unknown one from an unknown step.
        let mut named = Vec::new();
        let mut accepted = Vec::new();
        for report in reports {
            match self.checked(report) {
                Ok(report) => {
                    named.push(match &report {
                        StepReport::Complete { next: Some(n), .. } => n.namespaces.clone(),
                        _ => Vec::new(),
                    });
                    accepted.push(report);
                    answers.push(None);
                }
                Err(error) => answers.push(Some(Err(error))),
            }
        }
        let mut written = self
            .reports
            .write(accepted)
            .await
            .into_iter()
            .zip(named)
            .map(|(outcome, namespaces)| outcome.map_err(|e| next_refusal(e, &namespaces)));
        let answers: Vec<Result<ReportOutcome>> = answers
            .into_iter()
            .map(|answer| answer.unwrap_or_else(|| written.next().expect("one answer per report")))
            .collect();
        let mut capped = Vec::with_capacity(answers.len());
        for answer in answers {
            capped.push(match answer {
                Ok(ReportOutcome::Completed { recorded, next }) if !next.is_empty() => {
                    Ok(ReportOutcome::Completed {
                        recorded,
                        next: self.cap_parent_results(next).await,
                    })
                }
                other => other,
            });
        }
        capped
    }

    /// The store's form of `report`, once it passes every check its single
    /// call makes; else why it is refused.
    fn checked(&self, report: Report) -> Result<StepReport> {
        Ok(match report {
            Report::Complete {
                lease,
                result,
                next,
            } => {
                self.check_result(&result)?;
                let next = match next {
                    Some(next) => self.next_claim(next)?,
                    None => None,
                };
                StepReport::Complete {
                    lease,
                    result,
                    next,
                }
            }
            Report::Fail { lease, error } => {
                self.check_failure(&error)?;
                StepReport::Fail { lease, error }
            }
            Report::Release { lease } => StepReport::Release { lease },
            Report::Heartbeat { lease } => StepReport::Heartbeat {
                lease,
                lease_for: self.config.lease_duration,
            },
        })
    }

    /// A result a completion may record.
    pub(crate) fn check_result(&self, result: &serde_json::Value) -> Result<()> {
        nul_check::check_json(result, "result")?;
        self.check_size("result", result)
    }

    /// A failure report the store can record.
    pub(crate) fn check_failure(&self, error: &StepError) -> Result<()> {
        self.check_size("error details", &error.details)?;
        if error.error_type.is_empty() || error.error_type.len() > MAX_ERROR_TYPE_LEN {
            return Err(Error::Invalid {
                field: "error_type".into(),
                message: format!(
                    "must be 1-{MAX_ERROR_TYPE_LEN} bytes, is {}",
                    error.error_type.len()
                ),
            });
        }
        if error.message.len() > MAX_ERROR_MESSAGE_LEN {
            return Err(Error::Invalid {
                field: "message".into(),
                message: format!(
                    "is {} bytes, longer than the limit of {MAX_ERROR_MESSAGE_LEN}; put the rest in details",
                    error.message.len()
                ),
            });
        }
        nul_check::check_text("error_type", &error.error_type)?;
        nul_check::check_text("message", &error.message)?;
        nul_check::check_json(&error.details, "details")
    }

    /// The store's claim for `next`: none when it asks for nothing (`max`
    /// 0 or no namespaces), `max` capped by the claim batch.
    pub(crate) fn next_claim(&self, next: NextScope) -> Result<Option<NextClaim>> {
        if next.max == 0 || next.namespaces.is_empty() {
            return Ok(None);
        }
        check_worker_id(&next.worker_id)?;
        for (i, namespace) in next.namespaces.iter().enumerate() {
            nul_check::check_text(&format!("next.namespaces[{i}]"), namespace)?;
        }
        Ok(Some(NextClaim {
            worker_id: next.worker_id,
            namespaces: next.namespaces,
            max: next.max.min(self.config.max_claim_batch),
            lease_for: self.config.lease_duration,
            handlers: next.handlers,
        }))
    }
}

/// The engine's error for a report the store refused: a lookup by name that
/// failed is one of the namespaces `next` leases from (an unknown step is a
/// lease refusal, never a not-found).
pub(crate) fn next_refusal(error: tasker_store::Error, namespaces: &[String]) -> Error {
    match error {
        tasker_store::Error::NotFound { what, .. }
            if let Some(namespace) = namespaces
                .iter()
                .find(|ns| what == format!("namespace \"{ns}\"")) =>
        {
            Error::NamespaceNotFound {
                namespace: namespace.clone(),
            }
        }
        other => Error::Store(other),
    }
}

//! Several lease reports in one request (`POST /v1/steps/reports`): each
//! is answered on its own, as its single call ([`Client::step_complete`],
//! [`Client::step_complete_and_claim`], [`Client::step_fail`],
//! [`Client::step_release`], [`Client::step_heartbeat`]) would answer it,
//! so a refusal is the same [`Error::Api`] with the same status and code.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tasker_model::{ClaimedStep, Lease, Recorded};

use crate::worker_plane::{FailReport, HeartbeatReply, NextRequest, RecordedWire};
use crate::{Client, Error, Result};

/// One report of a lease holder.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseReport {
    /// A result; with `next`, steps leased to the worker with it, as
    /// [`Client::step_complete_and_claim`] does.
    Complete {
        lease: Lease,
        result: serde_json::Value,
        next: Option<NextRequest>,
    },
    Fail {
        lease: Lease,
        report: FailReport,
    },
    Release {
        lease: Lease,
    },
    Heartbeat {
        lease: Lease,
    },
}

impl LeaseReport {
    pub fn lease(&self) -> &Lease {
        match self {
            LeaseReport::Complete { lease, .. }
            | LeaseReport::Fail { lease, .. }
            | LeaseReport::Release { lease }
            | LeaseReport::Heartbeat { lease } => lease,
        }
    }
}

/// How the server took a report that it accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseReportAnswer {
    /// A result, and the steps leased with it by `next` (to run now).
    Completed {
        recorded: Recorded,
        next: Vec<ClaimedStep>,
    },
    Failed(Recorded),
    Released,
    Heartbeat(HeartbeatReply),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item<'a> {
    Complete {
        #[serde(flatten)]
        lease: &'a Lease,
        result: &'a serde_json::Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<&'a NextRequest>,
    },
    Fail {
        #[serde(flatten)]
        lease: &'a Lease,
        #[serde(flatten)]
        report: &'a FailReport,
    },
    Release {
        #[serde(flatten)]
        lease: &'a Lease,
    },
    Heartbeat {
        #[serde(flatten)]
        lease: &'a Lease,
    },
}

impl<'a> From<&'a LeaseReport> for Item<'a> {
    fn from(report: &'a LeaseReport) -> Self {
        match report {
            LeaseReport::Complete {
                lease,
                result,
                next,
            } => Item::Complete {
                lease,
                result,
                next: next.as_ref(),
            },
            LeaseReport::Fail { lease, report } => Item::Fail { lease, report },
            LeaseReport::Release { lease } => Item::Release { lease },
            LeaseReport::Heartbeat { lease } => Item::Heartbeat { lease },
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    status: u16,
    #[serde(flatten)]
    body: serde_json::Value,
}

#[derive(Deserialize)]
struct Completed {
    recorded: RecordedWire,
    #[serde(default)]
    next: Vec<ClaimedStep>,
}

#[derive(Deserialize)]
struct RecordedOnly {
    recorded: RecordedWire,
}

impl Client {
    /// Sends several reports in one request (`POST /v1/steps/reports`, at
    /// most [`tasker_model::MAX_REPORTS_PER_REQUEST`]); the server writes
    /// them in one transaction with whatever else waits there. Each report
    /// is answered on its own, in order: what its single call would return,
    /// or the [`Error::Api`] that call would fail with (a stale lease, a
    /// result over the limit, a 500 `internal` when the write failed, in
    /// which case nothing of it was recorded). The call itself fails only
    /// when the request does (no answer, too many reports, a bad token).
    pub async fn step_report_many(
        &self,
        reports: &[LeaseReport],
    ) -> Result<Vec<std::result::Result<LeaseReportAnswer, Error>>> {
        #[derive(Serialize)]
        struct Body<'a> {
            reports: Vec<Item<'a>>,
        }
        #[derive(Deserialize)]
        struct Reply {
            results: Vec<Answer>,
        }
        let url = self.url(&["v1", "steps", "reports"]);
        let body = Body {
            reports: reports.iter().map(Item::from).collect(),
        };
        let builder = self.request(Method::POST, &url).json(&body);
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        if reply.results.len() != reports.len() {
            return Err(Error::decode(
                &url,
                format!(
                    "{} answers to {} reports",
                    reply.results.len(),
                    reports.len()
                ),
            ));
        }
        reports
            .iter()
            .zip(reply.results)
            .map(|(report, answer)| decode_answer(&url, report, answer))
            .collect()
    }
}

/// A report's answer; `Err` of the outer result when it is not one the
/// server could have sent.
fn decode_answer(
    url: &reqwest::Url,
    report: &LeaseReport,
    answer: Answer,
) -> Result<std::result::Result<LeaseReportAnswer, Error>> {
    if !(200..300).contains(&answer.status) {
        let body = serde_json::to_vec(&answer.body).unwrap_or_default();
        return Ok(Err(Error::from_response(answer.status, &body)));
    }
    let malformed = |e: serde_json::Error| Error::decode(url, format!("a report's answer: {e}"));
    let taken = match report {
        LeaseReport::Complete { .. } => {
            let Completed { recorded, next } =
                serde_json::from_value(answer.body).map_err(malformed)?;
            LeaseReportAnswer::Completed {
                recorded: recorded.into(),
                next,
            }
        }
        LeaseReport::Fail { .. } => {
            let RecordedOnly { recorded } =
                serde_json::from_value(answer.body).map_err(malformed)?;
            LeaseReportAnswer::Failed(recorded.into())
        }
        LeaseReport::Release { .. } => LeaseReportAnswer::Released,
        LeaseReport::Heartbeat { .. } => {
            LeaseReportAnswer::Heartbeat(serde_json::from_value(answer.body).map_err(malformed)?)
        }
    };
    Ok(Ok(taken))
}

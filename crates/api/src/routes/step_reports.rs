//! `POST /v1/steps/reports`: several lease reports (complete, fail,
//! release, heartbeat) in one request, so a busy worker pays one request's
//! parsing, auth and reply for many steps instead of one each.
//!
//! Each report is answered on its own, in order, exactly as its single
//! endpoint (`/v1/steps/{id}/complete`, `.../fail`, `.../release`,
//! `.../heartbeat`) would answer it: its status, and its reply body or its
//! error. One refused report never fails its neighbours. The reports go
//! through the engine's report batcher like single reports, so they share a
//! transaction with whatever else waits at this node. This module must
//! never decide a report's outcome itself: it translates, the engine
//! checks and the store fences.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tasker_engine::{NextScope, Report};
use tasker_model::{HeartbeatOutcome, Lease, MAX_REPORTS_PER_REQUEST, StepError};
use tasker_store::ReportOutcome;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{ErrorBody, ErrorDetail};
use crate::error::ApiError;
use crate::extract::{parse_json_keeping_nul, read_body, require_json};
use crate::routes::leases::{
    CompleteReply, HeartbeatReply, NextRequest, RecordedReply, refused, resolve_next,
};
use crate::state::AppState;

/// Several reports in one request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reports": [
    {"type": "complete", "step_id": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "attempt": 1,
     "token": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5c", "result": {"value": 4},
     "next": {"worker_id": "billing-7f9c", "max": 1}},
    {"type": "fail", "step_id": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5d", "attempt": 2,
     "token": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5e", "retryable": true,
     "error_type": "upstream_unavailable", "message": "the carrier API answered 503"},
    {"type": "release", "step_id": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a5f", "attempt": 1,
     "token": "0193a0b2-7c4d-7e5f-8a9b-0c1d2e3f4a60"}
]}))]
pub struct StepReports {
    /// At most 256 reports, each one of [`StepReportItem`]. A report that
    /// is not one (an unknown `type` or field, a missing lease) is refused
    /// alone with 400 `bad_request`.
    #[schema(value_type = Vec<StepReportItem>)]
    pub reports: Vec<serde_json::Value>,
}

/// One report: `type` says which, the lease says of what; the other fields
/// are those of the single endpoint's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepReportItem {
    /// As `POST /v1/steps/{id}/complete`, `next` included: the steps it
    /// leases come back in this report's answer.
    Complete {
        step_id: Uuid,
        attempt: u32,
        token: Uuid,
        /// Default `null`.
        #[serde(default)]
        result: serde_json::Value,
        /// Default none: a plain complete.
        #[serde(default)]
        next: Option<NextRequest>,
    },
    /// As `POST /v1/steps/{id}/fail`.
    Fail {
        step_id: Uuid,
        attempt: u32,
        token: Uuid,
        /// Default `true`.
        #[serde(default = "yes")]
        retryable: bool,
        error_type: String,
        message: String,
        #[serde(default)]
        details: serde_json::Value,
    },
    /// As `POST /v1/steps/{id}/release`.
    Release {
        step_id: Uuid,
        attempt: u32,
        token: Uuid,
    },
    /// As `POST /v1/steps/{id}/heartbeat`.
    Heartbeat {
        step_id: Uuid,
        attempt: u32,
        token: Uuid,
    },
}

fn yes() -> bool {
    true
}

/// One answer per report, in the order of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepReportResults {
    pub results: Vec<StepReportResult>,
}

/// A report's answer: the status its single endpoint would have answered
/// with, and that endpoint's reply body (none for a release, 204) or error.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepReportResult {
    /// 200, 204 (released), or the error's status (409 for a stale lease).
    #[schema(example = 200)]
    pub status: u16,
    #[serde(flatten)]
    pub answer: StepReportAnswer,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StepReportAnswer {
    Completed(CompleteReply),
    Failed(RecordedReply),
    Heartbeat(HeartbeatReply),
    /// A release: no body.
    Released {},
    /// What the single endpoint would have refused the report with, e.g.
    /// `lease_expired`, `lease_mismatch`, `payload_too_large`.
    Error(ErrorBody),
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/steps/reports", post(report_many))
}

/// What a report asked for, kept to count it once answered.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Complete,
    Fail { retryable: bool },
    Release,
    Heartbeat,
}

/// Report several steps at once.
///
/// Up to 256 reports (complete, fail, release, heartbeat), each answered on
/// its own, in order, with the status and body its single endpoint would
/// answer: a stale lease gets its 409 code and changes nothing while the
/// others apply. A complete's `next` leases steps for that complete alone,
/// returned in its answer. All reports are written in the node's group
/// commit, together with other reports waiting there; a database error
/// answers each report it touched with 500 `internal` (none of them was
/// written) and the reports are sent again.
#[utoipa::path(post, operation_id = "step_report_many", path = "/v1/steps/reports", tag = "leases", security(("bearer" = [])),
    request_body = StepReports,
    responses(
        (status = 200, description = "One answer per report, in order", body = StepReportResults),
        (status = 400, description = "`bad_request`: not a list of reports; `invalid`: more than 256", body = ErrorBody),
        (status = 413, description = "Body over the server's limit", body = ErrorBody)))]
pub async fn report_many(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<StepReportResults>, ApiError> {
    require_json(request.headers())?;
    let bytes = read_body(request, &state).await?;
    // NUL characters are refused per report, by the engine's checks. The
    // common case, every report well formed, is parsed once; otherwise
    // each report is parsed on its own so that a bad one is refused alone.
    let items: Vec<Result<StepReportItem, ApiError>> =
        match serde_json::from_slice::<WellFormed>(&bytes) {
            Ok(body) => {
                check_count(body.reports.len())?;
                body.reports.into_iter().map(Ok).collect()
            }
            Err(_) => {
                let body: StepReports = parse_json_keeping_nul(&bytes)?;
                check_count(body.reports.len())?;
                body.reports
                    .into_iter()
                    .map(|item| {
                        serde_path_to_error::deserialize(item).map_err(|e| item_refusal(&e))
                    })
                    .collect()
            }
        };

    let mut answers: Vec<Option<StepReportResult>> = Vec::with_capacity(items.len());
    let mut kinds = Vec::new();
    let mut reports = Vec::new();
    for item in items {
        let checked = match item {
            Ok(item) => report_of(&state, item).await,
            Err(refused) => Err(refused),
        };
        match checked {
            Ok((kind, report)) => {
                kinds.push(kind);
                reports.push(report);
                answers.push(None);
            }
            Err(error) => answers.push(Some(error_result(&error))),
        }
    }

    let mut written = state
        .engine
        .step_report_many(reports)
        .await
        .into_iter()
        .zip(kinds)
        .map(|(outcome, kind)| answer(&state, kind, outcome));
    let results = answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| written.next().expect("one answer per report")))
        .collect();
    Ok(Json(StepReportResults { results }))
}

/// A request whose every report is well formed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WellFormed {
    reports: Vec<StepReportItem>,
}

fn check_count(count: usize) -> Result<(), ApiError> {
    if count > MAX_REPORTS_PER_REQUEST {
        return Err(ApiError::new(
            "invalid",
            format!(
                "{count} reports in one request; the limit is {MAX_REPORTS_PER_REQUEST}: \
                 send them in several requests"
            ),
        )
        .with_details(json!({ "field": "reports", "limit": MAX_REPORTS_PER_REQUEST })));
    }
    Ok(())
}

/// The engine's form of one report, or why it is refused before anything
/// is written (a bad `next`).
async fn report_of(state: &AppState, item: StepReportItem) -> Result<(Kind, Report), ApiError> {
    Ok(match item {
        StepReportItem::Complete {
            step_id,
            attempt,
            token,
            result,
            next,
        } => {
            // A node that is shutting down hands out no new work, as the
            // single complete does.
            let next = match next {
                Some(next) if !state.engine.is_shutting_down() => {
                    let (worker_id, namespaces, handlers, max) = resolve_next(state, next).await?;
                    Some(NextScope {
                        worker_id,
                        namespaces,
                        handlers,
                        max,
                    })
                }
                _ => None,
            };
            let lease = lease(step_id, attempt, token);
            let report = Report::Complete {
                lease,
                result,
                next,
            };
            (Kind::Complete, report)
        }
        StepReportItem::Fail {
            step_id,
            attempt,
            token,
            retryable,
            error_type,
            message,
            details,
        } => {
            let error = StepError {
                error_type,
                message,
                details,
                retryable,
            };
            let lease = lease(step_id, attempt, token);
            (Kind::Fail { retryable }, Report::Fail { lease, error })
        }
        StepReportItem::Release {
            step_id,
            attempt,
            token,
        } => {
            let lease = lease(step_id, attempt, token);
            (Kind::Release, Report::Release { lease })
        }
        StepReportItem::Heartbeat {
            step_id,
            attempt,
            token,
        } => {
            let lease = lease(step_id, attempt, token);
            (Kind::Heartbeat, Report::Heartbeat { lease })
        }
    })
}

fn lease(step_id: Uuid, attempt: u32, token: Uuid) -> Lease {
    Lease {
        step_id,
        attempt,
        token,
    }
}

/// A report's answer, counted in the metrics as its single endpoint counts
/// it.
fn answer(
    state: &AppState,
    kind: Kind,
    outcome: tasker_engine::Result<ReportOutcome>,
) -> StepReportResult {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return error_result(&refused(state, error)),
    };
    let answer = match (kind, outcome) {
        (Kind::Complete, ReportOutcome::Completed { recorded, next }) => {
            state.metrics.step_completed(recorded);
            state.metrics.claims(&next);
            StepReportAnswer::Completed(CompleteReply {
                recorded: RecordedReply::from(recorded).recorded,
                next,
            })
        }
        (Kind::Fail { retryable }, ReportOutcome::Failed(recorded)) => {
            state.metrics.step_failed(retryable, recorded);
            StepReportAnswer::Failed(recorded.into())
        }
        (Kind::Release, ReportOutcome::Released) => {
            state.metrics.step_released();
            return StepReportResult {
                status: StatusCode::NO_CONTENT.as_u16(),
                answer: StepReportAnswer::Released {},
            };
        }
        (Kind::Heartbeat, ReportOutcome::Heartbeat(outcome)) => match outcome {
            HeartbeatOutcome::Extended { lease_expires_at } => {
                StepReportAnswer::Heartbeat(HeartbeatReply {
                    lease_expires_at: Some(lease_expires_at),
                    cancelled: false,
                })
            }
            HeartbeatOutcome::Cancelled => StepReportAnswer::Heartbeat(HeartbeatReply {
                lease_expires_at: None,
                cancelled: true,
            }),
            HeartbeatOutcome::TimedOut => {
                state.metrics.lease_refused("step_timed_out");
                return error_result(&crate::routes::leases::timed_out());
            }
        },
        (kind, outcome) => unreachable!("a {kind:?} report answered {outcome:?}"),
    };
    StepReportResult {
        status: StatusCode::OK.as_u16(),
        answer,
    }
}

fn error_result(error: &ApiError) -> StepReportResult {
    StepReportResult {
        status: error.status_code().as_u16(),
        answer: StepReportAnswer::Error(ErrorBody {
            error: ErrorDetail {
                code: error.code().to_owned(),
                message: error.message().to_owned(),
                details: error.details().clone(),
            },
        }),
    }
}

/// A report that is not one, refused as its single endpoint refuses a body
/// it cannot read.
fn item_refusal(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner().to_string();
    let refusal = if path == "." {
        ApiError::bad_request(format!("not a report: {inner}"))
    } else {
        ApiError::bad_request(format!("not a report: at {path}: {inner}"))
    };
    if inner.starts_with("unknown field") {
        refusal.with_details(json!({ "field": path }))
    } else {
        refusal
    }
}

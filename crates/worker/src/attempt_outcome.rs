//! How one attempt ended, and what (if anything) the worker tells the server
//! about it. Pure: the runner decides the outcome, this decides the report.
//!
//! ```text
//!   Succeeded ─────────────────────────────▶ complete
//!   Failed / Panicked / TimedOut /
//!   HandlerNotFound ───────────────────────▶ fail (counts an attempt)
//!   Released (shutdown grace ran out) ─────▶ release (attempt not counted)
//!   Abandoned (the server ended it) ───────▶ nothing
//! ```

use std::time::Duration;

use serde_json::{Value, json};
use tasker_client::FailReport;

use crate::cancellation::CancelReason;
use crate::handler_error::HandlerError;

/// `error_type` of an attempt that ran past the step's timeout.
pub const ERROR_TIMEOUT: &str = "timeout";
/// `error_type` of an attempt whose handler panicked.
pub const ERROR_PANIC: &str = "panic";
/// `error_type` of a step whose handler this worker does not have.
pub const ERROR_HANDLER_NOT_FOUND: &str = "handler_not_found";
/// `error_type` of an attempt whose result the server refused (too large).
pub const ERROR_RESULT_REJECTED: &str = "result_rejected";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttemptOutcome {
    Succeeded(Value),
    Failed(HandlerError),
    Panicked(String),
    /// The worker's own timer for the step's timeout fired.
    TimedOut(Duration),
    /// This worker has no handler of that name.
    HandlerNotFound {
        handler: String,
        available: Vec<String>,
    },
    /// Shutdown grace ran out; the step is handed back unfinished for
    /// redelivery. Not the step's fault, so it must not cost an attempt.
    Released,
    /// The server ended the attempt (task cancelled, lease lost, server-side
    /// timeout): any report would be refused, so none is sent.
    Abandoned(CancelReason),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Report {
    Complete(Value),
    Fail(FailReport),
    /// `POST /v1/steps/{id}/release`: ready again at once, attempt not counted.
    Release,
    Nothing,
}

impl AttemptOutcome {
    pub(crate) fn into_report(self, step_name: &str) -> Report {
        match self {
            AttemptOutcome::Succeeded(result) => Report::Complete(result),
            AttemptOutcome::Failed(error) => Report::Fail(error.into_fail_report()),
            AttemptOutcome::Panicked(message) => Report::Fail(FailReport {
                retryable: true,
                error_type: ERROR_PANIC.into(),
                message: format!("handler of step \"{step_name}\" panicked: {message}"),
                details: Value::Null,
            }),
            AttemptOutcome::TimedOut(timeout) => Report::Fail(FailReport {
                retryable: true,
                error_type: ERROR_TIMEOUT.into(),
                message: format!(
                    "step \"{step_name}\" ran longer than its timeout of {}ms",
                    timeout.as_millis()
                ),
                details: json!({ "timeout_ms": timeout.as_millis() as u64 }),
            }),
            AttemptOutcome::HandlerNotFound { handler, available } => Report::Fail(FailReport {
                retryable: true,
                error_type: ERROR_HANDLER_NOT_FOUND.into(),
                message: format!(
                    "this worker has no handler \"{handler}\" for step \"{step_name}\"; \
                     register it, or run a worker that has it on this namespace"
                ),
                details: json!({ "handler": handler, "available": available }),
            }),
            AttemptOutcome::Released => Report::Release,
            AttemptOutcome::Abandoned(_) => Report::Nothing,
        }
    }
}

/// The report sent instead of a result the server refused as invalid or too
/// large: retrying would produce the same result, so the failure is final.
pub(crate) fn result_rejected(server_message: &str) -> FailReport {
    FailReport {
        retryable: false,
        error_type: ERROR_RESULT_REJECTED.into(),
        message: format!("the server refused the step's result: {server_message}"),
        details: Value::Null,
    }
}

/// Text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(outcome: AttemptOutcome) -> FailReport {
        match outcome.into_report("ship") {
            Report::Fail(report) => report,
            other => panic!("expected a fail report, got {other:?}"),
        }
    }

    #[test]
    fn success_completes_with_the_result() {
        assert_eq!(
            AttemptOutcome::Succeeded(json!({"value": 4})).into_report("ship"),
            Report::Complete(json!({"value": 4}))
        );
    }

    #[test]
    fn handler_errors_keep_their_retryability() {
        let retryable = fail(AttemptOutcome::Failed(
            HandlerError::retryable("busy").with_type("rate_limited"),
        ));
        assert!(retryable.retryable);
        assert_eq!(retryable.error_type, "rate_limited");
        let permanent = fail(AttemptOutcome::Failed(HandlerError::permanent("bad")));
        assert!(!permanent.retryable);
    }

    #[test]
    fn runtime_failures_are_retryable_with_their_own_types() {
        let cases = [
            (AttemptOutcome::Panicked("boom".into()), ERROR_PANIC, "boom"),
            (
                AttemptOutcome::TimedOut(Duration::from_secs(30)),
                ERROR_TIMEOUT,
                "30000ms",
            ),
            (
                AttemptOutcome::HandlerNotFound {
                    handler: "orders.ship".into(),
                    available: vec!["orders.pack".into()],
                },
                ERROR_HANDLER_NOT_FOUND,
                "orders.ship",
            ),
        ];
        for (outcome, error_type, mentions) in cases {
            let report = fail(outcome);
            assert!(report.retryable, "{error_type}");
            assert_eq!(report.error_type, error_type);
            assert!(report.message.contains(mentions), "{}", report.message);
            assert!(report.message.contains("\"ship\""), "{}", report.message);
        }
    }

    #[test]
    fn released_attempts_are_handed_back_not_failed() {
        assert_eq!(
            AttemptOutcome::Released.into_report("ship"),
            Report::Release
        );
    }

    #[test]
    fn abandoned_attempts_report_nothing() {
        for reason in [
            CancelReason::TaskCancelled,
            CancelReason::LeaseLost,
            CancelReason::TimedOut,
        ] {
            assert_eq!(
                AttemptOutcome::Abandoned(reason).into_report("ship"),
                Report::Nothing
            );
        }
    }

    #[test]
    fn rejected_results_fail_for_good() {
        let report = result_rejected("result is 2000000 bytes");
        assert!(!report.retryable);
        assert_eq!(report.error_type, ERROR_RESULT_REJECTED);
    }

    #[test]
    fn panic_payloads_become_text() {
        let caught = std::panic::catch_unwind(|| panic!("static text")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "static text");
        let caught = std::panic::catch_unwind(|| panic!("formatted {}", 7)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "formatted 7");
    }
}

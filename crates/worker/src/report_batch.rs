//! [`ReportBatch`]: the worker's group commit of reports. Results, failures
//! and releases that finish while this worker has its most report
//! requests in flight (`report_requests_in_flight`, default 4) wait in a queue and go together in the next request
//! (`POST /v1/steps/reports`); each report still gets its own answer.
//! A batch is whatever is waiting: a lone report is sent at once, on its
//! single endpoint, never held back to fill a batch.
//!
//! ```text
//!  attempt ─┐                       ┌─▶ answer (recorded / next / its error)
//!  attempt ─┼─▶ queue ─▶ sender: take all waiting ─▶ one request ─┼─▶ answer
//!  attempt ─┘          (at most N requests in flight)                   └─▶ answer
//! ```
//!
//! What each attempt does with its answer (retries, refused payloads,
//! `next`) stays with the [`crate::reporter::Reporter`], which submits each
//! try here: a re-send after a transport error joins whatever else waits.
//!
//! Failure: a request that fails as a whole (no answer, a 5xx) answers
//! every report in it with that error, and each attempt retries on its own
//! schedule. A request refused as a whole with a 4xx (a body over the
//! server's limit, a server without the batch endpoint) is sent again as
//! single reports, so each report gets the answer that is truly its own; a
//! server without the endpoint gets single reports from then on. This
//! module must never decide what an answer means.

use std::sync::Arc;

use tasker_client::{
    Client, Error as ClientError, LeaseReport, LeaseReportAnswer, MAX_REPORTS_PER_REQUEST,
};
use tokio::sync::{mpsc, oneshot};

/// A report's answer; the error is shared by every report of a request that
/// failed as a whole.
pub(crate) type Sent = Result<LeaseReportAnswer, Arc<ClientError>>;

struct Pending {
    report: LeaseReport,
    answer: oneshot::Sender<Sent>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReportBatch {
    queue: mpsc::UnboundedSender<Pending>,
}

impl ReportBatch {
    /// Starts the sender, which keeps at most `requests_in_flight` (at
    /// least 1) requests in flight; it stops once every handle is dropped.
    /// Must be called inside a Tokio runtime.
    pub(crate) fn new(client: Client, requests_in_flight: usize) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(deliver(client, waiting, requests_in_flight.max(1)));
        Self { queue }
    }

    /// Sends `report` with whatever else is waiting and returns its answer.
    pub(crate) async fn send(&self, report: LeaseReport) -> Sent {
        let (answer, answered) = oneshot::channel();
        if self.queue.send(Pending { report, answer }).is_err() {
            return Err(Arc::new(sender_gone()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(Arc::new(sender_gone())))
    }
}

fn sender_gone() -> ClientError {
    ClientError::Decode {
        url: "reports".into(),
        message: "the worker's report sender stopped".into(),
    }
}

/// Takes every waiting report once a request may start, sends them in one
/// request, answers each; again, until every [`ReportBatch`] is gone.
async fn deliver(
    client: Client,
    mut waiting: mpsc::UnboundedReceiver<Pending>,
    requests_in_flight: usize,
) {
    // Set when the server has no batch endpoint (an older server).
    let singles_only = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(requests_in_flight));
    loop {
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut batch = Vec::new();
        if waiting.recv_many(&mut batch, MAX_REPORTS_PER_REQUEST).await == 0 {
            return;
        }
        let client = client.clone();
        let singles_only = singles_only.clone();
        tokio::spawn(async move {
            send_batch(&client, batch, &singles_only).await;
            drop(permit);
        });
    }
}

async fn send_batch(
    client: &Client,
    batch: Vec<Pending>,
    singles_only: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let (reports, answers): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.report, p.answer)).unzip();
    let sent = if reports.len() == 1 || singles_only.load(Ordering::Relaxed) {
        send_singles(client, &reports).await
    } else {
        match client.step_report_many(&reports).await {
            Ok(answers) => answers
                .into_iter()
                .map(|answer| answer.map_err(Arc::new))
                .collect(),
            Err(error) if matches!(error.status(), Some(404 | 405)) => {
                tracing::info!(%error, "the server takes no batch of reports; sending them one by one");
                singles_only.store(true, Ordering::Relaxed);
                send_singles(client, &reports).await
            }
            Err(error) if matches!(error.status(), Some(400..=499)) => {
                tracing::debug!(%error, reports = reports.len(), "a batch of reports was refused whole; sending them one by one");
                send_singles(client, &reports).await
            }
            Err(error) => {
                let error = Arc::new(error);
                reports.iter().map(|_| Err(error.clone())).collect()
            }
        }
    };
    for (answer, sent) in answers.into_iter().zip(sent) {
        // An attempt that went away (its runner aborted at shutdown) needs
        // no answer.
        let _ = answer.send(sent);
    }
}

/// Each report on its single endpoint, all at once.
async fn send_singles(client: &Client, reports: &[LeaseReport]) -> Vec<Sent> {
    if let [report] = reports {
        return vec![send_single(client, report).await.map_err(Arc::new)];
    }
    let mut calls = tokio::task::JoinSet::new();
    for (i, report) in reports.iter().cloned().enumerate() {
        let client = client.clone();
        calls.spawn(async move { (i, send_single(&client, &report).await) });
    }
    let mut sent: Vec<Option<Sent>> = (0..reports.len()).map(|_| None).collect();
    while let Some(joined) = calls.join_next().await {
        if let Ok((i, answer)) = joined {
            sent[i] = Some(answer.map_err(Arc::new));
        }
    }
    sent.into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err(Arc::new(sender_gone()))))
        .collect()
}

async fn send_single(
    client: &Client,
    report: &LeaseReport,
) -> Result<LeaseReportAnswer, ClientError> {
    Ok(match report {
        LeaseReport::Complete {
            lease,
            result,
            next: Some(next),
        } => {
            let (recorded, next) = client.step_complete_and_claim(lease, result, next).await?;
            LeaseReportAnswer::Completed { recorded, next }
        }
        LeaseReport::Complete {
            lease,
            result,
            next: None,
        } => LeaseReportAnswer::Completed {
            recorded: client.step_complete(lease, result).await?,
            next: Vec::new(),
        },
        LeaseReport::Fail { lease, report } => {
            LeaseReportAnswer::Failed(client.step_fail(lease, report).await?)
        }
        LeaseReport::Release { lease } => {
            client.step_release(lease).await?;
            LeaseReportAnswer::Released
        }
        LeaseReport::Heartbeat { lease } => {
            LeaseReportAnswer::Heartbeat(client.step_heartbeat(lease).await?)
        }
    })
}

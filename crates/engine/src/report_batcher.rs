//! [`ReportBatcher`]: a node's group commit of worker reports. Results,
//! failures, releases and heartbeats that arrive while the node's writes
//! are in flight are written together in one transaction
//! ([`tasker_store::Store::step_report`]); each request still gets its own
//! answer. A batch is whatever is waiting: a lone report is written at once,
//! never held back to fill a batch.
//!
//! ```text
//!  request ─┐                          ┌─▶ answer (applied / duplicate / 409 code)
//!  request ─┼─▶ queue ─▶ a free writer: take all waiting ─▶ one transaction ─┼─▶ answer
//!  request ─┘            (`engine.report_writers` writes in flight)         └─▶ answer
//! ```
//!
//! Several writers (`engine.report_writers`, default 2): while one batch
//! waits on the database (its round trips, its commit's flush), the next
//! one is already being written, so a node's reports are not bounded by one
//! transaction's latency. Batches lock their tasks in id order like every
//! transaction, so two batches that meet on a task take turns; they cannot
//! deadlock.
//!
//! Failure: a database error fails every report of its batch (nothing of it
//! was written) and each request answers it, so workers send them again. The
//! writer itself never stops while the engine lives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tasker_store::{ReportOutcome, StepReport, Store};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most reports written in one transaction.
const MAX_BATCH: usize = 512;

type Answer = Result<ReportOutcome, tasker_store::Error>;

struct Pending {
    report: StepReport,
    answer: oneshot::Sender<Answer>,
}

pub struct ReportBatcher {
    store: Arc<dyn Store>,
    /// Writes in flight at most.
    writers: usize,
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
    /// Transactions written so far.
    batches: Arc<AtomicU64>,
    /// Reports written so far (in those transactions).
    reports: Arc<AtomicU64>,
}

impl std::fmt::Debug for ReportBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportBatcher").finish_non_exhaustive()
    }
}

impl ReportBatcher {
    /// A batcher with `writers` writes in flight at most (at least 1).
    pub fn new(store: Arc<dyn Store>, writers: usize) -> Self {
        Self {
            store,
            writers: writers.max(1),
            queue: OnceLock::new(),
            batches: Arc::default(),
            reports: Arc::default(),
        }
    }

    /// Writes `reports` (with whatever else is waiting) and returns their
    /// answers in order.
    pub async fn write(&self, reports: Vec<StepReport>) -> Vec<Answer> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..self.writers {
                tokio::spawn(writer(
                    self.store.clone(),
                    receiver.clone(),
                    self.batches.clone(),
                    self.reports.clone(),
                ));
            }
            sender
        });
        let mut answers = Vec::with_capacity(reports.len());
        for report in reports {
            let (answer, answered) = oneshot::channel();
            if queue.send(Pending { report, answer }).is_err() {
                answers.push(None);
            } else {
                answers.push(Some(answered));
            }
        }
        let mut out = Vec::with_capacity(answers.len());
        for answered in answers {
            out.push(match answered {
                Some(answered) => answered.await.unwrap_or_else(|_| Err(writer_gone())),
                None => Err(writer_gone()),
            });
        }
        out
    }

    /// Transactions the writer has made so far (each holds one or more
    /// reports).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Reports written so far.
    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Relaxed)
    }

    /// Writes one report.
    pub async fn write_one(&self, report: StepReport) -> Answer {
        self.write(vec![report])
            .await
            .pop()
            .expect("one answer per report")
    }
}

fn writer_gone() -> tasker_store::Error {
    tasker_store::Error::Database("the report writer stopped".into())
}

/// Takes every waiting report, writes them in one transaction, answers each;
/// again, until the engine is gone. The writers take turns at the queue:
/// one waits for reports while the others write theirs.
async fn writer(
    store: Arc<dyn Store>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    batches: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
) {
    let mut batch = Vec::new();
    loop {
        let received = queue.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if received == 0 {
            return;
        }
        batches.fetch_add(1, Ordering::Relaxed);
        written.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (reports, answers): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.report, p.answer)).unzip();
        match store.step_report(reports).await {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    // A request that went away needs no answer; what it
                    // reported is recorded all the same.
                    let _ = answer.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, reports = answers.len(), "writing a batch of reports failed");
                for answer in answers {
                    let _ = answer.send(Err(error.duplicate()));
                }
            }
        }
    }
}

//! One `LISTEN` connection per node: turns `NOTIFY tasker_ready, '<namespace>'`
//! into wake-ups of the long-polls waiting on that namespace, and
//! `NOTIFY tasker_leadership, '<duty set>'` (a leader resigned) into a
//! wake-up of this node's election.
//!
//! Notifications are a latency optimization, never a correctness
//! requirement: pollers also re-check on an interval. When the listening
//! connection drops, notifications sent meanwhile are lost, so after every
//! reconnect the notifier wakes every waiter to look again.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::{LEADERSHIP_CHANNEL, READY_CHANNEL};

/// Called with a namespace name, or `None` for "anything may be ready".
pub type OnReady = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// Called when a leader resigned (or, after a reconnect, may have).
pub type OnLeadership = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug)]
pub struct Notifier {
    task: JoinHandle<()>,
}

impl Notifier {
    /// Starts listening in the background; retries the connection forever
    /// with a capped backoff.
    pub fn start(url: String, on_ready: OnReady) -> Self {
        Self::start_with_leadership(url, on_ready, Arc::new(|| {}))
    }

    /// As [`Notifier::start`], also calling `on_leadership` when a leader
    /// resigns.
    pub fn start_with_leadership(
        url: String,
        on_ready: OnReady,
        on_leadership: OnLeadership,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match listen(&url, &on_ready, &on_leadership).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "ready-notification listener lost its connection; reconnecting");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                on_ready(None);
                on_leadership();
            }
        });
        Self { task }
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(
    url: &str,
    on_ready: &OnReady,
    on_leadership: &OnLeadership,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener
        .listen_all([READY_CHANNEL, LEADERSHIP_CHANNEL])
        .await?;
    // Anything sent before LISTEN took effect was missed.
    on_ready(None);
    on_leadership();
    loop {
        match listener.try_recv().await? {
            Some(notification) if notification.channel() == LEADERSHIP_CHANNEL => on_leadership(),
            Some(notification) => on_ready(Some(notification.payload())),
            // The connection was lost and re-established: wake everyone.
            None => {
                on_ready(None);
                on_leadership();
            }
        }
    }
}
